"""AWS Signature Version 4 for S3: the Authorization header and presigned (query) URLs.

:func:`verify_request` checks one request's signature and returns an :class:`AuthContext`
describing who signed it and how the body must be read (the payload mode). It does not read
the body: a signed payload hash is checked at the body's end by
:class:`protocols.s3.chunked.PayloadVerifier`, an aws-chunked body chunk by chunk by
:class:`protocols.s3.chunked.AwsChunkedReader`, both fed from the returned context.

The canonical request is built as S3 does (not as the generic SigV4 services do):

- the path is URI-encoded once per segment, '/' kept, with no normalisation of ``.``/``..``
  or repeated slashes. The raw path is percent-decoded and re-encoded with the SigV4 rules
  (``A-Za-z0-9-._~`` kept, everything else ``%XX`` upper case), so clients that encode a
  few characters differently on the wire still verify; if that fails the raw path as sent is
  tried too, which covers clients that sign exactly what they send;
- the query is decoded pair by pair (``+`` as a space, as S3 reads query strings; a literal
  ``+`` is retried on failure) and re-encoded, sorted by encoded name then value, without
  ``X-Amz-Signature``;
- the signed headers' values are trimmed with inner whitespace runs collapsed to one space.

Signatures are compared in constant time. Only SigV4 (``AWS4-HMAC-SHA256``) is accepted: a
SigV2 request gets ``InvalidRequest`` saying so. Secrets are never logged or put in errors.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import product
from typing import Final, Protocol
from urllib.parse import quote, unquote, unquote_plus, unquote_to_bytes

from protocols.s3.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    MissingContentLength,
    RequestExpired,
    RequestNotYetValid,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from protocols.s3.errors import (
    NotImplemented as S3NotImplemented,
)

ALGORITHM: Final = "AWS4-HMAC-SHA256"
SERVICE: Final = "s3"
TERMINATOR: Final = "aws4_request"
#: SHA-256 of the empty string, the payload hash of chunk-signature string-to-signs.
EMPTY_SHA256: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_SKEW: Final = timedelta(minutes=15)
#: X-Amz-Expires may be at most seven days.
MAX_PRESIGN_EXPIRES: Final = 7 * 24 * 3600

UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED: Final = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER: Final = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER: Final = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

_UNRESERVED: Final = "-_.~"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_DATE8 = re.compile(r"\d{8}\Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+\Z")
#: x-amz-* headers that may be present without being signed.
_UNSIGNED_OK: Final = frozenset({"x-amz-date"})
_QUERY_AUTH_PARAMS: Final = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


class PayloadMode(enum.Enum):
    """How the body is protected, from ``x-amz-content-sha256``."""

    #: ``UNSIGNED-PAYLOAD`` (and every presigned URL that does not say otherwise).
    UNSIGNED = "unsigned"
    #: A hex SHA-256 of the body, checked at its end (``AuthContext.declared_sha256``).
    SIGNED = "signed"
    #: ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``: aws-chunked, each chunk signed (restic).
    STREAMING_SIGNED = "streaming-signed"
    #: ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: aws-chunked, a checksum trailer (botocore).
    STREAMING_UNSIGNED_TRAILER = "streaming-unsigned-trailer"
    #: ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``: signed chunks and a signed trailer.
    STREAMING_SIGNED_TRAILER = "streaming-signed-trailer"

    @property
    def streaming(self) -> bool:
        """The body is aws-chunked."""
        return self not in (PayloadMode.UNSIGNED, PayloadMode.SIGNED)

    @property
    def signed_chunks(self) -> bool:
        return self in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER)

    @property
    def has_trailer(self) -> bool:
        return self in (PayloadMode.STREAMING_UNSIGNED_TRAILER, PayloadMode.STREAMING_SIGNED_TRAILER)


@dataclass(frozen=True)
class AuthContext:
    """A verified request: who signed it, and what the body reader needs to go on."""

    access_key_id: str
    region: str
    service: str
    #: The derived SigV4 key (not the secret): verifies chunk and trailer signatures.
    signing_key: bytes = field(repr=False)
    #: The request's own signature, the seed of the chunk signature chain.
    seed_signature: str
    #: ``YYYYMMDDTHHMMSSZ`` as signed.
    amz_date: str
    #: ``date/region/s3/aws4_request``.
    scope: str
    payload_mode: PayloadMode
    #: Lowercase hex SHA-256 of the body when ``payload_mode`` is SIGNED, else None.
    declared_sha256: str | None
    #: Lowercase names announced in ``x-amz-trailer`` (streaming trailer modes).
    trailer_names: tuple[str, ...]
    #: ``x-amz-decoded-content-length`` of an aws-chunked body, else None.
    decoded_content_length: int | None
    presigned: bool
    signed_headers: tuple[str, ...]
    request_time: datetime


class Credentials(Protocol):
    """What the verifier needs of the credential store."""

    def lookup(self, access_key_id: str) -> str | None:
        """The secret of ``access_key_id``, or None if unknown (or raise InvalidAccessKeyId)."""
        ...


SecretLookup = Callable[[str], "str | None"]


# --- primitives -----------------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def derive_signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, TERMINATOR)


def sign(signing_key: bytes, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 of ``string_to_sign``."""
    return hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def uri_encode(data: bytes | str, *, keep_slash: bool) -> str:
    """SigV4 URI encoding: unreserved characters kept, the rest ``%XX`` in upper case."""
    return quote(data, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_uri(raw_path: str) -> str:
    """The S3 canonical URI of a raw (still percent-encoded) path: decoded once, re-encoded."""
    if not raw_path:
        return "/"
    return uri_encode(unquote_to_bytes(raw_path), keep_slash=True)


def _split_query(raw_query: str) -> Iterator[tuple[str, str]]:
    for piece in raw_query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        yield name, value


def canonical_query(raw_query: str, *, plus_is_space: bool = True, exclude: str | None = None) -> str:
    """The canonical query string of a raw query (``exclude``: a parameter to leave out)."""
    decode = unquote_plus if plus_is_space else unquote
    pairs = []
    for name, value in _split_query(raw_query):
        dname = decode(name)
        if exclude is not None and dname == exclude:
            continue
        pairs.append((uri_encode(dname, keep_slash=False), uri_encode(decode(value), keep_slash=False)))
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def _canonical_query_of(params: Mapping[str, list[str]], exclude: str | None) -> str:
    # Same result as canonical_query(raw, plus_is_space=True) when params == query_params(raw):
    # the pairs are sorted, so grouping repeats by name does not change the output.
    pairs = [
        (uri_encode(name, keep_slash=False), uri_encode(value, keep_slash=False))
        for name, values in params.items() if name != exclude
        for value in values
    ]
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def query_params(raw_query: str) -> dict[str, list[str]]:
    """Decoded query parameters as S3 reads them (``+`` is a space), in order, repeats kept."""
    out: dict[str, list[str]] = {}
    for name, value in _split_query(raw_query):
        out.setdefault(unquote_plus(name), []).append(unquote_plus(value))
    return out


def canonical_header_value(value: str) -> str:
    return " ".join(value.split())


def canonical_request(
    method: str,
    canonical_path: str,
    canonical_qs: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload_hash: str,
) -> str:
    """The SigV4 canonical request; ``headers`` must have lowercase names."""
    lines = [method.upper(), canonical_path, canonical_qs]
    lines.extend(f"{name}:{canonical_header_value(headers.get(name, ''))}" for name in signed_headers)
    lines.append("")
    lines.append(";".join(signed_headers))
    lines.append(payload_hash)
    return "\n".join(lines)


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


# --- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    request_time: datetime
    expires: int | None  # presigned only

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


def _parse_credential(value: str, err: type[AuthorizationHeaderMalformed] | type[AuthorizationQueryParametersError]) -> tuple[str, str, str, str]:
    parts = value.strip().rsplit("/", 4)
    if len(parts) != 5 or not parts[0]:
        raise err(
            f"Error parsing the Credential/X-Amz-Credential parameter; the Credential is mal-formed;"
            f" expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/{TERMINATOR}\"."
        )
    akid, date, region, service, terminator = parts
    if not _DATE8.match(date):
        raise err(f"Invalid credential date \"{date}\". This date is not the valid format of YYYYMMDD.")
    if not region:
        raise err("The authorization header is malformed; the region is empty.")
    if service != SERVICE:
        raise err(f"The authorization header is malformed; incorrect service \"{service}\". This endpoint belongs to \"{SERVICE}\".")
    if terminator != TERMINATOR:
        raise err(f"The authorization header is malformed; incorrect terminal \"{terminator}\". This endpoint uses \"{TERMINATOR}\".")
    return akid, date, region, service


def _parse_signed_headers(value: str, err: type[AuthorizationHeaderMalformed] | type[AuthorizationQueryParametersError]) -> tuple[str, ...]:
    names = tuple(value.strip().split(";"))
    if not names or any(not _HEADER_NAME.match(n) for n in names):
        raise err("The SignedHeaders component is malformed: names must be lowercase and separated by ';'.")
    if "host" not in names:
        raise err("The host header must be signed.")
    return names


def _parse_signature(value: str, err: type[AuthorizationHeaderMalformed] | type[AuthorizationQueryParametersError]) -> str:
    sig = value.strip()
    if not _HEX64.match(sig):
        raise err("The Signature component is malformed: expecting 64 hexadecimal digits.")
    return sig.lower()


def _parse_amz_date(value: str) -> datetime | None:
    # Fast path for the one shape clients send; anything else gets strptime's exact rules.
    if len(value) == 16 and value[8] == "T" and value[15] == "Z":
        digits = value[:8] + value[9:15]
        if digits.isascii() and digits.isdigit():
            try:
                return datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]),
                                int(value[11:13]), int(value[13:15]), tzinfo=UTC)
            except ValueError:
                pass
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_header_auth(authorization: str, headers: Mapping[str, str]) -> _Parsed:
    err = AuthorizationHeaderMalformed
    algo, _, rest = authorization.strip().partition(" ")
    if algo != ALGORITHM:
        if algo == "AWS":
            raise InvalidRequest(
                "The authorization mechanism you have provided is not supported. Please use"
                f" {ALGORITHM}."
            )
        if algo == "AWS4-ECDSA-P256-SHA256":
            raise S3NotImplemented("Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported.")
        raise InvalidArgument("Unsupported Authorization Type", ArgumentName="Authorization",
                              ArgumentValue=algo[:64])
    components: dict[str, str] = {}
    for piece in rest.split(","):
        piece = piece.strip()
        if not piece:
            continue
        name, eq, value = piece.partition("=")
        if not eq or name in components:
            raise err(f"The authorization header is malformed; the component \"{piece[:80]}\" is invalid.")
        components[name] = value
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in components]
    if missing:
        raise err(f"The authorization header is malformed; missing {missing[0]}.")
    akid, date, region, service = _parse_credential(components["Credential"], err)
    signed = _parse_signed_headers(components["SignedHeaders"], err)
    signature = _parse_signature(components["Signature"], err)

    amz_date_header = headers.get("x-amz-date")
    if amz_date_header is not None:
        amz_date = amz_date_header.strip()
        t = _parse_amz_date(amz_date)
    elif "date" in headers:
        try:
            t = parsedate_to_datetime(headers["date"])
        except (TypeError, ValueError, IndexError):
            t = None
        if t is not None:
            t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        amz_date = t.strftime("%Y%m%dT%H%M%SZ") if t is not None else ""
    else:
        t = None
        amz_date = ""
    if t is None:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    if amz_date[:8] != date:
        raise err(
            f"The authorization header is malformed; Invalid credential date. Date is not the same"
            f" as X-Amz-Date: \"{date}\"."
        )
    return _Parsed(akid, date, region, service, signed, signature, amz_date, t, None)


def _parse_query_auth(params: Mapping[str, list[str]]) -> _Parsed:
    err = AuthorizationQueryParametersError
    values: dict[str, str] = {}
    for name in _QUERY_AUTH_PARAMS:
        got = params.get(name)
        if not got:
            raise err(
                "Query-string authentication version 4 requires the X-Amz-Algorithm,"
                " X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and"
                " X-Amz-Expires parameters."
            )
        if len(got) > 1:
            raise err(f"The {name} parameter appears more than once.")
        values[name] = got[0]
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise err(f"X-Amz-Algorithm only supports \"{ALGORITHM}\"")
    akid, date, region, service = _parse_credential(values["X-Amz-Credential"], err)
    signed = _parse_signed_headers(values["X-Amz-SignedHeaders"], err)
    signature = _parse_signature(values["X-Amz-Signature"], err)
    amz_date = values["X-Amz-Date"].strip()
    t = _parse_amz_date(amz_date)
    if t is None:
        raise err("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    if amz_date[:8] != date:
        raise err(f"Invalid credential date \"{date}\". It must be the same as X-Amz-Date.")
    raw_expires = values["X-Amz-Expires"].strip()
    if not raw_expires.isdigit() or len(raw_expires) > 12:
        raise err("X-Amz-Expires should be a number")
    expires = int(raw_expires)
    if expires > MAX_PRESIGN_EXPIRES:
        raise err(f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}")
    return _Parsed(akid, date, region, service, signed, signature, amz_date, t, expires)


def _payload_mode(value: str) -> tuple[PayloadMode, str | None]:
    if value == UNSIGNED_PAYLOAD:
        return PayloadMode.UNSIGNED, None
    if value == STREAMING_SIGNED:
        return PayloadMode.STREAMING_SIGNED, None
    if value == STREAMING_UNSIGNED_TRAILER:
        return PayloadMode.STREAMING_UNSIGNED_TRAILER, None
    if value == STREAMING_SIGNED_TRAILER:
        return PayloadMode.STREAMING_SIGNED_TRAILER, None
    if _HEX64.match(value):
        return PayloadMode.SIGNED, value.lower()
    if value.startswith("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"):
        raise S3NotImplemented("Signature Version 4A payloads are not supported.")
    raise InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER,"
        " STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a"
        " valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=value[:128],
    )


def is_anonymous(raw_query: str, headers: Mapping[str, str]) -> bool:
    """True when the request carries no authentication at all (neither header nor query)."""
    h = _lower_headers(headers)
    if "authorization" in h:
        return False
    params = query_params(raw_query)
    return not any(p in params for p in ("X-Amz-Algorithm", "X-Amz-Signature", "AWSAccessKeyId", "Signature"))


# --- verification ---------------------------------------------------------------------------


def verify_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    lookup_secret: SecretLookup,
    now: datetime,
    *,
    region_ok: Callable[[str], bool] | None = None,
    params: Mapping[str, list[str]] | None = None,
) -> AuthContext:
    """Verify a SigV4-signed S3 request (Authorization header or presigned URL).

    ``path`` is the raw request path as sent (still percent-encoded, no query), ``query`` the
    raw query string without ``?``, ``headers`` every request header (any case; include
    ``Content-Length``/``Content-Type`` and ``Host``), ``lookup_secret`` maps an access key id
    to its secret or None, ``now`` is the server time. ``region_ok`` may refuse the signed
    region; by default any region is accepted (clients of a gateway often sign "us-east-1").
    ``params`` may pass ``query_params(query)`` when the caller already parsed it, so the
    query is decoded once per request.

    Raises the matching :class:`~protocols.s3.errors.S3Error`: ``AccessDenied`` (anonymous,
    expired, unsigned x-amz-* headers), ``InvalidRequest`` (SigV2), ``InvalidAccessKeyId``,
    ``SignatureDoesNotMatch``, ``RequestTimeTooSkewed``, ``AuthorizationHeaderMalformed``,
    ``AuthorizationQueryParametersError``, ``InvalidArgument``, ``MissingContentLength``.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    h = _lower_headers(headers)
    if params is None:
        params = query_params(query)
    authorization = h.get("authorization")
    presigned = "X-Amz-Algorithm" in params or "X-Amz-Signature" in params
    if authorization is not None and presigned:
        raise InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter,"
            " Signature query string parameter or the Authorization header should be specified",
            ArgumentName="Authorization",
        )
    if authorization is None and not presigned:
        if "AWSAccessKeyId" in params or "Signature" in params:
            raise InvalidRequest(
                "The authorization mechanism you have provided is not supported. Please use"
                f" {ALGORITHM}."
            )
        raise AccessDenied("Anonymous access is not allowed; sign requests with AWS Signature Version 4.")

    parsed = _parse_query_auth(params) if presigned else _parse_header_auth(authorization or "", h)

    if region_ok is not None and not region_ok(parsed.region):
        raise AuthorizationHeaderMalformed(
            f"The authorization header is malformed; the region '{parsed.region}' is wrong.",
            Region=parsed.region,
        )

    skew_fields = {
        "RequestTime": parsed.amz_date,
        "ServerTime": _iso(now),
        "MaxAllowedSkewMilliseconds": int(MAX_SKEW.total_seconds() * 1000),
    }
    if presigned:
        assert parsed.expires is not None
        if parsed.request_time - now > MAX_SKEW:
            raise RequestNotYetValid(extra=skew_fields)
        expiry = parsed.request_time + timedelta(seconds=parsed.expires)
        if now > expiry:
            raise RequestExpired(
                extra={"X-Amz-Expires": parsed.expires, "Expires": _iso(expiry), "ServerTime": _iso(now)}
            )
    elif abs(now - parsed.request_time) > MAX_SKEW:
        raise RequestTimeTooSkewed(extra=skew_fields)

    # Unsigned x-amz-* headers could be changed in flight without breaking the signature.
    unsigned = sorted(
        n for n in h if n.startswith("x-amz-") and n not in parsed.signed_headers and n not in _UNSIGNED_OK
        and not (presigned and n == "x-amz-content-sha256")
    )
    if unsigned:
        raise AccessDenied(
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(unsigned),
        )

    secret = lookup_secret(parsed.access_key_id)
    if secret is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=parsed.access_key_id)
    key = derive_signing_key(secret, parsed.date, parsed.region, parsed.service)

    content_sha = h.get("x-amz-content-sha256")
    if presigned:
        payload_candidates = [UNSIGNED_PAYLOAD]
        if content_sha is not None:
            payload_candidates.insert(0, content_sha.strip())
    elif content_sha is None:
        # S3 requires the header; without it the only payload we can vouch for is empty.
        payload_candidates = [EMPTY_SHA256]
    else:
        payload_candidates = [content_sha.strip()]
    mode, declared = _payload_mode(payload_candidates[0])

    exclude = "X-Amz-Signature" if presigned else None
    paths = [canonical_uri(path)]
    if (path or "/") not in paths:
        paths.append(path or "/")
    queries = [_canonical_query_of(params, exclude)]
    if "+" in query:
        queries.append(canonical_query(query, plus_is_space=False, exclude=exclude))

    first: tuple[str, str] | None = None
    for payload, cpath, cq in product(payload_candidates, paths, queries):
        creq = canonical_request(method, cpath, cq, h, parsed.signed_headers, payload)
        sts = string_to_sign(parsed.amz_date, parsed.scope, creq)
        if first is None:
            first = (creq, sts)
        if hmac.compare_digest(sign(key, sts), parsed.signature):
            if payload != payload_candidates[0]:
                mode, declared = _payload_mode(payload)
            break
    else:
        assert first is not None
        raise SignatureDoesNotMatch(
            AWSAccessKeyId=parsed.access_key_id,
            StringToSign=first[1],
            SignatureProvided=parsed.signature,
            CanonicalRequest=_redacted(first[0]),
        )

    decoded_length: int | None = None
    trailer_names: tuple[str, ...] = ()
    if mode.streaming:
        raw_len = h.get("x-amz-decoded-content-length")
        if raw_len is None:
            raise MissingContentLength(
                "You must provide the x-amz-decoded-content-length header with an aws-chunked body."
            )
        raw_len = raw_len.strip()
        if not raw_len.isdigit() or len(raw_len) > 15:
            raise InvalidArgument(
                "x-amz-decoded-content-length is not a valid length.",
                ArgumentName="x-amz-decoded-content-length",
                ArgumentValue=raw_len[:32],
            )
        decoded_length = int(raw_len)
        if mode.has_trailer:
            trailer_names = tuple(
                n.strip().lower() for n in h.get("x-amz-trailer", "").split(",") if n.strip()
            )

    return AuthContext(
        access_key_id=parsed.access_key_id,
        region=parsed.region,
        service=parsed.service,
        signing_key=key,
        seed_signature=parsed.signature,
        amz_date=parsed.amz_date,
        scope=parsed.scope,
        payload_mode=mode,
        declared_sha256=declared,
        trailer_names=trailer_names,
        decoded_content_length=decoded_length,
        presigned=presigned,
        signed_headers=parsed.signed_headers,
        request_time=parsed.request_time,
    )


def _redacted(canonical: str) -> str:
    # The error body echoes the canonical request (as S3 does) to help debug clients; an
    # SSE-C key is a secret even when its owner sent it, so it never goes into a body or log.
    lines = canonical.split("\n")
    for i, line in enumerate(lines):
        name, sep, _ = line.partition(":")
        if sep and name.endswith("-customer-key"):
            lines[i] = f"{name}:<redacted>"
    return "\n".join(lines)


def chunk_string_to_sign(ctx: AuthContext, previous_signature: str, chunk_sha256_hex: str) -> str:
    """The string-to-sign of one aws-chunked chunk."""
    return (
        f"{ALGORITHM}-PAYLOAD\n{ctx.amz_date}\n{ctx.scope}\n{previous_signature}\n"
        f"{EMPTY_SHA256}\n{chunk_sha256_hex}"
    )


def trailer_string_to_sign(ctx: AuthContext, previous_signature: str, trailer_sha256_hex: str) -> str:
    """The string-to-sign of the trailer chunk (signed-trailer mode)."""
    return f"{ALGORITHM}-TRAILER\n{ctx.amz_date}\n{ctx.scope}\n{previous_signature}\n{trailer_sha256_hex}"
