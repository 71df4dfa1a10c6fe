"""How figures are written in reports: money, counts, shares and dates. One place, tested.

Money is shown as ``$1,234.56``; negative amounts as ``-$1,234.56``; zero as ``$0.00``. Shares
are percentages with one decimal. Nothing here rounds money: amounts arrive already rounded to
cents by the allocation in :mod:`p402.reporting.aggregate`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from p402.money import CENT, round_cents

__all__ = ["FILTERS", "count", "date", "dimension", "money", "money_units", "percent"]


def money(amount: Decimal, currency: str = "USD") -> str:
    """``$1,234.56`` for a cent amount (refuses one that was not rounded to cents)."""
    if amount != amount.quantize(CENT):
        raise ValueError(f"{amount} is not rounded to cents")
    symbol = "$" if currency == "USD" else f"{currency} "
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.2f}"


def money_units(units: int) -> str:
    """An exact amount in storage units, rounded to cents once and shown as money. For figures
    shown on their own (a policy finding), never for parts of a table that must sum."""
    return money(round_cents(units))


def count(value: int) -> str:
    """A whole number with thousands separators."""
    return f"{value:,}"


def percent(share: Decimal) -> str:
    """A share from 0 to 1 as a percentage with one decimal: ``82.4 %``."""
    return f"{(share * 100).quantize(Decimal('0.1'))} %"


def date(moment: datetime | None, with_time: bool = False) -> str:
    """``2026-10-31`` (or with ``14:05 UTC``); an empty period shows an em dash."""
    if moment is None:
        return "\u2014"
    return moment.strftime("%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d")


def dimension(name: str) -> str:
    """A dimension as a reader names it: ``API key`` for ``api_key``, ``tag env`` for
    ``tag.env``; the others as they are (``department``)."""
    if name == "api_key":
        return "API key"
    return f"tag {name[4:]}" if name.startswith("tag.") else name


FILTERS = {
    "dimension": dimension,
    "money": money,
    "money_units": money_units,
    "count": count,
    "percent": percent,
    "date": date,
}
