"""S3 errors: one exception class per S3 error code, and their XML rendering.

As in moto's ``s3/exceptions.py``, every failure the S3 front end reports is an
:class:`S3Error` subclass named after its S3 code, carrying the HTTP status, a message, the
resource (the request path) and any extra elements S3 puts in its error body (``BucketName``,
``Key``, ``StorageClass``, ``Region``...). :func:`render_error` turns one into the standard
body::

    <?xml version="1.0" encoding="UTF-8"?>
    <Error><Code>NoSuchKey</Code><Message>...</Message><Key>a.txt</Key>
    <Resource>/bucket/a.txt</Resource><RequestId>...</RequestId></Error>

Domain errors (``gateway.errors``) are translated once, here, by :func:`from_domain`, so a
front end never lets a ``CoolStorageError`` (let alone a traceback) reach a client.

Class-level ``message`` is the default text; an instance may carry a more precise one.
Extra response headers (``Allow`` for 405, ``Retry-After`` for 503, ``Content-Range`` for
416) travel in ``headers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gateway import errors as domain


class S3Error(Exception):
    """Base of every S3 error: ``code``, ``status``, ``message``, ``resource``, extra fields."""

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    message: str = "We encountered an internal error. Please try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        resource: str | None = None,
        headers: dict[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)
        self.resource = resource
        self.headers: dict[str, str] = dict(headers or {})
        # ``extra`` carries element names that are not identifiers (``X-Amz-Expires``).
        merged = {**(extra or {}), **fields}
        #: Extra elements of the error body, in order (None values are left out).
        self.fields: dict[str, str] = {k: _text(v) for k, v in merged.items() if v is not None}

    @property
    def has_body(self) -> bool:
        """Whether the response carries the XML body (304 never does)."""
        return self.status not in (204, 304) and self.status >= 200

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class GenericError(S3Error):
    """An S3 error with a code this module has no class for (``code`` given per instance)."""

    def __init__(self, code: str, status: int, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.code = code  # type: ignore[misc]
        self.status = status  # type: ignore[misc]


# --- authentication -------------------------------------------------------------------------


class AccessDenied(S3Error):
    code = "AccessDenied"
    status = 403
    message = "Access Denied"


class RequestExpired(AccessDenied):
    """A presigned URL used after ``X-Amz-Date + X-Amz-Expires`` (S3 says AccessDenied)."""

    message = "Request has expired"


class RequestNotYetValid(AccessDenied):
    """A presigned URL whose ``X-Amz-Date`` lies in the future beyond the allowed skew."""

    message = "Request is not valid yet"


class InvalidAccessKeyId(S3Error):
    code = "InvalidAccessKeyId"
    status = 403
    message = "The AWS Access Key Id you provided does not exist in our records."


class SignatureDoesNotMatch(S3Error):
    code = "SignatureDoesNotMatch"
    status = 403
    message = (
        "The request signature we calculated does not match the signature you provided."
        " Check your key and signing method."
    )


class RequestTimeTooSkewed(S3Error):
    code = "RequestTimeTooSkewed"
    status = 403
    message = "The difference between the request time and the current time is too large."


class AuthorizationHeaderMalformed(S3Error):
    code = "AuthorizationHeaderMalformed"
    status = 400
    message = "The authorization header is malformed."


class AuthorizationQueryParametersError(S3Error):
    code = "AuthorizationQueryParametersError"
    status = 400
    message = "The query parameters that authenticate this request are malformed."


class MissingSecurityHeader(S3Error):
    code = "MissingSecurityHeader"
    status = 400
    message = "Your request is missing a required header."


class ExpiredToken(S3Error):
    code = "ExpiredToken"
    status = 400
    message = "The provided token has expired."


# --- payload integrity ----------------------------------------------------------------------


class XAmzContentSHA256Mismatch(S3Error):
    code = "XAmzContentSHA256Mismatch"
    status = 400
    message = "The provided 'x-amz-content-sha256' header does not match what was computed."


class BadDigest(S3Error):
    code = "BadDigest"
    status = 400
    message = "The Content-MD5 you specified did not match what we received."


class InvalidDigest(S3Error):
    code = "InvalidDigest"
    status = 400
    message = "The Content-MD5 you specified is not valid."


class IncompleteBody(S3Error):
    code = "IncompleteBody"
    status = 400
    message = "You did not provide the number of bytes specified by the Content-Length HTTP header."


class MissingContentLength(S3Error):
    code = "MissingContentLength"
    status = 411
    message = "You must provide the Content-Length HTTP header."


class MissingRequestBodyError(S3Error):
    code = "MissingRequestBodyError"
    status = 400
    message = "Request Body is empty"


# --- request shape --------------------------------------------------------------------------


class InvalidRequest(S3Error):
    code = "InvalidRequest"
    status = 400
    message = "Invalid Request"


class InvalidArgument(S3Error):
    code = "InvalidArgument"
    status = 400
    message = "Invalid Argument"


class InvalidURI(S3Error):
    code = "InvalidURI"
    status = 400
    message = "Couldn't parse the specified URI."


class InvalidBucketName(S3Error):
    code = "InvalidBucketName"
    status = 400
    message = "The specified bucket is not valid."


class InvalidStorageClass(S3Error):
    code = "InvalidStorageClass"
    status = 400
    message = "The storage class you specified is not valid"


class InvalidLocationConstraint(S3Error):
    code = "InvalidLocationConstraint"
    status = 400
    message = "The specified location-constraint is not valid"


class InvalidEncryptionAlgorithmError(S3Error):
    code = "InvalidEncryptionAlgorithmError"
    status = 400
    message = "The encryption request you specified is not valid. The valid value is AES256."


class KeyTooLongError(S3Error):
    code = "KeyTooLongError"
    status = 400
    message = "Your key is too long"


class MetadataTooLarge(S3Error):
    code = "MetadataTooLarge"
    status = 400
    message = "Your metadata headers exceed the maximum allowed metadata size."


class RequestHeaderSectionTooLarge(S3Error):
    code = "RequestHeaderSectionTooLarge"
    status = 400
    message = "Your request header section exceeds the maximum allowed size."


class MaxMessageLengthExceeded(S3Error):
    code = "MaxMessageLengthExceeded"
    status = 400
    message = "Your request was too big."


class MalformedXML(S3Error):
    code = "MalformedXML"
    status = 400
    message = (
        "The XML you provided was not well-formed or did not validate against our published"
        " schema"
    )


class EntityTooSmall(S3Error):
    code = "EntityTooSmall"
    status = 400
    message = "Your proposed upload is smaller than the minimum allowed object size."


class EntityTooLarge(S3Error):
    code = "EntityTooLarge"
    status = 400
    message = "Your proposed upload exceeds the maximum allowed object size."


class MethodNotAllowed(S3Error):
    code = "MethodNotAllowed"
    status = 405
    message = "The specified method is not allowed against this resource."


class NotImplemented(S3Error):
    """501: functionality S3 has and this gateway does not."""

    code = "NotImplemented"
    status = 501
    message = "A header you provided implies functionality that is not implemented"


# --- buckets and objects --------------------------------------------------------------------


class NoSuchBucket(S3Error):
    code = "NoSuchBucket"
    status = 404
    message = "The specified bucket does not exist"


class NoSuchKey(S3Error):
    code = "NoSuchKey"
    status = 404
    message = "The specified key does not exist."


class NoSuchVersion(S3Error):
    code = "NoSuchVersion"
    status = 404
    message = "The specified version does not exist."


class NoSuchUpload(S3Error):
    code = "NoSuchUpload"
    status = 404
    message = (
        "The specified upload does not exist. The upload ID may be invalid, or the upload may"
        " have been aborted or completed."
    )


class BucketNotEmpty(S3Error):
    code = "BucketNotEmpty"
    status = 409
    message = "The bucket you tried to delete is not empty"


class BucketAlreadyOwnedByYou(S3Error):
    code = "BucketAlreadyOwnedByYou"
    status = 409
    message = "Your previous request to create the named bucket succeeded and you already own it."


class BucketAlreadyExists(S3Error):
    code = "BucketAlreadyExists"
    status = 409
    message = (
        "The requested bucket name is not available. The bucket namespace is shared by all"
        " users of the system. Please select a different name and try again."
    )


class InvalidRange(S3Error):
    code = "InvalidRange"
    status = 416
    message = "The requested range is not satisfiable"


class PreconditionFailed(S3Error):
    code = "PreconditionFailed"
    status = 412
    message = "At least one of the pre-conditions you specified did not hold"


class NotModified(S3Error):
    """304: the router sends no body (and HEAD never has one)."""

    code = "NotModified"
    status = 304
    message = "Not Modified"


class InvalidObjectState(S3Error):
    code = "InvalidObjectState"
    status = 403
    message = "The operation is not valid for the object's storage class"


class RestoreAlreadyInProgress(S3Error):
    code = "RestoreAlreadyInProgress"
    status = 409
    message = "Object restore is already in progress"


class InvalidPart(S3Error):
    code = "InvalidPart"
    status = 400
    message = (
        "One or more of the specified parts could not be found. The part may not have been"
        " uploaded, or the specified entity tag may not match the part's entity tag."
    )


class InvalidPartOrder(S3Error):
    code = "InvalidPartOrder"
    status = 400
    message = (
        "The list of parts was not in ascending order. The parts list must be specified in"
        " order by part number."
    )


class QuotaExceeded(S3Error):
    """Not an AWS code: a write refused because the org is over its quota (403)."""

    code = "QuotaExceeded"
    status = 403
    message = "The write would exceed your organisation's storage quota."


# --- server side ----------------------------------------------------------------------------


class InternalError(S3Error):
    code = "InternalError"
    status = 500
    message = "We encountered an internal error. Please try again."


class ServiceUnavailable(S3Error):
    code = "ServiceUnavailable"
    status = 503
    message = "Service is unable to handle request."


class SlowDown(S3Error):
    code = "SlowDown"
    status = 503
    message = "Please reduce your request rate."


def _all_subclasses(cls: type[S3Error]) -> list[type[S3Error]]:
    out: list[type[S3Error]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


#: S3 code -> the class raising it (the first one defined, e.g. AccessDenied not RequestExpired).
BY_CODE: dict[str, type[S3Error]] = {}
for _cls in _all_subclasses(S3Error):
    if _cls is not GenericError:
        BY_CODE.setdefault(_cls.code, _cls)


# --- rendering ------------------------------------------------------------------------------


def _escape(text: str) -> str:
    # Error texts are ours or echo client input (keys, StringToSign): escape markup, and turn
    # the controls XML 1.0 cannot carry into character references rather than raw bytes.
    out = []
    for ch in text:
        o = ord(ch)
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif (o < 0x20 and ch not in "\t\n") or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF):
            out.append(f"&#x{o:X};")
        else:
            out.append(ch)
    return "".join(out)


def render_error(err: S3Error, request_id: str, *, resource: str | None = None,
                 host_id: str | None = None) -> bytes:
    """The XML error body for ``err`` (empty for statuses without a body, e.g. 304).

    ``resource`` is used when the error does not name its own (most errors raised below the
    router don't know the request path).
    """
    if not err.has_body:
        return b""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
        f"<Code>{_escape(err.code)}</Code>",
        f"<Message>{_escape(err.message)}</Message>",
    ]
    for name, value in err.fields.items():
        parts.append(f"<{name}>{_escape(value)}</{name}>")
    res = err.resource if err.resource is not None else resource
    if res is not None:
        parts.append(f"<Resource>{_escape(res)}</Resource>")
    parts.append(f"<RequestId>{_escape(request_id)}</RequestId>")
    if host_id is not None:
        parts.append(f"<HostId>{_escape(host_id)}</HostId>")
    parts.append("</Error>")
    return "".join(parts).encode("utf-8")


# --- domain translation ---------------------------------------------------------------------


def from_domain(exc: domain.CoolStorageError, resource: str | None = None) -> S3Error:
    """Translate a domain error into the S3 error a client expects.

    Every class of ``gateway.errors`` has a mapping; a domain error defined later whose
    ``code`` is already an S3 code (``NoSuchUpload``...) maps to that class, one with a
    client-error status keeps its own code and status, one that says "try again" (503 or
    retryable) is ``ServiceUnavailable``; anything else is an ``InternalError`` carrying no
    internals.
    """
    msg = str(exc)
    d = exc.details
    if isinstance(exc, domain.BucketNotFound):
        return NoSuchBucket(resource=resource, BucketName=_arg(exc, 0))
    if isinstance(exc, domain.ObjectNotFound):
        return NoSuchKey(resource=resource, Key=_arg(exc, 0))
    if isinstance(exc, domain.BlobNotFound):
        # A catalogued blob missing from its backend is our failure, not the client's.
        return InternalError("The stored data of this object is missing.", resource=resource)
    if isinstance(exc, domain.ObjectArchived):
        storage_class = _arg(exc, 1) or d.get("storage_class") or "DEEP_ARCHIVE"
        return InvalidObjectState(
            f"The object is archived in {storage_class}; restore it (RestoreObject) before"
            " reading it.",
            resource=resource,
            StorageClass=storage_class,
        )
    if isinstance(exc, domain.RestoreInProgress):
        return RestoreAlreadyInProgress(resource=resource)
    if isinstance(exc, domain.VaultSealed):
        return AccessDenied(
            "This object is sealed to its owner's key; the gateway cannot read it. Fetch the"
            " sealed segments through the core API and decrypt them with your identity"
            " (coolstorage client get --identity).",
            resource=resource,
        )
    if isinstance(exc, domain.QuotaExceeded):
        return QuotaExceeded(resource=resource)
    if isinstance(exc, domain.AccessDenied):
        return AccessDenied(msg if exc.args else None, resource=resource)
    if isinstance(exc, domain.BucketNotEmpty):
        return BucketNotEmpty(resource=resource, BucketName=_arg(exc, 0))
    if isinstance(exc, domain.AlreadyExists):
        # Bucket names are unique per org, so an existing name is always "yours".
        return BucketAlreadyOwnedByYou(resource=resource, BucketName=_arg(exc, 0))
    if isinstance(exc, domain.InvalidRange):
        size = _arg(exc, 1)
        return InvalidRange(
            resource=resource,
            headers={"Content-Range": f"bytes */{size}"} if size is not None else None,
            RangeRequested=_arg(exc, 0),
            ActualObjectSize=size,
        )
    if isinstance(exc, domain.PreconditionFailed):
        return PreconditionFailed(resource=resource, Condition=d.get("condition"))
    if isinstance(exc, domain.InvalidName):
        low = msg.lower()
        if "bucket" in low:
            return InvalidBucketName(resource=resource, BucketName=d.get("name"))
        if "key" in low and "at most" in low:
            return KeyTooLongError(resource=resource)
        return InvalidArgument(_detail(exc), resource=resource)
    if isinstance(exc, domain.InvalidArgument):
        return InvalidArgument(_detail(exc), resource=resource)
    if isinstance(exc, (domain.BackendError, domain.CatalogError)):
        return ServiceUnavailable(
            resource=resource, headers={"Retry-After": "5"} if exc.retryable else None
        )
    cls = BY_CODE.get(exc.code)
    if cls is not None and not isinstance(exc, domain.IntegrityError):
        # The domain's message names what went wrong (which part, which key); use it.
        err = cls(msg if exc.args and cls.status < 500 else None, resource=resource)
        if cls.status != exc.http_status and 400 <= exc.http_status < 500:
            # The domain's status wins over a class default only for client errors.
            return GenericError(cls.code, exc.http_status, err.message, resource=resource)
        return err
    if isinstance(exc, domain.NotFound):
        return NoSuchKey(resource=resource)
    if isinstance(exc, domain.IntegrityError):
        return InternalError("The stored data failed its integrity check.", resource=resource)
    if 400 <= exc.http_status < 500 and type(exc) is not domain.CoolStorageError:
        # A domain error with no S3 counterpart (a budget, a rule of this gateway): its own
        # code and status, and its message, which is written for the user.
        return GenericError(exc.code, exc.http_status, msg, resource=resource)
    if exc.http_status == 503 or exc.retryable:
        return ServiceUnavailable(
            resource=resource, headers={"Retry-After": "5"} if exc.retryable else None
        )
    return InternalError(resource=resource)


def _arg(exc: BaseException, index: int) -> str | None:
    return str(exc.args[index]) if len(exc.args) > index else None


def _detail(exc: domain.CoolStorageError) -> str:
    # The domain message without its "Invalid argument: " / "Invalid name: " prefix.
    return str(exc.args[0]) if exc.args else str(exc)
