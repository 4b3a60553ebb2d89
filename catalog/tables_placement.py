"""Tables of the placement area (regions and client networks), registered on
:data:`catalog.schema.metadata`.

- ``regions``: where buckets can live. One row per region code (``eu-central-1``): a
  display name, a location (latitude and longitude in degrees, null when unknown), the
  countries it serves (ISO 3166-1 alpha-2 codes, a JSON list), the backend instance that
  stores its buckets and that backend's bucket, and its prices (the JSON of
  :meth:`tiering.cost.Prices.to_mapping`; null means the built-in list prices).
- ``placement_networks``: client networks (a CIDR, normalised) and where they are, as a
  country or as coordinates, for users whose profile says neither.

``source`` is ``config`` for rows copied from the TOML file at start-up (refreshed from it at
every start) and ``admin`` for rows written through the admin API (which the file never
overwrites again). Bucket rows name their region by code, without a foreign key: a bucket
keeps its region and backend even if the region's row is later removed.

A change here needs a migration in ``catalog/migrations/versions``.
"""

from __future__ import annotations

import sqlalchemy as sa

from catalog.schema import MYSQL_TABLE_ARGS, UTCDateTime, metadata

regions = sa.Table(
    "regions",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("latitude", sa.Double, nullable=True),
    sa.Column("longitude", sa.Double, nullable=True),
    sa.Column("countries", sa.JSON, nullable=False),
    sa.Column("backend", sa.String(64), nullable=False),
    sa.Column("bucket", sa.String(255), nullable=False),
    sa.Column("prices", sa.JSON, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    **MYSQL_TABLE_ARGS,
)

placement_networks = sa.Table(
    "placement_networks",
    metadata,
    sa.Column("cidr", sa.String(64), primary_key=True),
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("latitude", sa.Double, nullable=True),
    sa.Column("longitude", sa.Double, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    **MYSQL_TABLE_ARGS,
)
