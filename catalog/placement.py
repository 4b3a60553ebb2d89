"""Catalog queries for placement: the regions table and the client network table.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_placement`. The catalog stores prices as the JSON the cost
model writes (:meth:`tiering.cost.Prices.to_mapping`) and never interprets them;
:mod:`tiering.placement` turns these records into regions.

Regions come from the TOML file and from the admin API. :meth:`PlacementQueries.sync_regions`
copies the file's regions in at start-up: a region the catalog lacks is added, a region the
file put there before is refreshed, and a region an admin has written since
(``source = "admin"``) is left alone, so an admin's change survives restarts; removing it
through the API (or writing it with ``source="config"``) gives the file back its say.
The client network table follows the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from catalog.base import CatalogBase
from catalog.rows import now as _now
from catalog.tables_placement import placement_networks, regions
from gateway.errors import InvalidArgument

#: ``source`` of rows copied from the config file.
SOURCE_CONFIG = "config"
#: ``source`` of rows written through the admin API.
SOURCE_ADMIN = "admin"
_SOURCES = (SOURCE_CONFIG, SOURCE_ADMIN)

_REGIONS_KEY = ("placement", "regions")
_NETWORKS_KEY = ("placement", "networks")


@dataclass(frozen=True)
class RegionRecord:
    """One row of the regions table (see :mod:`catalog.tables_placement`)."""

    code: str
    backend: str
    name: str = ""
    latitude: float | None = None
    longitude: float | None = None
    countries: tuple[str, ...] = ()
    bucket: str = ""
    #: The cost model's price JSON; None means the built-in list prices.
    prices: Mapping[str, Any] | None = None
    source: str = SOURCE_ADMIN
    updated_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class NetworkRecord:
    """One row of the client network table: a CIDR and a country or coordinates."""

    cidr: str
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    source: str = SOURCE_ADMIN
    updated_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SyncResult:
    """What a sync changed: codes (or CIDRs) added, refreshed, kept as an admin wrote them,
    and config rows removed because the file no longer names them."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def _region(row: Row[Any]) -> RegionRecord:
    prices = row.prices
    return RegionRecord(
        code=row.code,
        name=row.name,
        latitude=row.latitude,
        longitude=row.longitude,
        countries=tuple(row.countries or ()),
        backend=row.backend,
        bucket=row.bucket,
        prices=dict(prices) if prices is not None else None,
        source=row.source,
        updated_at=row.updated_at,
    )


def _network(row: Row[Any]) -> NetworkRecord:
    return NetworkRecord(
        cidr=row.cidr,
        country=row.country,
        latitude=row.latitude,
        longitude=row.longitude,
        source=row.source,
        updated_at=row.updated_at,
    )


def _check_source(source: str) -> None:
    if source not in _SOURCES:
        raise InvalidArgument(f"source: expected one of {', '.join(_SOURCES)}, got {source!r}")


def _region_values(record: RegionRecord, source: str, now: datetime) -> dict[str, Any]:
    if not record.code or len(record.code) > 64:
        raise InvalidArgument("a region code has 1 to 64 characters")
    if not record.backend or len(record.backend) > 64:
        raise InvalidArgument(f"region {record.code}: a backend name has 1 to 64 characters")
    return {
        "name": record.name,
        "latitude": record.latitude,
        "longitude": record.longitude,
        "countries": list(record.countries),
        "backend": record.backend,
        "bucket": record.bucket,
        "prices": dict(record.prices) if record.prices is not None else None,
        "source": source,
        "updated_at": now,
    }


def _network_values(record: NetworkRecord, source: str, now: datetime) -> dict[str, Any]:
    if not record.cidr or len(record.cidr) > 64:
        raise InvalidArgument("a network is a CIDR of at most 64 characters")
    return {
        "country": record.country,
        "latitude": record.latitude,
        "longitude": record.longitude,
        "source": source,
        "updated_at": now,
    }


class PlacementQueries(CatalogBase):
    """The regions and client networks placement chooses from.

    Both lists are small and read at every bucket creation, so they are cached like buckets
    (at most ``cache_ttl`` seconds; a change made through this instance shows at once).
    """

    # -- regions ---------------------------------------------------------------------------
    def list_regions(self) -> list[RegionRecord]:
        """Every region, by code."""

        def load() -> list[RegionRecord]:
            rows = self._read(
                lambda conn: conn.execute(sa.select(regions).order_by(regions.c.code)).all()
            )
            return [_region(r) for r in rows]

        found: list[RegionRecord] = self._cache.get_or_load(_REGIONS_KEY, load)
        return list(found)

    def get_region(self, code: str) -> RegionRecord | None:
        """The region called ``code``, or None."""
        for region in self.list_regions():
            if region.code == code:
                return region
        return None

    def put_region(self, record: RegionRecord, *, source: str = SOURCE_ADMIN) -> RegionRecord:
        """Create or replace the region ``record.code`` (an admin's write by default)."""
        _check_source(source)
        now = _now()

        def tx(conn: Connection) -> RegionRecord:
            values = _region_values(record, source, now)
            done = conn.execute(
                regions.update().where(regions.c.code == record.code).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(regions.insert().values(code=record.code, **values))
            return _region(
                conn.execute(sa.select(regions).where(regions.c.code == record.code)).one()
            )

        result = self._write(tx, what=f"region {record.code}", retry_unique=True)
        self._cache.invalidate(_REGIONS_KEY)
        return result

    def delete_region(self, code: str) -> bool:
        """Remove a region; True if it existed. Buckets placed there keep their region and
        backend; new buckets are no longer placed there."""

        def tx(conn: Connection) -> bool:
            return bool(conn.execute(regions.delete().where(regions.c.code == code)).rowcount)

        removed = self._write(tx)
        self._cache.invalidate(_REGIONS_KEY)
        return removed

    def sync_regions(self, records: Sequence[RegionRecord]) -> SyncResult:
        """Copy the config file's regions in (see the module docstring): add missing ones,
        refresh config rows, keep admin rows, and remove config rows the file dropped."""
        wanted = {r.code: r for r in records}
        if len(wanted) != len(records):
            raise InvalidArgument("a region code is listed twice")
        now = _now()

        def tx(conn: Connection) -> SyncResult:
            existing = {
                row.code: row for row in conn.execute(sa.select(regions).with_for_update()).all()
            }
            added, updated, kept, removed = [], [], [], []
            for code, record in wanted.items():
                row = existing.get(code)
                values = _region_values(record, SOURCE_CONFIG, now)
                if row is None:
                    conn.execute(regions.insert().values(code=code, **values))
                    added.append(code)
                elif row.source == SOURCE_ADMIN:
                    kept.append(code)
                elif _region(row) != _region_record(code, values):
                    conn.execute(regions.update().where(regions.c.code == code).values(**values))
                    updated.append(code)
            for code, row in existing.items():
                if code not in wanted and row.source == SOURCE_CONFIG:
                    conn.execute(regions.delete().where(regions.c.code == code))
                    removed.append(code)
            return SyncResult(tuple(added), tuple(updated), tuple(kept), tuple(removed))

        result = self._write(tx, what="regions", retry_unique=True)
        self._cache.invalidate(_REGIONS_KEY)
        return result

    # -- client networks -------------------------------------------------------------------
    def list_networks(self) -> list[NetworkRecord]:
        """Every client network, by CIDR text."""

        def load() -> list[NetworkRecord]:
            rows = self._read(
                lambda conn: conn.execute(
                    sa.select(placement_networks).order_by(placement_networks.c.cidr)
                ).all()
            )
            return [_network(r) for r in rows]

        found: list[NetworkRecord] = self._cache.get_or_load(_NETWORKS_KEY, load)
        return list(found)

    def put_network(self, record: NetworkRecord, *, source: str = SOURCE_ADMIN) -> NetworkRecord:
        """Create or replace the network ``record.cidr``."""
        _check_source(source)
        now = _now()

        def tx(conn: Connection) -> NetworkRecord:
            values = _network_values(record, source, now)
            table = placement_networks
            done = conn.execute(table.update().where(table.c.cidr == record.cidr).values(**values))
            if done.rowcount == 0:
                conn.execute(table.insert().values(cidr=record.cidr, **values))
            return _network(conn.execute(sa.select(table).where(table.c.cidr == record.cidr)).one())

        result = self._write(tx, what=f"network {record.cidr}", retry_unique=True)
        self._cache.invalidate(_NETWORKS_KEY)
        return result

    def delete_network(self, cidr: str) -> bool:
        """Remove a client network; True if it existed."""

        def tx(conn: Connection) -> bool:
            table = placement_networks
            return bool(conn.execute(table.delete().where(table.c.cidr == cidr)).rowcount)

        removed = self._write(tx)
        self._cache.invalidate(_NETWORKS_KEY)
        return removed

    def sync_networks(self, records: Iterable[NetworkRecord]) -> SyncResult:
        """Copy the config file's client networks in, by the same rule as regions."""
        wanted: dict[str, NetworkRecord] = {}
        for record in records:
            if record.cidr in wanted:
                raise InvalidArgument(f"network {record.cidr} is listed twice")
            wanted[record.cidr] = record
        now = _now()
        table = placement_networks

        def tx(conn: Connection) -> SyncResult:
            existing = {
                row.cidr: row for row in conn.execute(sa.select(table).with_for_update()).all()
            }
            added, updated, kept, removed = [], [], [], []
            for cidr, record in wanted.items():
                row = existing.get(cidr)
                values = _network_values(record, SOURCE_CONFIG, now)
                if row is None:
                    conn.execute(table.insert().values(cidr=cidr, **values))
                    added.append(cidr)
                elif row.source == SOURCE_ADMIN:
                    kept.append(cidr)
                elif (row.country, row.latitude, row.longitude) != (
                    record.country,
                    record.latitude,
                    record.longitude,
                ):
                    conn.execute(table.update().where(table.c.cidr == cidr).values(**values))
                    updated.append(cidr)
            for cidr, row in existing.items():
                if cidr not in wanted and row.source == SOURCE_CONFIG:
                    conn.execute(table.delete().where(table.c.cidr == cidr))
                    removed.append(cidr)
            return SyncResult(tuple(added), tuple(updated), tuple(kept), tuple(removed))

        result = self._write(tx, what="networks", retry_unique=True)
        self._cache.invalidate(_NETWORKS_KEY)
        return result


def _region_record(code: str, values: Mapping[str, Any]) -> RegionRecord:
    return RegionRecord(
        code=code,
        name=values["name"],
        latitude=values["latitude"],
        longitude=values["longitude"],
        countries=tuple(values["countries"]),
        backend=values["backend"],
        bucket=values["bucket"],
        prices=values["prices"],
        source=values["source"],
    )
