"""The journal a controller posts at close: accrue each provider's AI spend to cost centres.

One journal entry per provider and month (its id, ``P402-<month>-<PROVIDER>``, and numbered
lines), which balances on its own:

- a debit per cost centre, department and kind of use: the ledger's cost of the month, split
  by largest remainder from the month's cents so the lines sum to them exactly. Customer-facing
  use (events that name a customer) goes to the cost-of-revenue account, internal use to the
  operating expense account. The cost centre is the event's cost-centre tag where
  ``[journal] cost_center_tag`` names one and the event carries it, else the department's code
  from ``[journal] cost_centers``, else the department's name; usage with no department goes
  to the default cost centre;
- the reconciling items of the bridge (:mod:`p402.reporting.bridge`): a spread difference is
  added to the debits in proportion to their usage, billed days with no usage are charged to
  the default cost centre, and an unexplained difference goes to the suspense account;
- a credit of the provider's accrued liability: the invoice, or the ledger's figure when
  nothing was billed.

Accounts, cost centres, entity, currency and reversal come from ``[journal]`` in ``p402.toml``
(:class:`p402.config.JournalSettings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from p402.config import JournalSettings
from p402.money import allocate_to, from_units, split_cents
from p402.reporting.aggregate import UNATTRIBUTED, Charge, ProviderMonth
from p402.reporting.bridge import SHARED, SPREAD, SUSPENSE, Bridge

__all__ = ["JournalLine", "journal", "journal_id"]

_ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One line of a journal entry: an amount on one side (the other is zero)."""

    journal_id: str
    line: int
    posting_date: date
    reversal_date: date | None
    entity: str
    currency: str
    provider: str
    month: str
    account: str
    account_name: str
    cost_center: str
    department: str
    description: str
    debit: Decimal
    credit: Decimal
    exact: Decimal | None = None
    """The ledger's exact cost behind a usage line (before any spread difference)."""


def journal_id(provider: str, month: str) -> str:
    """The entry's id: unique per provider and month, the same on every run."""
    return f"P402-{month}-{provider.upper()}"


def _month_end(month: str) -> date:
    year, number = int(month[:4]), int(month[5:])
    return date.fromordinal(date(year + number // 12, number % 12 + 1, 1).toordinal() - 1)


@dataclass(frozen=True, slots=True)
class _Line:
    """A line before numbering: its amount signed (a debit is positive)."""

    account: str
    account_name: str
    cost_center: str
    department: str
    description: str
    amount: Decimal
    units: int | None = None
    """The ledger's exact cost units behind a usage line."""


def _center(charge: Charge, settings: JournalSettings) -> str:
    if charge.tag:
        return charge.tag
    if charge.department is None:
        return settings.default_cost_center
    return settings.cost_centers.get(charge.department, charge.department)


def _usage(held: ProviderMonth, settings: JournalSettings) -> list[_Line]:
    """The month's charges, one debit per account, cost centre and department."""
    grouped: dict[tuple[bool, str, str], int] = {}
    for charge in held.charges:
        key = (charge.customer_facing, _center(charge, settings), charge.department or UNATTRIBUTED)
        grouped[key] = grouped.get(key, 0) + charge.units
    debits = []
    for (facing, center, department), units in grouped.items():
        account, name, use = (
            (settings.cogs_account, settings.cogs_account_name, "customer-facing")
            if facing
            else (settings.expense_account, settings.expense_account_name, "internal")
        )
        text = f"{held.provider} AI usage {held.month}, {department}, {use}"
        debits.append(_Line(account, name, center, department, text, _ZERO, units))
    return debits


def _lines(held: ProviderMonth, item: Bridge, settings: JournalSettings) -> list[_Line]:
    debits = _usage(held, settings)
    weights = [d.units or 0 for d in debits]
    cents = allocate_to(held.cost, weights) if debits else []
    spread = item.amount(SPREAD)
    shares = split_cents(spread, weights) if spread and debits else [_ZERO] * len(debits)
    lines = []
    for debit, amount, share in zip(debits, cents, shares, strict=True):
        text = debit.description + (f" (with {share:+} of the invoice difference)" if share else "")
        lines.append(replace(debit, description=text, amount=amount + share))
    shared = item.amount(SHARED) + (spread if not debits else _ZERO)
    if shared:
        lines.append(_Line(settings.expense_account, settings.expense_account_name,
                           settings.default_cost_center, UNATTRIBUTED,
                           f"{held.provider} billed {held.month} with no usage in the ledger", shared))  # fmt: skip
    suspense = item.amount(SUSPENSE)
    if suspense:
        lines.append(_Line(settings.suspense_account, settings.suspense_account_name, "", "",
                           f"{held.provider} {held.month} invoice difference to clear", suspense))  # fmt: skip
    lines.append(_Line(settings.liability_account, settings.liability_account_name, "", "",
                       f"{held.provider} accrued {held.month} ({item.basis})", -item.accrued))  # fmt: skip
    return lines


def journal(
    months: Sequence[ProviderMonth],
    bridges: Sequence[Bridge],
    settings: JournalSettings,
    *,
    entity: str,
) -> list[JournalLine]:
    """The period's journal entries, one per provider-month of the bridge with an amount."""
    held = {(month.provider, month.month): month for month in months}
    out: list[JournalLine] = []
    for item in bridges:
        usage = held.get((item.provider, item.month)) or ProviderMonth(
            item.provider, item.month, 0, 0, 0, 0, frozenset()
        )
        if not item.accrued and not usage.cost_units:
            continue
        posted, ident = _month_end(item.month), journal_id(item.provider, item.month)
        reversal = date.fromordinal(posted.toordinal() + 1) if settings.reverse_accruals else None
        for number, line in enumerate(_lines(usage, item, settings), start=1):
            out.append(JournalLine(
                ident, number, posted, reversal, settings.entity or entity, settings.currency,
                item.provider, item.month, line.account, line.account_name, line.cost_center,
                line.department, line.description, max(line.amount, _ZERO), max(-line.amount, _ZERO),
                None if line.units is None else from_units(line.units),
            ))  # fmt: skip
    return out
