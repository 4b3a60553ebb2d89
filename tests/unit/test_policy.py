"""Tiering policies: globs, presets, thresholds, ages, layering and validation; restore
settings and the webhook signature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from catalog.api import Catalog
from catalog.records import ObjectRecord, RestoreRecord
from gateway.config import ConfigError, load_config
from gateway.errors import InvalidArgument
from tiering.policy import (
    Policy,
    PolicyResolver,
    parse_duration,
    policy_from_config,
    restore_on_read,
    restore_tier,
    store_rules,
    validate_rules,
)
from tiering.restores import month_start, next_poll_delay, restore_budget, retry_after
from tiering.webhook import sign, verify_signature

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
RESTIC_ID = "0123456789abcdef" * 4


def record(key: str, size: int = 100, *, age: timedelta = timedelta(hours=1),
           last_access: datetime | None = None) -> ObjectRecord:
    return ObjectRecord(
        id=1, bucket_id=1, key=key, size=size, etag='"x"', sha256="y",
        content_type="application/octet-stream", user_metadata={},
        created_at=NOW - age, modified_at=NOW - age, storage_class="STANDARD",
        last_access=last_access,
    )


# -- globs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("*.tmp", "a.tmp", True),
        ("*.tmp", "dir/sub/a.tmp", True),  # no "/": the last segment, anywhere
        ("*.tmp", "a.tmp/b", False),
        ("logs/*", "logs/a", True),
        ("logs/*", "logs/a/b", False),  # "*" stays within a segment
        ("logs/**", "logs/a/b", True),
        ("logs/", "logs/a/b", True),  # a trailing "/" is the whole prefix
        ("logs/", "logsx/a", False),
        ("**/cache/*", "a/b/cache/x", True),
        ("**/cache/*", "cache/x", True),
        ("data/??/*", "data/ab/c", True),
        ("data/??/*", "data/abc/c", False),
        ("[ab]*.bin", "b1.bin", True),
        ("[!ab]*.bin", "b1.bin", False),
        ("a+b(c).txt", "a+b(c).txt", True),  # regex characters are literal
    ],
)
def test_globs(pattern: str, key: str, matches: bool) -> None:
    assert Policy(exclude=(pattern,)).selects(key, 1) is not matches


@pytest.mark.parametrize("pattern", ["", "a[b"])
def test_bad_globs_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidArgument):
        Policy(keep_hot=(pattern,))


# -- presets -------------------------------------------------------------------------------


@pytest.mark.parametrize("root", ["", "repo/", "hosts/a/restic/"])
def test_restic_preset_keeps_metadata_hot_and_sends_packs_cold(root: str) -> None:
    policy = Policy(preset="restic")
    hot = ["config", f"keys/{RESTIC_ID}", f"snapshots/{RESTIC_ID}", f"index/{RESTIC_ID}",
           f"locks/{RESTIC_ID}"]
    for key in hot:
        assert policy.keeps_hot(root + key), key
        assert not policy.selects(root + key, 10)
    for key in [f"data/01/{RESTIC_ID}", f"data/{RESTIC_ID}"]:
        assert not policy.keeps_hot(root + key), key
        assert policy.selects(root + key, 10)
    assert policy.keeps_hot(root + "data/01/not-a-pack")


def test_kopia_preset_sends_only_p_blobs_cold() -> None:
    policy = Policy(preset="kopia")
    assert not policy.keeps_hot("p0123456789abcdef0123456789abcdef-s0123456789abcdef-c1")
    assert not policy.keeps_hot("prefix/p0123456789abcdef0123")
    for key in ["q0123456789abcdef0123", "n0123456789abcdef", "kopia.repository",
                "kopia.blobcfg", "_log_0123", "xn0_0123456789abcdef", "m0123456789abcdef"]:
        assert policy.keeps_hot(key), key


def test_keep_hot_adds_to_a_preset() -> None:
    policy = Policy(preset="restic", keep_hot=("pinned/**",))
    assert policy.keeps_hot(f"pinned/data/01/{RESTIC_ID}")
    assert not policy.keeps_hot(f"data/01/{RESTIC_ID}")


# -- selection and age ---------------------------------------------------------------------


def test_size_thresholds_and_include_exclude() -> None:
    policy = Policy(min_size=10, max_size=100, include=("*.bin",), exclude=("tmp/",))
    assert policy.selects("a.bin", 10) and policy.selects("a.bin", 100)
    assert not policy.selects("a.bin", 9)
    assert not policy.selects("a.bin", 101)
    assert not policy.selects("a.txt", 50)
    assert not policy.selects("tmp/a.bin", 50)
    assert not Policy(enabled=False).selects("a.bin", 50)
    assert Policy(max_size=0).selects("huge", 1 << 40)  # 0: no upper bound


def test_age_by_write_and_by_access() -> None:
    by_write = Policy(transition_after=3600)
    assert by_write.is_due(record("k", age=timedelta(hours=2)), NOW)
    assert not by_write.is_due(record("k", age=timedelta(minutes=30)), NOW)
    assert by_write.is_due(record("k", age=timedelta(minutes=30)), NOW, ignore_age=True)
    read_lately = record("k", age=timedelta(days=3), last_access=NOW - timedelta(minutes=10))
    assert by_write.is_due(read_lately, NOW)
    by_access = Policy(transition_after=3600, basis="access")
    assert not by_access.is_due(read_lately, NOW)
    assert by_access.due_at(read_lately) == NOW + timedelta(minutes=50)
    assert by_access.is_due(record("k", age=timedelta(hours=2)), NOW)  # never read
    # keep-hot rules win over ignore_age
    assert not Policy(preset="restic").is_due(record("config"), NOW, ignore_age=True)


# -- layering and validation ---------------------------------------------------------------


def test_rules_layer_and_validate() -> None:
    base = Policy(transition_after=43200, exclude=("a",))
    layered = base.with_rules({"transition_after": "30m", "preset": "restic"})
    assert layered.transition_after == 1800 and layered.preset == "restic"
    assert layered.exclude == ("a",)
    assert layered.with_rules({"exclude": []}).exclude == ()
    assert Policy().with_rules(Policy(min_size=5).to_rules()) == Policy(min_size=5)
    bad_rules: list[dict[str, Any]] = [
                {"nope": 1}, {"transition_after": "soon"}, {"transition_after": -1},
                {"min_size": "1"}, {"min_size": True}, {"include": "a*"},
                {"basis": "read"}, {"preset": "borg"}, {"enabled": "yes"},
                {"keep_hot": ["a["]}]
    for bad in bad_rules:
        with pytest.raises(InvalidArgument):
            validate_rules(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90", 90.0), ("30m", 1800.0), ("12h", 43200.0), ("1.5d", 129600.0),
     ("2w", 1209600.0), (0, 0.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_config_defaults_and_checks(tmp_path: Path) -> None:
    config = load_config(env={})
    policy = policy_from_config(config.tiering)
    assert policy.transition_after <= 24 * 3600  # staging is short by default
    assert config.tiering.small_object_threshold == 1 << 20
    assert config.tiering.container_target_size == 128 << 20
    env = {"COOLSTORAGE_TIERING_PRESET": "restic", "COOLSTORAGE_TIERING_KEEP_HOT": "a/,b/"}
    assert policy_from_config(load_config(env=env).tiering).keep_hot == ("a/", "b/")
    for bad in [{"COOLSTORAGE_TIERING_PRESET": "borg"},
                {"COOLSTORAGE_TIERING_TRANSITION_BASIS": "read"},
                {"COOLSTORAGE_TIERING_EXCLUDE": "[x"},
                {"COOLSTORAGE_TIERING_RESTORE_WEBHOOK_URL": "http://127.0.0.1:1/"},
                {"COOLSTORAGE_TIERING_STORAGE_CLASS": "STANDARD"}]:
        with pytest.raises(ConfigError, match="tiering"):
            load_config(env=bad)


def test_stored_rules_override_per_org_and_bucket(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path}/c.db", cache_ttl=0)
    catalog.upgrade()
    try:
        org = catalog.create_org("acme", recipient="age1x", identity_wrapped=b"w",
                                 identity_key_id="k")
        one = catalog.create_bucket(org.id, "one", region="r", backend="local")
        two = catalog.create_bucket(org.id, "two", region="r", backend="local")
        store_rules(catalog, org.id, None, {"transition_after": "1h"}, updated_by="admin")
        store_rules(catalog, org.id, two.id, {"preset": "restic", "min_size": 5},
                    updated_by="admin")
        with pytest.raises(InvalidArgument):
            store_rules(catalog, org.id, one.id, {"preset": "borg"}, updated_by="admin")
        resolver = PolicyResolver(catalog, Policy(transition_after=43200))
        assert resolver.for_bucket(one) == Policy(transition_after=3600)
        assert resolver.for_bucket(two) == Policy(transition_after=3600, preset="restic",
                                                  min_size=5)
        rows = catalog.tiering_policies(org.id)
        assert [(r.bucket_id, r.updated_by) for r in rows] == [(None, "admin"), (two.id, "admin")]
        assert rows[1].rules == {"preset": "restic", "min_size": 5}
        store_rules(catalog, org.id, None, None, updated_by="admin")
        assert PolicyResolver(catalog, Policy()).for_bucket(one) == Policy()
    finally:
        catalog.close()


# -- restore settings and the webhook signature --------------------------------------------


def test_org_restore_settings() -> None:
    assert restore_on_read({}) is False
    assert restore_on_read({"restore_on_read": True}) is True
    assert restore_on_read({"restore_on_read": "yes"}) is False
    assert restore_tier({}) == "Standard"
    assert restore_tier({"restore_tier": "Bulk"}) == "Bulk"
    assert restore_tier({"restore_tier": "Expedited"}) == "Standard"
    assert restore_budget({}) is None
    assert restore_budget({"restore_budget_usd": 12.5}) == Decimal("12.5")
    assert restore_budget({"restore_budget_usd": "oops"}) == 0  # a typo never lifts a cap
    assert restore_budget({"restore_budget_usd": -3}) == 0
    assert month_start(NOW) == datetime(2026, 3, 1, tzinfo=UTC)
    assert retry_after("Standard") == 12 * 3600 and retry_after("Bulk") == 48 * 3600


def test_poll_backoff_grows_with_the_restore_and_is_bounded() -> None:
    def row(running: timedelta) -> RestoreRecord:
        return RestoreRecord(
            blob=None,  # type: ignore[arg-type]
            org_id=1, tier="Standard", days=1, status="ongoing", requested_by="a",
            requested_at=NOW - running, completed_at=None, expires_at=None, quote_usd=None,
        )

    assert next_poll_delay(row(timedelta(0)), NOW, 5, 900) == 5
    assert next_poll_delay(row(timedelta(minutes=8)), NOW, 5, 900) == 120
    assert next_poll_delay(row(timedelta(hours=10)), NOW, 5, 900) == 900


def test_webhook_signature() -> None:
    body = b'{"event":"restore.completed"}'
    header = sign(b"secret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(b"secret", body, header)
    assert not verify_signature(b"other", body, header)
    assert not verify_signature(b"secret", body + b" ", header)
