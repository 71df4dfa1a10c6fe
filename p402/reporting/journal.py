"""The journal a controller posts at close: accrue each provider's AI spend to cost centres.

Per provider and month, one debit line per department (the AI expense account, the
department's cost centre) and one credit line (the provider's accrued liability). The debits
split the invoice total when there is one, else the ledger total, in proportion to each
department's usage, by largest remainder, so they sum to it exactly. Unattributed usage is
charged to a default cost centre rather than spread over the others. Accounts and cost centres
come from ``[journal]`` in ``p402.toml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from p402.errors import ConfigError
from p402.money import split_cents
from p402.reporting.aggregate import ProviderMonth
from p402.reporting.reconciliation import Reconciliation

__all__ = ["JournalLine", "JournalSettings", "journal"]


@dataclass(frozen=True, slots=True)
class JournalSettings:
    """``[journal]``: the accounts, and department names to cost centre codes."""

    expense_account: str = "6150 AI and machine learning services"
    liability_account: str = "2150 Accrued AI services"
    default_cost_center: str = "SHARED"
    cost_centers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> JournalSettings:
        """Read ``[journal]``; unknown keys and non-text values are errors."""
        known = {"expense_account", "liability_account", "default_cost_center", "cost_centers"}
        if unknown := set(table) - known:
            raise ConfigError(
                f"[journal]: unknown keys {', '.join(sorted(unknown))}",
                hint=f"known: {', '.join(sorted(known))}",
            )
        texts = {key: table[key] for key in known - {"cost_centers"} if key in table}
        centers = table.get("cost_centers", {})
        if not all(isinstance(v, str) and v for v in texts.values()) or not isinstance(
            centers, Mapping
        ):
            raise ConfigError(
                "[journal]: accounts are text, and cost_centers a table of department = code"
            )
        return cls(**texts, cost_centers={str(k): str(v) for k, v in centers.items()})


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
