"""ChangeStorageMode: archive now, pin hot, unpin, over what the tiering engine offers.

- **archive** runs the engine's own pass (:meth:`tiering.transitions.Tierer.run_pass`, as
  ``coolstorage tier archive`` does) in the request thread, for the bucket and target, age
  ignored. For a folder the bucket's keep-hot rules still apply. For one object the pass
  is narrowed to exactly that object by asking for it in the cold class first (a copy onto
  itself that shares its blobs, as S3 changes a storage class): the engine archives objects
  a client asked to have cold whatever the policy says, and its prefix filter alone would
  also take keys that merely start with the object's key.
- **pin** / **unpin** add or remove a keep-hot rule in the bucket's tiering policy (the
  ``keep_hot`` globs of :mod:`tiering.policy`), matching exactly the object's key, or every
  key under the folder prefix. The engine then leaves those keys hot; what is archived
  already stays archived until restored. Glob escapes: ``*`` and ``?`` become ``[*]`` and
  ``[?]``, ``[`` becomes ``?``; and since a glob without ``/`` would match a last path
  segment anywhere, a key or prefix without ``/`` gets one alphanumeric character written
  as ``[c/]``, which anchors the rule to the whole key (it then also matches a key with a
  ``/`` in that place). Nothing new is stored: pins are policy rules, visible and editable
  through the policy endpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.errors import InvalidArgument
from gateway.principals import Principal
from tiering.backends.base import COLD_CLASSES

if TYPE_CHECKING:
    from catalog.records import Bucket, Org
    from gateway.app import Gateway
    from tiering.transitions import PassReport


def keep_hot_pattern(target: str, *, prefix: bool) -> str:
    """The keep-hot glob matching the key ``target`` exactly (``prefix``: every key that
    starts with it); see the module docstring for the escapes."""
    tokens = ["?" if c == "[" else f"[{c}]" if c in "*?" else c for c in target]
    if prefix:
        tokens.append("**")
    pattern = "".join(tokens)
    if "/" not in pattern:
        for index, char in enumerate(target):
            if char.isalnum():
                tokens[index] = f"[{char}/]"
                break
    return "".join(tokens)


def archive_now(
    gateway: Gateway,
    principal: Principal,
    org: Org,
    bucket: Bucket,
    target: str,
    kind: str,
) -> tuple[PassReport, list[str]]:
    """Archive ``target`` (an object key or a folder prefix) now; the engine's report and
    the bucket's keep-hot rules."""
    from tiering.transitions import Tierer, TieringSettings

    ignore_age = True
    if kind == "object":
        view = gateway.objects.head_object(principal, org.name, bucket.name, target)
        if view.record.storage_class not in COLD_CLASSES:
            gateway.objects.copy_object(
                principal, org.name, bucket.name, target, bucket.name, target,
                storage_class="DEEP_ARCHIVE",
            )
        ignore_age = False
    tierer = Tierer(
        gateway.catalog,
        gateway.objects.backends,
        TieringSettings.from_config(gateway.config),
        owner=gateway.instance_id,
    )
    try:
        report = tierer.run_pass(ignore_age=ignore_age, bucket_id=bucket.id, prefix=target)
    finally:
        tierer.leases.release_all()
    gateway.catalog.audit(
        principal.name, "storage.archive", org_id=org.id, bucket=bucket.name, target=target,
        kind=kind, archived=report.archived_objects,
    )
    return report, _keep_hot(gateway, org, bucket)


def pin(
    gateway: Gateway,
    principal: Principal,
    org: Org,
    bucket: Bucket,
    target: str,
    kind: str,
    *,
    on: bool,
) -> tuple[list[str], str]:
    """Add (``on``) or remove the keep-hot rule of ``target``; the bucket's keep-hot rules
    after the change and a sentence saying what happened. The bucket's rules are read and
    written in one catalog transaction, so concurrent pins do not undo one another."""
    from tiering.policy import stored_rules

    pattern = keep_hot_pattern(target, prefix=kind == "prefix")
    after: list[str] = []

    def change(current: dict[str, Any]) -> dict[str, Any] | None:
        rules = dict(current)
        keep = [str(k) for k in rules.get("keep_hot", [])]
        if on and pattern not in keep:
            keep.append(pattern)
        elif not on:
            if pattern not in keep:
                raise InvalidArgument(f"{target!r} is not pinned (no keep-hot rule {pattern})")
            keep.remove(pattern)
        if keep:
            rules["keep_hot"] = keep
        else:
            rules.pop("keep_hot", None)
        after[:] = keep
        return stored_rules(rules) if rules else None

    gateway.catalog.update_tiering_policy(org.id, bucket.id, change, updated_by=principal.name)
    gateway.catalog.audit(
        principal.name, "storage.pin" if on else "storage.unpin", org_id=org.id,
        bucket=bucket.name, target=target, rule=pattern,
    )
    if on:
        return after, f"pinned: keys matching {pattern} stay hot"
    return after, f"unpinned: the rule {pattern} is gone; the bucket's policy decides again"


def _keep_hot(gateway: Gateway, org: Org, bucket: Bucket) -> list[str]:
    _, rules = gateway.catalog.tiering_rules(org.id, bucket.id)
    keep = rules.get("keep_hot", [])
    return [str(k) for k in keep] if isinstance(keep, list) else []
