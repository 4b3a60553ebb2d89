"""The WebDAV endpoint over HTTP: the real assembly (``Gateway.open`` on SQLite and
``localfs``, ``make_webdav_app``) served by cheroot on a free loopback port in this process,
driven with httpx and raw sockets.

One gateway per module keeps it fast; each test works in buckets of its own.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import socket
import threading
import time
import unicodedata
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from cheroot import wsgi

from catalog.records import ROLE_ADMIN, ROLE_MEMBER, NewObject
from gateway.app import Gateway
from gateway.config import load_config
from gateway.logs import RequestIdMiddleware
from gateway.principals import Principal, hash_password
from protocols.webdav import build_webdav_app, make_webdav_app
from protocols.webdav.provider import NAMESPACE

PASSWORD = "correct horse battery staple"
DAV = "{DAV:}"
CS = f"{{{NAMESPACE}}}"


@dataclass
class Endpoint:
    gateway: Gateway
    url: str
    server: wsgi.Server

    def client(self, user: str = "alice") -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, PASSWORD), timeout=60)

    def principal(self, user: str = "alice") -> Principal:
        return self.gateway.identity.authenticate_password(user, PASSWORD)


def serve(app: Any) -> tuple[wsgi.Server, str]:
    """Serve ``app`` as ``coolstorage serve`` does (request ids, a 128 backlog)."""
    app = RequestIdMiddleware(app, listener="webdav")
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=8, request_queue_size=128)
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    host, port = server.bind_addr[:2]
    return server, f"http://{host}:{port}"


@pytest.fixture(scope="module")
def dav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    directory = tmp_path_factory.mktemp("webdav")
    config_path = directory / "coolstorage.toml"
    # cache_ttl 0: org settings and quotas changed by a test show at once.
    config_path.write_text(
        f'[server]\ndata_dir = "{directory / "var"}"\n[engine]\nenabled = false\n'
        '[catalog]\ncache_ttl = 0\n[identity]\nmember_default_rights = ["read"]\n'
    )
    gateway = Gateway.open(load_config(config_path, env={}))
    catalog = gateway.catalog
    acme = gateway.objects.ensure_org("acme")
    beta = gateway.objects.ensure_org("beta")
    gateway.objects.ensure_org("gamma")
    for name, memberships in {
        "alice": [(acme, ROLE_ADMIN), (beta, ROLE_ADMIN)],
        "bob": [(acme, ROLE_MEMBER)],
    }.items():
        user = catalog.create_user(name, password_hash=hash_password(PASSWORD))
        for org, role in memberships:
            catalog.add_membership(org.id, user.id, role)
    server, url = serve(make_webdav_app(gateway))
    yield Endpoint(gateway, url, server)
    server.stop()
    gateway.close()


def new_bucket(dav: Endpoint, org: str = "acme") -> str:
    name = f"b-{uuid.uuid4().hex[:10]}"
    with dav.client() as client:
        assert client.request("MKCOL", f"/{org}/{name}/").status_code == 201
    return name


def propfind(
    client: httpx.Client, path: str, depth: str = "1", body: str | None = None
) -> dict[str, dict[str, ET.Element]]:
    """``href (decoded) -> {property name -> element}`` of the 200 propstats."""
    reply = client.request("PROPFIND", path, headers={"Depth": depth}, content=body)
    assert reply.status_code == 207, reply.text
    found: dict[str, dict[str, ET.Element]] = {}
    for response in ET.fromstring(reply.content).iter(f"{DAV}response"):
        href = unquote(response.findtext(f"{DAV}href") or "")
        props: dict[str, ET.Element] = {}
        for propstat in response.iter(f"{DAV}propstat"):
            if "200" in (propstat.findtext(f"{DAV}status") or ""):
                for prop in propstat.find(f"{DAV}prop") or []:
                    props[prop.tag] = prop
        found[href] = props
    return found


def named(*names: str) -> str:
    props = "".join(f'<x:{n.split("}")[1]} xmlns:x="{n[1:].split("}")[0]}"/>' for n in names)
    return f'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>{props}</D:prop></D:propfind>'


def keys(dav: Endpoint, bucket: str, prefix: str = "", org: str = "acme") -> list[str]:
    page = dav.gateway.objects.list_objects(dav.principal(), org, bucket, prefix=prefix)
    return [r.key for r in page.objects]


# -- authentication --------------------------------------------------------------------------


def test_nothing_is_readable_without_credentials(dav: Endpoint) -> None:
    with httpx.Client(base_url=dav.url) as anonymous:
        for method in ("GET", "PROPFIND", "OPTIONS", "PUT"):
            reply = anonymous.request(method, "/acme/")
            assert reply.status_code == 401
            assert reply.headers["WWW-Authenticate"] == 'Basic realm="Cool Storage"'
        wrong = anonymous.request("PROPFIND", "/", auth=("alice", "wrong"), headers={"Depth": "0"})
        assert wrong.status_code == 401
        for header in (
            "Basic !!!not-base64",
            "Basic " + base64.b64encode(b"no-colon").decode(),
            "Bearer x",
        ):
            reply = anonymous.request(
                "PROPFIND", "/", headers={"Authorization": header, "Depth": "0"}
            )
            assert reply.status_code == 401, header
            assert "Traceback" not in reply.text


def test_root_lists_the_users_orgs_each_with_its_buckets(dav: Endpoint) -> None:
    bucket = new_bucket(dav, "beta")
    with dav.client() as client:
        root = propfind(client, "/")
        assert {"/", "/acme/", "/beta/"} <= set(root)
        assert "/gamma/" not in root  # not a member
        assert f"{DAV}collection" in [c.tag for c in root["/acme/"][f"{DAV}resourcetype"]]
        assert f"/beta/{bucket}/" in propfind(client, "/beta/")
        assert client.request("PROPFIND", "/gamma/", headers={"Depth": "0"}).status_code == 404
    with dav.client("bob") as client:
        assert set(propfind(client, "/")) == {"/", "/acme/"}
        assert (
            client.request("PROPFIND", f"/beta/{bucket}/", headers={"Depth": "0"}).status_code
            == 404
        )


def test_options_announce_class_2(dav: Endpoint) -> None:
    with dav.client() as client:
        reply = client.options("/acme/")
        assert reply.status_code == 200
        assert reply.headers["DAV"] == "1,2"
        assert reply.headers["MS-Author-Via"] == "DAV"


# -- buckets and folders ----------------------------------------------------------------------


def test_mkcol_in_an_org_creates_a_bucket(dav: Endpoint) -> None:
    name = new_bucket(dav)
    assert dav.gateway.objects.head_bucket(dav.principal(), "acme", name).name == name
    with dav.client() as client:
        assert client.request("MKCOL", f"/acme/{name}/").status_code == 405
        bad = client.request("MKCOL", "/acme/Not_A_Bucket/")
        assert bad.status_code == 403
        assert "bucket name" in bad.text and "lowercase" in bad.text
        assert client.request("MKCOL", "/neworg/").status_code == 403
        assert client.request("MKCOL", "/acme/no-such-bucket/dir/").status_code == 409
        assert client.put("/acme/file.txt", content=b"x").status_code == 403


def test_folders_are_markers_s3_also_lists(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    with dav.client() as client:
        assert client.request("MKCOL", f"/acme/{bucket}/empty/").status_code == 201
        assert client.request("MKCOL", f"/acme/{bucket}/empty/inner/").status_code == 201
        assert client.request("MKCOL", f"/acme/{bucket}/missing/inner/").status_code == 409
        listing = propfind(client, f"/acme/{bucket}/")
        assert f"/acme/{bucket}/empty/" in listing
        assert set(propfind(client, f"/acme/{bucket}/empty/")) == {
            f"/acme/{bucket}/empty/",
            f"/acme/{bucket}/empty/inner/",
        }
    assert keys(dav, bucket) == ["empty/", "empty/inner/"]
    page = dav.gateway.objects.list_objects(dav.principal(), "acme", bucket, delimiter="/")
    assert page.common_prefixes == ["empty/"]
    view = dav.gateway.objects.head_object(dav.principal(), "acme", bucket, "empty/")
    assert view.record.size == 0 and view.record.content_type == "application/x-directory"


def test_folder_marker_files_are_hidden_when_configured(dav: Endpoint) -> None:
    settings = replace(dav.gateway.config.webdav, folder_marker=".keep")
    gateway = dav.gateway
    server, url = serve(
        build_webdav_app(gateway.objects, gateway.catalog, gateway.identity, settings)
    )
    try:
        bucket = new_bucket(dav)
        with httpx.Client(base_url=url, auth=("alice", PASSWORD)) as client:
            assert client.request("MKCOL", f"/acme/{bucket}/kept/").status_code == 201
            assert set(propfind(client, f"/acme/{bucket}/kept/")) == {f"/acme/{bucket}/kept/"}
            assert (
                client.request(
                    "PROPFIND", f"/acme/{bucket}/kept", headers={"Depth": "0"}
                ).status_code
                == 207
            )
        assert keys(dav, bucket) == ["kept/.keep"]
    finally:
        server.stop()


def test_a_key_and_a_folder_of_the_same_name_both_stay_reachable(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    objects, alice = dav.gateway.objects, dav.principal()
    objects.put_object(alice, "acme", bucket, "x", io.BytesIO(b"file"), size=4)
    objects.put_object(alice, "acme", bucket, "x/y", io.BytesIO(b"inner"), size=5)
    with dav.client() as client:
        assert client.get(f"/acme/{bucket}/x").content == b"file"
        assert set(propfind(client, f"/acme/{bucket}/x/")) == {
            f"/acme/{bucket}/x/",
            f"/acme/{bucket}/x/y",
        }
        # MKCOL over a plain file is refused even with the trailing slash clients send.
        objects.put_object(alice, "acme", bucket, "plain", io.BytesIO(b"p"), size=1)
        assert client.request("MKCOL", f"/acme/{bucket}/plain/").status_code == 405


# -- files ----------------------------------------------------------------------------------------


def test_put_get_head_and_ranges(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    data = os.urandom(3 * 1024 * 1024 + 123)
    path = f"/acme/{bucket}/dir/data.bin"
    with dav.client() as client:
        assert client.put(path, content=data).status_code == 409  # no parent folder
        client.request("MKCOL", f"/acme/{bucket}/dir/")
        created = client.put(path, content=data)
        assert created.status_code == 201
        assert created.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        assert client.put(path, content=data[:10]).status_code == 204
        assert client.put(path, content=data).status_code == 204
        got = client.get(path)
        assert got.status_code == 200 and got.content == data
        assert got.headers["Accept-Ranges"] == "bytes"
        part = client.get(path, headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == data[1000:2000]
        assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
        assert client.get(path, headers={"Range": "bytes=-10"}).content == data[-10:]
        assert client.get(path, headers={"Range": f"bytes={len(data) - 5}-"}).content == data[-5:]
        assert client.get(path, headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416
        head = client.head(path)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["Content-Length"]) == len(data)
        props = propfind(client, path, "0")[path]
        assert props[f"{DAV}getcontentlength"].text == str(len(data))
        assert props[f"{DAV}getetag"].text == created.headers["ETag"]
        assert props[f"{DAV}getcontenttype"].text == "application/octet-stream"
        assert props[f"{DAV}getlastmodified"].text


def test_a_range_read_fetches_only_the_blocks_it_needs(
    dav: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = new_bucket(dav)
    size = 12 * 1024 * 1024
    data = os.urandom(size)
    with dav.client() as client:
        assert client.put(f"/acme/{bucket}/big", content=data).status_code == 201
        backend = dav.gateway.backends["local"]
        fetched: list[int] = []
        real_get = backend.get

        def counting_get(key: str, *, start: int = 0, end: int | None = None) -> Any:
            fetched.append((end or 0) - start)
            return real_get(key, start=start, end=end)

        monkeypatch.setattr(backend, "get", counting_get)
        part = client.get(f"/acme/{bucket}/big", headers={"Range": "bytes=5000000-5000099"})
        assert part.content == data[5_000_000:5_000_100]
    block = dav.gateway.config.sealing.block_size
    assert fetched and sum(fetched) <= block + 128 * 1024, fetched


def test_names_are_unicode_safe(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    names = ["a b#c%d+e&f;g=h?.txt", "日本語 ファイル.txt", "emoji-🎉.bin", "100%.txt"]
    with dav.client() as client:
        for name in names:
            assert (
                client.put(f"/acme/{bucket}/{quote(name)}", content=name.encode()).status_code
                == 201
            )
        for name in names:
            assert client.get(f"/acme/{bucket}/{quote(name)}").content == name.encode()
        listed = propfind(client, f"/acme/{bucket}/")
        for name in names:
            assert f"/acme/{bucket}/{name}" in listed
            assert listed[f"/acme/{bucket}/{name}"][f"{DAV}displayname"].text == name
        # Stored exactly as sent; the other normalization form finds the same file.
        nfd = unicodedata.normalize("NFD", "Café résumé.txt")
        nfc = unicodedata.normalize("NFC", nfd)
        assert client.put(f"/acme/{bucket}/{quote(nfd)}", content=b"v1").status_code == 201
        assert client.get(f"/acme/{bucket}/{quote(nfc)}").content == b"v1"
        assert client.put(f"/acme/{bucket}/{quote(nfc)}", content=b"v2").status_code == 204
        assert client.get(f"/acme/{bucket}/{quote(nfd)}").content == b"v2"
    assert sorted(keys(dav, bucket)) == sorted([*names, nfd])


def test_an_encoded_slash_is_a_slash_and_a_literal_percent_2f_stays(dav: Endpoint) -> None:
    """cheroot alone hands ``/a%2Fb`` and ``/a%252Fb`` over alike; the front end decodes
    the request line itself, so the first is the file ``b`` in folder ``a`` and the second
    a file whose name holds the three characters ``%2F``."""
    bucket = new_bucket(dav)
    with dav.client() as client:
        assert client.request("MKCOL", f"/acme/{bucket}/dir/").status_code == 201
        assert client.put(f"/acme/{bucket}/dir%2Finner.txt", content=b"nested").status_code == 201
        assert client.put(f"/acme/{bucket}/50%252F50.txt", content=b"literal").status_code == 201
        assert client.get(f"/acme/{bucket}/dir/inner.txt").content == b"nested"
        assert client.get(f"/acme/{bucket}/50%252F50.txt").content == b"literal"
        assert client.get(f"/acme/{bucket}/50/50.txt").status_code == 404
    assert [k for k in sorted(keys(dav, bucket)) if not k.endswith("/")] == [
        "50%2F50.txt", "dir/inner.txt"
    ]


def test_delete_files_and_whole_folders(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    with dav.client() as client:
        client.request("MKCOL", f"/acme/{bucket}/tree/")
        client.request("MKCOL", f"/acme/{bucket}/tree/sub/")
        for i in range(5):
            client.put(f"/acme/{bucket}/tree/f{i}", content=b"x")
            client.put(f"/acme/{bucket}/tree/sub/g{i}", content=b"y")
        client.put(f"/acme/{bucket}/keep", content=b"k")
        assert client.delete(f"/acme/{bucket}/tree/sub/g0").status_code == 204
        assert client.delete(f"/acme/{bucket}/tree/sub/g0").status_code == 404
        assert client.delete(f"/acme/{bucket}/tree/").status_code == 204
        assert keys(dav, bucket) == ["keep"]
        assert (
            client.request("PROPFIND", f"/acme/{bucket}/tree/", headers={"Depth": "0"}).status_code
            == 404
        )
        # A bucket is a folder too: deleting it empties and removes it.
        assert client.delete(f"/acme/{bucket}/").status_code == 204
        assert f"/acme/{bucket}/" not in propfind(client, "/acme/")
        assert client.delete("/acme/").status_code == 403


def test_copy_and_move_files(dav: Endpoint) -> None:
    bucket, other = new_bucket(dav), new_bucket(dav)
    base = f"/acme/{bucket}"

    def dest(path: str) -> dict[str, str]:
        return {"Destination": dav.url + path}

    with dav.client() as client:
        client.put(f"{base}/a.txt", content=b"alpha")
        client.put(f"{base}/b.txt", content=b"beta")
        assert (
            client.request("COPY", f"{base}/a.txt", headers=dest(f"{base}/c.txt")).status_code
            == 201
        )
        assert (
            client.request("COPY", f"{base}/a.txt", headers=dest(f"{base}/b.txt")).status_code
            == 204
        )
        assert client.get(f"{base}/b.txt").content == b"alpha"
        refused = client.request(
            "COPY", f"{base}/a.txt", headers={**dest(f"{base}/b.txt"), "Overwrite": "F"}
        )
        assert refused.status_code == 412
        assert (
            client.request("COPY", f"{base}/a.txt", headers=dest(f"{base}/nodir/x")).status_code
            == 409
        )
        assert (
            client.request(
                "MOVE", f"{base}/c.txt", headers=dest(f"/acme/{other}/moved.txt")
            ).status_code
            == 201
        )
        assert client.get(f"{base}/c.txt").status_code == 404
        assert client.get(f"/acme/{other}/moved.txt").content == b"alpha"
        # Across orgs the bytes are sealed again for the other org.
        beta_bucket = new_bucket(dav, "beta")
        assert (
            client.request(
                "MOVE", f"{base}/b.txt", headers=dest(f"/beta/{beta_bucket}/b.txt")
            ).status_code
            == 201
        )
        assert client.get(f"/beta/{beta_bucket}/b.txt").content == b"alpha"
        assert keys(dav, bucket) == ["a.txt"]


def test_copy_and_move_whole_folders(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    base = f"/acme/{bucket}"

    def dest(path: str, **extra: str) -> dict[str, str]:
        return {"Destination": dav.url + quote(path), **extra}

    with dav.client() as client:
        client.request("MKCOL", f"{base}/src/")
        client.request("MKCOL", f"{base}/src/deep/")
        client.request("MKCOL", f"{base}/src/empty/")
        client.put(f"{base}/src/one", content=b"1")
        client.put(f"{base}/src/deep/two", content=b"2")
        assert (
            client.request("COPY", f"{base}/src/", headers=dest(f"{base}/copy/")).status_code == 201
        )
        assert keys(dav, bucket, "copy/") == [
            "copy/",
            "copy/deep/",
            "copy/deep/two",
            "copy/empty/",
            "copy/one",
        ]
        shallow = client.request(
            "COPY", f"{base}/src/", headers=dest(f"{base}/shallow/", Depth="0")
        )
        assert shallow.status_code == 201
        assert keys(dav, bucket, "shallow/") == ["shallow/"]
        # Onto an existing folder: it is replaced, not merged.
        client.put(f"{base}/copy/stale", content=b"old")
        assert (
            client.request("COPY", f"{base}/src/", headers=dest(f"{base}/copy/")).status_code == 204
        )
        assert "copy/stale" not in keys(dav, bucket, "copy/")
        assert (
            client.request("MOVE", f"{base}/copy/", headers=dest(f"{base}/renamed/")).status_code
            == 201
        )
        assert keys(dav, bucket, "copy/") == []
        assert client.get(f"{base}/renamed/deep/two").content == b"2"
        # A folder moved directly into an org becomes a new bucket.
        newbucket = f"n-{uuid.uuid4().hex[:8]}"
        assert (
            client.request(
                "MOVE", f"{base}/renamed/", headers=dest(f"/acme/{newbucket}/")
            ).status_code
            == 201
        )
        assert keys(dav, newbucket) == ["deep/", "deep/two", "empty/", "one"]
        assert (
            client.request("MOVE", f"{base}/src/", headers=dest(f"{base}/src/inside/")).status_code
            == 403
        )
        assert (
            client.request("MOVE", f"{base}/src/deep/", headers=dest(f"{base}/src/")).status_code
            == 403
        )


def test_a_cut_off_upload_leaves_nothing(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    host, port = urlsplit(dav.url).netloc.split(":")
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    for framing in ("length", "chunked"):
        name = f"partial-{framing}.bin"
        head = (
            f"PUT /acme/{bucket}/{name} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
        )
        head += (
            "Content-Length: 10485760\r\n\r\n"
            if framing == "length"
            else "Transfer-Encoding: chunked\r\n\r\n"
        )
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head.encode())
            piece = os.urandom(1024 * 1024)
            for _ in range(2):
                sock.sendall(
                    piece if framing == "length" else b"%x\r\n%s\r\n" % (len(piece), piece)
                )
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        intents: list[Any] = []
        while time.monotonic() < deadline:
            intents = dav.gateway.catalog.due_intents(older_than=_far_future())
            if not intents:
                break
            time.sleep(0.1)
        assert keys(dav, bucket) == []
        with dav.client() as client:
            assert client.get(f"/acme/{bucket}/{name}").status_code == 404
    assert intents == []  # the partial blob was removed, not left for the sweep


def _far_future() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(days=1)


# -- properties ----------------------------------------------------------------------------


PROPPATCH = """<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:example:test">
  <D:set><D:prop><Z:colour>blue</Z:colour><Z:note lang="fr">été <Z:b>gras</Z:b></Z:note></D:prop></D:set>
</D:propertyupdate>"""


def test_dead_properties_persist_move_with_the_file_and_go_with_it(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    base = f"/acme/{bucket}"
    with dav.client() as client:
        client.put(f"{base}/f.txt", content=b"data")
        assert client.request("PROPPATCH", f"{base}/f.txt", content=PROPPATCH).status_code == 207
        props = propfind(client, f"{base}/f.txt", "0", named("{urn:example:test}colour"))[
            f"{base}/f.txt"
        ]
        assert props["{urn:example:test}colour"].text == "blue"
        allprops = propfind(client, f"{base}/", "1")[f"{base}/f.txt"]
        assert allprops["{urn:example:test}note"].find("{urn:example:test}b").text == "gras"  # type: ignore[union-attr]
        client.request("COPY", f"{base}/f.txt", headers={"Destination": dav.url + f"{base}/g.txt"})
        client.request("MOVE", f"{base}/f.txt", headers={"Destination": dav.url + f"{base}/h.txt"})
        for name in ("g.txt", "h.txt"):
            got = propfind(client, f"{base}/{name}", "0", named("{urn:example:test}colour"))
            assert got[f"{base}/{name}"]["{urn:example:test}colour"].text == "blue"
        # Folders keep properties on their marker.
        client.request("MKCOL", f"{base}/dir/")
        assert client.request("PROPPATCH", f"{base}/dir/", content=PROPPATCH).status_code == 207
        assert (
            propfind(client, f"{base}/dir/", "0")[f"{base}/dir/"]["{urn:example:test}colour"].text
            == "blue"
        )
        parent = propfind(client, f"{base}/", "1")  # the sub-folder's own, in the listing
        assert parent[f"{base}/dir/"]["{urn:example:test}colour"].text == "blue"
        # Protected and live properties cannot be set; buckets keep none.
        protected = PROPPATCH.replace("Z:colour", "D:getetag")
        assert b"403" in client.request("PROPPATCH", f"{base}/h.txt", content=protected).content
        assert b"403" in client.request("PROPPATCH", f"{base}/", content=PROPPATCH).content
    record = dav.gateway.objects.head_object(dav.principal(), "acme", bucket, "h.txt").record
    assert set(dav.gateway.catalog.dav_properties(record.id)) == {
        "{urn:example:test}colour",
        "{urn:example:test}note",
    }
    dav.gateway.objects.delete_object(dav.principal(), "acme", bucket, "h.txt")
    assert dav.gateway.catalog.dav_properties(record.id) == {}


def test_a_listing_reads_the_catalog_in_pages_not_per_member(
    dav: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = new_bucket(dav)
    gateway = dav.gateway
    with dav.client() as client:
        client.request("MKCOL", f"/acme/{bucket}/big/")
        for i in range(5):
            client.request("MKCOL", f"/acme/{bucket}/big/sub{i}/")
            client.request("PROPPATCH", f"/acme/{bucket}/big/sub{i}/", content=PROPPATCH)
    org = gateway.catalog.get_org("acme")
    assert org is not None
    stored = gateway.catalog.get_bucket(org.id, bucket)
    assert stored is not None
    gateway.catalog.import_objects(
        NewObject(
            bucket_id=stored.id,
            key=f"big/f{i:05d}",
            size=i,
            etag=f'"{i:032x}"',
            sha256="0" * 64,
            content_type="text/plain",
            user_metadata={},
            storage_class="STANDARD",
            segments=(),
            modified_at=datetime.now(UTC),
        )
        for i in range(2500)
    )
    calls: dict[str, int] = {"head_object": 0, "list_objects": 0, "get_object": 0}
    for name in calls:
        real = getattr(gateway.objects, name)

        def counted(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(gateway.objects, name, counted)
    with dav.client() as client:
        listing = propfind(client, f"/acme/{bucket}/big/", "1")
    assert len(listing) == 1 + 5 + 2500
    assert listing[f"/acme/{bucket}/big/f02499"][f"{DAV}getcontentlength"].text == "2499"
    assert listing[f"/acme/{bucket}/big/sub3/"]["{urn:example:test}colour"].text == "blue"
    assert calls["head_object"] <= 2 and calls["get_object"] == 0, calls
    assert calls["list_objects"] <= 5, calls  # resolving the folder, then 3 pages


def test_propfind_depth_infinity_is_refused(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    with dav.client() as client:
        for headers in ({"Depth": "infinity"}, {}):
            reply = client.request("PROPFIND", f"/acme/{bucket}/", headers=headers)
            assert reply.status_code == 403
            assert b"propfind-finite-depth" in reply.content
    settings = replace(dav.gateway.config.webdav, allow_depth_infinity=True)
    gateway = dav.gateway
    server, url = serve(
        build_webdav_app(gateway.objects, gateway.catalog, gateway.identity, settings)
    )
    try:
        with httpx.Client(base_url=url, auth=("alice", PASSWORD)) as client:
            client.request("MKCOL", f"/acme/{bucket}/a/")
            client.put(f"/acme/{bucket}/a/f", content=b"1")
            assert f"/acme/{bucket}/a/f" in propfind(client, f"/acme/{bucket}/", "infinity")
    finally:
        server.stop()


def test_quota_properties_and_writes_over_quota(dav: Endpoint) -> None:
    gateway = dav.gateway
    org = gateway.objects.ensure_org(f"quota{uuid.uuid4().hex[:6]}")
    user = gateway.catalog.get_user("alice")
    assert user is not None
    gateway.catalog.add_membership(org.id, user.id, ROLE_ADMIN)
    gateway.identity.forget(user.id)
    gateway.catalog.set_org_quota(org.id, 1000)
    bucket = new_bucket(dav, org.name)
    with dav.client() as client:
        assert client.put(f"/{org.name}/{bucket}/a", content=b"x" * 600).status_code == 201
        props = propfind(client, f"/{org.name}/{bucket}/", "0")[f"/{org.name}/{bucket}/"]
        assert props[f"{DAV}quota-used-bytes"].text == "600"
        assert props[f"{DAV}quota-available-bytes"].text == "400"
        over = client.put(f"/{org.name}/{bucket}/b", content=b"x" * 600)
        assert over.status_code == 507
        assert "quota" in over.text
    assert keys(dav, bucket, org=org.name) == ["a"]


# -- cold files --------------------------------------------------------------------------------


def test_archived_files_show_their_state_and_restore_on_read(dav: Endpoint) -> None:
    gateway, alice = dav.gateway, dav.principal()
    org = gateway.objects.ensure_org(f"cold{uuid.uuid4().hex[:6]}")
    for name, role in (("alice", ROLE_ADMIN), ("bob", ROLE_MEMBER)):
        user = gateway.catalog.get_user(name)
        assert user is not None
        gateway.catalog.add_membership(org.id, user.id, role)
        gateway.identity.forget(user.id)
    alice = dav.principal()
    bucket = new_bucket(dav, org.name)
    for key in ("cold.bin", "bulk.bin", "bob.bin"):
        gateway.objects.put_object(
            alice,
            org.name,
            bucket,
            key,
            io.BytesIO(b"frozen"),
            size=6,
            storage_class="DEEP_ARCHIVE",
        )
    path = f"/{org.name}/{bucket}/cold.bin"
    with dav.client() as client:
        refused = client.get(path)
        assert refused.status_code == 403
        assert f"coolstorage restore --org {org.name} {bucket}/cold.bin" in refused.text
        assert "restore-object" in refused.text
        assert client.head(path).status_code == 200  # metadata stays readable
        props = propfind(client, f"/{org.name}/{bucket}/", "1", named(*COOL_NAMES))[path]
        assert props[f"{CS}storage-class"].text == "DEEP_ARCHIVE"
        assert props[f"{CS}restore-state"].text == "archived"

        gateway.catalog.update_org_settings(org.id, {"restore_on_read": True})
        filed = client.get(path)
        assert filed.status_code == 503
        assert filed.headers["Retry-After"] == "43200"  # Deep Archive Standard: 12 hours
        # The restore was filed; these bytes were still hot, so it is done at once.
        served = client.get(path)
        assert served.status_code == 200 and served.content == b"frozen"
        props = propfind(client, path, "0", named(*COOL_NAMES))[path]
        assert props[f"{CS}restore-state"].text == "restored"
        assert "GMT" in (props[f"{CS}restore-expiry"].text or "")

        gateway.catalog.update_org_settings(org.id, {"restore_tier": "Bulk"})
        bulk = client.get(f"/{org.name}/{bucket}/bulk.bin")
        assert bulk.status_code == 503 and bulk.headers["Retry-After"] == "172800"
    with dav.client("bob") as client:  # a member without the restore right
        denied = client.get(f"/{org.name}/{bucket}/bob.bin")
        assert denied.status_code == 403
        assert "restore" in denied.text


COOL_NAMES = (f"{CS}storage-class", f"{CS}restore-state", f"{CS}restore-expiry")


# -- locks ----------------------------------------------------------------------------------------


LOCKINFO = """<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>
<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"""


def test_locks_are_shared_by_replicas(dav: Endpoint) -> None:
    gateway = dav.gateway
    other_server, other_url = serve(make_webdav_app(gateway))  # a second replica, same catalog
    bucket = new_bucket(dav)
    path = f"/acme/{bucket}/locked.txt"
    try:
        with dav.client() as one, httpx.Client(base_url=other_url, auth=("alice", PASSWORD)) as two:
            one.put(path, content=b"v1")
            locked = one.request("LOCK", path, content=LOCKINFO, headers={"Timeout": "Second-600"})
            assert locked.status_code == 200
            token = locked.headers["Lock-Token"].strip("<>")
            assert two.put(path, content=b"v2").status_code == 423
            assert two.delete(path).status_code == 423
            assert two.delete(f"/acme/{bucket}/").status_code == 423
            assert two.request("LOCK", path, content=LOCKINFO).status_code == 423
            discovered = propfind(two, path, "0", named(f"{DAV}lockdiscovery"))[path]
            assert token in ET.tostring(discovered[f"{DAV}lockdiscovery"]).decode()
            assert two.put(path, content=b"v2", headers={"If": f"(<{token}>)"}).status_code == 204
            assert (
                two.request("UNLOCK", path, headers={"Lock-Token": f"<{token}>"}).status_code == 204
            )
            assert one.put(path, content=b"v3").status_code == 204
            # An unmapped URL can be locked: it becomes an empty file.
            fresh = one.request("LOCK", f"/acme/{bucket}/new.txt", content=LOCKINFO)
            assert fresh.status_code == 201
            assert keys(dav, bucket) == ["locked.txt", "new.txt"]
    finally:
        other_server.stop()


def test_locks_expire(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    path = f"/acme/{bucket}/brief.txt"
    with dav.client() as client:
        client.put(path, content=b"x")
        locked = client.request("LOCK", path, content=LOCKINFO, headers={"Timeout": "Second-3"})
        assert locked.status_code == 200
        assert re.search(r"Second-[0-3]<", locked.text), locked.text
        assert client.put(path, content=b"y").status_code == 423
        time.sleep(3.2)
        assert client.put(path, content=b"y").status_code == 204
        infinite = client.request("LOCK", path, content=LOCKINFO, headers={"Timeout": "Infinite"})
        limit = dav.gateway.config.webdav.lock_timeout_max
        granted = re.search(r"Second-(\d+)<", infinite.text)
        assert granted is not None and limit - 60 < int(granted.group(1)) <= limit


def test_a_reader_may_read_but_not_change_lock_or_annotate(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    path = f"/acme/{bucket}/doc.txt"
    with dav.client() as alice:
        alice.put(path, content=b"text")
    with dav.client("bob") as bob:  # a member holds only the read right here
        assert bob.get(path).content == b"text"
        assert path in propfind(bob, f"/acme/{bucket}/")
        for reply in (
            bob.put(path, content=b"changed"),
            bob.delete(path),
            bob.request("MKCOL", f"/acme/{bucket}/dir/"),
            bob.request("LOCK", path, content=LOCKINFO),
            bob.request("PROPPATCH", path, content=PROPPATCH),
            bob.request("MOVE", path, headers={"Destination": dav.url + f"/acme/{bucket}/x"}),
        ):
            assert reply.status_code == 403, (reply.request.method, reply.text)
            assert "right" in reply.text
    assert keys(dav, bucket) == ["doc.txt"]


# -- failures -------------------------------------------------------------------------------------


def test_failures_are_short_answers_never_tracebacks(
    dav: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.errors import BackendError, CatalogError

    bucket = new_bucket(dav)
    objects = dav.gateway.objects
    with dav.client() as client:
        client.put(f"/acme/{bucket}/f", content=b"x")

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("something internal /secret/path")

        monkeypatch.setattr(objects, "list_objects", broken)
        reply = client.request("PROPFIND", f"/acme/{bucket}/", headers={"Depth": "1"})
        assert reply.status_code == 500
        assert "Traceback" not in reply.text and "/secret/path" not in reply.text
        assert f"request id {reply.headers['X-Request-Id']}" in reply.text

        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise CatalogError("cannot reach the catalog database")

        monkeypatch.setattr(objects, "list_objects", unavailable)
        reply = client.request("PROPFIND", f"/acme/{bucket}/", headers={"Depth": "1"})
        assert reply.status_code == 503 and reply.headers["Retry-After"] == "5"
        monkeypatch.undo()

        def backend_down(*args: Any, **kwargs: Any) -> Any:
            raise BackendError("the backend is unreachable", retryable=True)

        monkeypatch.setattr(objects, "get_object", backend_down)
        assert client.get(f"/acme/{bucket}/f").status_code == 503


def test_a_path_that_is_not_utf8_is_a_bad_request(dav: Endpoint) -> None:
    host, port = urlsplit(dav.url).netloc.split(":")
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"GET /acme/%ff%fe HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_a_browser_gets_an_html_listing(dav: Endpoint) -> None:
    bucket = new_bucket(dav)
    with dav.client() as client:
        client.put(f"/acme/{bucket}/readme.txt", content=b"hello")
        page = client.get(f"/acme/{bucket}/")
        assert page.status_code == 200
        assert "text/html" in page.headers["Content-Type"]
        assert "readme.txt" in page.text


def test_the_project_namespace_is_documented(dav: Endpoint) -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    assert NAMESPACE in readme.read_text()
