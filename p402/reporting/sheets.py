"""What each sheet of the close workbook holds, as plain data: columns, typed rows, totals.

The workbook adapter (:mod:`p402.reporting.xlsx`) renders these the same way for every sheet;
this module decides the content. Cost columns carry the cent amounts allocated in aggregation,
so each sheet's rows sum to its total, and totals are spreadsheet formulas over the rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from p402.money import allocate_cents
from p402.reporting.aggregate import TAG_PREFIX, UNIT_DIMENSIONS, Breakdown
from p402.reporting.report import Report

__all__ = ["BREAKDOWNS", "ROUNDING", "Column", "Sheet", "breakdown_sheet", "detail_sheets"]

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
    note: str | None = None
    """What the sheet holds and how its figures are rounded: beside its header."""
    landscape: bool = False
    """Printed across the page (a wide sheet)."""

    @property
    def totals_row(self) -> int | None:
        """The 1-based row of the totals (header is row 1), or None without totals."""
        return len(self.rows) + 2 if any(column.total for column in self.columns) else None

    def cell(self, header: str) -> str:
        """The A1 reference of *header*'s total, for formulas on other sheets."""
        index = self.index(header)
        return f"'{self.title}'!{_letter(index + 1)}{self.totals_row}"

    def index(self, header: str) -> int:
        """The 0-based column of *header*."""
        return next(i for i, column in enumerate(self.columns) if column.header == header)

    def total(self, header: str) -> Any:
        """The sum of *header*'s column: what its totals-row formula computes."""
        index = self.index(header)
        return sum((row[index] for row in self.rows if row[index] is not None), Decimal(0))


def _letter(number: int) -> str:
    """The column letters of a 1-based column number (A, ..., Z, AA, ...)."""
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


ROUNDING = (
    "Cost (USD) is each row's share of the total in cents: the total is rounded once (half up), "
    "each row starts at its exact cost rounded down and the cents left go to the rows with the "
    "largest remainders, so the rows sum to the total and a row may show a cent under or over "
    "its own rounding. Exact cost (USD) is the row's unrounded cost, to 10^-12 USD: use it for a "
    "rebill."
)


def _names(dimension: str) -> tuple[str, str, str]:
    """A breakdown's sheet title, table name and first column's header. A tag's are made from
    its name: a sheet title has at most 31 characters and none of ``: / \\ ? * [ ]``, a table
    name only letters, digits and underscores."""
    if not dimension.startswith(TAG_PREFIX):
        return BREAKDOWNS[dimension], f"By{dimension.capitalize()}", dimension.capitalize()
    name = dimension[len(TAG_PREFIX) :]
    title = ("By tag " + re.sub(r"[:/\\?*\[\]]", "-", name))[:31]
    return title, "ByTag_" + re.sub(r"\W", "_", name), f"Tag {name}"


def breakdown_sheet(dimension: str, breakdown: Breakdown) -> Sheet:
    """A breakdown's rows: count columns, the allocated cents, and the exact amount."""
    title, table, header = _names(dimension)
    columns = (
        Column(header, 44),
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
    return Sheet(title, table, columns, rows, ROUNDING)


def _previous(report: Report) -> list[Sheet]:
    """Each breakdown against the period before: every value either period has, so each
    dimension's rows sum to both periods' totals."""
    if report.previous is None:
        return []
    columns = (
        Column("Dimension", 12), Column("Value", 36), Column("This period (USD)", 16, "money"),
        Column(f"{report.previous_label} (USD)", 16, "money"), Column("Change (USD)", 14, "money"),
        Column("Change", 10, "percent"),
    )  # fmt: skip
    rows = tuple(
        (m.dimension, m.value, m.now, m.before, m.now - m.before, m.change)
        for m in report.movements()
    )
    note = (
        f"Each breakdown of this period against {report.previous_label}'s, from the ledger (the bundle "
        "holds this period's events only): each dimension's rows sum to both periods' totals, a value "
        "only one period has at zero in the other."
    )
    return [Sheet("Previous Period", "PreviousPeriod", columns, rows, note)]


def _daily(report: Report) -> Sheet:
    daily = report.summary.daily
    columns = (
        Column("Date", 12, "date"),
        *(Column(p, 14, "money", total=True) for p in daily.providers),
    )
    columns += (
        Column("Total (USD)", 16, "money", total=True),
        Column("Exact total (USD)", 22, "exact"),
    )
    rows = []
    for day in daily.days:
        cells = [daily.cells.get((day, provider), Decimal("0.00")) for provider in daily.providers]
        exact = sum(daily.units.get((day, provider), 0) for provider in daily.providers)
        rows.append((day, *cells, sum(cells, Decimal("0.00")), Decimal(exact).scaleb(-12)))
    note = (
        "Each provider's column is its row of By Provider split across the days, by largest "
        "remainder (its months first, as in Reconciliation): the columns tie to By Provider and "
        "each month to the Reconciliation's ledger figure. Exact total (USD) is the day's "
        "unrounded cost."
    )
    return Sheet("Daily", "Daily", columns, tuple(rows), note, landscape=len(columns) > 7)


def _findings(report: Report) -> Sheet:
    columns = (
        Column("Decision", 10), Column("Policy", 40), Column("Department", 24),
        Column("Events", 12, "count", total=True), Column("Cost (USD)", 16, "money", total=True),
        Column("Exact cost (USD)", 22, "exact"),
    )  # fmt: skip
    findings = report.summary.findings
    _, cents = allocate_cents([f.cost_units for f in findings])
    rows = tuple(
        (f.decision, f.policy, f.department, f.events, cent, Decimal(f.cost_units).scaleb(-12))
        for f, cent in zip(findings, cents, strict=True)
    )
    return Sheet("Policy Findings", "PolicyFindings", columns, rows, ROUNDING)


def _reconciliation(report: Report) -> Sheet:
    columns = (
        Column("Provider", 14), Column("Month", 10), Column("Billed (USD)", 16, "money", total=True),
        Column("Billed from", 24), Column("Ledger (USD)", 16, "money", total=True),
        Column("Ledger exact (USD)", 22, "exact"), Column("Difference (USD)", 16, "money", total=True),
        Column("Difference %", 14, "percent"), Column("Status", 22), Column("Causes", 80),
    )  # fmt: skip
    exact = {(m.provider, m.month): m.cost_units for m in report.summary.provider_months}
    rows = tuple(
        (r.provider, r.month, r.billed, r.billed_source, r.ledger,
         Decimal(exact.get((r.provider, r.month), 0)).scaleb(-12), r.difference,
         None if r.percent is None else r.percent / 100, r.status, "; ".join(r.causes) or None)
        for r in report.reconciliation
    )  # fmt: skip
    note = (
        "Difference = ledger minus billed; Difference % is of the larger amount, signed. Ledger "
        "(USD) is the provider's row of By Provider split across its months. The Bridge sheet "
        "takes each month from the ledger to what the journal accrues."
    )
    return Sheet("Reconciliation", "Reconciliation", columns, rows, note, landscape=True)


def _bridge(report: Report) -> Sheet:
    columns = (
        Column("Provider", 14), Column("Month", 10), Column("Step", 60),
        Column("Amount (USD)", 16, "money", total=True), Column("Posted as", 36),
    )  # fmt: skip
    rows: list[tuple[Any, ...]] = []
    for b in report.bridge:
        rows.append((b.provider, b.month, "Ledger", b.ledger, "cost centres"))
        rows.extend((b.provider, b.month, i.description, i.amount, i.treatment) for i in b.items)
    note = (
        "From the ledger to what was billed, per provider and month: the ledger's figure, then "
        "each reconciling item (billed minus ledger). Amount's total is what the journal "
        "accrues, the invoices where given and the ledger elsewhere: "
        + "; ".join(f"{b.provider} {b.month} {b.basis}" for b in report.bridge)
        + "."
    )
    return Sheet("Bridge", "Bridge", columns, tuple(rows), note, landscape=True)


def _by_month(report: Report) -> Sheet:
    providers = [row.label for row in report.summary.breakdowns["provider"].rows]
    columns = (
        Column("Month", 10), *(Column(p, 14, "money", total=True) for p in providers),
        Column("Total (USD)", 16, "money", total=True), Column("Change on the month before", 14, "percent"),
    )  # fmt: skip
    cells = {(m.month, m.provider): m.cost for m in report.summary.provider_months}
    rows = tuple(
        (month, *(cells.get((month, p), Decimal("0.00")) for p in providers), amount,
         None if change is None else change / 100)
        for month, amount, change in report.month_changes()
    )  # fmt: skip
    note = (
        "Each provider's months are its row of By Provider split across them (the Reconciliation's "
        "ledger figures): the columns tie to By Provider and the rows to the period's months."
    )
    return Sheet("By Month", "ByMonth", columns, rows, note)


def _forecast(report: Report) -> Sheet:
    columns = (
        Column("Dimension", 12), Column("Value", 28), Column("Horizon", 9), Column("Horizon end", 12, "date"),
        Column("Spent to date (USD)", 18, "money"), Column("Expected (USD)", 16, "money"),
        Column("Low (USD)", 16, "money"), Column("High (USD)", 16, "money"), Column("Days left", 10, "count"),
        Column("Backtest median error %", 14), Column("Backtests", 10, "count"),
    )  # fmt: skip
    rows = tuple(
        (f.dimension, f.value, f.horizon, f.end, f.actual, f.expected, f.low, f.high, f.remaining_days,
         None if f.backtest_error is None else f"{f.backtest_error} %", f.backtests)
        for f in report.forecasts
    )  # fmt: skip
    note = (
        "Weekday-aware run rate: weekdays and weekend days averaged apart over the last 28 days "
        "with data, each day left to the horizon projected at its kind's average. The range is "
        "where 7-day backtests of the same method on this ledger's own history erred (10th to "
        "90th percentile), around the forecast."
    )
    return Sheet("Forecast", "Forecast", columns, rows, note, landscape=True)


def _anomalies(report: Report) -> Sheet:
    columns = (
        Column("Day", 12, "date"), Column("Dimension", 12), Column("Value", 30),
        Column("Actual (USD)", 14, "money"), Column("Baseline (USD)", 14, "money"),
        Column("Excess (USD)", 14, "money"), Column("Robust z", 10), Column("Events", 10, "count"),
        Column("First events (p402 receipt EVENT_ID)", 60),
    )  # fmt: skip
    rows = tuple(
        (a.day, a.dimension, a.value, a.actual, a.expected, a.excess, str(a.score), a.events,
         ", ".join(a.event_ids) or None)
        for a in report.anomalies
    )  # fmt: skip
    note = (
        "A day a department, workflow, customer or model spent far above its own baseline: the "
        "median of the same kind of day (weekday or weekend) over the trailing 28 days, its spread "
        "the median absolute deviation x 1.4826. Listed when the robust z-score is at least 3.5 "
        "and the excess at least $10 and a quarter of the baseline. One spike can show in several "
        "dimensions (a workflow and its department): the excesses overlap and are not to be added."
    )
    return Sheet("Anomalies", "Anomalies", columns, rows, note, landscape=True)


def _unit_costs(report: Report) -> Sheet:
    columns = (
        Column("Dimension", 11), Column("Value", 30), Column("Cost (USD)", 14, "money"), Column("Events", 10, "count"),
        Column("Requests", 11, "count"), Column("Cost per request (USD)", 16, "unit"),
        Column("Successful outcomes", 14, "count"), Column("Cost per success (USD)", 16, "unit"),
    )  # fmt: skip
    served, internal = report.uses()
    rows: list[tuple[Any, ...]] = [
        ("use", "Customer-facing (cost of revenue)", served, None, None, None, None, None),
        ("use", "Internal (operating expense)", internal, None, None, None, None, None),
    ]
    for dimension in UNIT_DIMENSIONS:
        rows += [
            (
                u.dimension,
                u.value,
                u.cost,
                u.events,
                u.requests,
                u.per_request,
                u.successes,
                u.per_success,
            )
            for u in report.unit_costs(dimension)
        ]
    note = (
        "Customer-facing spend is that of events naming a customer (the journal's cost of revenue); "
        "the two uses are the total's cents allocated, so they sum to it. Per workflow and customer: "
        "cost, requests and events whose outcome is success, and what a request and a success cost, "
        "to a hundredth of a cent (half up)."
    )
    return Sheet("Unit Costs", "UnitCosts", columns, tuple(rows), note)


def _credits(report: Report) -> list[Sheet]:
    if not report.credits:
        return []
    columns = (
        Column("Credit", 26), Column("Provider", 11), Column("Kind", 11), Column("Amount (USD)", 14, "money"),
        Column("Start", 12, "date"), Column("Expiry", 12, "date"), Column("Used (USD)", 14, "money"),
        Column("Left (USD)", 14, "money"), Column("Runs out", 12, "date"),
        Column("Unused or short at expiry (USD)", 18, "money"), Column("Status", 44),
    )  # fmt: skip
    rows = tuple(
        (c.name, c.provider, c.kind, c.amount, c.start, c.expiry, c.used, c.remaining, c.runs_out, c.at_expiry,
         c.status)
        for c in report.credits
    )  # fmt: skip
    note = (
        "Used is the provider's spend from the credit's start to the period's end (the ledger's). "
        "Runs out and at expiry follow the provider's weekday-aware run rate of the last 28 days; "
        "a commitment's figure at expiry is what the run rate leaves short of it."
    )
    return [Sheet("Credits", "Credits", columns, rows, note, landscape=True)]


def _budgets(report: Report) -> Sheet:
    columns = (
        Column("Budget", 28), Column("Scope", 11), Column("For", 24), Column("Window", 8), Column("Month", 9),
        Column("Mode", 6), Column("Limit (USD)", 14, "money"), Column("Spent (USD)", 14, "money"),
        Column("Used", 9, "percent"), Column("Forecast (USD)", 14, "money"), Column("Status", 13),
        Column("Passed the limit on", 14, "date"), Column("Days over", 10, "count"),
    )  # fmt: skip
    rows = tuple(
        (b.name, b.scope, b.value, b.window, b.month, b.mode, b.limit, b.actual, b.used, b.forecast, b.status,
         b.crossed, b.days_over if b.window == "day" else None)
        for b in report.budgets
    )  # fmt: skip
    note = (
        "Each [[budgets]] entry against the ledger, for each value of its scope it matches: a "
        "monthly budget per month (spent, and the forecast to the month's end at the run rate), "
        "a daily one by its largest day and the days over. Budgets on API keys are enforced by "
        "p402 serve and not shown here."
    )
    return Sheet("Budgets", "Budgets", columns, rows, note, landscape=True)


def _savings(report: Report) -> Sheet:
    columns = (
        Column("Workflow", 24), Column("Department", 18), Column("Provider", 11), Column("Model", 24),
        Column("Alternative", 24), Column("Events", 10, "count"), Column("Requests", 10, "count"),
        Column("Cost (USD)", 14, "money"), Column("On the alternative (USD)", 18, "money"),
        Column("Saving (USD)", 14, "money"), Column("Per request now (USD)", 14, "money"),
        Column("Per request on the alternative (USD)", 16, "money"), Column("Risk", 60),
    )  # fmt: skip
    rows = tuple(
        (v.workflow, v.department, v.provider, v.model, v.alternative, v.events, v.requests, v.cost,
         v.alternative_cost, v.saving, *v.per_request, v.risk)
        for v in report.savings
    )  # fmt: skip
    note = (
        "What each workflow's calls on a provider's top model would have cost on the same "
        "provider's smaller model: the same tokens, priced at the alternative's price on each "
        "call's day (negotiated prices first, then the price table). Each saving concerns other "
        "calls, but whether the smaller model does the job is unknown: p402 sees no content."
    )
    return Sheet("Savings", "Savings", columns, rows, note, landscape=True)


def _journal(report: Report) -> Sheet:
    columns = (
        Column("Journal", 26), Column("Line", 6, "count"), Column("Date", 12, "date"),
        Column("Reversal date", 13, "date"), Column("Entity", 14), Column("Currency", 9),
        Column("Account", 10), Column("Account name", 34), Column("Cost centre", 14),
        Column("Department", 24), Column("Description", 64), Column("Debit", 16, "money", total=True),
        Column("Credit", 16, "money", total=True), Column("Ledger exact (USD)", 22, "exact"),
    )  # fmt: skip
    rows = tuple(
        (j.journal_id, j.line, j.posting_date, j.reversal_date, j.entity, j.currency, j.account,
         j.account_name, j.cost_center or None, j.department or None, j.description, j.debit,
         j.credit, j.exact)
        for j in report.journal
    )  # fmt: skip
    note = (
        "One entry per provider and month, each balanced: debits of the ledger's cost by cost "
        "centre (cost of revenue for customer-facing use, operating expense for internal use), "
        "the Bridge's reconciling items, and a credit of the accrued liability. "
        "`p402 export --format journal` writes it as a file to import."
    )
    return Sheet("Journal", "Journal", columns, rows, note, landscape=True)


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
    """The sheets after the breakdowns: the period before (when the ledger holds it), months,
    days, budgets, forecast, anomalies, savings, unit costs, policy findings, reconciliation, the
    bridge to the invoices, the journal, and (audits) completeness and accuracy."""
    return [
        *_previous(report), _by_month(report), _daily(report), _budgets(report), *_credits(report),
        _forecast(report),
        _anomalies(report), _savings(report), _unit_costs(report), _findings(report),
        _reconciliation(report), _bridge(report), _journal(report), *_completeness(report),
    ]  # fmt: skip
