"""Placement: distances, the choice rule, client networks, config tables, and the
ObjectService hook over a real SQLite catalog."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.api import Catalog
from catalog.placement import NetworkRecord, RegionRecord
from catalog.records import ROLE_MEMBER
from gateway import sealing
from gateway.config import load_config
from gateway.errors import ConfigError, InvalidArgument
from gateway.objects import ObjectService
from gateway.principals import Principal
from tiering.backends import open_backend
from tiering.cost import Prices
from tiering.placement import (
    EARTH_RADIUS_KM,
    Location,
    Network,
    Placement,
    Region,
    choose_region,
    distance_km,
    explain_region,
    locate_address,
    networks_from_config,
    parse_network,
    region_from_record,
    region_record,
    regions_from_config,
)

FRANKFURT = Region("eu-central-1", "aws-eu", "Frankfurt", Location(50.11, 8.68), ("DE", "AT"))
DUBLIN = Region("eu-west-1", "aws-eu", "Dublin", Location(53.35, -6.26), ("IE", "GB"))
VIRGINIA = Region("us-east-1", "aws-us", "N. Virginia", Location(38.9, -77.0), ("US",))
SINGAPORE = Region("ap-southeast-1", "aws-ap", "Singapore", Location(1.29, 103.85))
NOWHERE = Region("attic", "local", "the attic")  # no location, no countries
REGIONS = [FRANKFURT, DUBLIN, VIRGINIA, SINGAPORE, NOWHERE]

NETWORKS = [
    parse_network({"cidr": "10.0.0.0/8", "country": "DE"}),
    parse_network({"cidr": "10.1.0.0/16", "latitude": 1.35, "longitude": 103.8}),
    parse_network({"cidr": "2001:db8::/32", "country": "US"}),
]


def choose(**kw: object) -> Region:
    kw.setdefault("default", VIRGINIA)
    kw.setdefault("networks", NETWORKS)
    return choose_region(REGIONS, **kw)  # type: ignore[arg-type]


# -- great-circle distance ----------------------------------------------------------------


def test_great_circle_distances() -> None:
    paris, london = Location(48.8566, 2.3522), Location(51.5074, -0.1278)
    assert distance_km(paris, london) == pytest.approx(343.6, abs=1.5)
    assert distance_km(london, paris) == distance_km(paris, london)
    one_degree = distance_km(Location(0, 0), Location(0, 1))
    assert one_degree == pytest.approx(2 * math.pi * EARTH_RADIUS_KM / 360)
    assert distance_km(Location(0, 0), Location(0, 180)) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    # Across the antimeridian: Fiji to Samoa is about 1,150 km, not most of the globe.
    assert distance_km(Location(-18.1, 178.4), Location(-13.8, -171.8)) < 1300
    assert distance_km(paris, paris) == 0


def test_locations_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="latitude"):
        Location(91, 0)
    with pytest.raises(InvalidArgument, match="longitude"):
        Location(0, -180.5)
    with pytest.raises(InvalidArgument):
        Location(float("nan"), 0)


# -- the rule -----------------------------------------------------------------------------


def test_org_region_comes_first() -> None:
    user = {"country": "DE", "latitude": "1.3", "longitude": "103.8"}
    assert choose(org_region="eu-west-1", user_attributes=user) == DUBLIN
    assert choose(org_region="attic") == NOWHERE
    # An org region the table does not know is ignored, not fatal.
    assert choose(org_region="mars-1", user_attributes={"country": "AT"}) == FRANKFURT


def test_a_country_list_beats_distance() -> None:
    # An Austrian user sitting in Dublin still goes to the region serving Austria.
    assert (
        choose(user_attributes={"country": "at", "latitude": 53.3, "longitude": -6.3}) == FRANKFURT
    )
    assert choose(user_attributes={"country": "GB"}) == DUBLIN


def test_coordinates_pick_the_nearest_region() -> None:
    lisbon = {"latitude": "38.72", "longitude": "-9.14"}
    assert choose(user_attributes=lisbon) == DUBLIN
    assert choose(user_attributes={"latitude": 35.68, "longitude": 139.69}) == SINGAPORE
    assert choose(user_attributes={"latitude": 45.5, "longitude": -73.6}) == VIRGINIA
    region, reason = explain_region(REGIONS, user_attributes=lisbon, default=VIRGINIA)
    assert (region, reason) == (DUBLIN, "nearest to the user's location")


def test_a_country_nobody_lists_goes_to_the_region_nearest_it() -> None:
    assert choose(user_attributes={"country": "JP"}) == SINGAPORE
    assert choose(user_attributes={"country": "PL"}) == FRANKFURT
    assert choose(user_attributes={"country": "BR"}) == VIRGINIA
    # The config may add or move a country.
    moved = {"PL": Location(1.3, 103.8)}
    assert choose(user_attributes={"country": "PL"}, country_locations=moved) == SINGAPORE
    # A country with no known location and no region listing it: the default.
    assert choose(user_attributes={"country": "ZZ"}) == VIRGINIA


def test_client_address_through_the_network_table() -> None:
    assert choose(client_address="10.9.9.9") == FRANKFURT  # 10/8 -> DE
    assert choose(client_address="10.1.2.3") == SINGAPORE  # the longer 10.1/16 prefix wins
    assert choose(client_address="10.1.2.3:51000") == SINGAPORE
    assert choose(client_address="::ffff:10.1.2.3") == SINGAPORE
    assert choose(client_address="[2001:db8::7]:443") == VIRGINIA
    assert choose(client_address="192.0.2.1", default=DUBLIN) == DUBLIN
    assert choose(client_address="not an address", default=DUBLIN) == DUBLIN
    # A profile that says where the user is wins over the address.
    assert choose(client_address="10.1.2.3", user_attributes={"country": "IE"}) == DUBLIN


def test_unusable_profile_values_are_ignored() -> None:
    bad = {"country": "Germany", "latitude": "north", "longitude": "8"}
    assert choose(user_attributes=bad, client_address="10.9.9.9") == FRANKFURT
    assert choose(user_attributes={"latitude": "50"}, default=DUBLIN) == DUBLIN
    assert choose(user_attributes={}, default=DUBLIN) == DUBLIN


def test_regions_without_a_location_are_never_nearest() -> None:
    only_attic = [NOWHERE]
    chosen = choose_region(
        only_attic, user_attributes={"latitude": 1, "longitude": 1}, default=VIRGINIA
    )
    assert chosen == VIRGINIA


def test_two_regions_serving_one_country_split_by_distance() -> None:
    berlin = Region("de-east", "b", location=Location(52.5, 13.4), countries=("DE",))
    munich = Region("de-south", "m", location=Location(48.1, 11.6), countries=("DE",))
    regions = [munich, berlin]
    # No coordinates: the country's capital (Berlin) decides.
    assert choose_region(regions, user_attributes={"country": "DE"}, default=VIRGINIA) == berlin


def test_locate_address_prefers_the_most_specific_network() -> None:
    found = locate_address("10.1.200.1", NETWORKS)
    assert found is not None and str(found.network) == "10.1.0.0/16"
    assert locate_address("11.0.0.1", NETWORKS) is None
    assert locate_address(None, NETWORKS) is None


def test_networks_parse_and_normalise() -> None:
    net = parse_network({"cidr": "10.1.2.3/8", "country": "de"})
    assert (str(net.network), net.country, net.location) == ("10.0.0.0/8", "DE", None)
    with pytest.raises(InvalidArgument, match="country or coordinates"):
        parse_network({"cidr": "10.0.0.0/8"})
    with pytest.raises(InvalidArgument, match="not a CIDR"):
        parse_network({"cidr": "10.0.0.300/8", "country": "DE"})
    with pytest.raises(InvalidArgument, match="both latitude and longitude"):
        parse_network({"cidr": "10.0.0.0/8", "latitude": 1})
    with pytest.raises(InvalidArgument, match="unknown key"):
        parse_network({"cidr": "10.0.0.0/8", "country": "DE", "city": "Bonn"})


# -- the service over a region source -----------------------------------------------------


class FakeSource:
    def __init__(self, regions: list[RegionRecord], networks: list[NetworkRecord]) -> None:
        self.regions = regions
        self.networks = networks

    def list_regions(self) -> list[RegionRecord]:
        return list(self.regions)

    def list_networks(self) -> list[NetworkRecord]:
        return list(self.networks)


def test_placement_skips_regions_on_backends_it_cannot_use() -> None:
    source = FakeSource(
        [region_record(r, source="config") for r in (FRANKFURT, VIRGINIA)],
        [NetworkRecord("10.0.0.0/8", country="DE")],
    )
    placement = Placement(
        source, default_region="us-east-1", default_backend="local", backends={"aws-us"}
    )
    assert [r.code for r in placement.regions()] == ["us-east-1"]
    assert placement.choose(client_address="10.0.0.1").code == "us-east-1"
    everywhere = Placement(source, default_region="us-east-1", default_backend="local")
    assert everywhere.choose(client_address="10.0.0.1").code == "eu-central-1"
    assert everywhere.default().backend == "aws-us"


def test_placement_default_outside_the_table() -> None:
    placement = Placement(FakeSource([], []), default_region="local", default_backend="disk")
    assert placement.choose(user_attributes={"country": "DE"}) == Region("local", "disk")
    assert placement.region("local") is None
    assert placement.prices("local") == Prices()


def test_region_records_round_trip_with_prices() -> None:
    cheap = Prices.from_mapping({"storage_gb_month": {"DEEP_ARCHIVE": "0.0018"}})
    region = Region(
        "eu-central-1", "aws-eu", "Frankfurt", Location(50.11, 8.68), ("DE",), "b", cheap
    )
    back = region_from_record(region_record(region, source="admin"))
    assert back == region
    assert back.prices.storage_rate("DEEP_ARCHIVE") == Decimal("0.0018")
    placement = Placement(
        FakeSource([region_record(region, source="admin")], []),
        default_region="x",
        default_backend="y",
    )
    assert placement.prices("eu-central-1") == cheap
    # A stored row that no longer parses is left out, not fatal.
    broken = RegionRecord(code="bad", backend="aws-eu", countries=("Germany",))
    assert [
        r.code
        for r in Placement(
            FakeSource([broken], []), default_region="x", default_backend="y"
        ).regions()
    ] == []


# -- config -------------------------------------------------------------------------------

CONFIG = """
[storage]
default_backend = "local"
default_region = "eu-central-1"

[backends.local]
type = "localfs"
root = "{root}/blobs"

[backends.far]
type = "localfs"
root = "{root}/far"
bucket = "far-bucket"

[regions.eu-central-1]
name = "Frankfurt"
latitude = 50.11
longitude = 8.68
countries = ["DE", "at"]
backend = "local"
bucket = "cs-eu"
[regions.eu-central-1.prices]
storage_gb_month = {{ DEEP_ARCHIVE = 0.0018, STANDARD = "0.0245" }}

[regions.ap-southeast-1]
latitude = 1.29
longitude = 103.85
backend = "far"

[placement]
networks = [{{ cidr = "10.1.0.0/16", country = "SG" }}, {{ cidr = "10.0.0.0/8", latitude = 50, longitude = 8 }}]
country_locations = {{ SG = [1.35, 103.8] }}
"""


def write_config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "coolstorage.toml"
    path.write_text(text.format(root=tmp_path))
    return path


def test_regions_and_networks_from_config(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path), env={})
    regions = {r.code: r for r in regions_from_config(config)}
    eu = regions["eu-central-1"]
    assert (eu.name, eu.backend, eu.bucket, eu.countries) == (
        "Frankfurt",
        "local",
        "cs-eu",
        ("DE", "AT"),
    )
    assert eu.location == Location(50.11, 8.68)
    assert eu.prices.storage_rate("DEEP_ARCHIVE") == Decimal("0.0018")
    assert eu.prices.storage_rate("STANDARD") == Decimal("0.0245")
    ap = regions["ap-southeast-1"]
    assert ap.bucket == "far-bucket"  # from the backend's own option
    assert ap.prices == Prices()
    assert [str(n.network) for n in networks_from_config(config)] == ["10.1.0.0/16", "10.0.0.0/8"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('backend = "far"', 'backend = "moon"'),
            "regions.ap-southeast-1.backend: no backend named 'moon'",
        ),
        (('countries = ["DE", "at"]', 'countries = ["Germany"]'), "regions.eu-central-1.countries"),
        (("latitude = 1.29", "latitude = 91"), "regions.ap-southeast-1"),
        (("latitude = 1.29\n", ""), "both latitude and longitude"),
        (('name = "Frankfurt"', 'nmae = "Frankfurt"'), "did you mean regions.eu-central-1.name"),
        (("DEEP_ARCHIVE = 0.0018", 'DEEP_ARCHIVE = "free"'), "expected a number"),
        (('cidr = "10.1.0.0/16"', 'cidr = "10.1.0.0/33"'), "placement.networks"),
        (("SG = [1.35, 103.8]", "SG = [1.35]"), "country_locations.SG"),
    ],
)
def test_config_mistakes_name_the_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in CONFIG
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(write_config(tmp_path, CONFIG.replace(old, new)), env={})


def test_no_regions_configured_keeps_the_old_defaults(tmp_path: Path) -> None:
    config = load_config(env={})
    assert config.regions == {}
    assert regions_from_config(config) == []
    assert networks_from_config(config) == []


# -- the ObjectService hook ---------------------------------------------------------------


@pytest.fixture
def placed(tmp_path: Path) -> Iterator[ObjectService]:
    config = load_config(write_config(tmp_path), env={})
    catalog = Catalog(f"sqlite:///{tmp_path}/catalog.db", cache_ttl=0)
    catalog.upgrade()
    # localfs has no bucket option (the config's "far" names one to show the default).
    backends = {
        name: open_backend(name, {k: v for k, v in b.options.items() if k != "bucket"})
        for name, b in config.backends.items()
    }
    svc = ObjectService(
        catalog,
        backends,
        sealing.MasterKeyring(sealing.MasterKey.generate()),
        default_backend="local",
        default_region="eu-central-1",
        small_object_threshold=0,
        placement=Placement.from_config(config, catalog, backends=backends),
    )
    yield svc
    svc.close()
    catalog.close()


def test_create_bucket_follows_placement(placed: ObjectService) -> None:
    placed.ensure_org("acme")
    alice = Principal(name="alice", user_id=None, roles={"acme": ROLE_MEMBER})
    near = placed.create_bucket(alice, "acme", "tokyo-photos", user_attributes={"country": "JP"})
    assert (near.region, near.backend) == ("ap-southeast-1", "far")
    by_address = placed.create_bucket(alice, "acme", "office", client_address="10.1.0.9")
    assert (by_address.region, by_address.backend) == ("ap-southeast-1", "far")
    home = placed.create_bucket(alice, "acme", "home", client_address="192.0.2.1")
    assert (home.region, home.backend) == ("eu-central-1", "local")
    # An explicit known region brings its backend; an unknown one keeps the default backend.
    named = placed.create_bucket(alice, "acme", "named", region="ap-southeast-1")
    assert (named.region, named.backend) == ("ap-southeast-1", "far")
    odd = placed.create_bucket(alice, "acme", "odd", region="mars-1")
    assert (odd.region, odd.backend) == ("mars-1", "local")
    # The org's region setting beats the user's location.
    org = placed.catalog.get_org("acme")
    assert org is not None
    placed.catalog.update_org_settings(org.id, {"region": "eu-central-1"})
    pinned = placed.create_bucket(alice, "acme", "pinned", user_attributes={"country": "SG"})
    assert (pinned.region, pinned.backend) == ("eu-central-1", "local")
    assert placed.catalog.get_bucket(org.id, "tokyo-photos").backend == "far"  # type: ignore[union-attr]


def test_network_objects_need_a_place() -> None:
    import ipaddress

    with pytest.raises(InvalidArgument):
        Network(ipaddress.ip_network("10.0.0.0/8"))


def test_create_bucket_reads_the_users_profile(placed: ObjectService) -> None:
    placed.ensure_org("acme")
    user = placed.catalog.create_user_from(
        "bob", source="ldap", profile={"country": "SG", "display_name": "Bob"}
    )
    bob = Principal(name="bob", user_id=user.id, roles={"acme": ROLE_MEMBER})
    bucket = placed.create_bucket(bob, "acme", "bobs-things")
    assert (bucket.region, bucket.backend) == ("ap-southeast-1", "far")
    # Attributes given by the caller win over the stored profile.
    mine = placed.create_bucket(bob, "acme", "bobs-other", user_attributes={"country": "DE"})
    assert (mine.region, mine.backend) == ("eu-central-1", "local")
