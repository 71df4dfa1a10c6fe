"""Capture counts: what the meter and the proxy did with everything they received, per tenant,
channel and UTC day of arrival, so that no call they saw can disappear without a line that
says so. A capture day is to the live channels what a file is to an import.

Each request counts its items as *received* before anything else looks at them, then each item
into exactly one outcome: accepted (stored as a new event), duplicate (its id is already in the
ledger: checked there, not assumed) or rejected (refused with its problems); a request that
could not be read at all counts as refused whole. The accepted events are also counted by the
UTC day of their own time (``days``), the day an audit period holds them on. Everything is
added in the very transaction that stores the events (:func:`add_counts`), so a crash loses
both or neither.

A day ties when ``received = accepted + duplicates + rejected`` and its ``days`` add up to what
it accepted. An audit ties those ``days`` to the events of the period the ledger holds
(``p402/reporting/completeness.py``): a loss anywhere between the request and the store is a
difference, never a success.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from p402.ledger.events import Event
from p402.ledger.rollup import exact_sums, exact_total
from p402.ledger.schema import CAPTURE_COUNTS, capture_days_table, captures_table, events_table
from p402.ledger.store import Ledger
from p402.money import format_amount, from_units, to_units
from p402.period import format_time, micros, moment

__all__ = [
    "CHANNELS", "Slots", "Tally", "add_counts", "captures_touching", "ledger_days", "list_captures",
]  # fmt: skip

CHANNELS = ("meter", "proxy")
_DAY_US = 86_400_000_000
_AT = {name: i for i, name in enumerate(CAPTURE_COUNTS)}
_TOKENS = (
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
    "output_tokens",
)  # fmt: skip
"""The token counts whose sum is an event's tokens, as the reports count them."""
_Key = tuple[str, str, int]


def day_of(at_us: int) -> int:
    """The UTC day (days since 1970-01-01) of a time in microseconds."""
    return at_us // _DAY_US


@dataclass
class Tally:
    """Counts to add: per (tenant, channel, day of arrival) one list in
    :data:`CAPTURE_COUNTS` order, and per (tenant, channel, day, day of the event's time)
    ``[events, units, tokens]`` of the accepted events."""

    cells: dict[_Key, list[int]] = field(default_factory=dict)
    days: dict[tuple[str, str, int, int], list[int]] = field(default_factory=dict)

    def _cell(self, key: _Key) -> list[int]:
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = [0] * len(CAPTURE_COUNTS)
        return cell

    def received(self, key: _Key, count: int) -> None:
        """Count the items of a request, before anything is done with them."""
        self._cell(key)[_AT["received"]] += count

    def refused(self, key: _Key) -> None:
        """Count one request that could not be read at all (not JSON, too large)."""
        self._cell(key)[_AT["requests_refused"]] += 1

    def rejected(self, key: _Key, *, dropped: int = 0) -> None:
        """Count one item refused with its problems."""
        cell = self._cell(key)
        cell[_AT["rejected"]] += 1
        cell[_AT["content_fields_dropped"]] += dropped

    def duplicate(self, key: _Key, item: Event, *, dropped: int = 0) -> None:
        """Count one valid item whose id the ledger already holds."""
        cell = self._cell(key)
        cell[_AT["duplicates"]] += 1
        cell[_AT["duplicate_units"]] += 0 if item.cost is None else to_units(item.cost)
        cell[_AT["content_fields_dropped"]] += dropped

    def accepted(self, key: _Key, item: Event, *, dropped: int = 0) -> None:
        """Count one item stored as a new event, in its day of arrival and its own day."""
        cell = self._cell(key)
        units = 0 if item.cost is None else to_units(item.cost)
        cell[_AT["accepted"]] += 1
        cell[_AT["accepted_units"]] += units
        cell[_AT["content_fields_dropped"]] += dropped
        if item.quality:
            cell[_AT["odd"]] += 1
        if item.cost_source == "tier_unpriced":
            cell[_AT["tier_unpriced"]] += 1
        elif item.cost is None:
            cell[_AT["unpriced"]] += 1
        own = (*key, day_of(micros(item.occurred_at)))
        found = self.days.get(own)
        if found is None:
            found = self.days[own] = [0, 0, 0]
        found[0] += 1
        found[1] += units
        found[2] += sum(getattr(item, name) for name in _TOKENS)

    def merge(self, other: Tally) -> None:
        """Add *other*'s counts to these."""
        for key, values in other.cells.items():
            cell = self._cell(key)
            for i, value in enumerate(values):
                cell[i] += value
        for own, (events, units, tokens) in other.days.items():
            found = self.days.setdefault(own, [0, 0, 0])
            found[0] += events
            found[1] += units
            found[2] += tokens


_UPSERTS: dict[str, tuple[Any, Any]] = {}
"""Per dialect, the two upserts (built once: building and keying a statement costs more than
running it, and this runs in every transaction of the meter's writer)."""


def _upserts(dialect: str) -> tuple[Any, Any]:
    found = _UPSERTS.get(dialect)
    if found is not None:
        return found
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    latest = func.greatest if dialect == "postgresql" else func.max
    table, days = captures_table, capture_days_table
    counts, by_day = make(table), make(days)
    found = _UPSERTS[dialect] = (
        counts.on_conflict_do_update(
            index_elements=["tenant", "channel", "day", "writer"],
            set_={
                **{name: table.c[name] + counts.excluded[name] for name in CAPTURE_COUNTS},
                "updated_at_us": latest(table.c.updated_at_us, counts.excluded.updated_at_us),
            },
        ),
        by_day.on_conflict_do_update(
            index_elements=["tenant", "channel", "day", "writer", "event_day"],
            set_={name: days.c[name] + by_day.excluded[name] for name in ("events", "units", "tokens")},
        ),
    )  # fmt: skip
    return found


_MOST = (1 << 63) - 1
"""What a BIGINT holds: no counter of a row is ever let past it."""
_PART = 1 << 62
"""The most one upsert adds to a counter (a larger count is written in parts)."""


def _parts(values: list[int]) -> list[list[int]]:
    """*values* as one or more rows of counters, each at most :data:`_PART`, summing to them."""
    if all(value <= _PART for value in values):
        return [values]
    count = max(-(-value // _PART) for value in values)
    return [[min(max(value - i * _PART, 0), _PART) for value in values] for i in range(count)]


class Slots:
    """The rows a writer process counts in. Each process has a slot of its own (the rows of a
    day are summed when read, so two processes never wait on each other's row locks); when a
    row's counter would pass what a BIGINT holds (a day of money beyond $9.2 million through
    one process), the process moves that day to a fresh slot, so no sum overflows and none is
    silently turned into a float (SQLite's ``+`` does that)."""

    def __init__(self, first: int) -> None:
        self.first = first
        self._current: dict[tuple[Any, ...], int] = {}
        self._added: dict[tuple[tuple[Any, ...], int], list[int]] = {}

    def place(self, key: tuple[Any, ...], values: list[int]) -> list[tuple[int, list[int]]]:
        """Where to add *values* of row *key*: (slot, the part added there) pairs."""
        placed = []
        for part in _parts(values):
            slot = self._current.get(key, self.first)
            added = self._added.get((key, slot))
            if added is not None and any(a + v > _MOST for a, v in zip(added, part, strict=True)):
                slot = self._current[key] = secrets.randbelow(1 << 62)
                added = None
            if added is None:
                added = self._added[(key, slot)] = [0] * len(part)
            for i, value in enumerate(part):
                added[i] += value
            placed.append((slot, part))
        return placed


def add_counts(
    connection: Connection, tally: Tally, now_us: int, *, writer: int | Slots = 0
) -> None:
    """Add *tally* to the stored counts, in the caller's transaction (the one storing the
    events), in the rows of *writer* (a process's :class:`Slots`, or one slot). Rows are
    upserted in key order, so concurrent writers of one row never deadlock."""
    if not tally.cells:
        return
    slots = writer if isinstance(writer, Slots) else Slots(writer)
    counts, by_day = _upserts(connection.dialect.name)
    for (tenant, channel, day), values in sorted(tally.cells.items()):
        for slot, part in slots.place(("counts", tenant, channel, day), values):
            connection.execute(
                counts,
                {"tenant": tenant, "channel": channel, "day": day, "writer": slot,
                 "updated_at_us": now_us,
                 **dict(zip(CAPTURE_COUNTS, part, strict=True))},
            )  # fmt: skip
    for (tenant, channel, day, event_day), values in sorted(tally.days.items()):
        for slot, (events, units, tokens) in slots.place(
            ("days", tenant, channel, day, event_day), values
        ):
            connection.execute(
                by_day,
                {"tenant": tenant, "channel": channel, "day": day, "writer": slot,
                 "event_day": event_day,
                 "events": events, "units": units, "tokens": tokens},
            )  # fmt: skip


def _date(day: int) -> str:
    return format_time(moment(day * _DAY_US))[:10]


def _record(row: Any, days: Mapping[int, list[int]]) -> dict[str, Any]:
    """One capture day as a control record (the JSON ``ledger/imports.jsonl`` carries)."""
    counts = {name: int(row[name]) for name in CAPTURE_COUNTS}
    outcomes = counts["accepted"] + counts["duplicates"] + counts["rejected"]
    findings = []
    if outcomes != counts["received"]:
        findings.append(
            f"{counts['received']:,} items received but {outcomes:,} accounted for (accepted "
            f"{counts['accepted']:,}, duplicate {counts['duplicates']:,}, rejected "
            f"{counts['rejected']:,})"
        )
    held = sum(cell[0] for cell in days.values()), sum(cell[1] for cell in days.values())
    if held != (counts["accepted"], counts["accepted_units"]):
        findings.append(f"{counts['accepted']:,} accepted but {held[0]:,} counted by their days")
    bounds = [row["day"], *days]
    return {
        "kind": "capture",
        "import_id": f"capture-{row['channel']}-{_date(row['day'])}",
        "tenant": row["tenant"],
        "format": row["channel"],
        "day": _date(row["day"]),
        "first_event": format_time(moment(min(bounds) * _DAY_US)),
        "last_event": format_time(moment((max(bounds) + 1) * _DAY_US - 1)),
        "updated_at": format_time(moment(row["updated_at_us"])),
        **{name: counts[name] for name in CAPTURE_COUNTS if not name.endswith("_units")},
        "stored_cost": format_amount(from_units(counts["accepted_units"])),
        "duplicate_cost": format_amount(from_units(counts["duplicate_units"])),
        "days": {
            _date(day): {"events": n, "cost": format_amount(from_units(units)), "tokens": tokens}
            for day, (n, units, tokens) in sorted(days.items())
        },
        "ties": not findings,
        "findings": findings,
    }


def list_captures(
    ledger: Ledger, tenant: str, start: datetime | None = None, end: datetime | None = None
) -> list[dict[str, Any]]:
    """The tenant's capture days as control records, by day then channel. With a window
    ``[start, end)`` (a period's midnights): the days that arrived in it or accepted events
    of it. (A tenant has at most two capture days a calendar day: they are read whole, each the
    sum of its writers' rows.)"""
    table, days = captures_table, capture_days_table
    dialect = ledger.dialect
    width = len(exact_sums(dialect, table.c.day))  # how many columns one exact sum takes
    counts = select(
        table.c.tenant, table.c.channel, table.c.day,
        func.max(table.c.updated_at_us).label("updated_at_us"),
        *(part for name in CAPTURE_COUNTS for part in exact_sums(dialect, table.c[name])),
    ).where(table.c.tenant == tenant).group_by(table.c.tenant, table.c.channel, table.c.day)  # fmt: skip
    by_day = (
        select(
            days.c.channel,
            days.c.day,
            days.c.event_day,
            *(
                part
                for name in ("events", "units", "tokens")
                for part in exact_sums(dialect, days.c[name])
            ),
        )
        .where(days.c.tenant == tenant)
        .group_by(days.c.channel, days.c.day, days.c.event_day)
    )

    def sums(row: Any, start: int, names: tuple[str, ...]) -> dict[str, int]:
        return {
            name: exact_total(row[start + i * width : start + (i + 1) * width])
            for i, name in enumerate(names)
        }

    with ledger.engine.connect() as connection:
        rows = sorted(
            (
                {"tenant": row[0], "channel": row[1], "day": row[2], "updated_at_us": row[3],
                 **sums(row, 4, CAPTURE_COUNTS)}
                for row in connection.execute(counts)
            ),
            key=lambda row: (row["day"], row["channel"]),
        )  # fmt: skip
        breakdown: dict[tuple[str, int], dict[int, list[int]]] = {}
        for found in connection.execute(by_day):
            summed = sums(found, 3, ("events", "units", "tokens"))
            breakdown.setdefault((found[0], found[1]), {})[found[2]] = [
                summed["events"], summed["units"], summed["tokens"],
            ]  # fmt: skip
    records = []
    for row in rows:
        own = breakdown.get((row["channel"], row["day"]), {})
        if start is not None and end is not None:
            low, high = day_of(micros(start)), -(-micros(end) // _DAY_US)
            if not (low <= row["day"] < high or any(low <= day < high for day in own)):
                continue
        records.append(_record(row, own))
    return records


def captures_touching(
    ledger: Ledger, tenant: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The capture days an audit of ``[start, end)`` carries: those that arrived in it or
    accepted any of its events."""
    return list_captures(ledger, tenant, start, end)


def ledger_days(ledger: Ledger, tenant: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(events, exact cost units) the ledger holds per (channel, UTC date of the events'
    time) for the tenant: what the capture days' accepted events are compared with."""
    table = events_table
    day = table.c.occurred_at_us // _DAY_US  # integer division on both stores
    query = (
        select(table.c.source, day, func.count(), *exact_sums(ledger.dialect, table.c.cost_units))
        .where(table.c.tenant == tenant, table.c.source.in_(CHANNELS))
        .group_by(table.c.source, day)
    )
    with ledger.engine.connect() as connection:
        return {
            (row[0], _date(int(row[1]))): (int(row[2]), exact_total(row[3:]))
            for row in connection.execute(query)
        }
