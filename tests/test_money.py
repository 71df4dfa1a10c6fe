"""Money: exact parsing, storage units, one rounding rule, allocation that ties out."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p402.money import (
    CENT,
    UNITS_PER_CENT,
    allocate_cents,
    format_amount,
    from_units,
    parse_amount,
    round_cents,
    to_units,
)

amounts = st.decimals(
    min_value=0, max_value=9_000_000, places=12, allow_nan=False, allow_infinity=False
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", Decimal("0.1")),
        ("12", Decimal(12)),
        (7, Decimal(7)),
        ("  0.000000000001 ", Decimal("1e-12")),
    ],
)
def test_parse_amount_accepts_exact_forms(text: str | int, expected: Decimal) -> None:
    assert parse_amount(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.1, "binary float"),
        (True, "binary float"),
        ("abc", "not a decimal"),
        ("NaN", "not a finite"),
        ("Infinity", "not a finite"),
        ("1e20", "too large"),
        (None, "decimal string"),
    ],
)
def test_parse_amount_rejects_inexact_forms(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount(value)


@given(amounts)
def test_units_round_trip_exactly(amount: Decimal) -> None:
    assert from_units(to_units(amount)) == amount
    assert parse_amount(format_amount(amount)) == amount


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.018000000000000002", "0.018"),  # a provider's binary-float digits
        ("0.0000000000005", "0"),  # half to even, below the storage unit
        ("0.0000000000015", "0.000000000002"),
        ("-0.0000000000015", "-0.000000000002"),
    ],
)
def test_digits_below_the_storage_unit_are_rounded_once(text: str, expected: str) -> None:
    assert format_amount(parse_amount(text)) == expected


def test_format_amount_is_canonical() -> None:
    assert format_amount(Decimal("0.000")) == "0"
    assert format_amount(Decimal("1.50")) == "1.5"
    assert format_amount(Decimal("1E+2")) == "100"
    assert format_amount(Decimal("1.2E-11")) == "0.000000000012"


def test_round_cents_is_half_away_from_zero() -> None:
    assert round_cents(to_units(Decimal("0.005"))) == Decimal("0.01")
    assert round_cents(to_units(Decimal("0.004999999999"))) == Decimal("0.00")
    assert round_cents(to_units(Decimal("-0.005"))) == Decimal("-0.01")


@given(st.lists(st.integers(min_value=-(10**16), max_value=10**16), max_size=60))
def test_allocation_ties_out_and_stays_within_a_cent(parts: list[int]) -> None:
    whole, rounded = allocate_cents(parts)
    assert sum(rounded, Decimal(0)) == whole
    assert whole == round_cents(sum(parts))
    for exact, cents in zip(parts, rounded, strict=True):
        assert cents == cents.quantize(CENT)
        # each part ends at the floor or the ceiling of its exact value in cents
        assert abs(to_units(cents) - exact) < UNITS_PER_CENT


def test_allocation_gives_missing_cents_to_largest_remainders() -> None:
    third = to_units(Decimal("0.333333333333"))
    whole, rounded = allocate_cents([third, third, third + 2])
    assert whole == Decimal("1.00")
    assert rounded == [Decimal("0.33"), Decimal("0.33"), Decimal("0.34")]
