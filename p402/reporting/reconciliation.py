"""Reconcile the ledger with what the providers billed, per provider and month.

The billed side is an invoice total from ``p402.toml`` (``[[invoices]]``) when one is given,
else the sum of the provider's imported cost export (invoice lines). The ledger side is the
period's events of that provider: the provider's row of By Provider split across its months,
so they tie to every other table. Within ±0.5 % of the larger amount, a month is reconciled;
beyond that it is a finding, with the causes the data can show: unpriced events, billed days with no usage
captured, days of the month with no events at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from p402.config import Invoice
from p402.money import CENT, round_cents
from p402.reporting.aggregate import ProviderMonth

__all__ = ["NO_CAUSE", "TOLERANCE", "Reconciliation", "reconcile"]

TOLERANCE = Decimal("0.5")
"""Percent of the larger amount within which a month counts as reconciled."""
NO_CAUSE = "no cause in the data: check for usage outside the keys and projects this ledger covers"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """One provider and month: what was billed, what the ledger holds, and why they differ."""

    provider: str
    month: str
    billed: Decimal | None
    billed_source: str | None
    ledger: Decimal
    difference: Decimal | None
    percent: Decimal | None
    """The difference (ledger minus billed) in percent of the larger amount, signed."""
    status: str
    causes: tuple[str, ...]
    uncaptured: Decimal = Decimal("0.00")
    """Billed on days the ledger holds no usage of the provider for (from imported billed
    lines): the part of the difference the data explains and can price."""

    def as_json(self) -> dict[str, str | None]:
        """The month as the manifest and the PDF's JSON summary record it (amounts in cents)."""
        return {
            "provider": self.provider,
            "month": self.month,
            "status": self.status,
            "billed": None if self.billed is None else str(self.billed),
            "ledger": str(self.ledger),
        }

    @property
    def reconciled(self) -> bool:
        """Whether the month is within tolerance (a month with nothing billed is not a finding)."""
        return self.status in {"reconciled", "no invoice"}


def _month_days(month: str, through: date | None) -> list[date]:
    year, number = int(month[:4]), int(month[5:])
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    last = (
        following.toordinal() - 1
        if through is None
        else min(following.toordinal() - 1, through.toordinal())
    )
    return [date.fromordinal(n) for n in range(first.toordinal(), last + 1)]


def _causes(
    held: ProviderMonth | None, billed_days: Mapping[str, int], through: date | None, month: str
) -> list[str]:
    causes: list[str] = []
    if held is not None and held.unpriced_events:
        causes.append(
            f"{held.unpriced_events:,} {'event' if held.unpriced_events == 1 else 'events'} "
            f"({held.unpriced_tokens:,} tokens) {'uses' if held.unpriced_events == 1 else 'use'} "
            "a model with no known price"
        )
    seen = held.days if held is not None else frozenset()
    billed_not_seen = sorted(
        day for day, units in billed_days.items() if units and date.fromisoformat(day) not in seen
    )
    if billed_not_seen:
        shown = ", ".join(billed_not_seen[:5]) + (" ..." if len(billed_not_seen) > 5 else "")
        causes.append(f"billed on {len(billed_not_seen)} days with no usage in the ledger: {shown}")
    elif not billed_days:
        quiet = [day for day in _month_days(month, through) if day not in seen]
        if quiet and held is not None:
            causes.append(f"no events on {len(quiet)} days of the month")
    return causes


def _status(billed: Decimal | None, ledger: Decimal, percent: Decimal | None) -> str:
    if billed is None:
        return "no invoice"
    if percent is None or abs(percent) <= TOLERANCE:
        return "reconciled"
    if ledger == 0:
        return "missing from ledger"
    return "ledger over invoice" if ledger > billed else "ledger under invoice"


def reconcile(
    months: Sequence[ProviderMonth],
    *,
    invoices: Sequence[Invoice],
    billed: Mapping[tuple[str, str], int],
    through: date | None,
    period_months: Sequence[str],
) -> list[Reconciliation]:
    """Every provider and month of the period that has usage, an invoice or billed lines.

    Args:
        months: the ledger's provider-months (from the aggregation of the period).
        invoices: invoice totals from the configuration.
        billed: billed storage units per (provider, ISO day), from imported cost exports.
        through: the last day the ledger has data for (days after it are not "missing").
        period_months: the months (``YYYY-MM``) the audit covers: invoices of other months are
            not this audit's business.
    """
    held = {(m.provider, m.month): m for m in months}
    ledger = {(m.provider, m.month): m.cost for m in months}
    lines: dict[tuple[str, str], dict[str, int]] = {}
    for (provider, day), units in billed.items():
        lines.setdefault((provider, day[:7]), {})[day] = units
    totals = {(i.provider, i.period): i.amount for i in invoices}
    sources = {(i.provider, i.period): f"invoice in {i.source}" for i in invoices}
    keys = sorted(key for key in set(held) | set(lines) | set(totals) if key[1] in period_months)
    rows = []
    for provider, month in keys:
        days = lines.get((provider, month), {})
        amount, source = totals.get((provider, month)), sources.get((provider, month), "")
        if amount is None and days:
            amount, source = round_cents(sum(days.values())), "imported cost export"
        mine = ledger.get((provider, month), Decimal("0.00"))
        difference = None if amount is None else mine - amount
        larger = None if amount is None else max(abs(amount), abs(mine))
        percent = (
            None if difference is None or not larger else (difference / larger * 100).quantize(CENT)
        )
        status = _status(amount, mine, percent)
        causes = (
            ()
            if status in {"reconciled", "no invoice"}
            else tuple(_causes(held.get((provider, month)), days, through, month) or [NO_CAUSE])
        )
        seen = held[(provider, month)].days if (provider, month) in held else frozenset()
        uncaptured = round_cents(
            sum(units for day, units in days.items() if date.fromisoformat(day) not in seen)
        )
        rows.append(Reconciliation(provider, month, amount, source if amount is not None else None, mine,
                                   difference, percent, status, causes, uncaptured))  # fmt: skip
    return rows
