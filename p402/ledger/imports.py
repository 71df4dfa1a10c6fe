"""Control records: one per file an import read, kept in the ledger, so that no row and no
dollar can disappear or appear without a line that says so.

A record counts every row read into exactly one outcome (stored, already stored before this
import, repeated within this import, skipped as invalid, or refused with the whole import),
with the money of each, and states whether what the ledger holds afterwards ties to that: the
events the store gained must be the rows first seen in the run less those already stored, and
their exact cost likewise. A difference is a *finding*, printed at the end of the import and
kept in the record, never a silent success. Records are never updated; a refused import
leaves its record too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from p402.ledger.schema import events_table, imports_table, invoice_lines_table
from p402.ledger.store import Ledger
from p402.money import format_amount, from_units
from p402.period import format_time, micros, moment

__all__ = [
    "ImportRecord", "existing_ids", "imports_touching", "list_imports", "record_imports", "totals",
]  # fmt: skip

_MONEY = (
    "read_cost", "stored_cost", "already_stored_cost", "duplicate_cost", "ledger_cost_change",
)  # fmt: skip
"""The record's amounts, kept as exact units in the dataclass and as decimal strings in JSON."""
_DAY_US = 86_400_000_000


@dataclass(slots=True)
class ImportRecord:
    """What one import did with one file. Counts are rows; ``*_cost`` are exact storage units
    (10^-12 USD) of the rows' priced costs (unpriced rows count as nothing and are counted
    apart); ``ledger_*`` are what the store itself gained, measured, not derived."""

    import_id: str
    tenant: str
    format: str
    file: str
    size: int
    sha256: str
    recorded_at: datetime
    status: str = "stored"
    """``stored``, or ``refused`` (the import had problems: nothing of any file was kept)."""
    rows_read: int = 0
    skipped: int = 0
    """Rows refused as invalid (kept out with ``--skip-invalid``, or refusing the import)."""
    valid: int = 0
    duplicates: int = 0
    """Rows whose id an earlier row of the same import already had."""
    already_stored: int = 0
    """Rows whose id the ledger held before this import (a re-import)."""
    stored: int = 0
    """Rows stored as new events or invoice lines: the rows first seen, less those already stored."""
    odd: int = 0
    """Valid rows a provider really emits that carry data-quality codes (``quality``)."""
    unpriced: int = 0
    tier_unpriced: int = 0
    content_fields_dropped: int = 0
    read_cost: int = 0
    duplicate_cost: int = 0
    already_stored_cost: int = 0
    stored_cost: int = 0
    ledger_added: int = 0
    """Events or lines the store holds after the file less before it, counted in the store."""
    ledger_cost_change: int = 0
    """The store's exact cost of the tenant's events after the file less before it."""
    first_event_us: int | None = None
    last_event_us: int | None = None
    """The earliest and latest time of the rows stored or already stored (microseconds since the
    epoch; ``None``: none): which audit periods the file's events fall in."""
    stated: dict[str, Any] | None = None
    """The source's own totals where the source states them; ``None``: it states none."""
    days: dict[int, list[int]] = field(default_factory=dict)
    """The rows stored (new events), per UTC day of their time (days since the epoch, written
    as dates): ``[events, exact cost units, tokens]``; what an audit period's share of the
    file is. Empty for invoice lines."""
    findings: list[str] = field(default_factory=list)

    def add_day(self, at_us: int, units: int, tokens: int) -> None:
        """Count one stored event in its UTC day."""
        cell = self.days.setdefault(at_us // _DAY_US, [0, 0, 0])
        cell[0] += 1
        cell[1] += units
        cell[2] += tokens

    def check(self) -> None:
        """Tie the record (count and money) and the store's own change to it, as findings."""
        self.findings = []
        outcomes = self.skipped + self.duplicates + self.already_stored + self.stored
        if self.status != "stored":
            return
        if outcomes != self.rows_read:
            self.findings.append(
                f"{self.rows_read:,} rows read but {outcomes:,} accounted for "
                f"(skipped {self.skipped:,}, repeated {self.duplicates:,}, "
                f"already stored {self.already_stored:,}, stored {self.stored:,})"
            )
        money = self.duplicate_cost + self.already_stored_cost + self.stored_cost
        if money != self.read_cost:
            self.findings.append(f"${_usd(self.read_cost)} read but ${_usd(money)} accounted for")
        if self.ledger_added != self.stored:
            self.findings.append(
                f"{self.stored:,} new rows to store but the ledger gained {self.ledger_added:,}"
            )
        if self.ledger_cost_change != self.stored_cost:
            self.findings.append(
                f"${_usd(self.stored_cost)} of new rows to store but the ledger's cost changed "
                f"by ${_usd(self.ledger_cost_change)}"
            )

    def refuse(self) -> None:
        """The import was refused and rolled back: rows read and skipped stay counted, nothing
        else of the file was kept."""
        self.status = "refused"
        for name in (
            "duplicates", "already_stored", "stored", "duplicate_cost", "already_stored_cost",
            "stored_cost", "ledger_added", "ledger_cost_change",
        ):  # fmt: skip
            setattr(self, name, 0)
        self.read_cost = 0
        self.findings = []

    @property
    def ties(self) -> bool:
        """Whether every count and amount ties: no findings."""
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        """The record as JSON: amounts as exact decimal strings, the times in RFC 3339."""
        record = asdict(self)
        record["recorded_at"] = format_time(self.recorded_at)
        for name in ("first_event", "last_event"):
            at = record.pop(f"{name}_us")
            record[name] = None if at is None else format_time(moment(at))
        for name in _MONEY:
            record[name] = format_amount(from_units(record[name]))
        record["days"] = {
            format_time(moment(day * _DAY_US))[:10]: {
                "events": n, "cost": format_amount(from_units(units)), "tokens": tokens,
            }
            for day, (n, units, tokens) in sorted(self.days.items())
        }  # fmt: skip
        record["ties"] = self.ties
        return record


def _usd(units: int) -> str:
    return format_amount(from_units(units))


def _body(record: ImportRecord) -> str:
    # Sorted keys over strings, integers, booleans and null: RFC 8785 canonical JSON.
    return orjson.dumps(record.to_json(), option=orjson.OPT_SORT_KEYS).decode()


def record_imports(connection: Connection, records: Sequence[ImportRecord]) -> None:
    """Keep *records* in the ledger, in the caller's transaction."""
    if records:
        connection.execute(
            imports_table.insert(),
            [
                {
                    "tenant": record.tenant,
                    "import_id": record.import_id,
                    "recorded_at_us": micros(record.recorded_at),
                    "format": record.format,
                    "status": record.status,
                    "body": _body(record),
                }
                for record in records
            ],
        )


def list_imports(ledger: Ledger, tenant: str) -> list[dict[str, Any]]:
    """The tenant's control records as JSON objects, oldest first."""
    table = imports_table
    query = (
        select(table.c.body)
        .where(table.c.tenant == tenant)
        .order_by(table.c.recorded_at_us, table.c.id)
    )
    with ledger.engine.connect() as connection:
        return [orjson.loads(body) for (body,) in connection.execute(query)]


def existing_ids(
    connection: Connection, tenant: str, ids: Iterable[str], *, lines: bool = False
) -> set[str]:
    """Which of *ids* the tenant's events (or, with *lines*, invoice lines) already have, in
    the caller's transaction."""
    table = invoice_lines_table if lines else events_table
    column = table.c.line_id if lines else table.c.event_id
    wanted = list(ids)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        query = select(column).where(
            table.c.tenant == tenant, column.in_(wanted[start : start + 500])
        )
        found.update(row[0] for row in connection.execute(query))
    return found


def totals(connection: Connection, tenant: str, *, lines: bool = False) -> tuple[int, int]:
    """How many events (or invoice lines) the tenant has and their exact cost in storage units,
    counted by the store in the caller's transaction."""
    table = invoice_lines_table if lines else events_table
    units = table.c.amount_units if lines else table.c.cost_units
    query = select(func.count(), func.coalesce(func.sum(units), 0)).where(table.c.tenant == tenant)
    count, cost = connection.execute(query).one()
    return int(count), int(cost)


def imports_touching(
    ledger: Ledger, tenant: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The tenant's stored control records whose events fall in ``[start, end)``: the records
    an audit of that window carries. A record counts when the span of its file's events meets
    the window."""
    # As times, not text: "...T00:00:00.5Z" sorts before "...T00:00:00Z" as text.
    return [
        record
        for record in list_imports(ledger, tenant)
        if record["status"] == "stored"
        and record["first_event"] is not None
        and datetime.fromisoformat(record["first_event"]) < end
        and datetime.fromisoformat(record["last_event"]) >= start
    ]
