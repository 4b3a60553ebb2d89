"""Placement: which region (and so which backend) a new bucket lives in.

DESIGN.md ("Tiering"): a new bucket goes to the org's configured region, else the region
nearest the user, else the default. In detail, :func:`choose_region` tries in order:

1. the org's region (org setting ``region``), when the table knows it;
2. a region whose country list names the user's country: the operator's explicit word
   (for example a data residency rule), so it wins over distance;
3. the region nearest the user, by great-circle distance, among regions with a location:
   the user's coordinates (profile or LDAP ``latitude``/``longitude``), else their
   country's location (:data:`COUNTRY_LOCATIONS`, the capital, or the config's
   ``placement.country_locations``);
4. when the profile says nothing, the same two steps for the client address, located
   through the client network table (most specific CIDR first);
5. the default region (``storage.default_region``).

Regions come from the config (``[regions.CODE]`` tables) and live in the catalog's regions
table so the admin API can change them (:mod:`catalog.placement`); :class:`Placement` reads
them from there on each choice (cached by the catalog) and is what
:class:`gateway.objects.ObjectService` calls when a bucket is created.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gateway.errors import InvalidArgument
from tiering.cost import Prices

if TYPE_CHECKING:
    from catalog.placement import NetworkRecord, RegionRecord, SyncResult
    from gateway.config import Config

log = logging.getLogger(__name__)

#: Mean Earth radius in kilometres (IUGG).
EARTH_RADIUS_KM = 6371.0088

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Location:
    """A point on Earth in degrees."""

    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latitude) and -90 <= self.latitude <= 90):
            raise InvalidArgument(f"latitude {self.latitude!r}: expected -90 to 90 degrees")
        if not (math.isfinite(self.longitude) and -180 <= self.longitude <= 180):
            raise InvalidArgument(f"longitude {self.longitude!r}: expected -180 to 180 degrees")


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance between ``a`` and ``b`` (haversine, spherical Earth)."""
    lat1, lon1 = math.radians(a.latitude), math.radians(a.longitude)
    lat2, lon2 = math.radians(b.latitude), math.radians(b.longitude)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class Region:
    """A place buckets can live: a backend instance (and its bucket) with a location, the
    countries it serves and its prices."""

    code: str
    backend: str
    name: str = ""
    location: Location | None = None
    #: ISO 3166-1 alpha-2 codes, upper case.
    countries: tuple[str, ...] = ()
    bucket: str = ""
    prices: Prices = field(default_factory=Prices)


@dataclass(frozen=True)
class Network:
    """A client network and where it is: a country, coordinates, or both."""

    network: IPNetwork
    country: str | None = None
    location: Location | None = None

    def __post_init__(self) -> None:
        if self.country is None and self.location is None:
            raise InvalidArgument(f"network {self.network}: give a country or coordinates")


#: Approximate locations (the capital) of countries, for users whose profile names a
#: country but no coordinates. ``placement.country_locations`` adds or corrects entries.
COUNTRY_LOCATIONS: Mapping[str, Location] = {
    code: Location(lat, lon)
    for code, (lat, lon) in {
        "AD": (42.5, 1.5), "AE": (24.5, 54.4), "AR": (-34.6, -58.4), "AT": (48.2, 16.4),
        "AU": (-35.3, 149.1), "BE": (50.8, 4.4), "BG": (42.7, 23.3), "BR": (-15.8, -47.9),
        "BY": (53.9, 27.6), "CA": (45.4, -75.7), "CH": (46.9, 7.4), "CL": (-33.4, -70.7),
        "CN": (39.9, 116.4), "CO": (4.7, -74.1), "CY": (35.2, 33.4), "CZ": (50.1, 14.4),
        "DE": (52.5, 13.4), "DK": (55.7, 12.6), "EE": (59.4, 24.7), "EG": (30.0, 31.2),
        "ES": (40.4, -3.7), "FI": (60.2, 24.9), "FR": (48.9, 2.4), "GB": (51.5, -0.1),
        "GR": (38.0, 23.7), "HK": (22.3, 114.2), "HR": (45.8, 16.0), "HU": (47.5, 19.0),
        "ID": (-6.2, 106.8), "IE": (53.3, -6.3), "IL": (31.8, 35.2), "IN": (28.6, 77.2),
        "IS": (64.1, -21.9), "IT": (41.9, 12.5), "JP": (35.7, 139.7), "KE": (-1.3, 36.8),
        "KR": (37.6, 127.0), "LI": (47.1, 9.5), "LT": (54.7, 25.3), "LU": (49.6, 6.1),
        "LV": (56.9, 24.1), "MA": (34.0, -6.8), "MC": (43.7, 7.4), "MT": (35.9, 14.5),
        "MX": (19.4, -99.1), "MY": (3.1, 101.7), "NG": (9.1, 7.5), "NL": (52.4, 4.9),
        "NO": (59.9, 10.8), "NZ": (-41.3, 174.8), "PE": (-12.0, -77.0), "PH": (14.6, 121.0),
        "PK": (33.7, 73.1), "PL": (52.2, 21.0), "PT": (38.7, -9.1), "RO": (44.4, 26.1),
        "RS": (44.8, 20.5), "RU": (55.8, 37.6), "SA": (24.7, 46.7), "SE": (59.3, 18.1),
        "SG": (1.3, 103.8), "SI": (46.1, 14.5), "SK": (48.1, 17.1), "TH": (13.8, 100.5),
        "TR": (39.9, 32.9), "TW": (25.0, 121.6), "UA": (50.5, 30.5), "US": (38.9, -77.0),
        "VN": (21.0, 105.8), "ZA": (-25.7, 28.2),
    }.items()
}  # fmt: skip


# -- parsing (config tables, stored records, profile attributes) ---------------------------


def parse_country(value: object, what: str = "country") -> str:
    """An ISO 3166-1 alpha-2 code, upper case; ``InvalidArgument`` otherwise."""
    if not isinstance(value, str) or len(value.strip()) != 2 or not value.strip().isalpha():
        raise InvalidArgument(f"{what}: expected a two-letter country code, got {value!r}")
    return value.strip().upper()


def _number(value: object, what: str) -> float:
    if isinstance(value, bool):
        raise InvalidArgument(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise InvalidArgument(f"{what}: expected a number, got {value!r}")


def parse_location(latitude: object, longitude: object, what: str = "location") -> Location | None:
    """A :class:`Location` from two values (numbers or numeric strings); None when both
    are missing or empty; ``InvalidArgument`` when only one is given or either is bad."""
    missing = [v is None or v == "" for v in (latitude, longitude)]
    if all(missing):
        return None
    if any(missing):
        raise InvalidArgument(f"{what}: give both latitude and longitude")
    try:
        return Location(
            _number(latitude, f"{what}.latitude"), _number(longitude, f"{what}.longitude")
        )
    except InvalidArgument as error:
        raise InvalidArgument(f"{what}: {error}") from None


def parse_network(table: Mapping[str, Any]) -> Network:
    """A :class:`Network` from ``{cidr = "192.0.2.0/24", country = "DE"}`` or
    ``{cidr, latitude, longitude}`` (host bits are cleared: ``10.1.2.3/8`` is ``10.0.0.0/8``)."""
    if not isinstance(table, Mapping):
        raise InvalidArgument("a network is a table {cidr, country} or {cidr, latitude, longitude}")
    unknown = set(table) - {"cidr", "country", "latitude", "longitude"}
    if unknown:
        raise InvalidArgument(f"network: unknown key {sorted(unknown)[0]!r}")
    cidr = table.get("cidr")
    if not isinstance(cidr, str):
        raise InvalidArgument('network: cidr is required ("192.0.2.0/24")')
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise InvalidArgument(f"network {cidr!r}: not a CIDR") from None
    country = table.get("country")
    return Network(
        network=network,
        country=None
        if country in (None, "")
        else parse_country(country, f"network {cidr}.country"),
        location=parse_location(table.get("latitude"), table.get("longitude"), f"network {cidr}"),
    )


def parse_country_locations(table: Mapping[str, Any]) -> dict[str, Location]:
    """``{XX = [latitude, longitude]}`` as locations by country code."""
    if not isinstance(table, Mapping):
        raise InvalidArgument("country_locations: expected a table {XX = [latitude, longitude]}")
    result: dict[str, Location] = {}
    for code, value in table.items():
        country = parse_country(code, f"country_locations.{code}")
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise InvalidArgument(f"country_locations.{code}: expected [latitude, longitude]")
        location = parse_location(value[0], value[1], f"country_locations.{code}")
        assert location is not None
        result[country] = location
    return result


def region_from_record(record: RegionRecord) -> Region:
    """A :class:`Region` from its catalog row (prices over the list-price defaults)."""
    return Region(
        code=record.code,
        backend=record.backend,
        name=record.name,
        location=parse_location(record.latitude, record.longitude, f"region {record.code}"),
        countries=tuple(
            parse_country(c, f"region {record.code}.countries") for c in record.countries
        ),
        bucket=record.bucket,
        prices=Prices.from_mapping(record.prices) if record.prices else Prices(),
    )


def region_record(region: Region, *, source: str) -> RegionRecord:
    """The catalog row of ``region``."""
    from catalog.placement import RegionRecord

    return RegionRecord(
        code=region.code,
        backend=region.backend,
        name=region.name,
        latitude=region.location.latitude if region.location else None,
        longitude=region.location.longitude if region.location else None,
        countries=region.countries,
        bucket=region.bucket,
        prices=region.prices.to_mapping(),
        source=source,
    )


def network_from_record(record: NetworkRecord) -> Network:
    """A :class:`Network` from its catalog row."""
    return parse_network(
        {
            "cidr": record.cidr,
            "country": record.country,
            "latitude": record.latitude,
            "longitude": record.longitude,
        }
    )


def network_record(network: Network, *, source: str) -> NetworkRecord:
    """The catalog row of ``network``."""
    from catalog.placement import NetworkRecord

    return NetworkRecord(
        cidr=str(network.network),
        country=network.country,
        latitude=network.location.latitude if network.location else None,
        longitude=network.location.longitude if network.location else None,
        source=source,
    )


def user_location(attributes: Mapping[str, Any] | None) -> tuple[str | None, Location | None]:
    """The country and coordinates a profile (``Identity.attributes``) gives, each None when
    absent or unusable: a bad value in a directory must not stop a bucket being created."""
    if not attributes:
        return None, None
    country: str | None = None
    location: Location | None = None
    raw_country = attributes.get("country")
    if raw_country:
        try:
            country = parse_country(raw_country)
        except InvalidArgument:
            log.debug("ignoring the profile's country %r", raw_country)
    try:
        location = parse_location(attributes.get("latitude"), attributes.get("longitude"))
    except InvalidArgument as error:
        log.debug("ignoring the profile's coordinates: %s", error)
    return country, location


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = value.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def locate_address(client_address: str | None, networks: Iterable[Network]) -> Network | None:
    """The most specific network holding ``client_address`` (``1.2.3.4``, ``::1``,
    ``1.2.3.4:5678``, ``[::1]:80``; IPv4-mapped IPv6 counts as IPv4), or None."""
    if not client_address:
        return None
    address = _address(client_address)
    if address is None:
        return None
    best: Network | None = None
    for candidate in networks:
        net = candidate.network
        if (
            net.version == address.version
            and address in net
            and (best is None or net.prefixlen > best.network.prefixlen)
        ):
            best = candidate
    return best


# -- the rule ------------------------------------------------------------------------------


def _nearest(regions: Sequence[Region], where: Location) -> Region | None:
    located = [r for r in regions if r.location is not None]
    if not located:
        return None
    # Ties (two regions in one city) go to the smaller code, so the choice is stable.
    return min(located, key=lambda r: (distance_km(where, r.location), r.code))  # type: ignore[arg-type]


def _by_country(
    regions: Sequence[Region], country: str, locations: Mapping[str, Location]
) -> Region | None:
    serving = [r for r in regions if country in r.countries]
    if not serving:
        return None
    where = locations.get(country)
    if where is not None and len(serving) > 1:
        nearest = _nearest(serving, where)
        if nearest is not None:
            return nearest
    return min(serving, key=lambda r: r.code)


def explain_region(
    regions: Sequence[Region],
    *,
    org_region: str | None = None,
    user_attributes: Mapping[str, Any] | None = None,
    client_address: str | None = None,
    default: Region,
    networks: Sequence[Network] = (),
    country_locations: Mapping[str, Location] | None = None,
) -> tuple[Region, str]:
    """:func:`choose_region` and the reason, for logs and the audit trail."""
    locations = {**COUNTRY_LOCATIONS, **(country_locations or {})}
    by_code = {r.code: r for r in regions}
    if org_region:
        if org_region in by_code:
            return by_code[org_region], "org region"
        log.warning("the org's region %r is not in the regions table; ignoring it", org_region)

    def locate(
        country: str | None, where: Location | None, whose: str
    ) -> tuple[Region, str] | None:
        if country is not None:
            serving = _by_country(regions, country, locations)
            if serving is not None:
                return serving, f"{whose} country {country}"
        if where is not None:
            nearest = _nearest(regions, where)
            if nearest is not None:
                return nearest, f"nearest to the {whose} location"
        if country is not None and country in locations:
            nearest = _nearest(regions, locations[country])
            if nearest is not None:
                return nearest, f"nearest to the {whose} country {country}"
        return None

    country, where = user_location(user_attributes)
    found = locate(country, where, "user's")
    if found is None and country is None and where is None:
        network = locate_address(client_address, networks)
        if network is not None:
            found = locate(network.country, network.location, "client network's")
    return found if found is not None else (default, "default region")


def choose_region(
    regions: Sequence[Region],
    *,
    org_region: str | None = None,
    user_attributes: Mapping[str, Any] | None = None,
    client_address: str | None = None,
    default: Region,
    networks: Sequence[Network] = (),
    country_locations: Mapping[str, Location] | None = None,
) -> Region:
    """The region a new bucket goes to (the rule is in the module docstring).

    ``org_region`` is the org's ``region`` setting; ``user_attributes`` the user's profile
    (``country``, ``latitude``, ``longitude``: :attr:`gateway.authn.Identity.attributes`);
    ``client_address`` the request's peer address, located through ``networks``.
    ``country_locations`` adds to or corrects :data:`COUNTRY_LOCATIONS`.
    """
    region, _ = explain_region(
        regions,
        org_region=org_region,
        user_attributes=user_attributes,
        client_address=client_address,
        default=default,
        networks=networks,
        country_locations=country_locations,
    )
    return region


# -- the service ObjectService calls -------------------------------------------------------


class PlacementSource(Protocol):
    """Where :class:`Placement` reads regions and networks (the catalog)."""

    def list_regions(self) -> list[RegionRecord]: ...

    def list_networks(self) -> list[NetworkRecord]: ...


class Placement:
    """Chooses regions for new buckets from the catalog's regions and networks.

    ``default_region``/``default_backend`` are ``storage.default_region`` and
    ``storage.default_backend``: the default region is the table's row of that code, or
    else that code on that backend. ``backends`` names the backends this process opened:
    a region on any other backend is never chosen (it is logged once), so a bucket is
    never placed where the gateway cannot write.
    """

    def __init__(
        self,
        source: PlacementSource,
        *,
        default_region: str,
        default_backend: str,
        backends: Collection[str] | None = None,
        country_locations: Mapping[str, Location] | None = None,
    ) -> None:
        self.source = source
        self.default_region = default_region
        self.default_backend = default_backend
        self.backends = frozenset(backends) if backends is not None else None
        self.country_locations = dict(country_locations or {})
        self._warned: set[str] = set()

    @classmethod
    def from_config(
        cls, config: Config, catalog: Any, *, backends: Collection[str] | None = None
    ) -> Placement:
        """Copy the config's regions and networks into ``catalog`` (see
        :meth:`catalog.placement.PlacementQueries.sync_regions`) and build the placement."""
        sync_config(config, catalog)
        return cls(
            catalog,
            default_region=config.storage.default_region,
            default_backend=config.storage.default_backend,
            backends=backends,
            country_locations=parse_country_locations(config.placement.country_locations),
        )

    def regions(self) -> list[Region]:
        """The regions new buckets may go to (unusable rows are left out and logged)."""
        result: list[Region] = []
        for record in self.source.list_regions():
            try:
                region = region_from_record(record)
            except InvalidArgument as error:
                self._warn(record.code, f"region {record.code} is unusable: {error}")
                continue
            if self.backends is not None and region.backend not in self.backends:
                self._warn(
                    record.code,
                    f"region {record.code} names backend {region.backend!r}, which this "
                    "gateway has not configured; no bucket is placed there",
                )
                continue
            result.append(region)
        return result

    def networks(self) -> list[Network]:
        """The client network table."""
        result: list[Network] = []
        for record in self.source.list_networks():
            try:
                result.append(network_from_record(record))
            except InvalidArgument as error:
                self._warn(record.cidr, f"network {record.cidr} is unusable: {error}")
        return result

    def region(self, code: str) -> Region | None:
        """The usable region called ``code``, or None."""
        return next((r for r in self.regions() if r.code == code), None)

    def default(self, regions: Sequence[Region] | None = None) -> Region:
        """The default region."""
        for region in self.regions() if regions is None else regions:
            if region.code == self.default_region:
                return region
        return Region(code=self.default_region, backend=self.default_backend)

    def prices(self, code: str) -> Prices:
        """The prices of region ``code`` (the list prices when the table does not know it),
        for quotes on buckets placed there."""
        region = self.region(code)
        return region.prices if region is not None else Prices()

    def choose(
        self,
        *,
        org_region: str | None = None,
        user_attributes: Mapping[str, Any] | None = None,
        client_address: str | None = None,
    ) -> Region:
        """The region for a new bucket (see :func:`choose_region`)."""
        regions = self.regions()
        region, reason = explain_region(
            regions,
            org_region=org_region,
            user_attributes=user_attributes,
            client_address=client_address,
            default=self.default(regions),
            networks=self.networks() if client_address else (),
            country_locations=self.country_locations,
        )
        log.debug("placement: region %s (%s)", region.code, reason)
        return region

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)


# -- config ----------------------------------------------------------------------------------


def regions_from_config(config: Config) -> list[Region]:
    """The ``[regions.CODE]`` tables as regions."""
    return [
        Region(
            code=code,
            backend=rc.backend,
            name=rc.name,
            location=parse_location(rc.latitude, rc.longitude, f"regions.{code}"),
            countries=tuple(parse_country(c, f"regions.{code}.countries") for c in rc.countries),
            bucket=rc.bucket,
            prices=Prices.from_mapping(rc.prices),
        )
        for code, rc in config.regions.items()
    ]


def networks_from_config(config: Config) -> list[Network]:
    """``placement.networks`` as networks."""
    return [parse_network(table) for table in config.placement.networks]


def sync_config(config: Config, catalog: Any) -> tuple[SyncResult, SyncResult]:
    """Copy the config's regions and networks into the catalog; what changed, for each."""
    from catalog.placement import SOURCE_CONFIG

    regions = catalog.sync_regions(
        [region_record(r, source=SOURCE_CONFIG) for r in regions_from_config(config)]
    )
    networks = catalog.sync_networks(
        [network_record(n, source=SOURCE_CONFIG) for n in networks_from_config(config)]
    )
    for what, result in (("regions", regions), ("networks", networks)):
        if result.kept:
            log.info(
                "placement: %s %s were changed through the admin API; the config's values "
                "are not applied",
                what,
                ", ".join(result.kept),
            )
    return regions, networks
