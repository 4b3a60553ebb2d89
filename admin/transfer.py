"""Uploads and downloads of ``coolstorage client``: parallel, resumable, verified.

**Uploads** (:func:`put`) of a file or a folder. Before sending anything the destination is
listed once (a page per thousand objects) and compared with the local files: a file the
server holds with the same size and SHA-256 is skipped. A local journal (one JSON line per
event, in ``~/.config/coolstorage/journal/``) records every file stored and every multipart
session started, so a run interrupted by anything, even SIGKILL, resumes where it stopped:
files the journal knows (same size and modification time) are skipped without hashing them
again, and a large file's session goes on from the parts the server says it received. The
journal is removed once everything is stored.

Files below ``multipart_threshold`` go in one streamed PUT; larger ones as a multipart
session of ``part_size`` parts. Each file's SHA-256 is computed while it is sent and
compared with what the server stored (for multipart objects, the SHA-256 of the part
digests with ``-N``, as the server computes it).

**Downloads** (:func:`get`) stream into a temporary file renamed when complete, checking
the SHA-256 the server announces. With an identity (vault buckets), the sealed segments are
fetched and decrypted here (:func:`gateway.sealing.unseal`), each checked against the
header MAC and plaintext digest the catalog recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from os.path import commonpath
from pathlib import Path
from typing import Any

from admin.client import ApiClient, ClientError, state_dir
from admin.progress import Progress

#: Files of this size and more go as multipart sessions.
DEFAULT_MULTIPART_THRESHOLD = 64 << 20
DEFAULT_PART_SIZE = 16 << 20
MIN_PART_SIZE = 5 << 20
_CHUNK = 256 << 10


class Throttle:
    """A shared bandwidth limit (bytes per second; 0: none) for all transfer threads."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def consume(self, nbytes: int) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + nbytes / self.rate
            delay = start - now
        if delay > 0:
            time.sleep(delay)

    @property
    def chunk(self) -> int:
        if self.rate <= 0:
            return _CHUNK
        return int(min(_CHUNK, max(4096, self.rate / 10)))


# -- the journal -------------------------------------------------------------------------------


class Journal:
    """Append-only record of a transfer's progress (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                kind, name = entry.get("t"), entry.get("path")
                if not isinstance(name, str):
                    continue
                if kind == "done":
                    self.done[name] = entry
                    self.uploads.pop(name, None)
                elif kind == "upload":
                    self.uploads[name] = entry
                elif kind == "upload-end":
                    self.uploads.pop(name, None)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        os.chmod(path, 0o600)

    def _write(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._file.flush()

    def record_done(self, name: str, size: int, mtime_ns: int, sha256: str) -> None:
        self.done[name] = {"t": "done", "path": name, "size": size, "mtime_ns": mtime_ns, "sha256": sha256}
        self._write(self.done[name])

    def record_upload(self, name: str, upload_id: str, part_size: int, size: int, mtime_ns: int) -> None:
        entry = {"t": "upload", "path": name, "upload_id": upload_id, "part_size": part_size,
                 "size": size, "mtime_ns": mtime_ns}
        self.uploads[name] = entry
        self._write(entry)

    def end_upload(self, name: str) -> None:
        self.uploads.pop(name, None)
        self._write({"t": "upload-end", "path": name})

    def close(self, *, remove: bool = False) -> None:
        with self._lock:
            self._file.close()
        if remove:
            self.path.unlink(missing_ok=True)


def journal_path(url: str, org: str, bucket: str, prefix: str, source: Path) -> Path:
    ident = json.dumps([url, org, bucket, prefix, str(source.resolve())])
    return state_dir() / f"put-{hashlib.sha256(ident.encode()).hexdigest()[:24]}.jsonl"


# -- digests -----------------------------------------------------------------------------------


def file_digest(path: Path, size: int, *, threshold: int, part_size: int,
                start: int = 0, length: int | None = None) -> str:
    """The SHA-256 the server records for this file uploaded as :func:`put` uploads it."""
    if size < threshold:
        return _range_sha256(path, 0, size)
    digests = []
    for offset in range(0, size, part_size):
        digests.append(_range_sha256(path, offset, min(part_size, size - offset)))
    return _multipart_sha256(digests)


def _multipart_sha256(digests: list[str]) -> str:
    joined = b"".join(bytes.fromhex(d) for d in digests)
    return f"{hashlib.sha256(joined).hexdigest()}-{len(digests)}"


def _range_sha256(path: Path, offset: int, length: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.seek(offset)
        remaining = length
        while remaining:
            data = handle.read(min(1 << 20, remaining))
            if not data:
                break
            digest.update(data)
            remaining -= len(data)
    return digest.hexdigest()


def _body(path: Path, offset: int, length: int, hasher: Any, progress: Progress,
          throttle: Throttle) -> Iterator[bytes]:
    """The bytes ``[offset, offset+length)`` of a file, hashed and counted as sent."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        remaining = length
        while remaining:
            data = handle.read(min(throttle.chunk, remaining))
            if not data:
                raise ClientError(f"{path} became shorter while it was being sent")
            remaining -= len(data)
            hasher.update(data)
            throttle.consume(len(data))
            yield data
            progress.add(len(data))


# -- uploads -----------------------------------------------------------------------------------


@dataclass
class _LocalFile:
    name: str  # the path relative to the source ("" for a single file)
    path: Path
    key: str
    size: int
    mtime_ns: int


@dataclass
class PutReport:
    """What :func:`put` did."""

    uploaded: int = 0
    uploaded_bytes: int = 0
    skipped: int = 0
    resumed_parts: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def _local_files(source: Path, prefix: str) -> list[_LocalFile]:
    if source.is_file():
        key = prefix if prefix and not prefix.endswith("/") else prefix + source.name
        st = source.stat()
        return [_LocalFile("", source, key, st.st_size, st.st_mtime_ns)]
    if not source.is_dir():
        raise ClientError(f"{source}: no such file or folder")
    base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    found: list[_LocalFile] = []
    for root, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(source).as_posix()
            st = path.stat()
            found.append(_LocalFile(rel, path, base + rel, st.st_size, st.st_mtime_ns))
    return found


def put(
    client: ApiClient,
    source: Path,
    org: str,
    bucket: str,
    prefix: str,
    *,
    jobs: int = 4,
    bwlimit: float = 0,
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
    part_size: int = DEFAULT_PART_SIZE,
    progress_stream: Any = None,
    show_progress: bool = True,
    log: Callable[[str], None] = lambda _line: None,
) -> PutReport:
    """Upload ``source`` (a file or folder) under ``prefix`` of ``org/bucket`` (see the
    module docstring)."""
    if part_size < MIN_PART_SIZE:
        raise ClientError(f"a part is at least {MIN_PART_SIZE} bytes")
    multipart_threshold = max(multipart_threshold, part_size)
    files = _local_files(source, prefix)
    journal = Journal(journal_path(client.url, org, bucket, prefix, source))
    report = PutReport()
    try:
        remote = _remote_index(client, org, bucket, files)
        todo: list[_LocalFile] = []
        for item in files:
            if _already_stored(item, remote, journal, multipart_threshold, part_size):
                report.skipped += 1
            else:
                todo.append(item)
        if report.skipped:
            log(f"{report.skipped} files already stored unchanged: skipped")
        progress = Progress(
            sum(f.size for f in todo), files=len(todo), stream=progress_stream,
            enabled=show_progress and bool(todo), label="upload",
        )
        throttle = Throttle(bwlimit)
        lock = threading.Lock()

        def send(item: _LocalFile) -> None:
            try:
                if item.size >= multipart_threshold:
                    resumed = _multipart(client, org, bucket, item, journal, part_size,
                                         progress, throttle)
                    with lock:
                        report.resumed_parts += resumed
                else:
                    _single(client, org, bucket, item, journal, progress, throttle)
            except ClientError as error:
                with lock:
                    report.failed.append((item.key, str(error)))
                if error.status in (401, 403) and error.code != "QuotaExceeded":
                    raise
                return
            with lock:
                report.uploaded += 1
                report.uploaded_bytes += item.size
            progress.file_done()

        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="put") as pool:
            futures = [pool.submit(send, item) for item in todo]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in finished:
                error = future.exception()
                if error is not None:
                    for other in futures:
                        other.cancel()
                    raise error
        progress.finish()
    finally:
        complete = not report.failed and report.uploaded + report.skipped == len(files)
        journal.close(remove=complete)
    return report


def _remote_index(
    client: ApiClient, org: str, bucket: str, files: list[_LocalFile]
) -> dict[str, tuple[int, str]]:
    """``key -> (size, sha256)`` of what the destination holds: one listing of the files'
    common prefix, or for a few files a metadata call each (the prefix may hold far more)."""
    if not files:
        return {}
    keys = [f.key for f in files]
    if len(files) <= 16:
        few: dict[str, tuple[int, str]] = {}
        for key in keys:
            try:
                info = client.metadata(org, bucket, key)
            except ClientError as error:
                if error.status == 404:
                    continue
                raise
            few[key] = (int(info["size"]), str(info["sha256"]))
        return few
    common = commonpath(keys)
    if len(files) == 1:
        common = keys[0]
    found: dict[str, tuple[int, str]] = {}
    wanted = set(keys)
    for page in client.list_objects(org, bucket, prefix=common):
        for entry in page["objects"]:
            if entry["key"] in wanted:
                found[entry["key"]] = (int(entry["size"]), str(entry["sha256"]))
    return found


def _already_stored(
    item: _LocalFile,
    remote: dict[str, tuple[int, str]],
    journal: Journal,
    threshold: int,
    part_size: int,
) -> bool:
    there = remote.get(item.key)
    if there is None or there[0] != item.size:
        return False
    known = journal.done.get(item.name)
    if (
        known is not None
        and known.get("size") == item.size
        and known.get("mtime_ns") == item.mtime_ns
        and known.get("sha256") == there[1]
    ):
        return True
    local = file_digest(item.path, item.size, threshold=threshold, part_size=part_size)
    if local != there[1]:
        return False
    journal.record_done(item.name, item.size, item.mtime_ns, local)
    return True


def _single(client: ApiClient, org: str, bucket: str, item: _LocalFile, journal: Journal,
            progress: Progress, throttle: Throttle) -> None:
    hasher = hashlib.sha256()
    info = client.put_object(
        org, bucket, item.key, _body(item.path, 0, item.size, hasher, progress, throttle),
        size=item.size,
    )
    local = hasher.hexdigest()
    if info.get("sha256") != local:
        raise ClientError(f"{item.key}: the server stored a different SHA-256 than was sent")
    journal.record_done(item.name, item.size, item.mtime_ns, local)


def _multipart(client: ApiClient, org: str, bucket: str, item: _LocalFile, journal: Journal,
               part_size: int, progress: Progress, throttle: Throttle) -> int:
    """Send a large file as a session (going on with a journaled one); parts reused."""
    received: dict[int, dict[str, Any]] = {}
    upload_id = None
    known = journal.uploads.get(item.name)
    if (
        known is not None
        and known.get("size") == item.size
        and known.get("mtime_ns") == item.mtime_ns
        and known.get("part_size") == part_size
    ):
        try:
            session = client.get_upload(str(known["upload_id"]))
            if session.get("key") == item.key:
                upload_id = session["upload_id"]
                received = {int(p["part_number"]): p for p in session["parts"]}
        except ClientError as error:
            if error.status != 404:
                raise
    if upload_id is None:
        session = client.create_upload(org, bucket, item.key, content_type="application/octet-stream")
        upload_id = str(session["upload_id"])
        journal.record_upload(item.name, upload_id, part_size, item.size, item.mtime_ns)
    digests: list[str] = []
    reused = 0
    for number, offset in enumerate(range(0, item.size, part_size), 1):
        length = min(part_size, item.size - offset)
        have = received.get(number)
        if have is not None and int(have["size"]) == length:
            local = _range_sha256(item.path, offset, length)
            if local == have["sha256"]:
                digests.append(local)
                progress.add(length)
                reused += 1
                continue
        hasher = hashlib.sha256()
        part = client.upload_part(
            upload_id, number, _body(item.path, offset, length, hasher, progress, throttle),
            size=length,
        )
        if part.get("sha256") != hasher.hexdigest():
            raise ClientError(f"{item.key} part {number}: the server stored a different SHA-256")
        digests.append(hasher.hexdigest())
    info = client.complete_upload(upload_id)
    expected = _multipart_sha256(digests)
    if info.get("sha256") != expected:
        raise ClientError(f"{item.key}: the stored object's digest differs from the file's")
    journal.record_done(item.name, item.size, item.mtime_ns, expected)
    journal.end_upload(item.name)
    return reused


# -- downloads ---------------------------------------------------------------------------------


@dataclass
class GetReport:
    downloaded: int = 0
    bytes: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def _target(local: Path, key: str, *, many: bool) -> Path:
    name = key.rstrip("/").rsplit("/", 1)[-1]
    if many or local.is_dir() or str(local).endswith(os.sep):
        return local / name
    return local


def get(
    client: ApiClient,
    org: str,
    bucket: str,
    key: str,
    local: Path,
    *,
    identities: list[str] | None = None,
    progress_stream: Any = None,
    show_progress: bool = True,
) -> GetReport:
    """Download an object (or, for a key ending in ``/``, every object under it) to
    ``local``; with ``identities``, decrypt the sealed segments here."""
    report = GetReport()
    if key.endswith("/") or not key:
        entries = [
            (e["key"], int(e["size"]))
            for page in client.list_objects(org, bucket, prefix=key)
            for e in page["objects"]
        ]
        local.mkdir(parents=True, exist_ok=True)
        plan = [(k, size, local / k[len(key):]) for k, size in entries]
    else:
        size = int(client.metadata(org, bucket, key)["size"])
        plan = [(key, size, _target(local, key, many=False))]
    progress = Progress(sum(s for _, s, _ in plan), files=len(plan), stream=progress_stream,
                        enabled=show_progress, label="download")
    for name, size, path in plan:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if identities:
                _get_sealed(client, org, bucket, name, path, identities, progress)
            else:
                _get_plain(client, org, bucket, name, path, progress)
        except ClientError as error:
            report.failed.append((name, str(error)))
            if len(plan) == 1 or error.status == 401:
                raise
            continue
        report.downloaded += 1
        report.bytes += size
        progress.file_done()
    progress.finish()
    return report


def _get_plain(client: ApiClient, org: str, bucket: str, key: str, path: Path,
               progress: Progress) -> None:
    partial = path.with_name(path.name + ".part")
    digest = hashlib.sha256()

    def count(n: int) -> None:
        progress.add(n)

    with open(partial, "wb") as out:
        class _Hashing:
            def write(self, data: bytes) -> None:
                digest.update(data)
                out.write(data)

        headers = client.download(org, bucket, key, _Hashing(), progress=count)  # type: ignore[arg-type]
    announced = headers.get("x-checksum-sha256", "")
    if announced and "-" not in announced and announced != digest.hexdigest():
        partial.unlink(missing_ok=True)
        raise ClientError(f"{key}: the download does not match the stored SHA-256")
    os.replace(partial, path)


def _get_sealed(client: ApiClient, org: str, bucket: str, key: str, path: Path,
                identities: list[str], progress: Progress) -> None:
    from gateway.sealing import SealedDataError, unseal
    from gateway.streams import IteratorReader

    manifest = client.sealed_manifest(org, bucket, key)
    partial = path.with_name(path.name + ".part")
    try:
        with open(partial, "wb") as out:
            for segment in manifest["segments"]:
                digest = hashlib.sha256()
                with client.stream(segment["url"]) as reply:
                    reader = IteratorReader(reply.iter_bytes(1 << 20))
                    try:
                        for chunk in unseal(
                            reader,
                            identities,
                            expected_header_mac=base64.b64decode(segment["header_mac"]),
                            name=f"{key} part {segment['part_number']}",
                        ):
                            digest.update(chunk)
                            out.write(chunk)
                            progress.add(len(chunk))
                    except SealedDataError as error:
                        raise ClientError(f"{key}: cannot decrypt: {error}") from None
                if digest.hexdigest() != segment["sha256"]:
                    raise ClientError(
                        f"{key} part {segment['part_number']}: the plaintext does not match "
                        "its recorded SHA-256"
                    )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
