"""No request crosses an org, over the wire: S3, WebDAV and the admin API of ONE gateway.

Org A (``org-alpha-home``) has alice: an org admin with an S3 access key scoped to A,
WebDAV Basic credentials and an API bearer token. Org B (``org-bravo-secret``) has bob and
distinctive things: the bucket ``bravo-vault-bucket`` holding ``bravo/passwords.txt``
("BRAVO-CONTENT..."), an archived object with a restore job, an upload in progress and
an empty bucket. Alice tries to list, read, write, overwrite, delete, copy from, copy to,
restore and lock B's objects and buckets (and B's org settings, members, grants and keys in
the API), by B's real names and by path tricks: ``..`` segments, ``%2e%2e``, ``%2f``,
``%5c`` and backslashes, NUL, overlong UTF-8, double encoding, other letter case, trailing
dots and spaces, absolute URLs in the request line.

Every request is written byte for byte on a raw socket (:func:`tests.fixtures.isolation.send`),
so no client library tidies the path first. For each attempt:

- the answer is a refusal: S3 a 4xx S3 error (never a signature failure: the request did
  reach the router), WebDAV 400/401/403/404/405/409, the API a 4xx; never 2xx, never 5xx;
- its **ghost twin** (the same request with B's names replaced by names of the same
  length that exist nowhere) gets the same answer byte for byte, once request ids and
  dates are masked: a refusal says nothing about whether B's things exist;
- after each protocol's attempts B is unchanged, as bob sees it over S3 (buckets, listings,
  bytes and ETag, uploads), and no response of the whole test (status line, headers, body)
  holds any of B's distinctive strings, except an echo of a name the request itself
  carried (S3 error bodies name the Resource asked for), which the ghost twin covers.

S3 namespaces are per org: alice's key sees only A's buckets, so "bravo-vault-bucket"
from her key means A's (non-existent) bucket of that name. Creating that name in A is
allowed and must still reach nothing of B: :func:`test_s3_same_bucket_name_in_a_reaches_nothing_of_b`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from gateway import principals
from tests.fixtures.isolation import (
    A_BUCKET,
    A_DATA,
    A_KEY,
    A_ORG,
    ALICE,
    B_BUCKET,
    B_COLD_KEY,
    B_DATA,
    B_EMPTY,
    B_KEY,
    B_MP_KEY,
    B_ORG,
    BOB,
    GHOSTS,
    PASSWORD,
    Exchange,
    Transcript,
    World,
    open_world,
    s3_signed,
    send,
)

API = "/api/v1"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from argon2 import PasswordHasher

    with pytest.MonkeyPatch.context() as patch:
        # Cheap hashes: the suite is about isolation, not about argon2's cost.
        patch.setattr(
            principals, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        patch.setattr(principals, "_dummy_hash", None)
        with open_world(tmp_path_factory.mktemp("isolation")) as opened:
            yield opened


# -- names, twins and checks ----------------------------------------------------------------

Names = dict[str, str]


def names(world: World, *, ghost: bool) -> Names:
    """What an attack template is formatted with: B's real names or their ghosts, and the
    encodings the tricks use. Both maps have the same keys and (per key) the same length
    where the underlying names do."""

    def pick(real: str) -> str:
        return GHOSTS[real] if ghost else real

    org, bucket, key = pick(B_ORG), pick(B_BUCKET), pick(B_KEY)
    upload = world.b_upload_id
    if ghost:  # the same shape, other digits
        upload = re.sub(
            "[0-9a-f]", lambda m: format((int(m.group(), 16) + 1) % 16, "x"), upload
        )
    return {
        "org": org,
        "bucket": bucket,
        "empty": pick(B_EMPTY),
        "key": key,
        "cold": pick(B_COLD_KEY),
        "mp": pick(B_MP_KEY),
        "bob": pick(BOB),
        "upload": upload,
        "restore": "9" * len(str(world.b_restore_id)) if ghost else str(world.b_restore_id),
        "key_enc": quote(key, safe=""),
        "org_pct": "".join(f"%{b:02x}" for b in org.encode()),
        "org_pct2": "".join(f"%25{b:02x}" for b in org.encode()),
        "bucket_pct": "".join(f"%{b:02X}" for b in bucket.encode()),
        "org_upper": org.upper(),
        "org_title": org.title(),
        "bucket_upper": bucket.upper(),
        "key_bs": key.replace("/", "\\"),
        "key_bs_enc": key.replace("/", "%5c"),
        "a_org": A_ORG,
        "a_bucket": A_BUCKET,
        "a_key": A_KEY,
        "uid": "x",
    }


_MASKS = [
    re.compile(rb"(?im)^date:.*$"),
    re.compile(rb"(?im)^last-modified:.*$"),
    re.compile(rb"opaquelocktoken:[0-9a-f-]+"),
]


def normalized(exchange: Exchange, replace: list[tuple[str, str]]) -> bytes:
    """The response with request ids and dates masked and ``replace`` pairs applied."""
    data = exchange.response
    for name in ("x-request-id", "x-amz-request-id", "x-amz-id-2"):
        value = exchange.header(name)
        if value:
            data = data.replace(value.encode(), b"<request-id>")
    for mask in _MASKS:
        data = mask.sub(b"<masked>", data)
    for old, new in replace:
        data = data.replace(old.encode("utf-8", "surrogateescape"), new.encode())
    return data


@dataclass
class Attempt:
    """One attack, as a function of the names it targets."""

    label: str
    run: Callable[[Names, str], Exchange]
    #: Statuses a refusal may have (on top of the protocol's default set).
    allowed: frozenset[int] = frozenset()


class Arena:
    """Runs attempts, each with its ghost twin, and keeps every exchange."""

    def __init__(self, world: World, allowed: set[int], protocol: str) -> None:
        self.world = world
        self.allowed = allowed
        self.protocol = protocol
        self.transcript = Transcript()
        self.failures: list[str] = []
        self.real = names(world, ghost=False)
        self.ghost = names(world, ghost=True)
        pairs = {
            (self.ghost[k], self.real[k])
            for k in self.real
            if self.ghost[k] != self.real[k] and k != "restore"
        }
        # A restore id is a short number: replaced only where it stands as one.
        for context in ("restore {}", "/restores/{}"):
            pairs.add((context.format(self.ghost["restore"]), context.format(self.real["restore"])))
        self.replace = sorted(pairs, key=lambda p: -len(p[0]))

    def attempt(
        self,
        label: str,
        run: Callable[[Names, str], Exchange],
        *,
        allowed: set[int] | frozenset[int] = frozenset(),
        twin: bool = True,
        keep: tuple[str, ...] = (),
    ) -> Exchange:
        """Run ``run`` with B's names and with the ghosts' (but B's for the names in
        ``keep``); the first must be refused, and both answers must read alike."""
        real = run(self.real, label)
        ok = self.allowed | set(allowed)
        if real.status not in ok:
            self.failures.append(f"not refused ({real.status} not in {sorted(ok)}):\n{real}")
        if self.protocol == "s3" and real.s3_code() in ("SignatureDoesNotMatch", "InvalidAccessKeyId"):
            self.failures.append(f"never reached the router (signature):\n{real}")
        if twin:
            ghost = run({**self.ghost, **{k: self.real[k] for k in keep}}, label + " (ghost)")
            mine, theirs = normalized(real, []), normalized(ghost, self.replace)
            if mine != theirs:
                self.failures.append(
                    f"the refusal differs from its ghost twin's:\n{real}\n{ghost}\n"
                    f"{mine[:600]!r}\n{theirs[:600]!r}"
                )
        return real

    def check(self, *, echo_ok: bool = True) -> None:
        leaks = self.transcript.leaks(self.world.secrets(), echo_ok=echo_ok)
        problems = self.failures + [f"leak: {leak}" for leak in leaks]
        assert not problems, f"{len(problems)} problems:\n" + "\n\n".join(problems[:25])


# -- org B as bob sees it ----------------------------------------------------------------------


def bob_s3(world: World) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=world.urls["s3"],
        aws_access_key_id=world.bob_key[0],
        aws_secret_access_key=world.bob_key[1],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def b_snapshot(world: World) -> Any:
    """Org B as bob sees it over S3: buckets, every listing, the secret's bytes and ETag,
    the upload in progress."""
    s3 = bob_s3(world)
    buckets = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    listing = {
        name: sorted(
            (o["Key"], o["ETag"], o["Size"], o.get("StorageClass"))
            for o in s3.list_objects_v2(Bucket=name).get("Contents", [])
        )
        for name in buckets
    }
    got = s3.get_object(Bucket=B_BUCKET, Key=B_KEY)
    body = got["Body"].read()
    uploads = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=B_BUCKET).get("Uploads", [])]
    return buckets, listing, body, got["ETag"], uploads


@pytest.fixture
def b_unchanged(world: World) -> Iterator[None]:
    """B before the test is B after it, and B is what the world set up."""
    before = b_snapshot(world)
    buckets, _, body, etag, uploads = before
    assert buckets == sorted([B_BUCKET, B_EMPTY])
    assert body == B_DATA and etag.strip('"') == hashlib.md5(B_DATA).hexdigest()
    assert etag.strip('"') == world.b_etag
    assert uploads == [world.b_upload_id]
    yield
    assert b_snapshot(world) == before


# -- S3 ----------------------------------------------------------------------------------------


def s3_send(
    world: World,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    host: str | None = None,
    label: str = "",
    transcript: Transcript | None = None,
    key: tuple[str, str] | None = None,
) -> Exchange:
    """A request signed with alice's key (or ``key``), sent as is."""
    access_key, secret = key or world.alice_key
    signed = s3_signed(
        world.urls["s3"], method, target, access_key, secret, headers=headers, body=body,
        host=host,
    )
    return send(
        world.address("s3"), method, target, signed, body, label=label, transcript=transcript
    )


def _delete_body(key: str) -> tuple[bytes, dict[str, str]]:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Delete><Object><Key>{key}</Key></Object>'
        "</Delete>"
    ).encode()
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    return body, {"Content-MD5": md5, "Content-Type": "application/xml"}


RESTORE_BODY = (
    b'<RestoreRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Days>1</Days>'
    b"<GlacierJobParameters><Tier>Bulk</Tier></GlacierJobParameters></RestoreRequest>"
)

#: Object paths by which alice's key might reach B's secret (before the query). Not the
#: backslash or double-encoded ones: "..\\x" or "%2e%2e%2fx" is a plain key S3 may hold
#: in A's own bucket (test_s3_literal_keys_stay_in_a checks that they stay there).
S3_OBJECT_PATHS = [
    "/{bucket}/{key}",
    "/{bucket}/{key_enc}",
    "/{bucket_pct}/{key}",
    "/{bucket_upper}/{key}",
    "/{org}/{bucket}/{key}",
    "/{org}%2F{bucket}/{key}",
    "/{a_bucket}/../{bucket}/{key}",
    "/{a_bucket}/..%2F{bucket}%2F{key_enc}",
    "/{a_bucket}/%2e%2e/{bucket}/{key}",
    "/{a_bucket}/%2E%2E%2F%2E%2E%2F{org}%2F{bucket}%2F{key_enc}",
    "/{a_bucket}/%c0%ae%c0%ae/{bucket}/{key}",
    "/{a_bucket}/%c0%ae%c0%ae%c0%af{bucket}%c0%af{key}",
    "/{a_bucket}/%e0%80%ae%e0%80%ae%e0%80%af{bucket}/{key}",
    "/{a_bucket}/%00/../{bucket}/{key}",
    "/{bucket}%00/{key}",
    "/{bucket}./{key}",
    "/{bucket}%20/{key}",
    "//{bucket}/{key}",
    "/./{bucket}/{key}",
]


def s3_attempts(world: World) -> list[tuple[str, str, str, dict[str, str], bytes, str | None]]:
    """``(label, method, target template, headers, body, host)`` of every S3 attempt."""
    out: list[tuple[str, str, str, dict[str, str], bytes, str | None]] = []
    delete_body, delete_headers = _delete_body("{key}")
    bucket_level = [
        ("list objects", "GET", "/{bucket}"),
        ("list objects v2", "GET", "/{bucket}?list-type=2&prefix=bravo%2F"),
        ("list uploads", "GET", "/{bucket}?uploads"),
        ("list versions", "GET", "/{bucket}?versions"),
        ("head bucket", "HEAD", "/{bucket}"),
        ("bucket location", "GET", "/{bucket}?location"),
        ("bucket acl", "GET", "/{bucket}?acl"),
        ("put bucket acl", "PUT", "/{bucket}?acl"),
        ("bucket versioning", "GET", "/{bucket}?versioning"),
        ("bucket policy", "GET", "/{bucket}?policy"),
        ("delete bucket", "DELETE", "/{bucket}"),
        ("delete empty bucket", "DELETE", "/{empty}"),
        ("list org as bucket", "GET", "/{org}"),
        ("list org-bucket", "GET", "/{org}%2F{bucket}"),
        ("list empty bucket", "GET", "/{empty}?list-type=2"),
        ("list dotdot bucket", "GET", "/{a_bucket}/..?list-type=2"),
        ("create bucket in org path", "PUT", "/{org}%2F{bucket}"),
        ("create bucket trailing dot", "PUT", "/{bucket}."),
        ("create bucket NUL", "PUT", "/{bucket}%00"),
        ("create bucket upper", "PUT", "/{bucket_upper}"),
        ("create bucket backslash", "PUT", "/{org}%5c{bucket}"),
    ]
    for label, method, target in bucket_level:
        out.append((label, method, target, {}, b"", None))
    out.append(("delete objects", "POST", "/{bucket}?delete", delete_headers, delete_body, None))
    for path in S3_OBJECT_PATHS:
        out += [
            (f"read {path}", "GET", path, {}, b"", None),
            (f"head {path}", "HEAD", path, {}, b"", None),
            (f"acl {path}", "GET", path + "?acl", {}, b"", None),
            (f"restore {path}", "POST", path + "?restore", {}, RESTORE_BODY, None),
            (f"delete {path}", "DELETE", path, {}, b"", None),
        ]
    for path in S3_OBJECT_PATHS:
        out += [
            (f"write {path}", "PUT", path, {}, b"planted by alice", None),
            (f"start upload {path}", "POST", path + "?uploads", {}, b"", None),
        ]
    out += [
        ("overwrite", "PUT", "/{bucket}/{key}", {}, b"overwritten by alice", None),
        ("upload part", "PUT", "/{bucket}/{mp}?partNumber=1&uploadId={upload}", {}, b"x", None),
        ("list parts", "GET", "/{bucket}/{mp}?uploadId={upload}", {}, b"", None),
        ("complete upload", "POST", "/{bucket}/{mp}?uploadId={upload}", {},
         b"<CompleteMultipartUpload></CompleteMultipartUpload>", None),
        ("abort upload", "DELETE", "/{bucket}/{mp}?uploadId={upload}", {}, b"", None),
        ("restore cold", "POST", "/{bucket}/{cold}?restore", {}, RESTORE_BODY, None),
        ("read cold", "GET", "/{bucket}/{cold}", {}, b"", None),
        ("object tagging", "GET", "/{bucket}/{key}?tagging", {}, b"", None),
    ]
    # Copies: from B into A, from A into B, inside B; the copy source is the attack.
    sources = [
        "/{bucket}/{key}",
        "{bucket}/{key}",
        "/{bucket}/{key_enc}",
        "/{org}/{bucket}/{key}",
        "/{a_bucket}/../{bucket}/{key}",
        "/{a_bucket}/%2e%2e/{org}/{bucket}/{key}",
        "/{a_bucket}/..%2f..%2f{org}%2f{bucket}%2f{key_enc}",
        "/{a_bucket}/%c0%ae%c0%ae/{bucket}/{key}",
        "/{a_bucket}/%252e%252e/{bucket}/{key}",
        "/{bucket}%00/{key}",
        "/{bucket_upper}/{key}",
        "/{bucket}/{key}?versionId=null",
    ]
    for source in sources:
        out.append((f"copy from {source}", "PUT", "/{a_bucket}/stolen.txt",
                    {"x-amz-copy-source": source}, b"", None))
    out += [
        ("copy to B", "PUT", "/{bucket}/planted.txt", {"x-amz-copy-source": "/{a_bucket}/{a_key}"}, b"", None),
        ("copy over B", "PUT", "/{bucket}/{key}", {"x-amz-copy-source": "/{a_bucket}/{a_key}"}, b"", None),
        ("copy within B", "PUT", "/{bucket}/copy.txt", {"x-amz-copy-source": "/{bucket}/{key}"}, b"", None),
        ("copy to B via org path", "PUT", "/{org}/{bucket}/planted.txt",
         {"x-amz-copy-source": "/{a_bucket}/{a_key}"}, b"", None),
    ]
    # Virtual-hosted style: the Host names the bucket (s3.localhost is a base domain).
    for host in ("{bucket}.s3.localhost", "{org}.{bucket}.s3.localhost", "{bucket_upper}.s3.localhost",
                 "{bucket}.s3.localhost."):
        out += [
            (f"vhost read {host}", "GET", "/{key}", {}, b"", host),
            (f"vhost list {host}", "GET", "/", {}, b"", host),
            (f"vhost write {host}", "PUT", "/planted.txt", {}, b"x", host),
        ]
    return out


S3_REFUSALS = {400, 403, 404, 405, 409, 411, 412, 416, 501}


def test_s3_every_attempt_on_b_is_refused(world: World, b_unchanged: None) -> None:
    arena = Arena(world, S3_REFUSALS - {501}, "s3")
    tried = 0
    for label, method, template, headers, body, host in s3_attempts(world):

        def run(n: Names, lbl: str, *, method: str = method, template: str = template,
                headers: dict[str, str] = headers, body: bytes = body,
                host: str | None = host) -> Exchange:
            filled = {k: v.format(**n) for k, v in headers.items()}
            payload = body.replace(b"{key}", n["key"].encode())
            if "Content-MD5" in filled:
                filled["Content-MD5"] = base64.b64encode(hashlib.md5(payload).digest()).decode()
            return s3_send(
                world, method, template.format(**n), headers=filled, body=payload,
                host=host.format(**n) if host else None, label=lbl,
                transcript=arena.transcript,
            )

        arena.attempt(label, run)
        tried += 1
    # The key may be valid S3 yet every answer a refusal: no 2xx at all reached alice.
    arena.check()
    assert tried > 150
    statuses = {ex.status for ex in arena.transcript.exchanges}
    assert not {s for s in statuses if s < 400 or s >= 500}, statuses


def test_s3_lists_only_a(world: World, b_unchanged: None) -> None:
    transcript = Transcript()
    reply = s3_send(world, "GET", "/", transcript=transcript)
    assert reply.status == 200
    assert re.findall(rb"<Name>([^<]*)</Name>", reply.body) == [A_BUCKET.encode()]
    listing = s3_send(world, "GET", f"/{A_BUCKET}?list-type=2", transcript=transcript)
    assert listing.status == 200
    assert re.findall(rb"<Key>([^<]*)</Key>", listing.body) == [A_KEY.encode()]
    own = s3_send(world, "GET", f"/{A_BUCKET}/{A_KEY}", transcript=transcript)
    assert own.status == 200 and own.body == A_DATA
    assert not transcript.leaks(world.secrets(), echo_ok=False)


def test_s3_literal_keys_stay_in_a(world: World, b_unchanged: None) -> None:
    """Backslashes and double-encoded dots and slashes are plain characters of an S3 key:
    such a key names an object of A's own bucket, never anything of B. Before it exists
    it reads NoSuchKey; written, it is in A's bucket under exactly that name; deleted, gone.
    """
    transcript = Transcript()
    n = names(world, ghost=False)
    alice = world.gateway.identity.authenticate_token(world.alice_token)

    def a_keys() -> list[str]:
        return [o.key for o in world.gateway.objects.list_objects(alice, A_ORG, A_BUCKET).objects]

    for raw, literal in [
        ("/{a_bucket}/..\\..\\{org}\\{bucket}\\{key_bs}", "..\\..\\{org}\\{bucket}\\{key_bs}"),
        ("/{a_bucket}/..%5c..%5c{org}%5c{bucket}%5c{key_bs_enc}", "..\\..\\{org}\\{bucket}\\{key_bs}"),
        ("/{a_bucket}/%252e%252e%252f{bucket}%252f{key_enc}", "%2e%2e%2f{bucket}%2f{key}"),
        ("/{a_bucket}/%252e%252e/{org}/{bucket}/{key}", "%2e%2e/{org}/{bucket}/{key}"),
    ]:
        target, key = raw.format(**n), literal.format(**n)
        for method in ("GET", "HEAD"):
            missing = s3_send(world, method, target, transcript=transcript)
            assert missing.status == 404, missing
        assert s3_send(world, "GET", target, transcript=transcript).s3_code() == "NoSuchKey"
        put = s3_send(world, "PUT", target, body=b"alice's own", transcript=transcript)
        assert put.status == 200, put
        got = s3_send(world, "GET", target, transcript=transcript)
        assert got.status == 200 and got.body == b"alice's own"
        assert key in a_keys()
        assert s3_send(world, "DELETE", target, transcript=transcript).status == 204
        assert a_keys() == [A_KEY]
    # B's content and etag never came back, whatever names the keys spelled.
    secrets = {k: v for k, v in world.secrets().items() if k in ("B content", "B etag")}
    assert not transcript.leaks(secrets, echo_ok=False)


# -- WebDAV ------------------------------------------------------------------------------------


def _basic(user: str = ALICE) -> str:
    return "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()


def dav_send(
    world: World,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    label: str = "",
    transcript: Transcript | None = None,
) -> Exchange:
    all_headers = {"Authorization": _basic(), **(headers or {})}
    return send(world.address("webdav"), method, target, all_headers, body, label=label,
                transcript=transcript)


LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    b"<D:owner>alice</D:owner></D:lockinfo>"
)
PROPPATCH_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x">'
    b"<D:set><D:prop><x:planted>alice</x:planted></D:prop></D:set></D:propertyupdate>"
)

#: Paths by which alice might reach B's object over WebDAV (the org segment is the target).
DAV_OBJECT_PATHS = [
    "/{org}/{bucket}/{key}",
    "/{org}/{bucket}/{key_enc}",
    "/{org_upper}/{bucket}/{key}",
    "/{org_title}/{bucket}/{key}",
    "/{org_pct}/{bucket}/{key}",
    "/{org_pct2}/{bucket}/{key}",
    "/{org}./{bucket}/{key}",
    "/{org}%20/{bucket}/{key}",
    "/{org}%00/{bucket}/{key}",
    "/{a_org}%00/../{org}/{bucket}/{key}",
    "/{org}%2F{bucket}%2F{key_enc}",
    "/{a_org}/../{org}/{bucket}/{key}",
    "/{a_org}/{a_bucket}/../../{org}/{bucket}/{key}",
    "/{a_org}/%2e%2e/{org}/{bucket}/{key}",
    "/{a_org}/%2E%2E%2F{org}%2F{bucket}/{key}",
    "/{a_org}\\..\\{org}\\{bucket}\\{key_bs}",
    "/{a_org}%5c..%5c{org}%5c{bucket}%5c{key_bs_enc}",
    "/{a_org}/%c0%ae%c0%ae/{org}/{bucket}/{key}",
    "/{a_org}/%c0%ae%c0%ae%c0%af{org}%c0%af{bucket}/{key}",
    "/{a_org}/%e0%80%ae%e0%80%ae%e0%80%af{org}/{bucket}/{key}",
    "/{a_org}/%252e%252e/{org}/{bucket}/{key}",
    "//{org}/{bucket}/{key}",
    "/./{org}/{bucket}/{key}",
    "/{org}/./{bucket}/{key}",
    "http://{host}/{org}/{bucket}/{key}",
    "http://{host}/{a_org}/../{org}/{bucket}/{key}",
    "http://other.example/{org}/{bucket}/{key}",
]
DAV_COLLECTION_PATHS = [
    "/{org}/",
    "/{org}/{bucket}/",
    "/{org}/{empty}/",
    "/{org}/{bucket}/bravo/",
    "/{org_upper}/",
    "/{org}./",
    "/{org}%00/",
    "/{a_org}/../{org}/",
    "/{a_org}/%2e%2e/{org}/{bucket}/",
    "/{a_org}/%c0%ae%c0%ae/{org}/",
    "/{a_org}\\..\\{org}\\",
]
DAV_REFUSALS = {400, 401, 403, 404, 405, 409, 412, 423}


def test_webdav_every_attempt_on_b_is_refused(world: World, b_unchanged: None) -> None:
    arena = Arena(world, DAV_REFUSALS, "webdav")
    host = "{}:{}".format(*world.address("webdav"))
    a_file = f"/{A_ORG}/{A_BUCKET}/{A_KEY}"

    def attempt(label: str, method: str, template: str, headers: dict[str, str] | None = None,
                body: bytes = b"", **kwargs: Any) -> None:
        def run(n: Names, lbl: str) -> Exchange:
            filled = {k: v.format(host=host, **n) for k, v in (headers or {}).items()}
            return dav_send(world, method, template.format(host=host, **n), filled, body,
                            label=lbl, transcript=arena.transcript)

        arena.attempt(label, run, **kwargs)

    for path in DAV_OBJECT_PATHS:
        # A Destination on another host is RFC 4918's 502 (wsgidav's answer).
        foreign = {502} if "other.example" in path or path.startswith("//") else set()
        attempt(f"read {path}", "GET", path)
        attempt(f"head {path}", "HEAD", path)
        attempt(f"propfind {path}", "PROPFIND", path, {"Depth": "0"})
        attempt(f"write {path}", "PUT", path, body=b"planted by alice")
        attempt(f"delete {path}", "DELETE", path)
        attempt(f"lock {path}", "LOCK", path, {"Timeout": "Second-60"}, LOCK_BODY)
        attempt(f"unlock {path}", "UNLOCK", path,
                {"Lock-Token": "<opaquelocktoken:00000000-0000-0000-0000-000000000000>"})
        attempt(f"proppatch {path}", "PROPPATCH", path, {"Content-Type": "text/xml"},
                PROPPATCH_BODY)
        attempt(f"copy from {path}", "COPY", path,
                {"Destination": f"http://{host}/{A_ORG}/{A_BUCKET}/stolen.txt"})
        attempt(f"move from {path}", "MOVE", path,
                {"Destination": f"http://{host}/{A_ORG}/{A_BUCKET}/stolen.txt"})
        if path.startswith("/"):
            dest = "http://{host}" + path
            for method in ("COPY", "MOVE"):
                attempt(f"{method.lower()} to {path}", method, a_file,
                        {"Destination": dest, "Overwrite": "T"})
                attempt(f"{method.lower()} to {path} (path only)", method, a_file,
                        {"Destination": path, "Overwrite": "T"}, allowed=foreign)
        else:
            for method in ("COPY", "MOVE"):
                attempt(f"{method.lower()} to {path}", method, a_file,
                        {"Destination": path, "Overwrite": "T"}, allowed=foreign)
    for path in DAV_COLLECTION_PATHS:
        attempt(f"list {path}", "PROPFIND", path, {"Depth": "1"})
        attempt(f"get {path}", "GET", path)
        attempt(f"mkcol {path}", "MKCOL", path)
        attempt(f"mkcol in {path}", "MKCOL", path + "planted-bucket/")
        attempt(f"delete {path}", "DELETE", path)
        attempt(f"lock {path}", "LOCK", path, {"Timeout": "Second-60", "Depth": "infinity"},
                LOCK_BODY)
        attempt(f"proppatch {path}", "PROPPATCH", path, {"Content-Type": "text/xml"},
                PROPPATCH_BODY)
        attempt(f"copy {path}", "COPY", path,
                {"Destination": f"http://{host}/{A_ORG}/{A_BUCKET}/stolen/", "Depth": "infinity"})
        attempt(f"move {path}", "MOVE", path,
                {"Destination": f"http://{host}/{A_ORG}/{A_BUCKET}/stolen/"})
        attempt(f"copy A into {path}", "COPY", f"/{A_ORG}/{A_BUCKET}/",
                {"Destination": "http://{host}" + path + "planted/", "Depth": "infinity"})
    # The cold object: a read asking restore-on-read, and the upload's key.
    attempt("read cold", "GET", "/{org}/{bucket}/{cold}")
    attempt("read upload key", "GET", "/{org}/{bucket}/{mp}")
    # A lock-null resource (LOCK on nothing) in B's bucket, and an If header naming B.
    attempt("lock new in B", "LOCK", "/{org}/{bucket}/new-lock.txt", {"Timeout": "Second-60"},
            LOCK_BODY)
    # An If header naming B's file: A's own file is written (or not) alike for B's real
    # name and for a ghost, so it tells nothing about B's locks.
    attempt("put with B if-header", "PUT", a_file,
            {"If": "<http://{host}/{org}/{bucket}/{key}> (<opaquelocktoken:1>)"}, A_DATA,
            allowed={204, 412, 423})
    arena.check()
    # Nothing alice tried left a file or a lock in A under a stolen name either.
    alice = world.gateway.identity.authenticate_token(world.alice_token)
    keys = [o.key for o in world.gateway.objects.list_objects(alice, A_ORG, A_BUCKET).objects]
    assert keys == [A_KEY]


def test_webdav_root_lists_only_a(world: World, b_unchanged: None) -> None:
    transcript = Transcript()
    root = dav_send(world, "PROPFIND", "/", {"Depth": "1"}, transcript=transcript)
    assert root.status == 207
    hrefs = re.findall(rb"<(?:\w+:)?href>([^<]*)</(?:\w+:)?href>", root.body)
    assert sorted(hrefs) == [b"/", f"/{A_ORG}/".encode()], root
    org = dav_send(world, "PROPFIND", f"/{A_ORG}/", {"Depth": "1"}, transcript=transcript)
    hrefs = re.findall(rb"<(?:\w+:)?href>([^<]*)</(?:\w+:)?href>", org.body)
    assert sorted(hrefs) == [f"/{A_ORG}/".encode(), f"/{A_ORG}/{A_BUCKET}/".encode()], org
    page = dav_send(world, "GET", "/", transcript=transcript)
    assert page.status in (200, 405)
    assert not transcript.leaks(world.secrets(), echo_ok=False)


# -- admin API ---------------------------------------------------------------------------------


def api_send(
    world: World,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    label: str = "",
    transcript: Transcript | None = None,
) -> Exchange:
    all_headers = {"Authorization": f"Bearer {world.alice_token}", **(headers or {})}
    if body:
        all_headers.setdefault("Content-Type", "application/json")
    return send(world.address("admin"), method, target, all_headers, body, label=label,
                transcript=transcript)


API_OBJECT_PATHS = [
    "{org}/{bucket}/{key}",
    "{org}/{bucket}/{key_enc}",
    "{org_upper}/{bucket}/{key}",
    "{org_pct}/{bucket}/{key}",
    "{org_pct2}/{bucket}/{key}",
    "{org}%00/{bucket}/{key}",
    "{org}./{bucket}/{key}",
    "{org}%20/{bucket}/{key}",
    "{a_org}/../{org}/{bucket}/{key}",
    "{a_org}/%2e%2e/{org}/{bucket}/{key}",
    "{a_org}%2f..%2f{org}/{bucket}/{key}",
    "{a_org}\\..\\{org}/{bucket}/{key}",
    "{a_org}%5c..%5c{org}/{bucket}/{key}",
    "{a_org}/%c0%ae%c0%ae/{org}/{bucket}/{key}",
    "{a_org}/%c0%ae%c0%ae%c0%af{org}%c0%af{bucket}/{key}",
    "{a_org}/%e0%80%af{org}/{bucket}/{key}",
    "{a_org}/%252e%252e%252f{org}/{bucket}/{key}",
]
#: Not here: paths inside A's own bucket ("{a_org}/{a_bucket}/../../{org}/..."), which
#: name literal keys of A (test_api_literal_keys_stay_in_a).
API_REFUSALS = {400, 401, 403, 404, 405, 409, 411, 413, 415}


def _json(data: Any) -> bytes:
    import json

    return json.dumps(data).encode()


def test_api_every_attempt_on_b_is_refused(world: World, b_unchanged: None) -> None:
    arena = Arena(world, API_REFUSALS, "api")
    host = "{}:{}".format(*world.address("admin"))

    def attempt(label: str, method: str, template: str, body: str = "",
                headers: dict[str, str] | None = None, **kwargs: Any) -> None:
        def run(n: Names, lbl: str) -> Exchange:
            payload = body.replace("{", "{{").replace("}", "}}")
            payload = re.sub(r"\{\{(\w+)\}\}", r"{\1}", payload).format(**n)
            return api_send(world, method, template.format(host=host, **n), payload.encode(),
                            headers=headers, label=lbl, transcript=arena.transcript)

        arena.attempt(label, run, **kwargs)

    for path in API_OBJECT_PATHS:
        for prefix in ("objects", "metadata", "sealed"):
            attempt(f"get /{prefix}/{path}", "GET", f"{API}/{prefix}/{path}")
        attempt(f"segment {path}", "GET", f"{API}/sealed-segments/{path}?part=1")
        attempt(f"head {path}", "HEAD", f"{API}/objects/{path}")
        attempt(f"put {path}", "PUT", f"{API}/objects/{path}", "planted by alice")
        attempt(f"delete {path}", "DELETE", f"{API}/objects/{path}")
    attempt("absolute URL", "GET", "http://{host}" + API + "/objects/{org}/{bucket}/{key}")
    attempt("absolute URL dotdot", "GET",
            "http://{host}" + API + "/objects/{a_org}/../{org}/{bucket}/{key}")
    attempt("overwrite", "PUT", f"{API}/objects/{{org}}/{{bucket}}/{{key}}", "overwritten")
    attempt("read cold", "GET", f"{API}/objects/{{org}}/{{bucket}}/{{cold}}")
    # Listings and searches: B's org by name, case, NUL, and parameter pollution.
    for query in (
        "org={org}&bucket={bucket}",
        "org={org}&bucket={bucket}&prefix=bravo%2F&delimiter=%2F",
        "org={org}&bucket={empty}",
        "org={org_upper}&bucket={bucket}",
        "org={org}%00&bucket={bucket}",
        "org={a_org}&org={org}&bucket={bucket}",
        "org={org}&org={a_org}&bucket={bucket}",
        "org={a_org}%2f..%2f{org}&bucket={bucket}",
        "org={org_pct2}&bucket={bucket}",
        "org={a_org}&bucket={bucket}",
        "org={a_org}&bucket={a_bucket}%2f..%2f{bucket}",
    ):
        attempt(f"list {query}", "GET", f"{API}/objects?{query}")
    for query in ("org={org}&bucket={bucket}", "org={a_org}&org={org}&bucket={bucket}"):
        attempt(f"uploads {query}", "GET", f"{API}/uploads?{query}")
    # Copies, moves, storage modes, restores, uploads by body.
    src_b = '"org": "{org}", "bucket": "{bucket}", "key": "{key}"'
    src_a = f'"org": "{A_ORG}", "bucket": "{A_BUCKET}", "key": "{A_KEY}"'
    for label, path, body in [
        ("copy from B", "/objects/copy",
         '{' + src_b + f', "destination": {{"org": "{A_ORG}", "bucket": "{A_BUCKET}", "key": "stolen.txt"}}}}'),
        ("copy from B, no dest org", "/objects/copy",
         '{' + src_b + f', "destination": {{"bucket": "{A_BUCKET}", "key": "stolen.txt"}}}}'),
        ("copy to B", "/objects/copy",
         '{' + src_a + ', "destination": {"org": "{org}", "bucket": "{bucket}", "key": "planted.txt"}}'),
        ("copy over B", "/objects/copy",
         '{' + src_a + ', "destination": {"org": "{org}", "bucket": "{bucket}", "key": "{key}"}}'),
        ("copy dup org", "/objects/copy",
         f'{{"org": "{A_ORG}", "org": "{{org}}", "bucket": "{{bucket}}", "key": "{{key}}", '
         f'"destination": {{"bucket": "{A_BUCKET}", "key": "stolen.txt"}}}}'),
        ("copy dotdot", "/objects/copy",
         f'{{"org": "{A_ORG}", "bucket": "{A_BUCKET}", "key": "../../{{org}}/{{bucket}}/{{key}}", '
         f'"destination": {{"bucket": "{A_BUCKET}", "key": "stolen.txt"}}}}'),
        ("move from B", "/objects/move",
         '{' + src_b + f', "destination": {{"bucket": "{A_BUCKET}", "key": "stolen.txt"}}}}'),
        ("move folder of B", "/objects/move",
         '{"org": "{org}", "bucket": "{bucket}", "prefix": "bravo/", "destination": {"bucket": "{bucket}", "prefix": "moved/"}}'),
        ("archive B", "/objects/storage-mode", '{' + src_b + ', "mode": "archive"}'),
        ("pin B", "/objects/storage-mode", '{"org": "{org}", "bucket": "{bucket}", "prefix": "bravo/", "mode": "pin"}'),
        ("restore B", "/restores", '{"org": "{org}", "bucket": "{bucket}", "key": "{cold}", "priority": "Bulk"}'),
        ("restore B dry", "/restores", '{"org": "{org}", "bucket": "{bucket}", "key": "{cold}", "dry_run": true}'),
        ("restore B folder", "/restores", '{"org": "{org}", "bucket": "{bucket}", "prefix": "bravo/"}'),
        ("restore B NUL org", "/restores", '{"org": "{org}\\u0000", "bucket": "{bucket}", "key": "{cold}"}'),
        ("restore B upper", "/restores", '{"org": "{org_upper}", "bucket": "{bucket}", "key": "{cold}"}'),
        ("restore into B", "/restores",
         f'{{"org": "{A_ORG}", "bucket": "{A_BUCKET}", "key": "{A_KEY}", '
         '"destination": {"bucket": "{bucket}"}}'),
        ("upload in B", "/uploads", '{"org": "{org}", "bucket": "{bucket}", "key": "planted.bin"}'),
        ("upload over B", "/uploads", '{"org": "{org}", "bucket": "{bucket}", "key": "{key}"}'),
    ]:
        attempt(label, "POST", f"{API}{path}", body)
    # B's upload and restore by id.
    attempt("get B upload", "GET", f"{API}/uploads/{{upload}}")
    attempt("part to B upload", "PUT", f"{API}/uploads/{{upload}}/parts/1", "part")
    attempt("complete B upload", "POST", f"{API}/uploads/{{upload}}/complete", "{}")
    attempt("abort B upload", "DELETE", f"{API}/uploads/{{upload}}")
    attempt("get B restore", "GET", f"{API}/restores/{{restore}}")
    attempt("B restore objects", "GET", f"{API}/restores/{{restore}}/objects")
    attempt("restores of B", "GET", f"{API}/restores?org={{org}}")
    # The org itself: settings, members, grants, quota, policy, buckets, usage, audit, keys.
    for org in ("{org}", "{org_upper}", "{org}%00", "{a_org}%2f..%2f{org}", "{org_pct}"):
        base = f"{API}/orgs/{org}"
        attempt(f"org {org}", "GET", base)
        attempt(f"members {org}", "GET", f"{base}/members")
        attempt(f"join {org}", "PUT", f"{base}/members/{ALICE}", '{"role": "admin"}')
        attempt(f"remove bob {org}", "DELETE", f"{base}/members/{{bob}}")
        attempt(f"grants {org}", "GET", f"{base}/grants")
        attempt(f"grant {org}", "POST", f"{base}/grants",
                f'{{"user": "{ALICE}", "rights": ["all"]}}')
        attempt(f"revoke {org}", "POST", f"{base}/grants/revoke",
                '{"user": "{bob}", "rights": ["all"]}')
        attempt(f"quota {org}", "GET", f"{base}/quota")
        attempt(f"set quota {org}", "PUT", f"{base}/quota", '{"quota_bytes": 1}')
        attempt(f"settings {org}", "GET", f"{base}/settings")
        attempt(f"set settings {org}", "PATCH", f"{base}/settings", '{"restore_on_read": true}')
        attempt(f"policy {org}", "GET", f"{base}/policy")
        attempt(f"set policy {org}", "PUT", f"{base}/policy", '{"rules": []}')
        attempt(f"drop policy {org}", "DELETE", f"{base}/policy")
        attempt(f"buckets {org}", "GET", f"{base}/buckets")
        attempt(f"create bucket {org}", "POST", f"{base}/buckets", '{"name": "planted-bucket"}')
        for bucket in ("{bucket}", "{empty}"):
            attempt(f"bucket {org}/{bucket}", "GET", f"{base}/buckets/{bucket}")
            attempt(f"patch bucket {org}/{bucket}", "PATCH", f"{base}/buckets/{bucket}",
                    '{"retention_days": 0}')
            attempt(f"delete bucket {org}/{bucket}", "DELETE", f"{base}/buckets/{bucket}")
            attempt(f"bucket policy {org}/{bucket}", "GET", f"{base}/buckets/{bucket}/policy")
            attempt(f"set bucket policy {org}/{bucket}", "PUT", f"{base}/buckets/{bucket}/policy",
                    '{"rules": []}')
            attempt(f"drop bucket policy {org}/{bucket}", "DELETE",
                    f"{base}/buckets/{bucket}/policy")
        attempt(f"usage {org}", "GET", f"{API}/usage?org={org}")
        attempt(f"audit {org}", "GET", f"{API}/audit?org={org}")
        attempt(f"key in {org}", "POST", f"{API}/keys", f'{{"org": "{org}", "user": "{ALICE}"}}')
        # User names are global, and an org admin may learn that one exists (adding a
        # member takes one): the twin keeps bob's real name and ghosts B's org only.
        attempt(f"bob's key in {org}", "POST", f"{API}/keys",
                f'{{"org": "{org}", "user": "{{bob}}"}}', keep=("bob",))
    # B's user and keys: operators only, or the user himself. Listing bob's keys shows
    # those in the orgs alice manages: none.
    keys = arena.attempt(
        "bob's keys",
        lambda n, lbl: api_send(world, "GET", f"{API}/keys?user={n['bob']}", label=lbl,
                                transcript=arena.transcript),
        allowed={200}, keep=("bob",),
    )
    assert keys.status != 200 or _loads(keys.body) == {"keys": []}, keys
    attempt("revoke bob's key", "DELETE", f"{API}/keys/{world.bob_key[0]}", twin=False)
    attempt("bob's password", "PATCH", f"{API}/users/{{bob}}", '{"password": "alice owns bob now 1"}')
    attempt("disable bob", "PATCH", f"{API}/users/{{bob}}", '{"disabled": true}')
    attempt("users", "GET", f"{API}/users")
    attempt("create org", "POST", f"{API}/orgs", '{"name": "org-planted"}')
    attempt("create user in B", "POST", f"{API}/users",
            '{"name": "planted-user", "password": "planted password 1", "org": "{org}"}')
    attempt("regions", "PUT", f"{API}/regions/planted", '{"backend": "local"}')
    arena.check()


def test_api_literal_keys_stay_in_a(world: World, b_unchanged: None) -> None:
    """The API takes everything after ``/objects/ORG/BUCKET/`` as the key: dots and
    encoded slashes make a refused key, and B's names in it a key of A's own bucket, never
    a path into B."""
    transcript = Transcript()
    n = names(world, ghost=False)
    alice = world.gateway.identity.authenticate_token(world.alice_token)

    def a_keys() -> list[str]:
        return [o.key for o in world.gateway.objects.list_objects(alice, A_ORG, A_BUCKET).objects]

    # A key with '.' or '..' segments is refused outright: no front end could name it. An
    # encoded slash is a slash (as in S3), so the encoded form is the same key.
    for raw in ("{a_org}/{a_bucket}/../../{org}/{bucket}/{key}",
                "{a_org}/{a_bucket}/..%2f..%2f{org}%2f{bucket}%2f{key_enc}"):
        dotted = f"{API}/objects/" + raw.format(**n)
        for method, body in (("GET", b""), ("PUT", b"alice's own"), ("DELETE", b"")):
            refused = api_send(world, method, dotted, body, transcript=transcript)
            assert refused.status == 400, refused
    assert a_keys() == [A_KEY]
    # A literal '%2f' (sent as %252f) is just characters of a key in A's bucket.
    for raw in ("{a_org}/{a_bucket}/..%252f..%252f{org}%252f{bucket}%252f{key_enc}",):
        target = f"{API}/objects/" + raw.format(**n)
        missing = api_send(world, "GET", target, transcript=transcript)
        assert missing.status == 404, missing
        put = api_send(world, "PUT", target, b"alice's own", transcript=transcript)
        assert put.status == 201, put
        info = _loads(put.body)
        assert (info["org"], info["bucket"]) == (A_ORG, A_BUCKET)
        assert info["key"] in a_keys()
        got = api_send(world, "GET", target, transcript=transcript)
        assert got.status == 200 and got.body == b"alice's own"
        assert api_send(world, "DELETE", target, transcript=transcript).status == 204
        assert a_keys() == [A_KEY]
    listing = api_send(
        world, "GET", f"{API}/objects?org={A_ORG}&bucket={A_BUCKET}&prefix=..%2f..%2f{B_ORG}",
        transcript=transcript,
    )
    assert listing.status == 200 and _loads(listing.body)["objects"] == []
    secrets = {k: v for k, v in world.secrets().items() if k in ("B content", "B etag")}
    assert not transcript.leaks(secrets, echo_ok=False)


def test_api_views_show_only_a(world: World, b_unchanged: None) -> None:
    transcript = Transcript()
    # The whole audit log is for operators: an org admin names her org.
    assert api_send(world, "GET", f"{API}/audit", transcript=transcript).status == 400
    for target in (f"{API}/me", f"{API}/orgs", f"{API}/restores", f"{API}/keys", f"{API}/audit?org={A_ORG}", f"{API}/usage?org={A_ORG}",
                   f"{API}/orgs/{A_ORG}/members", f"{API}/orgs/{A_ORG}/buckets"):
        reply = api_send(world, "GET", target, transcript=transcript)
        assert reply.status == 200, reply
    orgs = api_send(world, "GET", f"{API}/orgs", transcript=transcript)
    assert [o["name"] for o in _loads(orgs.body)["orgs"]] == [A_ORG]
    assert not transcript.leaks(world.secrets(), echo_ok=False)


def _loads(body: bytes) -> Any:
    import json

    return json.loads(body)


# -- bytes on the wire -------------------------------------------------------------------------


def test_the_raw_client_sends_exactly_the_bytes_meant(world: World) -> None:
    """The tricks reach the servers as written: the request line holds the raw bytes, and
    the apps see the undecoded target (checked through the S3 app's raw path)."""
    tricky = f"/{A_BUCKET}/%c0%ae%c0%ae/..%5c%252e%00\\x"
    reply = s3_send(world, "GET", tricky)
    assert reply.request.startswith(b"GET " + tricky.encode() + b" HTTP/1.1\r\n")
    # The S3 app got past SigV4 (signed over the raw path) and refused the key itself.
    assert reply.status == 400 and reply.s3_code() in ("InvalidURI", "InvalidArgument"), reply
    dav = dav_send(world, "GET", f"/{A_ORG}/%c0%ae%c0%ae/{B_ORG}/")
    assert dav.request.startswith(f"GET /{A_ORG}/%c0%ae%c0%ae/{B_ORG}/ HTTP/1.1\r\n".encode())
    assert dav.status == 400, dav
    api = api_send(world, "GET", f"{API}/objects/{A_ORG}\\..\\{B_ORG}/{B_BUCKET}/{B_KEY}")
    assert api.request.startswith(
        f"GET {API}/objects/{A_ORG}\\..\\{B_ORG}/{B_BUCKET}/{B_KEY} HTTP/1.1\r\n".encode()
    )
    assert 400 <= api.status < 500, api


# -- last: a bucket of A named like B's ------------------------------------------------------


def test_s3_same_bucket_name_in_a_reaches_nothing_of_b(world: World, b_unchanged: None) -> None:
    """Bucket names are unique per org: alice may create "bravo-vault-bucket" in A. It is
    a new, empty bucket of A; B's bucket of that name stays B's alone.

    Last in the file: from here on A legitimately holds that name (its audit log too)."""
    transcript = Transcript()
    created = s3_send(world, "PUT", f"/{B_BUCKET}", transcript=transcript)
    assert created.status == 200, created
    try:
        for method, target, headers, body, status in [
            ("GET", f"/{B_BUCKET}/{B_KEY}", {}, b"", 404),
            ("HEAD", f"/{B_BUCKET}/{B_KEY}", {}, b"", 404),
            ("GET", f"/{B_BUCKET}/{B_COLD_KEY}", {}, b"", 404),
            ("POST", f"/{B_BUCKET}/{B_KEY}?restore", {}, RESTORE_BODY, 404),
            ("GET", f"/{B_BUCKET}/{B_MP_KEY}?uploadId={world.b_upload_id}", {}, b"", 404),
            ("PUT", f"/{B_BUCKET}/{B_MP_KEY}?partNumber=1&uploadId={world.b_upload_id}", {}, b"x", 404),
            ("DELETE", f"/{B_BUCKET}/{B_MP_KEY}?uploadId={world.b_upload_id}", {}, b"", 404),
            ("PUT", f"/{A_BUCKET}/stolen.txt", {"x-amz-copy-source": f"/{B_BUCKET}/{B_KEY}"}, b"", 404),
        ]:
            reply = s3_send(world, method, target, headers=headers, body=body, transcript=transcript)
            assert reply.status == status, reply
        listing = s3_send(world, "GET", f"/{B_BUCKET}?list-type=2", transcript=transcript)
        assert listing.status == 200 and b"<KeyCount>0</KeyCount>" in listing.body, listing
        uploads = s3_send(world, "GET", f"/{B_BUCKET}?uploads", transcript=transcript)
        assert uploads.status == 200 and b"<UploadId>" not in uploads.body, uploads
        # Writing into A's bucket of that name leaves B's object alone (b_unchanged).
        put = s3_send(world, "PUT", f"/{B_BUCKET}/{B_KEY}", body=b"alice's", transcript=transcript)
        assert put.status == 200, put
        got = s3_send(world, "GET", f"/{B_BUCKET}/{B_KEY}", transcript=transcript)
        assert got.body == b"alice's"
        assert s3_send(world, "DELETE", f"/{B_BUCKET}/{B_KEY}", transcript=transcript).status == 204
        # The WebDAV and API views of A's bucket are as empty.
        dav = dav_send(world, "PROPFIND", f"/{A_ORG}/{B_BUCKET}/", {"Depth": "1"},
                       transcript=transcript)
        assert dav.status == 207 and b"passwords" not in dav.body
        api = api_send(world, "GET", f"{API}/objects?org={A_ORG}&bucket={B_BUCKET}",
                       transcript=transcript)
        assert api.status == 200 and b"passwords" not in api.body, api
        # Bob still sees B's bucket list only: A's bucket of the same name is not his.
        assert sorted(b["Name"] for b in bob_s3(world).list_buckets()["Buckets"]) == sorted(
            [B_BUCKET, B_EMPTY]
        )
    finally:
        assert s3_send(world, "DELETE", f"/{B_BUCKET}", transcript=transcript).status == 204
    secrets = {
        k: v for k, v in world.secrets().items()
        if k in ("B content", "B etag", "B org", "B user", "B access key", "B empty bucket")
    }
    assert not transcript.leaks(secrets, echo_ok=False)
