"""The report of a period: its summary, its reconciliation with the invoices, its journal.

One value that the PDF, the workbook and the audit manifest all read, so every view is of the
same figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from p402.config import Config
from p402.money import ROUNDING, allocate_cents, from_units
from p402.period import Period
from p402.reporting.aggregate import Summary
from p402.reporting.bridge import Bridge, bridge
from p402.reporting.budgets import BudgetLine, budget_lines
from p402.reporting.completeness import Completeness
from p402.reporting.credits import CreditLine
from p402.reporting.journal import JournalLine, journal
from p402.reporting.monitor import Anomaly, Forecast, monitor
from p402.reporting.reconciliation import Reconciliation, reconcile
from p402.reporting.savings import Saving

__all__ = ["Movement", "Report", "UnitCost", "build_report", "period_months"]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the reports show about one period."""

    summary: Summary
    reconciliation: tuple[Reconciliation, ...]
    journal: tuple[JournalLine, ...]
    months: tuple[tuple[str, Decimal], ...] = ()
    """Spend per month of the period (cents allocated: they sum to the total)."""
    completeness: Completeness | None = None
    """The completeness and accuracy section (audits only: it needs the control records)."""
    bridge: tuple[Bridge, ...] = ()
    """Per provider-month, the ledger to what is accrued, item by item."""
    forecasts: tuple[Forecast, ...] = ()
    """Where the spend is heading: all of it to the month's and the quarter's end, each
    provider and department to the quarter's."""
    anomalies: tuple[Anomaly, ...] = ()
    """Days a department, workflow, customer or model spent far above its own baseline."""
    savings: tuple[Saving, ...] = ()
    """What-ifs priced by re-pricing the period's events (when they were read one by one)."""
    budgets: tuple[BudgetLine, ...] = ()
    """Each ``[[budgets]]`` entry against the period's spend, the most used first."""
    credits: tuple[CreditLine, ...] = ()
    """Each ``[[credits]]`` entry: used, left, and when it runs out or expires."""
    previous: Summary | None = None
    """The period before (``None``: the ledger holds nothing of it), for comparison."""
    previous_label: str | None = None

    def movements(self) -> list[Movement]:
        """Each value of every breakdown in this period and the one before (zero where one has
        none), the largest change first within each dimension."""
        if self.previous is None:
            return []
        found = []
        zero = Decimal("0.00")
        for name, breakdown in self.summary.breakdowns.items():
            earlier = self.previous.breakdowns.get(name)
            before = {} if earlier is None else {row.label: row.cost for row in earlier.rows}
            now = {row.label: row.cost for row in breakdown.rows}
            cells = [
                Movement(name, label, now.get(label, zero), before.get(label, zero))
                for label in dict.fromkeys([*now, *before])
            ]
            found += sorted(cells, key=lambda m: (-abs(m.now - m.before), m.value))
        return found

    def change(self) -> Decimal | None:
        """The total's change on the previous period, in percent to one decimal."""
        before = None if self.previous is None else self.previous.total
        if not before:
            return None
        return ((self.summary.total - before) / before * 100).quantize(Decimal("0.1"))

    def month_changes(self) -> list[tuple[str, Decimal, Decimal | None]]:
        """Each month's spend and its change on the month before, in percent (None: first, or
        nothing spent the month before)."""
        changes: list[tuple[str, Decimal, Decimal | None]] = []
        for index, (month, amount) in enumerate(self.months):
            before = self.months[index - 1][1] if index else None
            change = (
                None if not before else ((amount - before) / before * 100).quantize(Decimal("0.1"))
            )
            changes.append((month, amount, change))
        return changes

    def uses(self) -> tuple[Decimal, Decimal]:
        """The spend that served customers (cost of revenue: events naming a customer) and the
        internal rest, in cents allocated from the total: they sum to it."""
        months = self.summary.provider_months
        facing = sum(c.units for m in months for c in m.charges if c.customer_facing)
        _, (served, internal) = allocate_cents([facing, self.summary.cost_units - facing])
        return served, internal

    def unit_costs(self, dimension: str) -> list[UnitCost]:
        """Per value of *dimension* (``workflow``, ``customer``): its cost, requests and
        successful outcomes, and what a request and a success cost (to a hundredth of a cent)."""
        found = []
        for row in self.summary.breakdowns[dimension].rows:
            if not row.attributed:
                continue
            successes = self.summary.successes.get((dimension, row.label), 0)
            found.append(UnitCost(dimension, row.label, row.cost, row.events, row.requests, successes,
                                  _per(row.cost_units, row.requests), _per(row.cost_units, successes)))  # fmt: skip
        return found

    @property
    def findings(self) -> tuple[Reconciliation, ...]:
        """The provider-months that do not reconcile."""
        return tuple(row for row in self.reconciliation if not row.reconciled)


@dataclass(frozen=True, slots=True)
class Movement:
    """One value of a breakdown in this period and the one before."""

    dimension: str
    value: str
    now: Decimal
    before: Decimal

    @property
    def magnitude(self) -> Decimal:
        """How far it moved, either way."""
        return abs(self.now - self.before)

    @property
    def change(self) -> Decimal | None:
        """The change as a share of the period before (``None`` when it had nothing)."""
        return None if not self.before else (self.now - self.before) / self.before


@dataclass(frozen=True, slots=True)
class UnitCost:
    """What one workflow's or customer's unit of work cost."""

    dimension: str
    value: str
    cost: Decimal
    events: int
    requests: int
    successes: int
    """Events whose outcome is ``success``."""
    per_request: Decimal | None
    per_success: Decimal | None


_UNIT = Decimal("0.0001")


def _per(units: int, count: int) -> Decimal | None:
    return None if not count else (from_units(units) / count).quantize(_UNIT, rounding=ROUNDING)


def period_months(period: Period) -> list[str]:
    """The months (``YYYY-MM``) a period touches."""
    months: list[str] = []
    day = period.start.date()
    last = (period.end - timedelta(microseconds=1)).date()
    while day <= last:
        label = f"{day.year:04d}-{day.month:02d}"
        if label not in months:
            months.append(label)
        if (day.year, day.month) == (9999, 12):
            break  # the calendar's last month: there is no next
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months


def build_report(
    summary: Summary,
    *,
    period: Period,
    config: Config,
    billed: Mapping[tuple[str, str], int],
    tenant: str = "",
) -> Report:
    """Reconcile the summary with the configured invoices and the imported billed lines, and
    draw up the journal.

    Args:
        summary: the period's aggregation.
        period: the audit period.
        config: the configuration (invoices, ``[journal]``).
        billed: billed storage units per (provider, ISO day) from imported cost exports.
        tenant: whose period; the journal's entity unless ``[journal] entity`` names one.
    """
    through = summary.last.date() if summary.last else None
    rows = reconcile(
        summary.provider_months,
        invoices=config.invoices,
        billed=billed,
        through=through,
        period_months=period_months(period),
    )
    bridges = bridge(rows, config.journal)
    lines = journal(summary.provider_months, bridges, config.journal, entity=tenant)
    labels = period_months(period)
    # A month's spend is its providers' months: the same cents as the reconciliation and the
    # Daily sheet, so the months sum to the total and tie to both.
    months = tuple(
        (label, sum((m.cost for m in summary.provider_months if m.month == label), Decimal("0.00")))
        for label in labels
    )
    days = sorted(
        {day for day, _ in summary.daily.units if period.start.date() <= day < period.end.date()}
    )
    series = {**summary.series, **summary.key_series}
    forecasts, found = monitor(summary.daily.units, series, summary.event_ids, days)
    return Report(summary, tuple(rows), tuple(lines), months, bridge=tuple(bridges), forecasts=forecasts,
                  anomalies=found, budgets=budget_lines(config.budgets, summary.series, labels))  # fmt: skip
