"""A Python client of the core API (what ``coolstorage client`` is built on).

:class:`ApiClient` wraps one ``httpx.Client`` (thread-safe: the parallel uploads share it)
and turns error answers into :class:`ClientError`, whose message says what to do: log in
again after an expired token, ask an org admin for a missing right, restore a cold object
first, use ``--identity`` for a vault object.

Login state lives in the user's config directory (``~/.config/coolstorage/client.json``, or
``$XDG_CONFIG_HOME/coolstorage``, or the file ``$COOLSTORAGE_CLIENT_CONFIG``), written with
mode 600: the server URL, the user name, the bearer token and its expiry.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

#: Environment variable naming the client's state file (tests, several logins).
CONFIG_ENV = "COOLSTORAGE_CLIENT_CONFIG"


class ClientError(Exception):
    """An API call failed; ``str()`` is a sentence for the user."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotLoggedIn(ClientError):
    """No usable login is stored."""


def config_path() -> Path:
    """Where the client keeps its login (see the module docstring)."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "coolstorage" / "client.json"


def state_dir() -> Path:
    """Where resumable transfers keep their journals (beside the login)."""
    return config_path().parent / "journal"


@dataclass
class Login:
    """What ``coolstorage client login`` stores."""

    url: str
    user: str
    token: str
    expires_at: str
    ca_file: str | None = None
    insecure: bool = False

    def expired(self, now: datetime | None = None) -> bool:
        try:
            at = datetime.fromisoformat(self.expires_at.replace("Z", "+00:00"))
        except ValueError:
            return False
        return at <= (now or datetime.now(UTC))


def save_login(login: Login, path: Path | None = None) -> Path:
    """Write the login with mode 600 (atomically: a new file renamed over the old)."""
    target = path or config_path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".client-", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(login.__dict__, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(target, 0o600)
    return target


def load_login(path: Path | None = None) -> Login:
    """The stored login; :class:`NotLoggedIn` without one."""
    source = path or config_path()
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        return Login(**{k: data[k] for k in Login.__dataclass_fields__ if k in data})
    except FileNotFoundError:
        raise NotLoggedIn(
            "not logged in: run `coolstorage client login --url URL` first"
        ) from None
    except (ValueError, TypeError) as error:
        raise NotLoggedIn(f"the login in {source} is unreadable ({error}): log in again") from None


def forget_login(path: Path | None = None) -> None:
    (path or config_path()).unlink(missing_ok=True)


def _explain(status: int, code: str, message: str, what: str) -> str:
    """A user-facing sentence for an error answer."""
    if status == 401 and code == "InvalidToken":
        return (
            "your login has expired or was revoked: run `coolstorage client login` again"
        )
    if status == 401:
        return f"not authenticated: {message}"
    if status == 429:
        return f"too many failed logins: {message}"
    if code == "InvalidObjectState":
        return (
            f"{what or 'the object'} is in cold storage ({message}); restore it first: "
            f"`coolstorage client restore {what or 'ORG/BUCKET/KEY'} --priority Bulk`"
        )
    if code == "VaultSealed":
        return (
            f"{message}; it is in a vault bucket: download it with "
            "`coolstorage client get --identity FILE` (your age identity)"
        )
    if code == "RestoreAlreadyInProgress":
        return f"{message}; follow it with `coolstorage client status`"
    if code == "AccessDenied":
        return f"access denied: {message} (ask an admin of the org for the right)"
    return message or f"HTTP {status}"


class ApiClient:
    """Calls of ``/api/v1`` with a bearer token (or Basic credentials)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        timeout: float = 120.0,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "coolstorage-client/1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: Any = False if insecure else (ca_file or True)
        self.http = httpx.Client(
            base_url=self.url + "/api/v1",
            headers=headers,
            auth=basic,
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=15.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    @classmethod
    def from_login(cls, login: Login, **options: Any) -> ApiClient:
        if login.expired():
            raise NotLoggedIn(
                "your login has expired: run `coolstorage client login` again"
            )
        return cls(login.url, token=login.token, ca_file=login.ca_file, insecure=login.insecure,
                   **options)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------
    def _check(self, reply: httpx.Response, what: str = "") -> httpx.Response:
        if reply.status_code < 400:
            return reply
        code, message = "", ""
        try:
            if not reply.is_stream_consumed:
                reply.read()
            body = reply.json()
            code, message = str(body.get("error", "")), str(body.get("message", ""))
        except (ValueError, httpx.HTTPError, AttributeError):
            message = reply.text[:200] if reply.is_stream_consumed else ""
        raise ClientError(_explain(reply.status_code, code, message, what),
                          status=reply.status_code, code=code)

    def call(self, method: str, path: str, *, what: str = "", **kwargs: Any) -> Any:
        """One JSON call; the decoded body (None for 204)."""
        try:
            reply = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ClientError(f"cannot reach {self.url}: {error}") from None
        self._check(reply, what)
        return None if reply.status_code == 204 or not reply.content else reply.json()

    # -- auth ----------------------------------------------------------------------------------
    def login(self, username: str, password: str, *, ttl: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"username": username, "password": password}
        if ttl is not None:
            body["ttl_seconds"] = ttl
        result: dict[str, Any] = self.call("POST", "/auth/token", json=body)
        return result

    def logout(self) -> None:
        self.call("DELETE", "/auth/token")

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "/me")
        return result

    # -- objects -------------------------------------------------------------------------------
    @staticmethod
    def object_path(org: str, bucket: str, key: str, kind: str = "objects") -> str:
        return f"/{kind}/{quote(org, safe='')}/{quote(bucket, safe='')}/{quote(key, safe='/')}"

    def list_objects(
        self, org: str, bucket: str, *, prefix: str = "", delimiter: str | None = None,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Every page of a listing (the cursor followed)."""
        params: dict[str, Any] = {"org": org, "bucket": bucket, "prefix": prefix, "limit": 1000}
        if delimiter:
            params["delimiter"] = delimiter
        params.update({k: v for k, v in filters.items() if v is not None})
        while True:
            page: dict[str, Any] = self.call("GET", "/objects", params=params,
                                             what=f"{org}/{bucket}")
            yield page
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def metadata(self, org: str, bucket: str, key: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "GET", self.object_path(org, bucket, key, "metadata"), what=f"{org}/{bucket}/{key}"
        )
        return result

    def put_object(
        self, org: str, bucket: str, key: str, body: Any, *, size: int,
        content_type: str = "application/octet-stream",
    ) -> dict[str, Any]:
        """Upload ``body`` (bytes or an iterator of bytes) of ``size`` bytes."""
        result: dict[str, Any] = self.call(
            "PUT", self.object_path(org, bucket, key), content=body,
            headers={"Content-Length": str(size), "Content-Type": content_type},
            what=f"{org}/{bucket}/{key}",
        )
        return result

    def download(
        self, org: str, bucket: str, key: str, out: BinaryIO, *,
        progress: Callable[[int], None] | None = None,
    ) -> httpx.Headers:
        """Stream an object into ``out``; the reply's headers."""
        what = f"{org}/{bucket}/{key}"
        try:
            with self.http.stream("GET", self.object_path(org, bucket, key)) as reply:
                self._check(reply, what)
                for chunk in reply.iter_bytes(1 << 20):
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
                return reply.headers
        except httpx.HTTPError as error:
            raise ClientError(f"download of {what} failed: {error}") from None

    def sealed_manifest(self, org: str, bucket: str, key: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "GET", self.object_path(org, bucket, key, "sealed"), what=f"{org}/{bucket}/{key}"
        )
        return result

    def stream(self, url: str) -> Any:
        """A streamed GET of an absolute API path (``/api/v1/...``), as a context manager
        whose reply has been checked."""
        client = self

        class _Stream:
            def __enter__(self) -> httpx.Response:
                path = url[len("/api/v1"):] if url.startswith("/api/v1") else url
                self.cm = client.http.stream("GET", path)
                reply = self.cm.__enter__()
                try:
                    client._check(reply)
                except BaseException:
                    self.cm.__exit__(None, None, None)
                    raise
                return reply

            def __exit__(self, *exc: Any) -> None:
                self.cm.__exit__(*exc)

        return _Stream()

    def delete_object(self, org: str, bucket: str, key: str) -> None:
        self.call("DELETE", self.object_path(org, bucket, key), what=f"{org}/{bucket}/{key}")

    def copy(self, org: str, bucket: str, key: str, dst_bucket: str, dst_key: str,
             *, dst_org: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/objects/copy", json={
            "org": org, "bucket": bucket, "key": key,
            "destination": {"org": dst_org or org, "bucket": dst_bucket, "key": dst_key},
        }, what=f"{org}/{bucket}/{key}")
        return result

    def move(self, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/objects/move", json=dict(body))
        return result

    def storage_mode(self, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/objects/storage-mode", json=dict(body))
        return result

    # -- uploads -------------------------------------------------------------------------------
    def create_upload(self, org: str, bucket: str, key: str, *, content_type: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/uploads", json={
            "org": org, "bucket": bucket, "key": key, "content_type": content_type,
        }, what=f"{org}/{bucket}/{key}")
        return result

    def get_upload(self, upload_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/uploads/{quote(upload_id, safe='')}")
        return result

    def upload_part(self, upload_id: str, number: int, body: Any, *, size: int) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "PUT", f"/uploads/{quote(upload_id, safe='')}/parts/{number}", content=body,
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        )
        return result

    def complete_upload(self, upload_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", f"/uploads/{quote(upload_id, safe='')}/complete")
        return result

    def abort_upload(self, upload_id: str) -> None:
        self.call("DELETE", f"/uploads/{quote(upload_id, safe='')}")

    # -- restores and usage --------------------------------------------------------------------
    def restore(self, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/restores", json=dict(body))
        return result

    def restore_status(self, restore_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/restores/{restore_id}")
        return result

    def restores(self, *, org: str | None = None, limit: int = 20) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if org:
            params["org"] = org
        result: dict[str, Any] = self.call("GET", "/restores", params=params)
        return result

    def usage(self, org: str, **params: Any) -> dict[str, Any]:
        query = {"org": org, **{k: v for k, v in params.items() if v is not None}}
        result: dict[str, Any] = self.call("GET", "/usage", params=query)
        return result
