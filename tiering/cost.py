"""The cost model: what storing, archiving, restoring and downloading really costs.

Everything DESIGN.md lists ("Tiering") is counted, each as its own line so a quote can be
explained:

- storage by class and by day, staging in STANDARD included;
- Deep Archive's overhead per object: 40 KiB, of which 32 KiB are billed at the archive
  rate (the archive's own index) and 8 KiB at the STANDARD rate (the name and metadata S3
  keeps for LIST);
- the minimum storage duration (180 days in Deep Archive): an object deleted or overwritten
  earlier is billed as storage up to day 180;
- request fees: PUT/COPY/POST/LIST (each part of a multipart upload is a PUT) at the rate of
  the class written, lifecycle transitions at the rate of the target class, GETs;
- retrieval from Deep Archive per GB and per request, by tier (Standard, Bulk);
- the restored temporary copy, billed as STANDARD storage for the days it is kept;
- egress to the internet, far dearer than a Bulk retrieval.

Prices come from a :class:`Prices` value, never from a constant inside a formula, so each
region (``tiering.placement``) carries its own. All arithmetic is :class:`~decimal.Decimal`
in a private context of 50 significant digits: sums of line items are exact, and nothing
is rounded until a quote is shown (:meth:`Quote.rounded`).

Billing conventions, as AWS applies them: a "GB" is 2**30 bytes, a month is
:attr:`Prices.month_days` days (30; AWS prorates by the hour over the calendar month, a
difference of at most 3.5%), and a request fee is per 1,000 requests.

:class:`Scenario` simulates a whole life (write, staging, packing, archive, one full
restore and download) for ``bench/tiering_cost.py`` and for anyone comparing policies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation, localcontext
from types import MappingProxyType
from typing import Any, Protocol

from gateway.errors import InvalidArgument

#: What AWS bills as a "GB".
GB = 2**30
KiB = 1024
MiB = 1024 * KiB

STANDARD = "STANDARD"
STANDARD_IA = "STANDARD_IA"
GLACIER_IR = "GLACIER_IR"
GLACIER = "GLACIER"
DEEP_ARCHIVE = "DEEP_ARCHIVE"

#: Restore tiers, spelled as S3 spells them.
TIER_STANDARD = "Standard"
TIER_BULK = "Bulk"

#: Fees are quoted per this many requests.
_PER_REQUESTS = Decimal(1000)

_CONTEXT = Context(prec=50)

_ZERO = Decimal(0)


def _frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


def to_decimal(value: object, what: str = "price") -> Decimal:
    """``value`` as a Decimal: an int, a Decimal, or a decimal string (``"0.00099"``).

    A float is taken by its shortest repr (``0.023`` is ``Decimal("0.023")``, not the binary
    value), so prices written as TOML numbers mean what they say. ``InvalidArgument`` for
    anything else, negatives and non-finite values.
    """
    if isinstance(value, bool):
        raise InvalidArgument(f"{what}: expected a number, got {value!r}")
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, int):
            result = Decimal(value)
        elif isinstance(value, float):
            result = Decimal(repr(value))
        elif isinstance(value, str):
            result = Decimal(value.strip())
        else:
            raise InvalidArgument(f"{what}: expected a number, got {value!r}")
    except InvalidOperation:
        raise InvalidArgument(f"{what}: expected a number, got {value!r}") from None
    if not result.is_finite() or result < 0:
        raise InvalidArgument(f"{what}: expected a non-negative number, got {value!r}")
    return result


@dataclass(frozen=True)
class TierPrice:
    """The price of one restore tier: per GB retrieved and per 1,000 restore requests."""

    per_gb: Decimal
    per_1000_requests: Decimal


def _d(text: str) -> Decimal:
    return Decimal(text)


@dataclass(frozen=True)
class Prices:
    """Prices of one region, in ``currency``.

    The defaults are AWS's **list prices** for us-east-1 (N. Virginia) as of 2026, first
    pricing tier (below 50 TB a month of storage, below 10 TB a month of egress). They are
    an example, not a promise: every region of the placement table carries its own
    ``Prices`` (``[regions.CODE.prices]`` in the config, or the admin API), and an operator
    with a negotiated discount overrides them.

    Maps are keyed by storage class (``storage_gb_month``, ``write_per_1000``,
    ``transition_per_1000``, ``read_per_1000``, ``minimum_days``) or by restore tier
    (``retrieval``, for the archive class ``archive_class``).
    """

    region: str = "us-east-1"
    currency: str = "USD"
    #: Storage per GB-month, by class.
    storage_gb_month: Mapping[str, Decimal] = field(
        default_factory=lambda: _frozen(
            {
                STANDARD: _d("0.023"),
                STANDARD_IA: _d("0.0125"),
                GLACIER_IR: _d("0.004"),
                GLACIER: _d("0.0036"),
                DEEP_ARCHIVE: _d("0.00099"),
            }
        )
    )
    #: PUT, COPY, POST and LIST requests (and each part of a multipart upload), per 1,000,
    #: by the class written.
    write_per_1000: Mapping[str, Decimal] = field(
        default_factory=lambda: _frozen(
            {
                STANDARD: _d("0.005"),
                STANDARD_IA: _d("0.01"),
                GLACIER_IR: _d("0.02"),
                GLACIER: _d("0.03"),
                DEEP_ARCHIVE: _d("0.05"),
            }
        )
    )
    #: Lifecycle transition requests, per 1,000, by the target class.
    transition_per_1000: Mapping[str, Decimal] = field(
        default_factory=lambda: _frozen(
            {
                STANDARD_IA: _d("0.01"),
                GLACIER_IR: _d("0.02"),
                GLACIER: _d("0.03"),
                DEEP_ARCHIVE: _d("0.05"),
            }
        )
    )
    #: GET, HEAD and other reads, per 1,000, by class (a restored copy is read at its
    #: archive class's rate).
    read_per_1000: Mapping[str, Decimal] = field(
        default_factory=lambda: _frozen(
            {
                STANDARD: _d("0.0004"),
                STANDARD_IA: _d("0.001"),
                GLACIER_IR: _d("0.01"),
                GLACIER: _d("0.0004"),
                DEEP_ARCHIVE: _d("0.0004"),
            }
        )
    )
    #: The class restores are priced for (this gateway archives to Deep Archive).
    archive_class: str = DEEP_ARCHIVE
    #: Retrieval from ``archive_class``, by restore tier (Deep Archive has no Expedited).
    retrieval: Mapping[str, TierPrice] = field(
        default_factory=lambda: _frozen(
            {
                TIER_STANDARD: TierPrice(per_gb=_d("0.02"), per_1000_requests=_d("0.10")),
                TIER_BULK: TierPrice(per_gb=_d("0.0025"), per_1000_requests=_d("0.025")),
            }
        )
    )
    #: Data transfer out to the internet, per GB.
    egress_gb: Decimal = field(default_factory=lambda: _d("0.09"))
    #: Minimum storage duration in days, by class: an object removed earlier is billed as
    #: storage up to this day.
    minimum_days: Mapping[str, int] = field(
        default_factory=lambda: _frozen(
            {STANDARD_IA: 30, GLACIER_IR: 90, GLACIER: 90, DEEP_ARCHIVE: 180}
        )
    )
    #: Per archived object: bytes billed at the archive class's rate...
    archive_overhead_bytes: int = 32 * KiB
    #: ...and bytes billed at the STANDARD rate.
    index_overhead_bytes: int = 8 * KiB
    #: Days in a billing month.
    month_days: int = 30

    def __post_init__(self) -> None:
        if self.month_days <= 0:
            raise InvalidArgument("prices.month_days: must be a positive number of days")
        if self.archive_overhead_bytes < 0 or self.index_overhead_bytes < 0:
            raise InvalidArgument("prices: overhead bytes must not be negative")

    # -- look-ups, each with a clear error for a class or tier the region does not price --
    def storage_rate(self, storage_class: str) -> Decimal:
        """Price per GB-month of ``storage_class``."""
        return _lookup(self.storage_gb_month, storage_class, "storage class", self.region)

    def write_rate(self, storage_class: str) -> Decimal:
        """Price per 1,000 PUT/COPY/POST/LIST requests writing ``storage_class``."""
        return _lookup(self.write_per_1000, storage_class, "storage class", self.region)

    def transition_rate(self, storage_class: str) -> Decimal:
        """Price per 1,000 lifecycle transitions into ``storage_class``."""
        return _lookup(self.transition_per_1000, storage_class, "storage class", self.region)

    def read_rate(self, storage_class: str) -> Decimal:
        """Price per 1,000 GET requests of objects in ``storage_class``."""
        return _lookup(self.read_per_1000, storage_class, "storage class", self.region)

    def tier(self, tier: str) -> TierPrice:
        """Retrieval prices of restore ``tier`` (``Standard``, ``Bulk``)."""
        price = self.retrieval.get(tier)
        if price is None:
            known = ", ".join(sorted(self.retrieval)) or "none"
            raise InvalidArgument(
                f"restore tier {tier!r} is not available for {self.archive_class} in "
                f"{self.region} (tiers: {known})"
            )
        return price

    # -- (de)serialisation: config tables and the catalog's JSON column --------------------
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base: Prices | None = None) -> Prices:
        """Prices from a config table or stored JSON: every key optional, each overriding
        ``base`` (default: the us-east-1 list prices); maps are merged key by key.

        Numbers may be written as strings (``"0.00099"``) or TOML numbers.
        ``InvalidArgument`` names the first bad key.
        """
        base = base or cls()
        values: dict[str, Any] = {}
        known = {f for f in cls.__dataclass_fields__}
        for key, value in data.items():
            if key not in known:
                raise InvalidArgument(
                    f"prices.{key}: unknown price (known: {', '.join(sorted(known))})"
                )
            what = f"prices.{key}"
            if key in ("region", "currency", "archive_class"):
                if not isinstance(value, str) or not value:
                    raise InvalidArgument(f"{what}: expected a non-empty string")
                values[key] = value
            elif key in ("archive_overhead_bytes", "index_overhead_bytes", "month_days"):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InvalidArgument(f"{what}: expected an integer")
                values[key] = value
            elif key == "egress_gb":
                values[key] = to_decimal(value, what)
            elif key == "minimum_days":
                table = _mapping(value, what)
                merged_days = dict(base.minimum_days)
                for name, days in table.items():
                    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
                        raise InvalidArgument(f"{what}.{name}: expected a number of days")
                    merged_days[name] = days
                values[key] = _frozen(merged_days)
            elif key == "retrieval":
                table = _mapping(value, what)
                merged_tiers = dict(base.retrieval)
                for name, tier in table.items():
                    tier_table = _mapping(tier, f"{what}.{name}")
                    old = merged_tiers.get(name)
                    unknown = set(tier_table) - {"per_gb", "per_1000_requests"}
                    if unknown:
                        raise InvalidArgument(
                            f"{what}.{name}: unknown key {sorted(unknown)[0]!r} "
                            "(expected per_gb, per_1000_requests)"
                        )
                    if old is None and set(tier_table) != {"per_gb", "per_1000_requests"}:
                        raise InvalidArgument(
                            f"{what}.{name}: a new tier needs per_gb and per_1000_requests"
                        )
                    merged_tiers[name] = TierPrice(
                        per_gb=to_decimal(
                            tier_table.get("per_gb", old.per_gb if old else None),
                            f"{what}.{name}.per_gb",
                        ),
                        per_1000_requests=to_decimal(
                            tier_table.get(
                                "per_1000_requests", old.per_1000_requests if old else None
                            ),
                            f"{what}.{name}.per_1000_requests",
                        ),
                    )
                values[key] = _frozen(merged_tiers)
            else:  # a price map by storage class
                table = _mapping(value, what)
                merged = dict(getattr(base, key))
                for name, price in table.items():
                    merged[name] = to_decimal(price, f"{what}.{name}")
                values[key] = _frozen(merged)
        fields = {name: getattr(base, name) for name in known}
        fields.update(values)
        return cls(**fields)

    def to_mapping(self) -> dict[str, Any]:
        """Every price as JSON-safe values (decimals as strings, so nothing is rounded);
        :meth:`from_mapping` reads it back to an equal ``Prices``."""
        return {
            "region": self.region,
            "currency": self.currency,
            "storage_gb_month": {k: str(v) for k, v in self.storage_gb_month.items()},
            "write_per_1000": {k: str(v) for k, v in self.write_per_1000.items()},
            "transition_per_1000": {k: str(v) for k, v in self.transition_per_1000.items()},
            "read_per_1000": {k: str(v) for k, v in self.read_per_1000.items()},
            "archive_class": self.archive_class,
            "retrieval": {
                k: {"per_gb": str(v.per_gb), "per_1000_requests": str(v.per_1000_requests)}
                for k, v in self.retrieval.items()
            },
            "egress_gb": str(self.egress_gb),
            "minimum_days": dict(self.minimum_days),
            "archive_overhead_bytes": self.archive_overhead_bytes,
            "index_overhead_bytes": self.index_overhead_bytes,
            "month_days": self.month_days,
        }

    def __hash__(self) -> int:
        return hash((self.region, self.currency, self.egress_gb))


def _lookup(table: Mapping[str, Decimal], key: str, what: str, region: str) -> Decimal:
    try:
        return table[key]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise InvalidArgument(
            f"no price for {what} {key!r} in {region} (priced: {known})"
        ) from None


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{what}: expected a table")
    return value


# -- quotes --------------------------------------------------------------------------------


Line = tuple[str, Decimal]


@dataclass(frozen=True)
class Quote:
    """A cost and the lines it is the exact sum of, in the order they were added.

    Build one with :meth:`of`; quotes add (``a + b`` keeps both sets of lines).
    """

    total: Decimal
    lines: list[Line] = field(default_factory=list)

    def __post_init__(self) -> None:
        with localcontext(_CONTEXT):
            expected = sum((amount for _, amount in self.lines), _ZERO)
        if expected != self.total:
            raise ValueError(f"quote total {self.total} is not the sum of its lines ({expected})")

    @classmethod
    def of(cls, lines: Iterable[Line]) -> Quote:
        """A quote of ``lines`` (labels and amounts); its total is their sum."""
        items = [(label, amount) for label, amount in lines]
        with localcontext(_CONTEXT):
            total = sum((amount for _, amount in items), _ZERO)
        return cls(total=total, lines=items)

    def __add__(self, other: Quote) -> Quote:
        return Quote.of([*self.lines, *other.lines])

    def line(self, label: str) -> Decimal:
        """The sum of the lines called ``label`` (0 if none)."""
        with localcontext(_CONTEXT):
            return sum((a for name, a in self.lines if name == label), _ZERO)

    def rounded(self, places: int = 6) -> Decimal:
        """The total rounded half-even to ``places`` decimals (the restores table keeps 6)."""
        return self.total.quantize(Decimal(1).scaleb(-places))

    def describe(self, currency: str = "USD", places: int = 4) -> str:
        """One line for a message: ``0.0123 USD (retrieval 0.0100, requests 0.0023)``."""
        step = Decimal(1).scaleb(-places)
        parts = ", ".join(f"{label} {amount.quantize(step)}" for label, amount in self.lines)
        return f"{self.total.quantize(step)} {currency} ({parts})"

    def __iter__(self) -> Iterator[Line]:
        return iter(self.lines)


# -- single items --------------------------------------------------------------------------


def _check_count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{what}: expected a non-negative integer, got {value!r}")
    return value


def _check_days(value: float | int | Decimal, what: str = "days") -> Decimal:
    if isinstance(value, bool):
        raise InvalidArgument(f"{what}: expected a number of days")
    days = to_decimal(value, what)
    return days


def storage_cost(
    prices: Prices, storage_class: str, bytes: int, days: float | int | Decimal
) -> Decimal:
    """Storing ``bytes`` in ``storage_class`` for ``days`` (fractions allowed: 0.5 is 12
    hours). No minimum duration here: see :func:`early_deletion_charge`."""
    _check_count(bytes, "bytes")
    d = _check_days(days)
    rate = prices.storage_rate(storage_class)
    with localcontext(_CONTEXT):
        return rate * Decimal(bytes) / GB * d / prices.month_days


def request_cost(count: int, per_1000: Decimal) -> Decimal:
    """``count`` requests at ``per_1000`` per 1,000."""
    _check_count(count, "requests")
    with localcontext(_CONTEXT):
        return per_1000 * count / _PER_REQUESTS


def egress_cost(prices: Prices, bytes: int) -> Decimal:
    """Sending ``bytes`` to the internet."""
    _check_count(bytes, "bytes")
    with localcontext(_CONTEXT):
        return prices.egress_gb * Decimal(bytes) / GB


def early_deletion_charge(
    prices: Prices,
    bytes: int,
    stored_days: float | int | Decimal,
    *,
    storage_class: str = DEEP_ARCHIVE,
) -> Decimal:
    """What removing ``bytes`` of ``storage_class`` after ``stored_days`` adds: the storage
    of the days left to the class's minimum (180 for Deep Archive), 0 past it.

    ``bytes`` is the billable size (for an archived object, its size plus
    :attr:`Prices.archive_overhead_bytes`).
    """
    _check_count(bytes, "bytes")
    stored = _check_days(stored_days, "stored_days")
    minimum = Decimal(prices.minimum_days.get(storage_class, 0))
    if stored >= minimum:
        return _ZERO
    with localcontext(_CONTEXT):
        remaining = minimum - stored
    return storage_cost(prices, storage_class, bytes, remaining)


def upload_requests(
    size: int, part_size: int | None, single_put_max: int | None = None
) -> int:
    """Requests one upload of ``size`` bytes makes: 1 for a single PUT (``size`` at most
    ``part_size`` or ``single_put_max``, or ``part_size`` None), else a multipart upload:
    create, one per part, complete. Every one is billed at the PUT rate of the class
    written. (The s3 backend sends a blob of a known size up to its ``single_put_max`` as
    one PutObject.)"""
    _check_count(size, "size")
    if part_size is None or size <= part_size:
        return 1
    if single_put_max is not None and size <= single_put_max:
        return 1
    if part_size <= 0:
        raise InvalidArgument("part_size: must be positive")
    return 2 + math.ceil(size / part_size)


#: CopyObject copies up to this many bytes in one request; larger copies are multipart
#: uploads of UploadPartCopy parts.
COPY_LIMIT = 5 * GB


def copy_requests(size: int, part_size: int = 512 * MiB) -> int:
    """Requests one server-side copy of ``size`` bytes makes: 1 up to 5 GiB, else create,
    one UploadPartCopy per ``part_size`` part, complete (all at the target class's PUT
    rate)."""
    _check_count(size, "size")
    if size <= COPY_LIMIT:
        return 1
    return 2 + math.ceil(size / part_size)


def archive_cost(
    prices: Prices,
    *,
    objects: int,
    bytes: int,
    days: float | int | Decimal,
    requests: int | None = None,
    storage_class: str | None = None,
    via: str = "put",
) -> Quote:
    """Keeping ``objects`` objects of ``bytes`` in all in the archive class for ``days``,
    from the request that puts them there to their removal.

    Lines: the request fees (``via`` ``"put"`` or ``"copy"``: ``requests`` at the class's
    PUT rate, default one per object; ``"transition"``: one lifecycle transition per
    object), the storage, the per-object overhead (archive and STANDARD parts), and the
    early deletion charge when ``days`` is short of the class's minimum.
    """
    cls = storage_class or prices.archive_class
    _check_count(objects, "objects")
    _check_count(bytes, "bytes")
    d = _check_days(days)
    if via in ("put", "copy"):
        count = objects if requests is None else _check_count(requests, "requests")
        request_line = (
            f"{via.upper()} requests ({cls})",
            request_cost(count, prices.write_rate(cls)),
        )
    elif via == "transition":
        request_line = (
            f"lifecycle transitions ({cls})",
            request_cost(objects, prices.transition_rate(cls)),
        )
    else:
        raise InvalidArgument(f"via: expected put, copy or transition, got {via!r}")
    archive_overhead = objects * prices.archive_overhead_bytes
    index_overhead = objects * prices.index_overhead_bytes
    minimum = Decimal(prices.minimum_days.get(cls, 0))
    early = _ZERO
    if d < minimum:
        with localcontext(_CONTEXT):
            early = early_deletion_charge(
                prices, bytes + archive_overhead, d, storage_class=cls
            ) + storage_cost(prices, STANDARD, index_overhead, minimum - d)
    return Quote.of(
        [
            request_line,
            (f"storage ({cls})", storage_cost(prices, cls, bytes, d)),
            (f"per-object overhead ({cls})", storage_cost(prices, cls, archive_overhead, d)),
            (
                f"per-object overhead ({STANDARD})",
                storage_cost(prices, STANDARD, index_overhead, d),
            ),
            (f"early deletion (to day {int(minimum)})", early),
        ]
    )


def quote_restore(
    prices: Prices,
    *,
    objects: int,
    bytes: int,
    tier: str,
    days: int,
    egress_bytes: int = 0,
) -> Quote:
    """What restoring ``objects`` archived blobs of ``bytes`` in all with ``tier`` costs,
    keeping the restored copies ``days`` days: retrieval per GB, retrieval requests, and the
    restored copies as STANDARD storage. ``egress_bytes`` adds the download to the
    internet of that many bytes (0: not counted)."""
    _check_count(objects, "objects")
    _check_count(bytes, "bytes")
    _check_count(days, "days")
    price = prices.tier(tier)
    with localcontext(_CONTEXT):
        retrieval = price.per_gb * Decimal(bytes) / GB
    lines: list[Line] = [
        (f"retrieval ({tier}, per GB)", retrieval),
        (f"retrieval requests ({tier})", request_cost(objects, price.per_1000_requests)),
        (
            f"restored copy ({STANDARD}, {days} day{'' if days == 1 else 's'})",
            storage_cost(prices, STANDARD, bytes, days),
        ),
    ]
    if egress_bytes:
        lines.append(("egress to the internet", egress_cost(prices, egress_bytes)))
    return Quote.of(lines)


# -- whole-life scenarios ------------------------------------------------------------------


class TieringDefaults(Protocol):
    """What :meth:`Policy.from_tiering` reads of the ``[tiering]`` config section."""

    @property
    def transition_after(self) -> float: ...

    @property
    def small_object_threshold(self) -> int: ...

    @property
    def container_target_size(self) -> int: ...

    @property
    def pack_threshold(self) -> int: ...


@dataclass(frozen=True)
class Policy:
    """How data is staged and archived, for :class:`Scenario`.

    ``staging_days``: days a blob spends hot (STANDARD) before it goes cold.
    ``small_object_threshold``: objects below it are staged in the catalog database (no
    backend request, no S3 storage) and packed into containers of about
    ``container_target`` bytes that are written straight to the archive class; 0 means
    every object is its own blob. ``pack_threshold``: objects from
    ``small_object_threshold`` up to below it are PUT to STANDARD, staged there, read back
    once (a STANDARD GET) and packed into the same containers (0, or not above
    ``small_object_threshold``: none are). Larger objects are PUT to STANDARD and, once
    due, copied to the archive class (``transition="copy"``) or moved by a lifecycle rule
    (``"transition"``). ``part_size`` is the backend's multipart part size (each part is a
    PUT request; None: every upload is a single PUT); ``single_put_max``: uploads up to
    this size are one PUT whatever ``part_size`` (None: no such rule).
    """

    staging_days: Decimal = Decimal(1)
    small_object_threshold: int = MiB
    container_target: int = 128 * MiB
    transition: str = "copy"
    part_size: int | None = None
    label: str = ""
    pack_threshold: int = 0
    single_put_max: int | None = None

    @classmethod
    def from_tiering(
        cls,
        tiering: TieringDefaults,
        *,
        part_size: int | None = None,
        single_put_max: int | None = None,
    ) -> Policy:
        """The policy a ``[tiering]`` config section (:class:`gateway.config.TieringConfig`)
        describes, staging for the whole of ``transition_after`` (the worst case), with the
        s3 backend's ``part_size`` and ``single_put_max``. The gateway stages objects of
        *up to* ``small_object_threshold`` bytes in the catalog and packs objects of up to
        ``pack_threshold`` bytes."""
        threshold = tiering.small_object_threshold
        packed = tiering.pack_threshold
        return cls(
            staging_days=to_decimal(tiering.transition_after, "transition_after") / 86400,
            small_object_threshold=threshold + 1 if threshold > 0 else 0,
            container_target=tiering.container_target_size,
            transition="copy",
            part_size=part_size,
            label="default",
            pack_threshold=packed + 1 if packed > 0 else 0,
            single_put_max=single_put_max,
        )

    def __post_init__(self) -> None:
        if self.transition not in ("copy", "transition"):
            raise InvalidArgument("policy.transition: expected copy or transition")
        if self.container_target <= 0:
            raise InvalidArgument("policy.container_target: must be positive")


@dataclass(frozen=True)
class ScenarioResult:
    """A scenario's cost by line, the floor it is compared with, and the blob counts."""

    quote: Quote
    floor: Quote
    stored_bytes: int
    files: int
    blobs: int
    containers: int

    @property
    def ratio(self) -> Decimal:
        """Total cost over the floor's."""
        with localcontext(_CONTEXT):
            return self.quote.total / self.floor.total


@dataclass(frozen=True)
class Scenario:
    """One life of a corpus: written once, kept ``horizon_days``, restored once in full
    (``restore_tier``, copies kept ``restore_days``) and downloaded to the internet.

    ``sizes`` are the stored (sealed) sizes of the files. Each downloaded file is one GET
    (the gateway reads a packed member with one range read). The corpus is deleted at the
    end of the horizon, so a horizon shorter than the minimum duration pays the early
    deletion charge.

    Catalog staging (small objects waiting for a container) lives in the operator's
    database, not in S3, and is not priced here.
    """

    sizes: Sequence[int]
    prices: Prices = field(default_factory=Prices)
    horizon_days: int = 360
    restore_tier: str = TIER_BULK
    restore_days: int = 1
    #: The bytes the floor is counted on (default: ``sum(sizes)``): the plaintext, when
    #: ``sizes`` are sealed sizes.
    floor_bytes: int | None = None

    def floor(self) -> Quote:
        """The least anyone pays for these bytes: Deep Archive for the whole horizon, one
        retrieval of every byte, and the egress; no requests, no overheads."""
        total = sum(self.sizes) if self.floor_bytes is None else self.floor_bytes
        tier = self.prices.tier(self.restore_tier)
        with localcontext(_CONTEXT):
            retrieval = tier.per_gb * Decimal(total) / GB
        cls = self.prices.archive_class
        return Quote.of(
            [
                (f"storage ({cls})", storage_cost(self.prices, cls, total, self.horizon_days)),
                (f"retrieval ({self.restore_tier}, per GB)", retrieval),
                ("egress to the internet", egress_cost(self.prices, total)),
            ]
        )

    def run(self, policy: Policy) -> ScenarioResult:
        """The whole cost of this scenario under ``policy``, line by line."""
        prices = self.prices
        cls = prices.archive_class
        staging_days = to_decimal(policy.staging_days, "policy.staging_days")
        if staging_days > self.horizon_days:
            raise InvalidArgument("policy.staging_days: longer than the horizon")
        with localcontext(_CONTEXT):
            cold_days = Decimal(self.horizon_days) - staging_days

        packed_below = max(policy.small_object_threshold, policy.pack_threshold)
        # In the order written: containers fill as the engine's pack groups do.
        packed = [s for s in self.sizes if s < packed_below]
        mid = [s for s in packed if s >= policy.small_object_threshold]
        large = [s for s in self.sizes if s >= packed_below]
        containers = pack(packed, policy.container_target)
        large_bytes = sum(large)
        container_bytes = sum(containers)
        hot = mid + large

        def uploads(sizes: Iterable[int]) -> int:
            return sum(upload_requests(s, policy.part_size, policy.single_put_max) for s in sizes)

        lines: list[Line] = []
        # Hot: objects above the catalog's staging threshold are PUT to STANDARD and wait.
        lines.append(
            (
                f"PUT requests ({STANDARD})",
                request_cost(uploads(hot), prices.write_rate(STANDARD)),
            )
        )
        lines.append(
            (
                f"staging storage ({STANDARD})",
                storage_cost(prices, STANDARD, sum(hot), staging_days),
            )
        )
        # Mid-size objects are read back once to be packed.
        if mid:
            lines.append(
                (
                    f"packing reads ({STANDARD} GET)",
                    request_cost(len(mid), prices.read_rate(STANDARD)),
                )
            )
        # Cold: containers are written straight to the archive class...
        if containers:
            in_containers = archive_cost(
                prices,
                objects=len(containers),
                bytes=container_bytes,
                days=cold_days,
                requests=uploads(containers),
                via="put",
            )
            lines += [(f"containers: {label}", amount) for label, amount in in_containers]
        # ...large objects are copied (or transitioned) there one by one.
        if large:
            moved = archive_cost(
                prices,
                objects=len(large),
                bytes=large_bytes,
                days=cold_days,
                requests=sum(copy_requests(s) for s in large)
                if policy.transition == "copy"
                else None,
                via=policy.transition,
            )
            lines += [(f"objects: {label}", amount) for label, amount in moved]
        blobs = len(containers) + len(large)
        restored_bytes = container_bytes + large_bytes
        downloaded = sum(self.sizes)
        restore = quote_restore(
            prices,
            objects=blobs,
            bytes=restored_bytes,
            tier=self.restore_tier,
            days=self.restore_days,
        )
        lines += list(restore)
        lines.append(
            (
                f"GET requests ({cls})",
                request_cost(len(self.sizes), prices.read_rate(cls)),
            )
        )
        lines.append(("egress to the internet", egress_cost(prices, downloaded)))
        return ScenarioResult(
            quote=Quote.of(lines),
            floor=self.floor(),
            stored_bytes=restored_bytes,
            files=len(self.sizes),
            blobs=blobs,
            containers=len(containers),
        )


def pack(sizes: Iterable[int], target: int) -> list[int]:
    """Container sizes when ``sizes`` are packed in order, each container closed once it
    reaches ``target`` bytes (so it holds at most ``target`` plus one member)."""
    if target <= 0:
        raise InvalidArgument("container target: must be positive")
    containers: list[int] = []
    current = 0
    for size in sizes:
        current += size
        if current >= target:
            containers.append(current)
            current = 0
    if current:
        containers.append(current)
    return containers
