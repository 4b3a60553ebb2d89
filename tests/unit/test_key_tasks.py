"""Master key rotation and org identity export, through a real Gateway on SQLite + localfs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway import sealing
from gateway.app import Gateway
from gateway.bootstrap import ensure_first_admin
from gateway.config import load_config
from gateway.credentials import access_key_secret
from gateway.errors import NotFound
from gateway.keys import export_org_identity, rotate_master


def open_gateway(tmp_path: Path, key: str, previous: list[str] | None = None) -> Gateway:
    file = tmp_path / "coolstorage.toml"
    file.write_text(
        f"""
[catalog]
url = "sqlite:///{tmp_path}/catalog.db"

[backends.local]
type = "localfs"
root = "{tmp_path}/blobs"

[keys]
master_key_file = "{key}"
previous_master_key_files = {list(previous or [])!r}
""".replace("'", '"')
    )
    return Gateway.open(load_config(file, env={}))



def test_rotation_rewraps_identities_and_secrets_without_touching_data(tmp_path: Path) -> None:
    old_key, new_key = str(tmp_path / "old.key"), str(tmp_path / "new.key")
    with open_gateway(tmp_path, old_key) as gw:
        first = ensure_first_admin(gw)
        assert first is not None
        principal = gw.identity.authenticate_password(first.user, first.password)
        gw.objects.create_bucket(principal, first.org, "docs")
        gw.objects.put_object(principal, first.org, "docs", "a.txt", io.BytesIO(b"kept"))
        blobs_before = sorted(b.key for b in gw.backends["local"].list("blobs/"))

    with open_gateway(tmp_path, new_key, [old_key]) as gw:
        assert rotate_master(gw) == 2  # one org identity, one access key secret
        assert rotate_master(gw) == 0  # idempotent

    Path(old_key).unlink()  # the old key is gone: everything must open with the new one
    with open_gateway(tmp_path, new_key) as gw:
        principal = gw.identity.authenticate_password(first.user, first.password)
        body = gw.objects.get_object(principal, first.org, "docs", "a.txt").body
        assert b"".join(body) == b"kept"
        key = gw.catalog.get_access_key(first.access_key_id)
        assert key is not None
        assert access_key_secret(gw.keyring, key) == first.secret_access_key
        assert sorted(b.key for b in gw.backends["local"].list("blobs/")) == blobs_before
        wrapped = b"".join(gw.backends["local"].get(f"keys/org-{key.org_id}.identity.wrapped"))
        assert gw.keyring.unwrap(wrapped, context=b"org-identity").startswith(b"AGE-SECRET-KEY-1")


def test_export_writes_an_identity_that_opens_the_org_blobs(tmp_path: Path) -> None:
    with open_gateway(tmp_path, str(tmp_path / "master.key")) as gw:
        first = ensure_first_admin(gw)
        assert first is not None
        principal = gw.identity.authenticate_password(first.user, first.password)
        gw.objects.create_bucket(principal, first.org, "docs")
        gw.objects.put_object(principal, first.org, "docs", "b.txt", io.BytesIO(b"exported"))
        out = io.StringIO()
        export_org_identity(gw, first.org, out)
        identities = sealing.parse_identity_file(out.getvalue())
        record = gw.objects.head_object(principal, first.org, "docs", "b.txt").record
        segment = record.segments[0]
        sealed = b"".join(gw.backends[segment.blob.backend].get(segment.blob.key))
        assert b"".join(sealing.unseal(io.BytesIO(sealed), identities)) == b"exported"
        entries = gw.catalog.audit_entries()
        assert any(e.action == "keys.export" for e in entries)
        assert all(identities[0] not in str(e.details) for e in entries)
    with (
        open_gateway(tmp_path, str(tmp_path / "master.key")) as gw,
        pytest.raises(NotFound, match="no-such-org"),
    ):
        export_org_identity(gw, "no-such-org", io.StringIO())
