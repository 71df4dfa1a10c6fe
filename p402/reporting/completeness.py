"""Completeness and accuracy of the period's data (PCAOB AS 1105.10 and .10A): per source (an
import's file, or a capture channel's day), the rows read, the events stored, the events of
this period and their cost and tokens, tied to the events the audit itself read and to the
report's grand total, with every exception listed.

The control records come in as JSON objects, whatever made them: :func:`control_rows` is the
one seam. Import records (``p402.ledger.imports``, one per file) and capture records
(``p402.ledger.captures``, one per channel and day of arrival) both carry ``days``, the events
they stored per UTC day of the events' time. A record without ``days`` is shown as not broken
down, never as a failure.

The tie, exact in storage units: events in the period by the records' days, less nothing, plus
the declared difference, equals the events the audit read. The difference is never hidden: it
is a figure of the report and of the manifest, and retention purges are listed beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from p402.money import allocate_cents, format_amount, from_units, parse_amount, to_units

__all__ = [
    "QUERY_SQL",
    "Completeness",
    "EventSource",
    "SourceRow",
    "completeness",
    "control_rows",
    "day_totals",
]

QUERY_SQL = (
    "SELECT * FROM events WHERE tenant = :tenant AND occurred_at_us >= :start "
    "AND occurred_at_us < :end ORDER BY occurred_at_us, event_id"
)
"""The predicate the audit selects the period's events by (``Ledger.stream_records``)."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One control record as a row of the section. ``period_*`` are ``None`` when the record
    does not break its events down by day."""

    kind: str
    import_id: str
    format: str
    file: str
    rows_read: int
    stored: int
    period_events: int | None
    period_units: int | None
    period_tokens: int | None
    duplicates: int
    already_stored: int
    skipped: int
    odd: int
    unpriced: int
    tier_unpriced: int
    ties: bool


@dataclass(frozen=True, slots=True)
class EventSource:
    """The period's events of one ``source`` and provider, counted from the events."""

    source: str
    provider: str
    events: int
    units: int
    tokens: int


@dataclass(frozen=True, slots=True)
class Completeness:
    """The section's figures."""

    tenant: str
    start: str
    end: str
    sources: tuple[SourceRow, ...]
    events: tuple[EventSource, ...]
    purges: tuple[Mapping[str, Any], ...] = ()

    @property
    def recorded(self) -> tuple[int, int, int]:
        """(events, storage units, tokens) of the period by the records broken down by day."""
        rows = [row for row in self.sources if row.period_events is not None]
        return (
            sum(row.period_events or 0 for row in rows),
            sum(row.period_units or 0 for row in rows),
            sum(row.period_tokens or 0 for row in rows),
        )

    @property
    def read(self) -> tuple[int, int, int]:
        """(events, storage units, tokens) of the events the audit read."""
        return (
            sum(item.events for item in self.events),
            sum(item.units for item in self.events),
            sum(item.tokens for item in self.events),
        )

    @property
    def difference(self) -> tuple[int, int]:
        """Events and units read less those the records account for (0, 0: it ties)."""
        (events, units, _), (recorded, cost, _) = self.read, self.recorded
        return events - recorded, units - cost

    @property
    def not_broken_down(self) -> int:
        """Records that do not say which days their events fall on."""
        return sum(1 for row in self.sources if row.period_events is None)

    def cents(self) -> tuple[list[Decimal], Decimal, Decimal]:
        """The in-period cost of each source row, then of the difference, in cents allocated
        so they sum to the rounded total of the events read (the report's grand total); and
        that total. Rows not broken down take 0."""
        parts = [row.period_units or 0 for row in self.sources]
        total, cents = allocate_cents([*parts, self.difference[1]])
        return cents[:-1], cents[-1], total

    def event_cents(self) -> list[Decimal]:
        """The cost of each row of the events as read (by source and provider), in cents
        allocated so they sum to the report's rounded grand total."""
        return allocate_cents([item.units for item in self.events])[1]

    def query_lines(self) -> list[tuple[str, str]]:
        """The query and parameters that selected the period's events."""
        return [
            ("Tenant", self.tenant),
            ("Period start (inclusive, UTC)", self.start),
            ("Period end (exclusive, UTC)", self.end),
            ("Selection", f"every event of tenant {self.tenant} whose time is at or after the "
             "start and before the end, in time order then event id"),
            ("Predicate", QUERY_SQL),
        ]  # fmt: skip

    def exceptions(self) -> list[str]:
        """Every exception, in words: what the reports list and the controller follows up."""
        found: list[str] = []
        for row in self.sources:
            where = f"{row.format} {row.file}"
            for name in ("duplicates", "skipped", "odd", "unpriced", "tier_unpriced"):
                if count := getattr(row, name):
                    found.append(f"{where}: {count:,} {name.replace('_', '-')}")
            if not row.ties:
                found.append(f"{where}: the record does not tie (see its findings)")
            if row.period_events is None:
                found.append(f"{where}: not broken down by day")
        events, units = self.difference
        if events or units:
            found.append(
                f"{events:+,} events and ${format_amount(from_units(units))} read that the "
                "control records do not account for"
            )
        for purge in self.purges:
            found.append(
                f"retention purge {purge['entry_id']} ({purge['recorded_at']}): "
                f"{purge['count']:,} events removed"
            )
        return found

    def manifest_section(self) -> dict[str, Any]:
        """The totals the manifest signs beside the records, for ``p402 verify``."""
        (recorded, cost, tokens), (events, units, _) = self.recorded, self.read
        diff_events, diff_units = self.difference
        return {
            "in_period": {"events": recorded, "cost": _decimal(cost), "tokens": tokens},
            "read": {"events": events, "cost": _decimal(units)},
            "difference": {"events": diff_events, "cost": _decimal(diff_units)},
            "not_broken_down": self.not_broken_down,
        }

    def as_json(self) -> dict[str, Any]:
        """The section for the summary JSON: per-source totals and the tie."""
        return {
            "query": {"tenant": self.tenant, "start": self.start, "end": self.end},
            "sources": [
                {
                    "import_id": row.import_id, "kind": row.kind, "format": row.format,
                    "file": row.file, "rows_read": row.rows_read, "stored": row.stored,
                    "events_in_period": row.period_events,
                    "cost_in_period": None if row.period_units is None
                    else _decimal(row.period_units),
                    "tokens_in_period": row.period_tokens,
                }
                for row in self.sources
            ],
            "events_by_source": [
                {"source": item.source, "provider": item.provider, "events": item.events,
                 "cost": _decimal(item.units), "tokens": item.tokens}
                for item in self.events
            ],
            **self.manifest_section(),
        }  # fmt: skip


def _decimal(units: int) -> str:
    return format_amount(from_units(units))


def day_totals(record: Mapping[str, Any], start: str, end: str) -> tuple[int, int, int] | None:
    """(events, storage units, tokens) a record's days put in ``[start, end)`` (days as
    ``YYYY-MM-DD``, bounds as RFC 3339 UTC); ``None``: the record has no per-day breakdown.

    Raises:
        ValueError: a day's figures are not counts and a decimal string.
    """
    days = record.get("days")
    if days is None:
        return None
    if not isinstance(days, dict):
        raise ValueError("days must be an object")
    events = units = tokens = 0
    for day, cell in days.items():
        if not isinstance(cell, dict) or not all(
            isinstance(cell.get(n), int) and not isinstance(cell.get(n), bool)
            for n in ("events", "tokens")
        ):
            raise ValueError(f"days.{day} must hold counts")
        if not isinstance(cell.get("cost"), str):
            raise ValueError(f"days.{day}.cost must be a decimal string")
        if start[:10] <= day < end[:10]:
            events += cell["events"]
            units += to_units(parse_amount(cell["cost"]))
            tokens += cell["tokens"]
    return events, units, tokens


def control_rows(records: Iterable[Mapping[str, Any]], start: str, end: str) -> list[SourceRow]:
    """THE SEAM: control records of any kind (import records, capture-day records) as rows of
    the section, in the order given. Add a new kind of record here and nowhere else."""
    rows = []
    for record in records:
        totals = day_totals(record, start, end)
        capture = record.get("kind") == "capture"
        rows.append(
            SourceRow(
                kind="capture" if capture else "import",
                import_id=str(record["import_id"]),
                format=str(record["format"]),
                file=f"{record['format']} channel, {record['day']}" if capture
                else str(record["file"]),
                rows_read=int(record["received"] if capture else record["rows_read"]),
                stored=int(record["accepted"] if capture else record["stored"]),
                period_events=None if totals is None else totals[0],
                period_units=None if totals is None else totals[1],
                period_tokens=None if totals is None else totals[2],
                duplicates=int(record.get("duplicates", 0)),
                already_stored=int(record.get("already_stored", 0)),
                skipped=int(record.get("rejected" if capture else "skipped", 0)),
                odd=int(record.get("odd", 0)),
                unpriced=int(record.get("unpriced", 0)),
                tier_unpriced=int(record.get("tier_unpriced", 0)),
                ties=bool(record.get("ties", True)),
            )
        )  # fmt: skip
    return rows


def completeness(
    records: Sequence[Mapping[str, Any]],
    tally: Mapping[tuple[str, str], Sequence[int]],
    *,
    tenant: str,
    start: str,
    end: str,
    purges: Sequence[Mapping[str, Any]] = (),
) -> Completeness:
    """The section from the control records and the events' own tally per (source, provider)
    of ``[events, storage units, tokens]``."""
    events = tuple(
        EventSource(source, provider, counts[0], counts[1], counts[2])
        for (source, provider), counts in sorted(tally.items())
    )
    return Completeness(
        tenant, start, end, tuple(control_rows(records, start, end)), events, tuple(purges)
    )
