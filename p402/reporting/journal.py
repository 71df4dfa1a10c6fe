"""The journal a controller posts at close: accrue each provider's AI spend to cost centres.

Per provider and month, one debit line per department (the AI expense account, the
department's cost centre) and one credit line (the provider's accrued liability). The debits
split the invoice total when there is one, else the ledger total, in proportion to each
department's usage, by largest remainder, so they sum to it exactly. Unattributed usage is
charged to a default cost centre rather than spread over the others. Accounts and cost centres
come from ``[journal]`` in ``p402.toml`` (:class:`p402.config.JournalSettings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from p402.config import JournalSettings
from p402.money import split_cents
from p402.reporting.aggregate import ProviderMonth
from p402.reporting.reconciliation import Reconciliation

__all__ = ["JournalLine", "journal"]


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One line of the journal entry."""

    posting_date: date
    provider: str
    month: str
    account: str
    cost_center: str
    department: str
    description: str
    debit: Decimal
    credit: Decimal


def _posting_date(month: str) -> date:
    year, number = int(month[:4]), int(month[5:])
    return date.fromordinal(date(year + number // 12, number % 12 + 1, 1).toordinal() - 1)


def _entry(
    held: ProviderMonth, target: Decimal, basis: str, settings: JournalSettings
) -> list[JournalLine]:
    departments = held.departments or ((None, 0),)
    parts = split_cents(target, [units for _, units in departments])
    when = _posting_date(held.month)
    lines = []
    for (department, _), amount in zip(departments, parts, strict=True):
        name = department or "Unattributed"
        center = settings.cost_centers.get(
            name, name if department else settings.default_cost_center
        )
        description = f"{held.provider} AI usage {held.month}, {name} ({basis})"
        lines.append(
            JournalLine(when, held.provider, held.month, settings.expense_account, center, name, description,
                        amount, Decimal("0.00"))
        )  # fmt: skip
    description = f"{held.provider} accrued {held.month} ({basis})"
    lines.append(
        JournalLine(when, held.provider, held.month, settings.liability_account, "", "", description,
                    Decimal("0.00"), target)
    )  # fmt: skip
    return lines


def journal(
    months: Sequence[ProviderMonth],
    reconciliation: Sequence[Reconciliation],
    settings: JournalSettings,
) -> list[JournalLine]:
    """The journal lines of the period: per provider and month, debits that sum to the credit.

    A month billed with no usage in the ledger is accrued to the default cost centre.
    """
    held = {(month.provider, month.month): month for month in months}
    lines: list[JournalLine] = []
    for row in reconciliation:
        usage = held.get((row.provider, row.month)) or ProviderMonth(
            row.provider, row.month, 0, 0, 0, 0, frozenset()
        )
        if row.billed is not None:
            target, basis = row.billed, f"invoice, {row.billed_source}"
        else:
            target, basis = row.ledger, "ledger; no invoice given"
        if target:
            lines.extend(_entry(usage, target, basis, settings))
    return lines
