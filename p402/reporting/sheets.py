"""What each sheet of the close workbook holds, as plain data: columns, typed rows, totals.

The workbook adapter (:mod:`p402.reporting.xlsx`) renders these the same way for every sheet;
this module decides the content. Cost columns carry the cent amounts allocated in aggregation,
so each sheet's rows sum to its total, and totals are spreadsheet formulas over the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from p402.reporting.aggregate import Breakdown
from p402.reporting.report import Report

__all__ = ["BREAKDOWNS", "Column", "Sheet", "breakdown_sheet", "detail_sheets"]

BREAKDOWNS = {
    "department": "By Department",
    "customer": "By Customer",
    "workflow": "By Workflow",
    "owner": "By Owner",
    "employee": "By Employee",
    "model": "By Model",
    "provider": "By Provider",
}


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its header, width, and kind (text, count, money, exact, date, percent)."""

    header: str
    width: int
    kind: str = "text"
    total: bool = False
    """Whether the totals row sums it."""


@dataclass(frozen=True, slots=True)
class Sheet:
    """A sheet: one Excel table of rows, then a totals row of formulas (if any column sums)."""

    title: str
    table: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]

    @property
    def totals_row(self) -> int | None:
        """The 1-based row of the totals (header is row 1), or None without totals."""
        return len(self.rows) + 2 if any(column.total for column in self.columns) else None

    def cell(self, header: str) -> str:
        """The A1 reference of *header*'s total, for formulas on other sheets."""
        index = next(i for i, column in enumerate(self.columns) if column.header == header)
        return f"'{self.title}'!{chr(ord('A') + index)}{self.totals_row}"


def breakdown_sheet(dimension: str, breakdown: Breakdown) -> Sheet:
    """A breakdown's rows: count columns, the allocated cents, and the exact amount."""
    columns = (
        Column(dimension.capitalize(), 44),
        Column("Events", 12, "count", total=True),
        Column("Requests", 12, "count", total=True),
        Column("Tokens", 16, "count", total=True),
        Column("Cost (USD)", 16, "money", total=True),
        Column("Exact cost (USD)", 22, "exact"),
    )
    rows = tuple(
        (
            row.label,
            row.events,
            row.requests,
            row.tokens,
            row.cost,
            Decimal(row.cost_units).scaleb(-12),
        )
        for row in breakdown.rows
    )
    return Sheet(BREAKDOWNS[dimension], f"By{dimension.capitalize()}", columns, rows)


def _daily(report: Report) -> Sheet:
    daily = report.summary.daily
    columns = (
        Column("Date", 12, "date"),
        *(Column(p, 14, "money", total=True) for p in daily.providers),
    )
    columns += (Column("Total (USD)", 16, "money", total=True),)
    rows = []
    for day in daily.days:
        cells = [daily.cells.get((day, provider), Decimal("0.00")) for provider in daily.providers]
        rows.append((day, *cells, sum(cells, Decimal("0.00"))))
    return Sheet("Daily", "Daily", columns, tuple(rows))


def _findings(report: Report) -> Sheet:
    columns = (
        Column("Decision", 10), Column("Policy", 40), Column("Department", 24),
        Column("Events", 12, "count", total=True), Column("Exact cost (USD)", 22, "exact"),
    )  # fmt: skip
    rows = tuple(
        (f.decision, f.policy, f.department, f.events, Decimal(f.cost_units).scaleb(-12))
        for f in report.summary.findings
    )
    return Sheet("Policy Findings", "PolicyFindings", columns, rows)


def _reconciliation(report: Report) -> Sheet:
    columns = (
        Column("Provider", 14), Column("Month", 10), Column("Billed (USD)", 16, "money"),
        Column("Billed from", 24), Column("Ledger (USD)", 16, "money"), Column("Difference (USD)", 16, "money"),
        Column("Difference %", 14, "percent"), Column("Status", 22), Column("Causes", 80),
    )  # fmt: skip
    rows = tuple(
        (r.provider, r.month, r.billed, r.billed_source, r.ledger, r.difference,
         None if r.percent is None else r.percent / 100, r.status, "; ".join(r.causes))
        for r in report.reconciliation
    )  # fmt: skip
    return Sheet("Reconciliation", "Reconciliation", columns, rows)


def _journal(report: Report) -> Sheet:
    columns = (
        Column("Date", 12, "date"), Column("Provider", 12), Column("Month", 10), Column("Account", 36),
        Column("Cost centre", 16), Column("Department", 24), Column("Description", 56),
        Column("Debit (USD)", 16, "money", total=True), Column("Credit (USD)", 16, "money", total=True),
    )  # fmt: skip
    rows = tuple(
        (
            j.posting_date,
            j.provider,
            j.month,
            j.account,
            j.cost_center,
            j.department,
            j.description,
            j.debit,
            j.credit,
        )
        for j in report.journal
    )
    return Sheet("Journal", "Journal", columns, rows)


def _completeness(report: Report) -> list[Sheet]:
    """Completeness and accuracy: a row per source, the difference as a row of its own (so the
    totals are the events read, the report's grand total), then the query and exceptions."""
    section = report.completeness
    if section is None:
        return []
    columns = (
        Column("Kind", 9), Column("Format", 16), Column("File or channel", 40),
        Column("Rows read", 12, "count", total=True), Column("Events stored", 14, "count", total=True),
        Column("Events in period", 16, "count", total=True), Column("Cost in period (USD)", 18, "money", total=True),
        Column("Exact cost in period (USD)", 24, "exact"), Column("Tokens in period", 16, "count", total=True),
        Column("Duplicates", 12, "count", total=True), Column("Skipped", 10, "count", total=True),
        Column("Odd", 8, "count", total=True), Column("Unpriced", 10, "count", total=True),
        Column("Tier-unpriced", 13, "count", total=True), Column("Import id", 34),
    )  # fmt: skip
    cents, difference, _ = section.cents()
    rows: list[tuple[Any, ...]] = [
        (r.kind, r.format, r.file, r.rows_read, r.stored, r.period_events, cent,
         None if r.period_units is None else Decimal(r.period_units).scaleb(-12),
         r.period_tokens, r.duplicates, r.skipped, r.odd, r.unpriced, r.tier_unpriced, r.import_id)
        for r, cent in zip(section.sources, cents, strict=True)
    ]  # fmt: skip
    events, units = section.difference
    tokens = section.read[2] - section.recorded[2]
    rows.append((
        "exception", "", "Events read that the records do not account for", 0, 0, events,
        difference, Decimal(units).scaleb(-12), tokens, 0, 0, 0, 0, 0, "",
    ))  # fmt: skip
    notes = [*section.query_lines(), *(("Exception", text) for text in section.exceptions())]
    return [
        Sheet("Completeness", "Completeness", columns, tuple(rows)),
        Sheet(
            "Completeness Notes",
            "CompletenessNotes",
            (Column("Item", 30), Column("Detail", 110)),
            tuple(notes),
        ),
    ]


def detail_sheets(report: Report) -> list[Sheet]:
    """The sheets after the breakdowns: daily spend, policy findings, reconciliation, journal,
    and (audits) completeness and accuracy."""
    return [
        _daily(report), _findings(report), _reconciliation(report), _journal(report),
        *_completeness(report),
    ]  # fmt: skip
