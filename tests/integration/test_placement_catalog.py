"""The regions and client network tables on SQLite and on a MariaDB server started for the
session (tests/fixtures/mariadb.py), the sync rule between config and admin rows, the 0006
migration both ways, and a Gateway opened from a config with regions."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog.api import Catalog
from catalog.placement import NetworkRecord, RegionRecord, SyncResult
from catalog.records import ROLE_MEMBER
from gateway.app import Gateway
from gateway.config import load_config
from gateway.errors import InvalidArgument
from gateway.principals import Principal
from tests.integration.catalog_support import ENGINES, fresh_catalog_url
from tiering.cost import Prices
from tiering.placement import Placement


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def url(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_catalog_url(engine_name, request, tmp_path)


@pytest.fixture
def catalog(url: str) -> Iterator[Catalog]:
    cat = Catalog(url, cache_ttl=30)
    cat.upgrade()
    yield cat
    cat.close()


PRICES = Prices.from_mapping(
    {"storage_gb_month": {"DEEP_ARCHIVE": "0.0018"}, "egress_gb": "0.0850000001"}
).to_mapping()


def frankfurt(**changes: object) -> RegionRecord:
    values: dict[str, object] = {
        "code": "eu-central-1",
        "backend": "aws-eu",
        "name": "Frankfurt am Main",
        "latitude": 50.110924,
        "longitude": 8.682127,
        "countries": ("DE", "AT"),
        "bucket": "cs-eu",
        "prices": PRICES,
        "source": "config",
    }
    values.update(changes)
    return RegionRecord(**values)  # type: ignore[arg-type]


def test_regions_round_trip(catalog: Catalog) -> None:
    assert catalog.list_regions() == []
    stored = catalog.put_region(frankfurt(), source="config")
    assert stored == frankfurt()
    assert stored.updated_at is not None
    # Coordinates keep their digits (DOUBLE, not FLOAT, on MariaDB); prices keep theirs.
    got = catalog.get_region("eu-central-1")
    assert got is not None
    assert (got.latitude, got.longitude) == (50.110924, 8.682127)
    assert Prices.from_mapping(got.prices or {}).egress_gb == Decimal("0.0850000001")
    assert got.countries == ("DE", "AT")
    bare = catalog.put_region(RegionRecord(code="attic", backend="local"))
    assert (bare.latitude, bare.prices, bare.countries, bare.source) == (None, None, (), "admin")
    assert [r.code for r in catalog.list_regions()] == ["attic", "eu-central-1"]
    # Replacing a row, then removing it; the cache follows at once on this instance.
    catalog.put_region(frankfurt(name="FRA"))
    assert catalog.get_region("eu-central-1").name == "FRA"  # type: ignore[union-attr]
    assert catalog.delete_region("eu-central-1") is True
    assert catalog.delete_region("eu-central-1") is False
    assert [r.code for r in catalog.list_regions()] == ["attic"]
    with pytest.raises(InvalidArgument):
        catalog.put_region(frankfurt(), source="whim")
    with pytest.raises(InvalidArgument):
        catalog.put_region(frankfurt(code="x" * 65))


def test_region_codes_are_case_sensitive(catalog: Catalog) -> None:
    catalog.put_region(RegionRecord(code="Local", backend="a"))
    catalog.put_region(RegionRecord(code="local", backend="b"))
    assert {r.code: r.backend for r in catalog.list_regions()} == {"Local": "a", "local": "b"}


def test_sync_keeps_admin_rows_and_drops_stale_config_rows(catalog: Catalog) -> None:
    first = catalog.sync_regions(
        [frankfurt(), RegionRecord(code="us-east-1", backend="aws-us", source="config")]
    )
    assert first == SyncResult(added=("eu-central-1", "us-east-1"))
    assert (
        catalog.sync_regions([frankfurt(), RegionRecord(code="us-east-1", backend="aws-us")])
        == SyncResult()
    )
    # The file changes a config row: refreshed. An admin edits another: kept from then on.
    catalog.put_region(RegionRecord(code="us-east-1", backend="aws-us-2"), source="admin")
    second = catalog.sync_regions(
        [frankfurt(bucket="cs-eu-2"), RegionRecord(code="us-east-1", backend="aws-us")]
    )
    assert second == SyncResult(updated=("eu-central-1",), kept=("us-east-1",))
    assert catalog.get_region("eu-central-1").bucket == "cs-eu-2"  # type: ignore[union-attr]
    assert catalog.get_region("us-east-1").backend == "aws-us-2"  # type: ignore[union-attr]
    # The file drops both: the config row goes, the admin row stays.
    third = catalog.sync_regions([])
    assert third == SyncResult(removed=("eu-central-1",))
    assert [r.code for r in catalog.list_regions()] == ["us-east-1"]
    with pytest.raises(InvalidArgument, match="twice"):
        catalog.sync_regions([frankfurt(), frankfurt()])


def test_networks_round_trip_and_sync(catalog: Catalog) -> None:
    catalog.put_network(NetworkRecord("10.0.0.0/8", country="DE"))
    catalog.put_network(NetworkRecord("2001:db8::/32", latitude=1.35, longitude=103.8))
    assert catalog.list_networks() == [
        NetworkRecord("10.0.0.0/8", country="DE", source="admin"),
        NetworkRecord("2001:db8::/32", latitude=1.35, longitude=103.8, source="admin"),
    ]
    result = catalog.sync_networks(
        [
            NetworkRecord("10.0.0.0/8", country="FR", source="config"),
            NetworkRecord("192.0.2.0/24", country="US", source="config"),
        ]
    )
    assert result == SyncResult(added=("192.0.2.0/24",), kept=("10.0.0.0/8",))
    assert catalog.sync_networks([NetworkRecord("192.0.2.0/24", country="CA")]) == SyncResult(
        updated=("192.0.2.0/24",)
    )
    assert catalog.sync_networks([]) == SyncResult(removed=("192.0.2.0/24",))
    assert catalog.delete_network("10.0.0.0/8") is True
    assert [n.cidr for n in catalog.list_networks()] == ["2001:db8::/32"]


def test_placement_reads_admin_changes_at_once(catalog: Catalog) -> None:
    catalog.sync_regions(
        [
            frankfurt(),
            RegionRecord(
                code="us-east-1", backend="aws-us", latitude=38.9, longitude=-77.0, source="config"
            ),
        ]
    )
    placement = Placement(catalog, default_region="us-east-1", default_backend="aws-us")
    assert placement.choose(user_attributes={"country": "AT"}).code == "eu-central-1"
    assert placement.prices("eu-central-1").storage_rate("DEEP_ARCHIVE") == Decimal("0.0018")
    catalog.put_region(frankfurt(countries=("DE",)), source="admin")
    assert placement.choose(user_attributes={"country": "AT"}).code == "eu-central-1"  # nearest
    catalog.delete_region("eu-central-1")
    assert placement.choose(user_attributes={"country": "AT"}).code == "us-east-1"


def test_migration_0006_goes_down_and_up(catalog: Catalog) -> None:
    from alembic import command

    config = catalog._alembic_config()
    engine = catalog._engine

    def run(step: str, revision: str) -> None:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            getattr(command, step)(config, revision)

    catalog.put_region(frankfurt())
    run("downgrade", "0005")
    assert "regions" not in sa.inspect(engine).get_table_names()
    assert "placement_networks" not in sa.inspect(engine).get_table_names()
    run("upgrade", "head")
    assert catalog.current_revision() == catalog.head_revision()
    assert {"regions", "placement_networks"} <= set(sa.inspect(engine).get_table_names())


CONFIG = """
[server]
data_dir = "{root}/var"

[catalog]
url = "{url}"

[storage]
default_backend = "local"
default_region = "eu-central-1"

[backends.local]
type = "localfs"
root = "{root}/blobs"

[backends.far]
type = "localfs"
root = "{root}/far"

[regions.eu-central-1]
latitude = 50.11
longitude = 8.68
countries = ["DE"]
backend = "local"

[regions.ap-southeast-1]
latitude = 1.29
longitude = 103.85
backend = "far"

[placement]
networks = [{{ cidr = "10.1.0.0/16", country = "SG" }}]
"""


def test_gateway_places_buckets_from_its_config(url: str, tmp_path: Path) -> None:
    path = tmp_path / "coolstorage.toml"
    path.write_text(CONFIG.format(root=tmp_path, url=url))
    gateway = Gateway.open(load_config(path, env={}))
    try:
        assert [r.code for r in gateway.catalog.list_regions()] == [
            "ap-southeast-1",
            "eu-central-1",
        ]
        assert [n.cidr for n in gateway.catalog.list_networks()] == ["10.1.0.0/16"]
        objects = gateway.objects
        objects.ensure_org("acme")
        alice = Principal(name="alice", user_id=None, roles={"acme": ROLE_MEMBER})
        far = objects.create_bucket(alice, "acme", "far-away", client_address="10.1.2.3")
        assert (far.region, far.backend) == ("ap-southeast-1", "far")
        near = objects.create_bucket(alice, "acme", "near", user_attributes={"country": "DE"})
        assert (near.region, near.backend) == ("eu-central-1", "local")
    finally:
        gateway.close()
