"""The cost model: every line item against figures worked out by hand from the list prices.

Prices used (tiering/cost.py defaults, AWS us-east-1 list prices): STANDARD 0.023 and
DEEP_ARCHIVE 0.00099 USD per GB-month (a GB is 2**30 bytes, a month 30 days); PUT 0.005
per 1,000 in STANDARD, 0.05 in Deep Archive; Bulk 0.0025 USD/GB + 0.025 per 1,000;
Standard 0.02 USD/GB + 0.10 per 1,000; GET 0.0004 per 1,000; egress 0.09 USD/GB.
"""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from types import SimpleNamespace

import pytest

from gateway.errors import InvalidArgument
from tiering.cost import (
    DEEP_ARCHIVE,
    GB,
    STANDARD,
    KiB,
    MiB,
    Policy,
    Prices,
    Quote,
    Scenario,
    TierPrice,
    archive_cost,
    copy_requests,
    early_deletion_charge,
    egress_cost,
    pack,
    quote_restore,
    request_cost,
    storage_cost,
    to_decimal,
    upload_requests,
)

P = Prices()
D = Decimal


# -- storage by class and days -------------------------------------------------------------


def test_storage_by_class_and_days() -> None:
    assert storage_cost(P, STANDARD, GB, 30) == D("0.023")
    assert storage_cost(P, STANDARD, GB, 15) == D("0.0115")
    assert storage_cost(P, DEEP_ARCHIVE, 1024 * GB, 30) == D("1.01376")
    assert storage_cost(P, DEEP_ARCHIVE, GB, 360) == D("0.01188")
    # Half a day (12 hours of staging) of 3 GB in STANDARD: 0.023 * 3 * 0.5 / 30.
    assert storage_cost(P, STANDARD, 3 * GB, D("0.5")) == D("0.00115")
    assert storage_cost(P, STANDARD, 0, 30) == 0
    assert storage_cost(P, STANDARD, GB, 0) == 0


def test_storage_rejects_unknown_class_and_bad_input() -> None:
    with pytest.raises(InvalidArgument, match="REDUCED_REDUNDANCY"):
        storage_cost(P, "REDUCED_REDUNDANCY", GB, 1)
    with pytest.raises(InvalidArgument):
        storage_cost(P, STANDARD, -1, 1)
    with pytest.raises(InvalidArgument):
        storage_cost(P, STANDARD, GB, -1)


# -- request fees -------------------------------------------------------------------------


def test_request_fees() -> None:
    assert request_cost(1000, P.write_rate(STANDARD)) == D("0.005")
    assert request_cost(1, P.write_rate(STANDARD)) == D("0.000005")
    assert request_cost(1000, P.write_rate(DEEP_ARCHIVE)) == D("0.05")
    assert request_cost(1000, P.transition_rate(DEEP_ARCHIVE)) == D("0.05")
    assert request_cost(2500, P.read_rate(DEEP_ARCHIVE)) == D("0.001")
    assert request_cost(0, P.write_rate(STANDARD)) == 0


def test_multipart_uploads_pay_a_put_per_part() -> None:
    assert upload_requests(8 * MiB, 8 * MiB) == 1
    assert upload_requests(8 * MiB + 1, 8 * MiB) == 2 + 2
    assert upload_requests(128 * MiB, 8 * MiB) == 2 + 16
    assert upload_requests(128 * MiB, None) == 1
    assert upload_requests(128 * MiB, 8 * MiB, 512 * MiB) == 1
    assert upload_requests(513 * MiB, 8 * MiB, 512 * MiB) == 2 + 65
    assert copy_requests(5 * GB) == 1
    assert copy_requests(6 * GB) == 2 + 12


# -- the 180-day minimum ------------------------------------------------------------------


def test_early_deletion_is_storage_to_day_180() -> None:
    # Deleted on day 90: 90 more days of 1 GB in Deep Archive = 3 months * 0.00099.
    assert early_deletion_charge(P, GB, 90) == D("0.00297")
    assert early_deletion_charge(P, GB, 0) == D("0.00594")
    assert early_deletion_charge(P, GB, 180) == 0
    assert early_deletion_charge(P, GB, 400) == 0
    assert early_deletion_charge(P, GB, D("179.5")) == storage_cost(P, DEEP_ARCHIVE, GB, D("0.5"))
    # STANDARD has no minimum.
    assert early_deletion_charge(P, GB, 1, storage_class=STANDARD) == 0


def test_archive_cost_charges_the_minimum_for_a_short_stay() -> None:
    short = archive_cost(P, objects=1, bytes=GB, days=30)
    # Storage for the 30 days it stayed, then to day 180 (150 days) as an early deletion,
    # overheads included: (1 GB + 32 KiB) at the archive rate, 8 KiB at STANDARD's.
    assert short.line("storage (DEEP_ARCHIVE)") == D("0.00099")
    expected_early = D("0.00099") * 5 * (1 + D(1) / 32768) + D("0.023") * 5 / 131072
    assert short.line("early deletion (to day 180)") == expected_early
    # Paid either way: 30 days + early deletion is exactly 180 days of storage.
    full = archive_cost(P, objects=1, bytes=GB, days=180)
    assert full.line("early deletion (to day 180)") == 0
    assert short.total == full.total


# -- the 40 KB per-object overhead --------------------------------------------------------


def test_overhead_per_object() -> None:
    year = archive_cost(P, objects=1, bytes=GB, days=360)
    assert year.lines == [
        ("PUT requests (DEEP_ARCHIVE)", D("0.00005")),
        ("storage (DEEP_ARCHIVE)", D("0.01188")),
        # 32 KiB is 1/32768 GB, billed at the archive rate for 12 months.
        ("per-object overhead (DEEP_ARCHIVE)", D("0.000000362548828125")),
        # 8 KiB is 1/131072 GB, billed at the STANDARD rate: 0.276 / 131072.
        ("per-object overhead (STANDARD)", D("0.000002105712890625")),
        ("early deletion (to day 180)", D(0)),
    ]
    assert year.total == D("0.011932468261718750")


def test_overhead_scales_with_objects_not_bytes() -> None:
    one = archive_cost(P, objects=1, bytes=GB, days=360)
    many = archive_cost(P, objects=1000, bytes=GB, days=360)
    assert many.line("storage (DEEP_ARCHIVE)") == one.line("storage (DEEP_ARCHIVE)")
    for label in ("per-object overhead (DEEP_ARCHIVE)", "per-object overhead (STANDARD)"):
        assert many.line(label) == 1000 * one.line(label)
    assert many.line("PUT requests (DEEP_ARCHIVE)") == D("0.05")
    # 40 KiB on a 4 KiB object: the overhead is ten times the data.
    tiny = archive_cost(P, objects=1, bytes=4 * KiB, days=360)
    assert tiny.line("per-object overhead (DEEP_ARCHIVE)") == 8 * tiny.line(
        "storage (DEEP_ARCHIVE)"
    )


def test_archive_requests_by_way_of_arrival() -> None:
    assert archive_cost(P, objects=10, bytes=GB, days=360, via="transition").line(
        "lifecycle transitions (DEEP_ARCHIVE)"
    ) == D("0.0005")
    # A 128 MiB container sent in 8 MiB parts: 18 PUTs at the archive rate.
    container = archive_cost(P, objects=1, bytes=128 * MiB, days=360, requests=18)
    assert container.line("PUT requests (DEEP_ARCHIVE)") == D("0.0009")
    with pytest.raises(InvalidArgument):
        archive_cost(P, objects=1, bytes=GB, days=1, via="teleport")


# -- retrieval, restored copy and egress --------------------------------------------------


def test_quote_restore_bulk() -> None:
    quote = quote_restore(P, objects=100, bytes=10 * GB, tier="Bulk", days=3)
    assert quote.lines == [
        ("retrieval (Bulk, per GB)", D("0.025")),
        ("retrieval requests (Bulk)", D("0.0025")),
        ("restored copy (STANDARD, 3 days)", D("0.023")),
    ]
    assert quote.total == D("0.0505")


def test_quote_restore_standard_tier_and_egress() -> None:
    quote = quote_restore(P, objects=1000, bytes=GB, tier="Standard", days=30, egress_bytes=GB)
    assert [amount for _, amount in quote] == [D("0.02"), D("0.1"), D("0.023"), D("0.09")]
    assert quote.total == D("0.233")
    assert quote.line("egress to the internet") == D("0.09")


def test_quote_restore_refuses_a_tier_deep_archive_lacks() -> None:
    with pytest.raises(InvalidArgument, match="Expedited"):
        quote_restore(P, objects=1, bytes=GB, tier="Expedited", days=1)


def test_egress() -> None:
    assert egress_cost(P, 10 * GB) == D("0.9")
    assert egress_cost(P, GB // 2) == D("0.045")


# -- Decimal exactness --------------------------------------------------------------------


def test_amounts_are_exact_decimals() -> None:
    # Ten lines of 0.1 * 0.02: with floats the sum would be 0.020000000000000004.
    total = Quote.of([])
    for _ in range(10):
        total = total + Quote.of([("retrieval", D("0.02") * D("0.1"))])
    assert total.total == D("0.02")
    quote = quote_restore(P, objects=3, bytes=3 * GB, tier="Bulk", days=0)
    assert all(isinstance(amount, Decimal) for _, amount in quote)
    assert quote.total == D("0.0075") + D("0.000075")
    # A third of a month is not a finite decimal: kept to 50 digits, rounded when shown.
    third = storage_cost(P, STANDARD, GB, 10)
    with localcontext(Context(prec=50)):
        assert third == D("0.023") / 3
    assert third != D("0.023") / 3  # the default 28-digit context would have lost digits
    assert Quote.of([("x", third)]).rounded() == D("0.007667")
    # Whole bytes of a GB are exact: 1 byte of egress is 0.09 / 2**30 with no rounding.
    assert egress_cost(P, 1) * GB == D("0.09")


def test_prices_read_from_config_keep_their_digits() -> None:
    prices = Prices.from_mapping(
        {
            "storage_gb_month": {"DEEP_ARCHIVE": 0.0018, "STANDARD": "0.0245"},
            "egress_gb": "0.085",
            "retrieval": {"Bulk": {"per_gb": 0.003}},
            "minimum_days": {"DEEP_ARCHIVE": 180},
        }
    )
    assert prices.storage_rate(DEEP_ARCHIVE) == D("0.0018")
    assert prices.storage_rate(STANDARD) == D("0.0245")
    assert prices.storage_rate("GLACIER") == D("0.0036")  # untouched defaults stay
    assert prices.egress_gb == D("0.085")
    assert prices.tier("Bulk") == TierPrice(per_gb=D("0.003"), per_1000_requests=D("0.025"))
    assert Prices.from_mapping(prices.to_mapping()) == prices
    assert Prices.from_mapping({}) == Prices()
    assert to_decimal(0.1) == D("0.1")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"egress": "0.09"}, "prices.egress: unknown"),
        ({"egress_gb": "-1"}, "non-negative"),
        ({"egress_gb": "cheap"}, "expected a number"),
        ({"egress_gb": True}, "expected a number"),
        ({"storage_gb_month": "0.023"}, "expected a table"),
        ({"retrieval": {"Expedited": {"per_gb": "0.1"}}}, "needs per_gb and per_1000"),
        ({"retrieval": {"Bulk": {"per_tb": "0.1"}}}, "unknown key 'per_tb'"),
        ({"month_days": 0}, "positive"),
    ],
)
def test_bad_prices_are_refused(table: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Prices.from_mapping(table)


def test_quote_invariants() -> None:
    a = Quote.of([("x", D("0.1")), ("y", D("0.2"))])
    assert a.total == D("0.3")
    b = a + Quote.of([("x", D("0.05"))])
    assert b.total == D("0.35")
    assert b.line("x") == D("0.15")
    assert b.line("missing") == 0
    assert b.describe() == "0.3500 USD (x 0.1000, y 0.2000, x 0.0500)"
    with pytest.raises(ValueError):
        Quote(total=D("1"), lines=[("x", D("0.5"))])


# -- whole-life scenarios -----------------------------------------------------------------


def test_pack_closes_containers_at_the_target() -> None:
    assert pack([60, 60, 60, 10], 100) == [120, 70]
    assert pack([100, 1], 100) == [100, 1]
    assert pack([], 100) == []


def test_scenario_one_large_file_by_hand() -> None:
    scenario = Scenario([GB], horizon_days=360, restore_tier="Bulk", restore_days=3)
    result = scenario.run(Policy(staging_days=D(3), small_object_threshold=MiB))
    assert result.blobs == 1
    assert result.containers == 0
    cold = D("0.00099") * 357 / 30  # 0.011781
    assert result.quote.lines == [
        ("PUT requests (STANDARD)", D("0.000005")),
        ("staging storage (STANDARD)", D("0.0023")),
        ("objects: COPY requests (DEEP_ARCHIVE)", D("0.00005")),
        ("objects: storage (DEEP_ARCHIVE)", cold),
        ("objects: per-object overhead (DEEP_ARCHIVE)", cold / 32768),
        ("objects: per-object overhead (STANDARD)", D("0.023") * 357 / 30 / 131072),
        ("objects: early deletion (to day 180)", D(0)),
        ("retrieval (Bulk, per GB)", D("0.0025")),
        ("retrieval requests (Bulk)", D("0.000025")),
        ("restored copy (STANDARD, 3 days)", D("0.0023")),
        ("GET requests (DEEP_ARCHIVE)", D("0.0000004")),
        ("egress to the internet", D("0.09")),
    ]
    assert cold == D("0.011781")
    assert result.floor.lines == [
        ("storage (DEEP_ARCHIVE)", D("0.01188")),
        ("retrieval (Bulk, per GB)", D("0.0025")),
        ("egress to the internet", D("0.09")),
    ]
    assert result.floor.total == D("0.10438")
    assert result.ratio > 1


def test_scenario_packs_small_files_into_containers() -> None:
    sizes = [256 * MiB] * 4
    scenario = Scenario(sizes, horizon_days=360, restore_days=3)
    policy = Policy(staging_days=D(1), small_object_threshold=GB, container_target=512 * MiB)
    result = scenario.run(policy)
    assert result.containers == 2
    assert result.blobs == 2
    lines = dict(result.quote.lines)
    # Staged in the catalog: no STANDARD PUT, no STANDARD storage.
    assert lines["PUT requests (STANDARD)"] == 0
    assert lines["staging storage (STANDARD)"] == 0
    assert lines["containers: PUT requests (DEEP_ARCHIVE)"] == D("0.0001")
    assert lines["retrieval requests (Bulk)"] == D("0.00005")
    assert lines["GET requests (DEEP_ARCHIVE)"] == D("0.0000016")  # one GET per file
    # With 8 MiB parts each 512 MiB container is 66 PUTs.
    parts = scenario.run(
        Policy(
            staging_days=D(1),
            small_object_threshold=GB,
            container_target=512 * MiB,
            part_size=8 * MiB,
        )
    )
    assert dict(parts.quote.lines)["containers: PUT requests (DEEP_ARCHIVE)"] == D("0.0066")


def test_scenario_short_horizon_pays_the_minimum() -> None:
    scenario = Scenario([GB], horizon_days=31, restore_days=1)
    result = scenario.run(Policy(staging_days=D(1)))
    early = result.quote.line("objects: early deletion (to day 180)")
    assert early == early_deletion_charge(P, GB + 32 * KiB, 30) + storage_cost(
        P, STANDARD, 8 * KiB, 150
    )
    assert early > 0


def test_one_object_per_file_costs_more_than_packing() -> None:
    sizes = [16 * KiB] * 1000 + [4 * MiB] * 10
    scenario = Scenario(sizes)
    packed = scenario.run(Policy(staging_days=D("0.5")))
    single = scenario.run(
        Policy(staging_days=D(7), small_object_threshold=0, transition="transition")
    )
    assert single.blobs == 1010
    assert packed.blobs == 1 + 10
    assert single.quote.total > packed.quote.total
    assert single.floor == packed.floor
    assert single.quote.line("objects: lifecycle transitions (DEEP_ARCHIVE)") == D("0.0505")


def test_policy_from_the_tiering_section() -> None:
    section = SimpleNamespace(
        transition_after=43200.0,
        small_object_threshold=MiB,
        container_target_size=128 * MiB,
        pack_threshold=16 * MiB,
    )
    policy = Policy.from_tiering(  # type: ignore[arg-type]
        section, part_size=8 * MiB, single_put_max=512 * MiB
    )
    assert policy.staging_days == D("0.5")
    # The gateway stages objects of up to the threshold: exactly 1 MiB is still small.
    assert policy.small_object_threshold == MiB + 1
    assert policy.pack_threshold == 16 * MiB + 1
    assert (policy.container_target, policy.part_size) == (128 * MiB, 8 * MiB)
    assert policy.single_put_max == 512 * MiB
    off = SimpleNamespace(
        transition_after=0, small_object_threshold=0, container_target_size=MiB, pack_threshold=0
    )
    assert Policy.from_tiering(off).small_object_threshold == 0  # type: ignore[arg-type]
    assert Policy.from_tiering(off).pack_threshold == 0  # type: ignore[arg-type]


def test_policy_from_the_real_config_defaults() -> None:
    from gateway.config import TieringConfig

    policy = Policy.from_tiering(TieringConfig())
    assert policy.pack_threshold == TieringConfig().pack_threshold + 1 > policy.small_object_threshold


def test_mid_size_objects_are_put_hot_then_packed() -> None:
    sizes = [4 * MiB] * 10 + [32 * MiB]
    scenario = Scenario(sizes, horizon_days=360)
    policy = Policy(staging_days=D(1), pack_threshold=16 * MiB, part_size=8 * MiB)
    result = scenario.run(policy)
    assert result.containers == 1
    assert result.blobs == 2  # one container and the 32 MiB object
    lines = dict(result.quote.lines)
    # Each mid-size object: one STANDARD PUT and one GET to pack it; the large one: 6 PUTs.
    assert lines["PUT requests (STANDARD)"] == D("0.005") * (10 + 6) / 1000
    assert lines["packing reads (STANDARD GET)"] == D("0.0004") * 10 / 1000
    assert lines["objects: COPY requests (DEEP_ARCHIVE)"] == D("0.05") / 1000
    # The 40 MiB container: create + 5 parts + complete, or one PUT under single_put_max.
    assert lines["containers: PUT requests (DEEP_ARCHIVE)"] == D("0.05") * 7 / 1000
    single = scenario.run(
        Policy(
            staging_days=D(1),
            pack_threshold=16 * MiB,
            part_size=8 * MiB,
            single_put_max=512 * MiB,
        )
    )
    assert single.quote.line("containers: PUT requests (DEEP_ARCHIVE)") == D("0.05") / 1000
    assert single.quote.line("PUT requests (STANDARD)") == D("0.005") * 11 / 1000
    assert single.quote.total < result.quote.total


def test_floor_counts_the_plaintext_when_sizes_are_sealed() -> None:
    sealed = Scenario([GB + 512], floor_bytes=GB, horizon_days=360)
    assert sealed.floor().total == D("0.10438")
    assert sealed.run(Policy()).floor.total == D("0.10438")
