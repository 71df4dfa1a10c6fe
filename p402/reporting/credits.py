"""Credits and commitments: what each ``[[credits]]`` entry has left, and when it runs out.

A prepaid balance or a credit grant is drawn down by its provider's spend from its start (the
ledger's, through the period's last day with data, up to its expiry). Its runway is the day the
provider's run rate (the Monitor's, weekday-aware) spends what is left; a credit that expires
first expires with the rest unused. A commitment is spend the organisation agreed to reach by
its expiry: at the run rate it reaches it, or falls short by an amount.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from p402.config import Credit
from p402.money import round_cents, to_units
from p402.reporting.monitor import projected, run_out

__all__ = ["CreditLine", "credit_lines"]


@dataclass(frozen=True, slots=True)
class CreditLine:
    """One credit: its amount, what was used, what is left, and where the run rate takes it."""

    name: str
    provider: str
    kind: str
    amount: Decimal
    start: date
    expiry: date | None
    used: Decimal
    """The provider's spend from the start, through the last day with data (and the expiry)."""
    remaining: Decimal
    runs_out: date | None
    """The day the run rate spends what is left (prepaid and grants), if within three years."""
    at_expiry: Decimal | None
    """Prepaid and grants: left unused at expiry; a commitment: short of it at expiry (0: met)."""
    status: str


def _line(
    credit: Credit, used: int, series: Mapping[date, int], since: date, through: date
) -> CreditLine:
    amount = to_units(credit.amount)
    left = amount - used
    if credit.kind == "commitment":
        reached = used + (projected(series, since, through, credit.expiry) if credit.expiry else 0)
        short = max(0, amount - reached)
        status = (
            "met"
            if used >= amount
            else f"short by ${round_cents(short):,} at expiry"
            if short
            else "on track"
        )
        return CreditLine(credit.name, credit.provider, credit.kind, credit.amount, credit.start, credit.expiry,
                          round_cents(used), round_cents(max(0, left)), None, round_cents(short), status)  # fmt: skip
    ends = run_out(series, left, since, through)
    unused = None
    if credit.expiry is not None and (ends is None or ends > credit.expiry):
        unused = round_cents(max(0, left - projected(series, since, through, credit.expiry)))
    if left <= 0:
        status = "used up"
    elif unused is not None:
        status = f"expires {credit.expiry} with ${unused:,} unused"
    elif ends is not None:
        status = f"runs out {ends}"
    else:
        status = "lasts beyond three years at this rate"
    return CreditLine(credit.name, credit.provider, credit.kind, credit.amount, credit.start, credit.expiry,
                      round_cents(used), round_cents(left), ends, unused, status)  # fmt: skip


def credit_lines(
    credits: Sequence[Credit], used: Mapping[str, int], daily: Mapping[tuple[date, str], int]
) -> tuple[CreditLine, ...]:
    """Every credit's line.

    Args:
        credits: ``[[credits]]`` from the configuration.
        used: per credit name, its provider's exact spend from its start (the ledger's).
        daily: the period's exact units per (day, provider): the run rates.
    """
    days = [day for day, _ in daily]
    if not days:
        return ()
    since, through = min(days), max(days)
    lines = []
    for credit in credits:
        series = {
            day: units for (day, provider), units in daily.items() if provider == credit.provider
        }
        lines.append(_line(credit, used.get(credit.name, 0), series, since, through))
    return tuple(lines)
