"""Transitions: moving due objects from hot storage into the cold class.

One pass (:meth:`Tierer.run_pass`) walks the blobs still in a hot class, asks each object's
bucket policy whether it is due, and turns what is due into jobs:

- **pack**: objects of up to ``pack_threshold`` bytes (16 MiB by default) join their org's
  pack group (per backend, and per vault recipient, so a vault's index is sealed to its
  owner too), whether their segment waits in the staging table (objects up to
  ``small_object_threshold``) or in a hot blob of the bucket's backend (read back once,
  byte for byte); a group of about ``container_target_size`` bytes becomes one container
  written straight into the cold class;
- **join**: a multipart object with parts in a backend becomes one container of its parts;
- **single**: any other hot blob (an object above ``pack_threshold``) is copied to a new
  key in the cold class.

Why mid-size objects are packed too: each object copied cold on its own costs a COPY into
the cold class and, later, a restore request (0.05 and 0.025 USD per 1,000 for Deep
Archive, plus 40 KB of per-object overhead); for a typical backup corpus the files between
1 and 16 MiB alone made the total about 13% dearer than the floor (bench/tiering_cost.py).
Reading such a blob back once to pack it costs one STANDARD GET, a hundred times less.

Why a copy to a new key and not ``set_storage_class`` in place: in place, the bytes turn
cold before the catalog knows, so reads fail (and HEAD says STANDARD) until the commit,
and a crash in between leaves the catalog wrong. A copy leaves the hot blob readable
until the catalog switches to the cold one in one transaction; a crash leaves at most an
orphan the sweep removes (its intent is recorded first). On S3 both are one COPY request;
on localfs a copy is a hard link.

Every job follows the same steps, each safe to interrupt:

1. take the job's lease (``tier:pack:...``, ``tier:object:<id>``, ``tier:blob:<id>``,
   ``tier:container:<id>``), so two engines never do the same job; the engine renews held
   leases while the job runs, and a dead engine's lease expires after ``lease_ttl``;
2. record an intent for the new blob, write it (cold), verify it with a HEAD;
3. commit (:meth:`catalog.tiering.TieringQueries.commit_archive`): the new blob row, every
   member's segments repointed with their offsets, objects shown cold, garbage intents for
   the old blobs, the intent removed, all in one transaction;
4. delete the old blobs (staged rows, hot blobs); the sweep finishes this after a crash.

A crash before step 3 leaves the catalog as it was (the next pass does the job again with a
new key; the orphan is swept); after it, only garbage the sweep removes. Nothing is ever
lost or stored twice as live data.

Containers whose members were mostly deleted are rewritten (:meth:`Tierer.rewrite_pass`)
only once past the 180-day minimum (Deep Archive bills those days anyway) and below the
live share threshold: the engine asks for a Bulk copy of the old container, and once it is
readable writes a new container of the live members and repoints them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from catalog.records import Bucket, ObjectRecord, Org, Segment
from catalog.tiering import ArchiveMove, ContainerRecord, NewContainer
from gateway.errors import CoolStorageError, NotFound
from gateway.sealing import SegmentMetadata
from tiering.backends.base import COLD_CLASSES, STORAGE_CLASSES, Backend, Capability
from tiering.backends.staging import STAGING
from tiering.crashpoints import crash_point
from tiering.packing import CONTAINER_PREFIX, Member, verify_blob, write_container
from tiering.policy import Policy, PolicyResolver, parse_duration, policy_from_config

if TYPE_CHECKING:
    from catalog.api import Catalog
    from catalog.records import Intent
    from gateway.config import Config

log = logging.getLogger(__name__)

#: Storage classes the engine looks for blobs in.
HOT_CLASSES = tuple(sorted(STORAGE_CLASSES - COLD_CLASSES))
#: Where single blobs go when copied cold (the same naming as ObjectService's blobs).
BLOB_PREFIX = "blobs/"
#: Days a container rewrite's restored copy is asked for.
_REWRITE_COPY_DAYS = 2
_PAGE = 500


@dataclass(frozen=True)
class TieringSettings:
    """What the engine's tiering needs from the ``[tiering]`` config section."""

    policy: Policy = field(default_factory=Policy)
    container_target_size: int = 128 << 20
    #: Objects up to this many bytes are packed; larger ones are copied cold one by one.
    pack_threshold: int = 16 << 20
    join_multipart: bool = True
    storage_class: str = "DEEP_ARCHIVE"
    rewrite_live_share: float = 0.5
    rewrite_min_age: timedelta = timedelta(days=180)
    rewrite_restore_tier: str = "Bulk"
    lease_ttl: float = 120.0
    #: zstd level of container indexes.
    level: int = 3

    @classmethod
    def from_config(cls, config: Config) -> TieringSettings:
        t = config.tiering
        return cls(
            policy=policy_from_config(t),
            container_target_size=t.container_target_size,
            pack_threshold=t.pack_threshold,
            join_multipart=t.join_multipart,
            storage_class=t.storage_class,
            rewrite_live_share=t.rewrite_live_share,
            rewrite_min_age=timedelta(days=t.rewrite_min_age_days),
            rewrite_restore_tier=t.rewrite_restore_tier,
            lease_ttl=t.lease_ttl,
            level=config.sealing.level,
        )


@dataclass
class PassReport:
    """What one pass did (logged, returned by ``tier run --once``, checked by tests)."""

    packs: int = 0
    packed_members: int = 0
    joins: int = 0
    singles: int = 0
    archived_objects: int = 0
    bytes_written: int = 0
    rewrites: int = 0
    rewrite_restores: int = 0
    #: Jobs another engine held the lease of.
    skipped: int = 0
    #: Jobs that failed (logged; the next pass tries again).
    failures: int = 0

    def __str__(self) -> str:
        return (
            f"{self.archived_objects} objects archived: {self.packs} packs "
            f"({self.packed_members} members), {self.joins} joined multipart objects, "
            f"{self.singles} single blobs, {self.bytes_written} bytes written; "
            f"{self.rewrites} containers rewritten, {self.rewrite_restores} rewrite copies "
            f"asked for; {self.skipped} jobs left to other engines, {self.failures} failed"
        )


class Leases:
    """The job leases this process holds; :meth:`renew_all` is the engine's heartbeat."""

    def __init__(self, catalog: Catalog, owner: str, ttl: float) -> None:
        self.catalog = catalog
        self.owner = owner
        self.ttl = ttl
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def acquire(self, name: str) -> bool:
        if not self.catalog.acquire_lease(name, self.owner, self.ttl):
            return False
        with self._lock:
            self._held.add(name)
        return True

    def release(self, name: str) -> None:
        with self._lock:
            self._held.discard(name)
        try:
            self.catalog.release_lease(name, self.owner)
        except CoolStorageError as error:
            log.warning("could not release lease %s (it expires by itself): %s", name, error)

    def release_all(self) -> None:
        with self._lock:
            names = sorted(self._held)
        for name in names:
            self.release(name)

    def renew_all(self) -> None:
        """Extend every held lease by ``ttl`` (called every ``ttl / 3`` while jobs run)."""
        with self._lock:
            names = sorted(self._held)
        for name in names:
            if not self.catalog.acquire_lease(name, self.owner, self.ttl):
                log.warning("lost lease %s to another engine", name)

    @property
    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._held)

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """Hold ``name`` for a block; yields False (and holds nothing) if it is taken."""
        if not self.acquire(name):
            yield False
            return
        try:
            yield True
        finally:
            self.release(name)


@dataclass
class _PackGroup:
    """Staged members waiting to fill a container: one org, backend and recipient set."""

    lease: str
    org_id: int
    backend: str
    vault_recipient: str | None
    members: list[Member] = field(default_factory=list)
    blob_ids: set[int] = field(default_factory=set)
    size: int = 0
    #: False when another engine packs this group: its members are left alone.
    ours: bool = True


class Tierer:
    """Runs transition passes over a catalog and its backends (blocking; the engine calls
    it in a worker thread)."""

    def __init__(
        self,
        catalog: Catalog,
        backends: Mapping[str, Backend],
        settings: TieringSettings,
        *,
        owner: str,
        clock: Callable[[], datetime] | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.catalog = catalog
        self.backends = backends
        self.settings = settings
        self.owner = owner
        self.clock = clock or (lambda: datetime.now(UTC))
        self.leases = leases or Leases(catalog, owner, settings.lease_ttl)
        self._warned: set[str] = set()

    # -- passes ----------------------------------------------------------------------------
    def run_pass(
        self,
        *,
        ignore_age: bool = False,
        bucket_id: int | None = None,
        prefix: str = "",
        rewrite: bool = True,
        stop: threading.Event | None = None,
    ) -> PassReport:
        """Archive everything due now (``ignore_age``: everything the policies allow,
        whatever its age), optionally only in one bucket under ``prefix``; then rewrite
        containers that qualify (unless ``rewrite`` is False or a bucket is named).

        ``stop``, once set, ends the pass after the job at hand (the engine is stopping).
        """
        report = PassReport()
        now = self.clock()
        resolver = PolicyResolver(self.catalog, self.settings.policy)
        horizon = None if ignore_age else now - timedelta(seconds=self._shortest_staging())
        groups: dict[tuple[int, str, str | None], _PackGroup] = {}
        seen: set[int] = set()
        after = 0
        try:
            while True:
                records, next_after = self.catalog.hot_objects(
                    hot_classes=HOT_CLASSES,
                    after_blob_id=after,
                    limit=_PAGE,
                    created_before=horizon,
                    cold_classes=tuple(COLD_CLASSES),
                )
                for record in records:
                    if stop is not None and stop.is_set():
                        break
                    if record.id in seen:
                        continue
                    seen.add(record.id)
                    if bucket_id is not None and record.bucket_id != bucket_id:
                        continue
                    if prefix and not record.key.startswith(prefix):
                        continue
                    bucket = self.catalog.get_bucket_by_id(record.bucket_id)
                    if bucket is None or not self._can_archive(bucket.backend):
                        continue
                    asked_cold = record.storage_class in COLD_CLASSES
                    policy = resolver.for_bucket(bucket)
                    if asked_cold or policy.is_due(record, now, ignore_age=ignore_age):
                        self._plan(record, bucket, groups, report)
                if next_after is None or (stop is not None and stop.is_set()):
                    break
                after = next_after
            for group in groups.values():
                if group.members:
                    self._guard(report, self._flush, group, report)
        finally:
            for group in groups.values():
                if group.ours:
                    self.leases.release(group.lease)
        if rewrite and bucket_id is None and not (stop is not None and stop.is_set()):
            self.rewrite_pass(report, stop=stop)
        if report.archived_objects or report.rewrites or report.failures:
            log.info("tiering pass: %s", report)
        return report

    def _shortest_staging(self) -> float:
        """The shortest ``transition_after`` any policy sets: younger objects cannot be due,
        so a pass skips them without reading their segments."""
        shortest = self.settings.policy.transition_after
        for row in self.catalog.tiering_policies():
            value = row.rules.get("transition_after")
            if value is not None:
                try:
                    shortest = min(shortest, parse_duration(value))
                except CoolStorageError:
                    continue
        return shortest

    def _can_archive(self, backend_name: str) -> bool:
        backend = self.backends.get(backend_name)
        ok = backend is not None and Capability.STORAGE_CLASSES in backend.capabilities
        if not ok and backend_name not in self._warned:
            self._warned.add(backend_name)
            log.warning(
                "backend %s has no storage classes; its buckets stay hot", backend_name
            )
        return ok

    def _guard(self, report: PassReport, job: Callable[..., None], *args: object) -> None:
        """Run one job; a failure is logged and counted, and the pass goes on."""
        try:
            job(*args)
        except CoolStorageError as error:
            report.failures += 1
            log.warning("tiering job failed, will retry next pass: %s", error)
        except Exception:
            report.failures += 1
            log.exception("tiering job failed unexpectedly, will retry next pass")

    def _plan(
        self,
        record: ObjectRecord,
        bucket: Bucket,
        groups: dict[tuple[int, str, str | None], _PackGroup],
        report: PassReport,
    ) -> None:
        hot = [s for s in record.segments if s.blob.storage_class not in COLD_CLASSES]
        if not hot:
            return
        staged = [s for s in hot if s.blob.backend == STAGING]
        large = [s for s in hot if s.blob.backend != STAGING]
        if large and len(record.segments) > 1 and self.settings.join_multipart:
            self._guard(report, self._join, record, bucket, hot, report)
            return
        if large and len(record.segments) == 1 and record.size <= self.settings.pack_threshold:
            # A mid-size object: packed from its hot blob like a staged one.
            staged, large = staged + large, []
        for segment in large:
            self._guard(report, self._single, record, bucket, segment, report)
        if not staged:
            return
        group = self._group(groups, bucket, report)
        if not group.ours:
            return
        org = self._org(bucket.org_id)
        for segment in staged:
            if segment.blob.id in group.blob_ids:
                continue  # a copy sharing the staged blob: one member serves both
            group.blob_ids.add(segment.blob.id)
            group.members.append(
                Member(
                    blob=segment.blob,
                    offset=segment.blob_offset,
                    segment=segment,
                    metadata=_metadata(org, bucket, record, segment),
                )
            )
            group.size += segment.sealed_size
        if group.size >= self.settings.container_target_size:
            self._guard(report, self._flush, group, report)

    def _group(
        self,
        groups: dict[tuple[int, str, str | None], _PackGroup],
        bucket: Bucket,
        report: PassReport,
    ) -> _PackGroup:
        key = (bucket.org_id, bucket.backend, bucket.vault_recipient)
        group = groups.get(key)
        if group is None:
            vault = (
                hashlib.sha256(bucket.vault_recipient.encode()).hexdigest()[:16]
                if bucket.vault_recipient
                else "org"
            )
            lease = f"tier:pack:{bucket.org_id}:{bucket.backend}:{vault}"
            group = _PackGroup(lease, bucket.org_id, bucket.backend, bucket.vault_recipient)
            group.ours = self.leases.acquire(lease)
            if not group.ours:
                report.skipped += 1  # the whole group: another engine is packing it
            groups[key] = group
        return group

    def _org(self, org_id: int) -> Org:
        org = self.catalog.get_org_by_id(org_id)
        if org is None:
            raise NotFound(f"org {org_id}")
        return org

    def _source(self, blob_backend: str) -> Backend:
        return self.backends[blob_backend]

    # -- jobs ------------------------------------------------------------------------------
    def _flush(self, group: _PackGroup, report: PassReport) -> None:
        """Pack the group's members into one container."""
        members, group.members, group.blob_ids, group.size = group.members, [], set(), 0
        org = self._org(group.org_id)
        recipients = [org.recipient] + ([group.vault_recipient] if group.vault_recipient else [])
        result = self._write_and_commit(
            org,
            group.backend,
            members,
            recipients,
            kind="pack",
            bucket_name="",
            crash="pack",
        )
        report.packs += 1
        report.packed_members += len(members)
        report.archived_objects += result[0]
        report.bytes_written += result[1]

    def _join(
        self, record: ObjectRecord, bucket: Bucket, hot: list[Segment], report: PassReport
    ) -> None:
        """Join a multipart object's hot parts into one container."""
        with self.leases.hold(f"tier:object:{record.id}") as held:
            if not held:
                report.skipped += 1
                return
            current = self.catalog.get_object(bucket.id, record.key)
            if current is None or current.id != record.id:
                return
            hot = [s for s in current.segments if s.blob.storage_class not in COLD_CLASSES]
            if not hot:
                return
            org = self._org(bucket.org_id)
            members = [
                Member(s.blob, s.blob_offset, s, _metadata(org, bucket, current, s)) for s in hot
            ]
            recipients = [org.recipient] + (
                [bucket.vault_recipient] if bucket.vault_recipient else []
            )
            archived, written = self._write_and_commit(
                org,
                bucket.backend,
                members,
                recipients,
                kind="join",
                bucket_name=bucket.name,
                crash="join",
            )
            report.joins += 1
            report.archived_objects += archived
            report.bytes_written += written

    def _write_and_commit(
        self,
        org: Org,
        backend_name: str,
        members: list[Member],
        recipients: list[str],
        *,
        kind: str,
        bucket_name: str,
        crash: str,
        from_cold: bool = False,
    ) -> tuple[int, int]:
        """Write a container of ``members`` and commit it; returns (objects archived,
        bytes written)."""
        backend = self.backends[backend_name]
        target = self.settings.storage_class
        key = f"{CONTAINER_PREFIX}{org.id}/{uuid.uuid4().hex}"
        intent = self.catalog.add_intent(backend.name, key)
        crash_point(f"{crash}:after-intent")
        try:
            result, written = write_container(
                backend,
                key,
                members,
                source=lambda blob: self._source(blob.backend),
                recipients=recipients,
                index_metadata=SegmentMetadata(org=org.name, bucket=bucket_name, key=key),
                storage_class=target,
                level=self.settings.level,
            )
        except BaseException:
            self._discard(backend, key, intent)
            raise
        crash_point(f"{crash}:after-put")
        moves = [
            ArchiveMove(member.blob.id, member.offset, placed.offset)
            for member, placed in zip(written, result.members, strict=True)
        ]
        archive = self.catalog.commit_archive(
            org_id=org.id,
            backend=backend.name,
            key=key,
            size=result.size,
            storage_class=target,
            moves=moves,
            intent_id=intent.id,
            container=NewContainer(
                kind=kind,
                member_count=len(result.members),
                members_bytes=result.index_offset,
                index_offset=result.index_offset,
                index_length=result.index_length,
                index_header_mac=result.index.header_mac,
            ),
            from_cold=from_cold,
            now=self.clock(),
        )
        crash_point(f"{crash}:after-commit")
        self._collect(archive.garbage)
        log.debug(
            "container written",
            extra={"key": key, "kind": kind, "members": len(members), "bytes": result.size},
        )
        return archive.archived_objects, result.size

    def _single(
        self, record: ObjectRecord, bucket: Bucket, segment: Segment, report: PassReport
    ) -> None:
        """Copy one hot blob to a new key in the cold class and switch the catalog to it."""
        blob = segment.blob
        with self.leases.hold(f"tier:blob:{blob.id}") as held:
            if not held:
                report.skipped += 1
                return
            current = self.catalog.get_object(bucket.id, record.key)
            if current is None or not any(
                s.blob.id == blob.id and s.blob.storage_class not in COLD_CLASSES
                for s in current.segments
            ):
                return
            backend = self.backends[blob.backend]
            target = self.settings.storage_class
            key = f"{BLOB_PREFIX}{blob.org_id}/{bucket.id}/{uuid.uuid4().hex}"
            intent = self.catalog.add_intent(backend.name, key)
            try:
                backend.copy(blob.key, key, storage_class=target)
                verify_blob(backend, key, size=blob.size, storage_class=target)
            except BaseException:
                self._discard(backend, key, intent)
                raise
            crash_point("single:after-copy")
            archive = self.catalog.commit_archive(
                org_id=blob.org_id,
                backend=backend.name,
                key=key,
                size=blob.size,
                storage_class=target,
                moves=[ArchiveMove(blob.id, offset, offset) for offset in _offsets(current, blob.id)],
                intent_id=intent.id,
                now=self.clock(),
            )
            crash_point("single:after-commit")
            self._collect(archive.garbage)
            report.singles += 1
            report.archived_objects += archive.archived_objects
            report.bytes_written += blob.size

    # -- container rewrites ----------------------------------------------------------------
    def rewrite_pass(
        self, report: PassReport | None = None, *, stop: threading.Event | None = None
    ) -> PassReport:
        """Rewrite containers past the minimum age whose live share is below the threshold:
        first ask for a copy of each (Bulk by default), then, on a later pass once it is
        readable, write the live members into a new container."""
        report = report or PassReport()
        now = self.clock()
        before = now - self.settings.rewrite_min_age
        after = 0
        while True:
            batch = self.catalog.containers_created_before(before, after_blob_id=after)
            if not batch:
                break
            after = batch[-1].blob.id
            for container in batch:
                if stop is not None and stop.is_set():
                    return report
                if container.live_bytes == 0 or (
                    container.live_share >= self.settings.rewrite_live_share
                ):
                    continue
                self._guard(report, self._rewrite, container, report)
        return report

    def _rewrite(self, container: ContainerRecord, report: PassReport) -> None:
        blob = container.blob
        backend = self.backends.get(blob.backend)
        if backend is None or Capability.RESTORE not in backend.capabilities:
            return
        with self.leases.hold(f"tier:container:{blob.id}") as held:
            if not held:
                report.skipped += 1
                return
            now = self.clock()
            restore = self.catalog.blob_restore(blob.id)
            if restore is not None and (restore.ongoing() or restore.readable_at(now)):
                return  # a client's copy is in use; it is never taken away before expiry
            if blob.storage_class in COLD_CLASSES:
                status = backend.restore_status(blob.key)
                if not status.readable:
                    if not status.ongoing:
                        backend.request_restore(
                            blob.key,
                            days=_REWRITE_COPY_DAYS,
                            tier=self.settings.rewrite_restore_tier,
                        )
                        self.catalog.mark_container_rewrite(blob.id, now)
                        report.rewrite_restores += 1
                    return
            live = self.catalog.container_live_members(blob.id)
            if not live:
                return
            org = self._org(container.blob.org_id)
            members = []
            for item in live:
                bucket = self.catalog.get_bucket_by_id(item.bucket_id)
                members.append(
                    Member(
                        blob=blob,
                        offset=item.segment.blob_offset,
                        segment=item.segment,
                        metadata=SegmentMetadata(
                            org=org.name,
                            bucket=bucket.name if bucket else "",
                            key=item.key,
                            part_number=item.segment.part_number,
                            content_type=item.content_type,
                            mtime=item.modified_at.timestamp(),
                        ),
                    )
                )
            vaults = set()
            for item in live:
                bucket = self.catalog.get_bucket_by_id(item.bucket_id)
                if bucket is not None and bucket.vault_recipient:
                    vaults.add(bucket.vault_recipient)
            recipients = [org.recipient, *sorted(vaults)]
            self._write_and_commit(
                org,
                blob.backend,
                members,
                recipients,
                kind="rewrite",
                bucket_name="",
                crash="rewrite",
                from_cold=True,
            )
            report.rewrites += 1

    # -- helpers ---------------------------------------------------------------------------
    def _discard(self, backend: Backend, key: str, intent: Intent) -> None:
        """Remove a blob the catalog never referenced; the sweep does it if this fails."""
        try:
            backend.delete(key)
            self.catalog.remove_intent(intent.id)
        except CoolStorageError as error:
            log.warning("could not remove unused blob %s; the sweep will: %s", key, error)

    def _collect(self, garbage: list[Intent]) -> None:
        """Delete blobs the commit left unreferenced (staged rows, hot copies)."""
        for intent in garbage:
            backend = self.backends.get(intent.backend)
            if backend is None:
                continue
            try:
                if self.catalog.forget_blob(intent.backend, intent.blob_key):
                    backend.delete(intent.blob_key)
                self.catalog.remove_intent(intent.id)
            except CoolStorageError as error:
                log.warning(
                    "could not delete %s after archiving; the sweep will: %s",
                    intent.blob_key,
                    error,
                )


def _offsets(record: ObjectRecord, blob_id: int) -> list[int]:
    return sorted({s.blob_offset for s in record.segments if s.blob.id == blob_id})


def _metadata(org: Org, bucket: Bucket, record: ObjectRecord, segment: Segment) -> SegmentMetadata:
    multipart = len(record.segments) > 1 or segment.part_number != 1
    return SegmentMetadata(
        org=org.name,
        bucket=bucket.name,
        key=record.key,
        part_number=segment.part_number if multipart else None,
        content_type=record.content_type,
        mtime=record.modified_at.timestamp(),
    )
