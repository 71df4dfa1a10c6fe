"""Exact money: parsing, storage units, the one rounding rule and cent allocation.

No float ever touches an amount. Amounts are :class:`~decimal.Decimal` in memory and integer
*units* of 10^-12 USD in storage, which is exact for every per-token price providers publish
(prices per million tokens with up to six decimals). Rounding to cents happens once, at the
edge, with :func:`round_cents`; :func:`allocate_cents` rounds a set of parts so that they sum to
the rounded whole (largest remainder), which is what makes every report view tie out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation

__all__ = [
    "CENT",
    "CURRENCY",
    "INPUT_ROUNDING",
    "MAX_EVENT_COST",
    "ROUNDING",
    "UNITS_PER_CENT",
    "UNIT_SCALE",
    "allocate_cents",
    "allocate_to",
    "format_amount",
    "from_units",
    "parse_amount",
    "plain_amount",
    "round_cents",
    "split_cents",
    "to_units",
]

UNIT_SCALE = 12
"""Stored amounts are integers of 10**-UNIT_SCALE USD."""
UNITS_PER_CENT = 10 ** (UNIT_SCALE - 2)
CENT = Decimal("0.01")
ROUNDING = ROUND_HALF_UP
"""The named rounding rule: half away from zero, as on an invoice."""
CURRENCY = "USD"
MAX_EVENT_COST = Decimal(9_000_000)
"""One event above this is a data error, and it keeps stored units inside a signed 64-bit int."""

_QUANTUM = Decimal(1).scaleb(-UNIT_SCALE)
_WIDE = Context(prec=60)
_LARGEST_DIGIT = 15
INPUT_ROUNDING = ROUND_HALF_EVEN
"""How digits finer than the storage unit are dropped at entry (never reaches a cent)."""


def parse_amount(value: object) -> Decimal:
    """Read an amount from a decimal string, an int or a Decimal; never from a float.

    Digits finer than 10^-12 USD are rounded away once, here, by :data:`INPUT_ROUNDING`: they
    are binary-float noise in provider exports (``0.018000000000000002``), far below any cent.

    Raises:
        ValueError: the value is a float, not a number, not finite, or absurdly large.
    """
    if isinstance(value, bool | float):
        raise ValueError("must be a decimal string, not a binary float")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | str):
        try:
            amount = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    else:
        raise ValueError(f"must be a decimal string, got {type(value).__name__}")
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    if amount.adjusted() > _LARGEST_DIGIT:
        raise ValueError(f"{value!r} is too large to be an amount")
    exact = amount.quantize(_QUANTUM, rounding=INPUT_ROUNDING, context=_WIDE)
    return amount if exact == amount else exact


_PLAIN = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,12})?")


def plain_amount(text: str) -> Decimal | None:
    """:func:`parse_amount` of text such as ``"0.0372856"`` (at most 15 digits before the point
    and 12 after, nothing else), by a shorter road to the same ``Decimal``; ``None`` for any
    other text, which :func:`parse_amount` must judge."""
    return Decimal(text) if _PLAIN.fullmatch(text) else None


def to_units(amount: Decimal) -> int:
    """Exact integer storage units of an amount already accepted by :func:`parse_amount`."""
    return int(amount.scaleb(UNIT_SCALE))


def from_units(units: int) -> Decimal:
    """The amount that *units* storage units stand for, exactly."""
    return Decimal(units).scaleb(-UNIT_SCALE)


def format_amount(amount: Decimal) -> str:
    """The canonical text of an exact amount: plain notation, no trailing zeros, ``"0"`` for zero.

    This is the form written to ``events.jsonl`` and the manifest, so it must never change for
    the same value.
    """
    if amount.is_zero():
        return "0"
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def round_cents(units: int) -> Decimal:
    """Round an exact amount in storage units to cents by the named rule. The only rounding."""
    return from_units(units).quantize(CENT, rounding=ROUNDING)


def allocate_cents(parts: Sequence[int]) -> tuple[Decimal, list[Decimal]]:
    """Round a whole and its parts to cents so that the rounded parts sum to the rounded whole.

    The whole is ``sum(parts)`` rounded once by :data:`ROUNDING`. Each part starts at its floor
    in cents; the cents still missing go one each to the parts with the largest remainders (the
    earlier part wins a tie), so every part ends at the floor or ceiling of its exact value.

    Args:
        parts: exact amounts in storage units.

    Returns:
        The rounded whole and the rounded parts, in the order given.
    """
    whole = round_cents(sum(parts))
    floors = [part // UNITS_PER_CENT for part in parts]
    remainders = [part - floor * UNITS_PER_CENT for part, floor in zip(parts, floors, strict=True)]
    missing = int(whole / CENT) - sum(floors)
    order = sorted(range(len(parts)), key=lambda i: (-remainders[i], i))
    for i in order[:missing]:
        floors[i] += 1
    return whole, [Decimal(cents).scaleb(-2) for cents in floors]


def allocate_to(total: Decimal, parts: Sequence[int]) -> list[Decimal]:
    """Round *parts* to cents so that they sum to *total*, a cent amount already allocated to
    their whole by :func:`allocate_cents` (a provider's row, split into its months and days).

    Each part starts at its floor in cents and the cents still missing go one each to the parts
    with the largest remainders (the earlier part wins a tie), as in :func:`allocate_cents`; so
    a breakdown of a breakdown ties to its parent row, and every part ends at the floor or
    ceiling of its exact value.

    Raises:
        ValueError: *total* is not in cents, or no rounding of the parts reaches it (it is
            not the floor or the ceiling of their sum).
    """
    cents = int(total / CENT)
    if total != Decimal(cents) * CENT:
        raise ValueError(f"{total} is not rounded to cents")
    floors = [part // UNITS_PER_CENT for part in parts]
    remainders = [part - floor * UNITS_PER_CENT for part, floor in zip(parts, floors, strict=True)]
    missing = cents - sum(floors)
    order = [
        i for i in sorted(range(len(parts)), key=lambda i: (-remainders[i], i)) if remainders[i]
    ]
    if not 0 <= missing <= len(order):
        raise ValueError(f"{total} is not a rounding of parts that sum to {from_units(sum(parts))}")
    for i in order[:missing]:
        floors[i] += 1
    return [Decimal(part).scaleb(-2) for part in floors]


def split_cents(total: Decimal, weights: Sequence[int]) -> list[Decimal]:
    """Split a cent amount across *weights* in proportion, by largest remainder, so the parts
    sum to *total* exactly (an invoice spread across departments by their share of usage).

    With no weight at all (every weight zero), the whole amount goes to the first part.
    """
    cents = int(total / CENT)
    if total != Decimal(cents) * CENT:
        raise ValueError(f"{total} is not rounded to cents")
    if not weights:
        raise ValueError("nothing to split across")
    whole = sum(weights)
    if whole == 0:
        return [total] + [Decimal("0.00")] * (len(weights) - 1)
    floors = [cents * weight // whole for weight in weights]
    remainders = [
        cents * weight - floor * whole for weight, floor in zip(weights, floors, strict=True)
    ]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: cents - sum(floors)]:
        floors[i] += 1
    return [Decimal(part).scaleb(-2) for part in floors]
