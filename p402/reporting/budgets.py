"""Budgets in the reports: each ``[[budgets]]`` entry against what was spent, and where the
month is heading.

The routing proxy enforces a budget at the moment of a call (:mod:`p402.serve.policy`); the
reports hold the same budgets against the ledger, whatever path the spend came by. A budget
applies to each value of its scope that matches its glob, on its own. A monthly budget gives a
line per month of the period and matching value: spent, the limit, the share used, the day the
month's spend first passed the limit, and the forecast to the month's end (the Monitor's
weekday-aware run rate, from the same days as every forecast). A daily budget gives a line per
matching value: its largest day and the days over the limit. Budgets on API keys are held by
the proxy only: a report's series are by department, workflow and customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fnmatch import fnmatchcase

from p402.config import Budget
from p402.money import round_cents, to_units
from p402.reporting.monitor import month_end

__all__ = ["BudgetLine", "budget_lines"]


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget for one value of its scope (and one month, for a monthly budget)."""

    name: str
    scope: str
    value: str
    window: str
    month: str | None
    """``YYYY-MM`` for a monthly budget; ``None`` for a daily one."""
    mode: str
    limit: Decimal
    actual: Decimal
    """Spent in the month (monthly), or on the largest day (daily)."""
    forecast: Decimal
    """The month's spend at its end, at the run rate (monthly; the actual when the month is
    over); the largest day (daily)."""
    crossed: date | None
    """The first day the spend passed the limit (cumulative in the month, or in a day)."""
    days_over: int = 0

    @property
    def used(self) -> Decimal:
        """The share of the limit spent, 0 to 1 and beyond."""
        return self.actual / self.limit if self.limit else Decimal(0)

    @property
    def status(self) -> str:
        """``over``, ``heading over`` (the forecast passes the limit) or ``within``."""
        if self.actual > self.limit:
            return "over"
        return "heading over" if self.forecast > self.limit else "within"


def _monthly(
    budget: Budget,
    value: str,
    by_day: Mapping[date, int],
    months: Sequence[str],
    span: tuple[date, date],
) -> list[BudgetLine]:
    limit = to_units(budget.limit)
    lines = []
    for month in months:
        days = sorted(day for day in by_day if f"{day.year:04d}-{day.month:02d}" == month)
        spent, crossed = 0, None
        for day in days:
            spent += by_day[day]
            if crossed is None and spent > limit:
                crossed = day
        projected = month_end(by_day, month, *span)
        lines.append(BudgetLine(
            budget.name, budget.scope, value, budget.window, month, budget.mode, budget.limit,
            round_cents(spent), round_cents(max(spent, projected)), crossed,
        ))  # fmt: skip
    return lines


def _daily(budget: Budget, value: str, by_day: Mapping[date, int]) -> BudgetLine:
    limit = to_units(budget.limit)
    over = sorted(day for day, units in by_day.items() if units > limit)
    largest = max(by_day.values(), default=0)
    return BudgetLine(
        budget.name, budget.scope, value, budget.window, None, budget.mode, budget.limit,
        round_cents(largest), round_cents(largest), over[0] if over else None, len(over),
    )  # fmt: skip


def budget_lines(
    budgets: Sequence[Budget],
    series: Mapping[tuple[str, str], Mapping[date, tuple[int, int]]],
    months: Sequence[str],
) -> tuple[BudgetLine, ...]:
    """Every budget's lines for the period, the most used first.

    Args:
        budgets: ``[[budgets]]`` from the configuration.
        series: per (dimension, value), per day: exact units and events (the summary's).
        months: the months (``YYYY-MM``) of the period.
    """
    every = [day for by_day in series.values() for day in by_day]
    if not every:
        return ()
    span = (min(every), max(every))
    lines: list[BudgetLine] = []
    for budget in budgets:
        for (dimension, value), by_day in sorted(series.items()):
            if dimension != budget.scope or not fnmatchcase(value, budget.value):
                continue
            costs = {day: units for day, (units, _) in by_day.items()}
            if budget.window == "month":
                lines += _monthly(budget, value, costs, months, span)
            else:
                lines.append(_daily(budget, value, costs))
    return tuple(
        sorted(lines, key=lambda line: (-line.used, line.name, line.value, line.month or ""))
    )
