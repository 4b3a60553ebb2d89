"""Restore jobs of the core API (``POST /restores``, RetrieveObject).

A job is one request for an object or a folder prefix. It is planned from the catalog
alone (the objects, their states, the distinct cold blobs behind them) and quoted with the
cost model at the bucket region's prices, counting each blob once however many objects
share it (a container of small files is restored once). With ``dry_run`` nothing else
happens. Otherwise the quote is checked against what is left of the org's monthly restore
budget, the job is recorded, and each archived object is handed to
:meth:`gateway.objects.ObjectService.request_restore`, which quotes, charges and starts
the restore of its blobs (objects whose blob is already on its way collapse onto that
restore). Progress is read back from the objects' states when asked.

A job whose destination is another bucket is finished by :class:`CopyWorker`: once an
object is readable, it is copied (re-sealed, as a new hot object) under the destination
prefix, as the user who asked. Vault objects can only be downloaded: the gateway cannot
read them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from admin.service import iso, object_url
from catalog.admin import (
    ITEM_COPIED,
    ITEM_FAILED,
    ITEM_JOINED,
    ITEM_READY,
    ITEM_REQUESTED,
    KIND_OBJECT,
    KIND_PREFIX,
    NewJobItem,
    RestoreJob,
    RestoreJobItem,
)
from gateway.errors import (
    AccessDenied,
    BucketNotFound,
    CoolStorageError,
    InvalidArgument,
    NotArchived,
    NotFound,
    RestoreBudgetExceeded,
    RestoreInProgress,
)
from gateway.principals import Action, Principal, authorize
from gateway.streams import IteratorReader
from tiering.backends.base import COLD_CLASSES

if TYPE_CHECKING:
    from catalog.records import Bucket, Org
    from gateway.app import Gateway
    from gateway.objects import ObjectView

log = logging.getLogger(__name__)

#: The most objects one job may cover (restore a narrower folder beyond that).
MAX_JOB_OBJECTS = 100_000
#: A job's progress is recomputed at most this often (seconds) however often it is asked.
REFRESH_INTERVAL = 1.0

QUOTED = "quoted"
RUNNING = "running"
READY = "ready"
COPYING = "copying"
DONE = "done"
FAILED = "failed"
EXPIRED = "expired"
#: Statuses the copy worker looks at.
COPY_STATUSES = (RUNNING, COPYING, READY)
#: A job's restores are asked for again (:meth:`RestoreJobs.resume_requests`) only this
#: soon after the job was asked for.
RESUME_WINDOW = timedelta(hours=1)
#: How long the start of a job holds its lease between renewals.
START_LEASE_SECONDS = 300.0


@dataclass(frozen=True)
class _Entry:
    key: str
    size: int
    object_id: int
    state: str


@dataclass(frozen=True)
class Plan:
    """What a restore would do, before anything is spent."""

    org: Org
    bucket: Bucket
    kind: str
    target: str
    tier: str
    days: int
    entries: list[_Entry]
    quote_usd: Decimal | None
    budget_left_usd: Decimal | None

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)


@dataclass(frozen=True)
class Progress:
    """A job's counters as of now, with the download of a single object when ready."""

    job: RestoreJob
    download: dict[str, Any] | None


class RestoreJobs:
    """Plans, starts and follows restore jobs for the API's handlers."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._refresh_lock = threading.Lock()
        self._refreshed: dict[int, float] = {}

    @property
    def catalog(self) -> Any:
        return self.gateway.catalog

    @property
    def objects(self) -> Any:
        return self.gateway.objects

    # -- planning ------------------------------------------------------------------------------
    def _org(self, principal: Principal, org_name: str, action: Action, bucket: str) -> Org:
        org = self.catalog.get_org(org_name) if principal.role_in(org_name) else None
        authorize(principal, action, org, bucket)
        assert org is not None
        return org

    def plan(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        *,
        kind: str,
        target: str,
        tier: str,
        days: int,
    ) -> Plan:
        """The objects a restore covers and its quote (needs the restore right)."""
        from tiering.restores import month_start, restore_budget

        org = self._org(principal, org_name, Action.RESTORE, bucket_name)
        bucket = self.catalog.get_bucket(org.id, bucket_name)
        if bucket is None:
            raise BucketNotFound(bucket_name)
        entries: list[_Entry] = []
        if kind == KIND_OBJECT:
            view = self.objects.head_object(principal, org.name, bucket.name, target)
            entries.append(_Entry(view.record.key, view.record.size, view.record.id, view.state))
        else:
            for view in self._walk(principal, org, bucket, target):
                entries.append(_Entry(view.record.key, view.record.size, view.record.id, view.state))
                if len(entries) > MAX_JOB_OBJECTS:
                    raise InvalidArgument(
                        f"more than {MAX_JOB_OBJECTS} objects under {target!r}: restore a "
                        "narrower folder"
                    )
            if not entries:
                raise NotFound(f"objects under {target!r} in bucket {bucket.name}")
        quote = self._quote(bucket, entries, tier=tier, days=days)
        budget = restore_budget(org.settings)
        left = None
        if budget is not None:
            spent = self.catalog.restore_spend(org.id, month_start(datetime.now(UTC)))
            left = max(Decimal(0), budget - spent)
        return Plan(org, bucket, kind, target, tier, days, entries, quote, left)

    def _walk(
        self, principal: Principal, org: Org, bucket: Bucket, prefix: str
    ) -> Iterator[ObjectView]:
        marker: str | None = None
        while True:
            page = self.objects.list_objects(
                principal, org.name, bucket.name, prefix=prefix, start_after=marker, max_keys=1000
            )
            yield from self.objects.views(page.objects)
            if not page.is_truncated or page.next_marker is None:
                return
            marker = page.next_marker

    def _quote(
        self, bucket: Bucket, entries: Sequence[_Entry], *, tier: str, days: int
    ) -> Decimal | None:
        """The cost of restoring the distinct cold blobs of the archived entries."""
        from tiering.cost import Prices, quote_restore

        archived = [e.object_id for e in entries if e.state == "archived"]
        blobs = {
            blob.id: blob
            for found in self.catalog.object_blobs(archived).values()
            for blob in found
            if blob.storage_class in COLD_CLASSES
        }
        placement = self.objects.placement
        prices = placement.prices(bucket.region) if placement is not None else Prices()
        total = Decimal(0)
        try:
            for blob in blobs.values():
                total += quote_restore(
                    prices, objects=1, bytes=blob.size, tier=tier, days=days
                ).rounded(6)
        except InvalidArgument as error:
            log.warning("no restore quote for bucket %s: %s", bucket.name, error)
            return None
        return total

    # -- starting ------------------------------------------------------------------------------
    def start(
        self,
        principal: Principal,
        plan: Plan,
        *,
        destination: dict[str, Any] | None,
    ) -> RestoreJob:
        """Record the job and start the restores of its archived objects."""
        if destination is not None:
            if plan.bucket.vault_recipient is not None:
                raise InvalidArgument(
                    "objects of a vault bucket can only be downloaded (the gateway cannot "
                    "read them to copy)"
                )
            authorize(principal, Action.WRITE, plan.org, destination["bucket"])
            if self.catalog.get_bucket(plan.org.id, destination["bucket"]) is None:
                raise BucketNotFound(destination["bucket"])
        if (
            plan.quote_usd is not None
            and plan.budget_left_usd is not None
            and plan.quote_usd > plan.budget_left_usd
        ):
            from tiering.restores import restore_budget

            raise RestoreBudgetExceeded(
                plan.quote_usd, plan.org.name, plan.budget_left_usd,
                restore_budget(plan.org.settings),
            )
        items = [
            NewJobItem(
                e.key,
                e.size,
                ITEM_READY if e.state in ("staged", "restored")
                else ITEM_JOINED if e.state == "restoring" else ITEM_REQUESTED,
            )
            for e in plan.entries
        ]
        job = self.catalog.create_restore_job(
            org_id=plan.org.id,
            bucket_id=plan.bucket.id,
            bucket=plan.bucket.name,
            kind=plan.kind,
            target=plan.target,
            tier=plan.tier,
            days=plan.days,
            destination=destination,
            status=RUNNING,
            user_id=principal.user_id,
            requested_by=principal.name,
            quote_usd=plan.quote_usd,
            items=items,
        )
        # Held while the restores are asked for: a job whose start died midway is resumed
        # by a CopyWorker once this lease is free (:meth:`resume_requests`).
        # (Its own owner name: this process's CopyWorker must not take it as its own.)
        lease, owner = start_lease(job.id), f"{self.gateway.instance_id}:start"
        self.catalog.acquire_lease(lease, owner, START_LEASE_SECONDS)
        try:
            archived = [(seq, e.key) for seq, e in enumerate(plan.entries) if e.state == "archived"]
            changes, started = self._request_restores(
                principal, plan.org.name, job, archived, renew=(lease, owner)
            )
        finally:
            self.catalog.release_lease(lease, owner)
        self.catalog.set_restore_item_states(job.id, changes)
        self.catalog.audit(
            principal.name, "restore.job", org_id=plan.org.id, bucket=plan.bucket.name,
            target=plan.target, kind=plan.kind, tier=plan.tier, job=job.id,
            objects=len(plan.entries), started=started,
            quote_usd=str(plan.quote_usd) if plan.quote_usd is not None else None,
        )
        return self.refresh(job, force=True).job

    def _request_restores(
        self,
        principal: Principal,
        org_name: str,
        job: RestoreJob,
        items: Sequence[tuple[int, str]],
        *,
        renew: tuple[str, str],
    ) -> tuple[dict[int, tuple[str, str | None]], int]:
        """Ask for the restore of each ``(seq, key)``: the item states that changed and how
        many restores started. An object already on its way is joined; once the budget is
        spent, the rest fail with that reason. The lease ``renew`` is renewed as it goes."""
        changes: dict[int, tuple[str, str | None]] = {}
        started = 0
        stop_reason: str | None = None
        for count, (seq, key) in enumerate(items, 1):
            if count % 100 == 0:
                self.catalog.acquire_lease(*renew, START_LEASE_SECONDS)
            if stop_reason is not None:
                changes[seq] = (ITEM_FAILED, stop_reason)
                continue
            try:
                ticket = self.objects.request_restore(
                    principal, org_name, job.bucket, key, days=job.days, tier=job.tier
                )
            except RestoreInProgress:
                changes[seq] = (ITEM_JOINED, None)
                continue
            except NotArchived:
                changes[seq] = (ITEM_READY, None)
                continue
            except RestoreBudgetExceeded as error:
                stop_reason = str(error)
                changes[seq] = (ITEM_FAILED, stop_reason)
                continue
            except CoolStorageError as error:
                changes[seq] = (ITEM_FAILED, str(error))
                continue
            started += 1
            if ticket.status == "available" or ticket.expires_at is not None:
                changes[seq] = (ITEM_READY, None)
        return changes, started

    def resume_requests(self, job: RestoreJob, *, owner: str) -> int:
        """Ask for the restores a job's start did not get to (the process died midway);
        how many started. Only within :data:`RESUME_WINDOW` of the job's request and
        while nobody holds its start lease: an item still waiting whose object is archived
        was then never asked for, since no restore completes and expires that fast."""
        if job.status != RUNNING or datetime.now(UTC) - job.requested_at > RESUME_WINDOW:
            return 0
        lease = start_lease(job.id)
        if not self.catalog.acquire_lease(lease, owner, START_LEASE_SECONDS):
            return 0
        try:
            waiting = [
                (item.seq, item.key)
                for item, view in self._current(job)
                if item.state == ITEM_REQUESTED and view is not None and view.state == "archived"
            ]
            org = self.catalog.get_org_by_id(job.org_id)
            if not waiting or org is None or job.user_id is None:
                return 0
            try:
                principal = self._requester(job.user_id)
            except AccessDenied as error:
                self.catalog.set_restore_item_states(
                    job.id, {seq: (ITEM_FAILED, str(error)) for seq, _ in waiting}
                )
                return 0
            log.info("restore job %s: asking for %d restores its start did not reach",
                     job.id, len(waiting))
            changes, started = self._request_restores(
                principal, org.name, job, waiting, renew=(lease, owner)
            )
            self.catalog.set_restore_item_states(job.id, changes)
            self.refresh(job, force=True)
            return started
        finally:
            self.catalog.release_lease(lease, owner)

    # -- following -----------------------------------------------------------------------------
    def visible(self, principal: Principal, job: RestoreJob) -> bool:
        """Whether ``principal`` may see the job: its requester, anyone with the restore
        right on its bucket, or an operator."""
        if principal.is_operator or (principal.user_id is not None and principal.user_id == job.user_id):
            return True
        org = self.catalog.get_org_by_id(job.org_id)
        return org is not None and principal.may(Action.RESTORE, org.name, job.bucket)

    def get(self, principal: Principal, job_id: int) -> RestoreJob:
        """The job, if the principal may see it (else as unknown as a missing one)."""
        job = self.catalog.get_restore_job(job_id)
        if job is None or not self.visible(principal, job):
            raise NotFound(f"restore {job_id}")
        return job  # type: ignore[no-any-return]

    def _current(self, job: RestoreJob) -> Iterator[tuple[RestoreJobItem, ObjectView | None]]:
        """Each item of the job with the view of the object now at its key (None: gone)."""
        items = self._items(job.id)
        if job.kind == KIND_OBJECT:
            record = self.catalog.get_object(job.bucket_id, job.target)
            view = self.objects.views([record])[0] if record is not None else None
            for item in items:
                yield item, view
            return
        views = self._views_under(job.bucket_id, job.target)
        current = next(views, None)
        for item in items:
            raw = item.key.encode("utf-8", "surrogatepass")
            while current is not None and current.record.key.encode("utf-8", "surrogatepass") < raw:
                current = next(views, None)
            if current is not None and current.record.key == item.key:
                yield item, current
            else:
                yield item, None

    def _items(self, job_id: int) -> Iterator[RestoreJobItem]:
        after = -1
        while True:
            page = self.catalog.restore_job_items(job_id, after_seq=after, limit=1000)
            yield from page
            if len(page) < 1000:
                return
            after = page[-1].seq

    def _views_under(self, bucket_id: int, prefix: str) -> Iterator[ObjectView]:
        marker: str | None = None
        while True:
            page = self.catalog.list_objects(bucket_id, prefix=prefix, start_after=marker, max_keys=1000)
            yield from self.objects.views(page.objects)
            if not page.is_truncated or page.next_marker is None:
                return
            marker = page.next_marker

    def refresh(self, job: RestoreJob, *, force: bool = False) -> Progress:
        """Recompute the job's progress from the objects' states (at most once every
        :data:`REFRESH_INTERVAL` seconds unless ``force``) and store it."""
        import time

        if job.status in (QUOTED, FAILED, DONE):
            return Progress(job, None)
        now = time.monotonic()
        with self._refresh_lock:
            last = self._refreshed.get(job.id)
            if not force and last is not None and now - last < REFRESH_INTERVAL:
                return Progress(job, self._download(job, None))
            self._refreshed[job.id] = now
            if len(self._refreshed) > 10_000:
                self._refreshed.clear()
        done = done_bytes = copied = failed = archived = 0
        single: ObjectView | None = None
        gone: dict[int, tuple[str, str | None]] = {}
        for item, view in self._current(job):
            single = view if job.kind == KIND_OBJECT else None
            if item.state == ITEM_FAILED:
                failed += 1
                continue
            if view is None:
                failed += 1
                gone[item.seq] = (ITEM_FAILED, "the object was deleted or renamed since")
                continue
            if item.state == ITEM_COPIED:
                copied += 1
            if view.readable:
                done += 1
                done_bytes += item.size
            elif view.state == "archived":
                archived += 1
        self.catalog.set_restore_item_states(job.id, gone)
        total = job.objects_total
        status = self._status(job, done=done, copied=copied, failed=failed, archived=archived)
        self.catalog.update_restore_job(
            job.id, status=status, objects_ready=done, bytes_ready=done_bytes,
            objects_copied=copied, objects_failed=failed,
        )
        if status != job.status:
            log.info("restore job %s: %s (%d/%d objects ready)", job.id, status, done, total)
        updated = self.catalog.get_restore_job(job.id) or job
        return Progress(updated, self._download(updated, single))

    @staticmethod
    def _status(job: RestoreJob, *, done: int, copied: int, failed: int, archived: int) -> str:
        total = job.objects_total
        if total and failed >= total:
            return FAILED
        if job.destination is not None:
            if copied + failed >= total:
                return DONE
            if done + failed >= total or copied:
                return COPYING
        elif done + failed >= total:
            return READY
        if archived and (
            job.status in (READY, COPYING, EXPIRED)
            or datetime.now(UTC) > job.requested_at + timedelta(days=job.days, hours=48)
        ):
            return EXPIRED
        return RUNNING

    def _download(self, job: RestoreJob, view: ObjectView | None) -> dict[str, Any] | None:
        if job.kind != KIND_OBJECT or job.destination is not None or job.status != READY:
            return None
        org = self.catalog.get_org_by_id(job.org_id)
        bucket = self.catalog.get_bucket_by_id(job.bucket_id)
        if org is None or bucket is None:
            return None
        sealed = bucket.vault_recipient is not None
        return {
            "url": object_url(org.name, bucket.name, job.target, kind="sealed" if sealed else "objects"),
            "sealed": sealed,
            "expires_at": iso(view.restore_expiry) if view is not None else None,
        }

    def items_page(
        self, job: RestoreJob, *, after_seq: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of a job's objects with their current state and download link."""
        org = self.catalog.get_org_by_id(job.org_id)
        bucket = self.catalog.get_bucket_by_id(job.bucket_id)
        items = self.catalog.restore_job_items(job.id, after_seq=after_seq, limit=limit + 1)
        more = len(items) > limit
        items = items[:limit]
        records = [self.catalog.get_object(job.bucket_id, item.key) for item in items]
        live = [r for r in records if r is not None]
        views = {v.record.key: v for v in self.objects.views(live)} if live else {}
        out = []
        for item in items:
            view = views.get(item.key)
            url = None
            if view is not None and view.readable and org is not None and bucket is not None:
                kind = "sealed" if bucket.vault_recipient is not None else "objects"
                url = object_url(org.name, bucket.name, item.key, kind=kind)
            out.append(
                {
                    "key": item.key,
                    "size": item.size,
                    "state": view.state if view is not None else "gone",
                    "item_state": item.state,
                    "error": item.error,
                    "download_url": url,
                }
            )
        return out, (items[-1].seq if more and items else None)

    # -- copies to a destination ---------------------------------------------------------------
    def copy_ready(self, job: RestoreJob, *, owner: str, stop: threading.Event | None = None) -> int:
        """Copy the job's readable objects not copied yet to its destination, as the user
        who asked; returns how many were copied. Takes the job's lease, so one replica
        copies each job."""
        if job.destination is None:
            return 0
        lease = f"admin-restore-copy:{job.id}"
        if not self.catalog.acquire_lease(lease, owner, 300):
            return 0
        try:
            if job.user_id is None:
                self._fail_all(job, "the restore was asked for by no user; nobody to copy as")
                return 0
            try:
                principal = self._requester(job.user_id)
            except AccessDenied as error:
                self._fail_all(job, str(error))
                return 0
            org = self.catalog.get_org_by_id(job.org_id)
            if org is None:
                return 0
            dest_bucket = str(job.destination["bucket"])
            dest_prefix = str(job.destination.get("prefix", ""))
            copied = 0
            changes: dict[int, tuple[str, str | None]] = {}
            for item, view in self._current(job):
                if stop is not None and stop.is_set():
                    break
                if item.state in (ITEM_COPIED, ITEM_FAILED) or view is None or not view.readable:
                    continue
                if job.kind == KIND_PREFIX:
                    relative = item.key[len(job.target):]
                else:
                    relative = item.key.rsplit("/", 1)[-1]
                try:
                    read = self.objects.get_object(principal, org.name, job.bucket, item.key)
                    reader = IteratorReader(read.body)
                    try:
                        self.objects.put_object(
                            principal, org.name, dest_bucket, dest_prefix + relative, reader,
                            size=read.length, content_type=read.view.record.content_type,
                        )
                    finally:
                        reader.close()
                except CoolStorageError as error:
                    changes[item.seq] = (ITEM_FAILED, f"copy failed: {error}")
                    continue
                changes[item.seq] = (ITEM_COPIED, None)
                copied += 1
                if len(changes) >= 100:
                    self.catalog.set_restore_item_states(job.id, changes)
                    changes = {}
            self.catalog.set_restore_item_states(job.id, changes)
            self.refresh(job, force=True)
            return copied
        finally:
            self.catalog.release_lease(lease, owner)

    def _requester(self, user_id: int) -> Principal:
        """The user who asked for a job, with their rights now (``AccessDenied`` if they
        are gone or disabled): the background work acts as them."""
        from gateway.principals import principal_for_user

        return principal_for_user(
            self.catalog, user_id,
            member_default_rights=self.gateway.identity.member_default_rights,
        )

    def _fail_all(self, job: RestoreJob, reason: str) -> None:
        self.catalog.update_restore_job(job.id, status=FAILED, error=reason)


def start_lease(job_id: int) -> str:
    """The lease a job's start holds while it asks for the restores."""
    return f"admin-restore-start:{job_id}"


def job_json(
    catalog: Any, job: RestoreJob, *, download: dict[str, Any] | None, budget_left: Decimal | None
) -> dict[str, Any]:
    """A job as the ``RestoreJob`` schema describes it."""
    org = catalog.get_org_by_id(job.org_id)
    return {
        "restore_id": job.id,
        "org": org.name if org is not None else str(job.org_id),
        "bucket": job.bucket,
        "kind": job.kind,
        "target": job.target,
        "priority": job.tier,
        "days": job.days,
        "destination": dict(job.destination) if job.destination is not None else "download",
        "status": job.status,
        "quote_usd": _usd(job.quote_usd),
        "budget_left_usd": _usd(budget_left),
        "objects": job.objects_total,
        "bytes": job.bytes_total,
        "progress": {
            "objects_done": job.objects_ready,
            "objects_total": job.objects_total,
            "bytes_done": job.bytes_ready,
            "bytes_total": job.bytes_total,
            "objects_copied": job.objects_copied,
            "objects_failed": job.objects_failed,
        },
        "requested_by": job.requested_by,
        "requested_at": iso(job.requested_at),
        "download": download,
        "objects_url": f"/api/v1/restores/{job.id}/objects",
        "error": job.error,
    }


def plan_json(plan: Plan, *, destination: dict[str, Any] | None, requested_by: str) -> dict[str, Any]:
    """A dry run's answer: the quote and what would be restored."""
    done = [e for e in plan.entries if e.state in ("staged", "restored")]
    return {
        "restore_id": None,
        "org": plan.org.name,
        "bucket": plan.bucket.name,
        "kind": plan.kind,
        "target": plan.target,
        "priority": plan.tier,
        "days": plan.days,
        "destination": dict(destination) if destination is not None else "download",
        "status": QUOTED,
        "quote_usd": _usd(plan.quote_usd),
        "budget_left_usd": _usd(plan.budget_left_usd),
        "objects": len(plan.entries),
        "bytes": plan.bytes,
        "progress": {
            "objects_done": len(done),
            "objects_total": len(plan.entries),
            "bytes_done": sum(e.size for e in done),
            "bytes_total": plan.bytes,
            "objects_copied": 0,
            "objects_failed": 0,
        },
        "requested_by": requested_by,
        "requested_at": None,
        "download": None,
        "objects_url": None,
        "error": None,
    }


def _usd(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.quantize(Decimal("0.000001")), "f")
    return text


class CopyWorker:
    """A daemon thread that finishes restore jobs whose destination is a bucket: every
    ``interval`` seconds it copies what became readable. Each job is copied under a lease,
    so replicas share the work."""

    def __init__(self, jobs: RestoreJobs, *, owner: str, interval: float = 2.0) -> None:
        self.jobs = jobs
        self.owner = owner
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="restore-copies", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> int:
        """One round: resume the starts of young jobs that died midway, then copy what
        became readable for the jobs with a destination; the number of objects copied."""
        recent = datetime.now(UTC) - RESUME_WINDOW
        for job in self._jobs((RUNNING,), requested_after=recent):
            self.jobs.resume_requests(job, owner=self.owner)
        copied = 0
        for job in self._jobs(COPY_STATUSES):
            if job.destination is not None:
                copied += self.jobs.copy_ready(job, owner=self.owner, stop=self._stop)
        return copied

    def _jobs(
        self, statuses: Sequence[str], *, requested_after: datetime | None = None
    ) -> Iterator[RestoreJob]:
        """Every job in ``statuses``, page by page, until the worker is stopped (download
        jobs stay ready until someone looks: a first page alone could hide the rest)."""
        after = 0
        while not self._stop.is_set():
            page = self.jobs.catalog.jobs_with_status(
                statuses, after_id=after, requested_after=requested_after, limit=100
            )
            for job in page:
                if self._stop.is_set():
                    return
                yield job
            if len(page) < 100:
                return
            after = page[-1].id

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except CoolStorageError as error:
                log.warning("restore copies: %s", error)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("restore copies failed; trying again later")
