"""Aggregation: exact sums, and every breakdown ties out to the same rounded total."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from p402.money import round_cents, to_units
from p402.reporting.aggregate import DIMENSIONS, UNATTRIBUTED, Aggregator
from tests.conftest import small_events


def test_every_breakdown_sums_to_the_grand_total() -> None:
    aggregator = Aggregator()
    aggregator.extend(small_events())
    summary = aggregator.summary()
    exact = sum(to_units(e.cost) for e in small_events() if e.cost is not None)
    assert summary.cost_units == exact
    assert summary.total == round_cents(exact)
    for name in DIMENSIONS:
        breakdown = summary.breakdowns[name]
        assert breakdown.total == summary.total
        assert sum((row.cost for row in breakdown.rows), Decimal(0)) == summary.total
        assert sum(row.events for row in breakdown.rows) == summary.events
    assert summary.attributed + summary.unattributed == summary.total


def test_unattributed_is_its_own_row_last() -> None:
    aggregator = Aggregator()
    aggregator.extend(small_events())
    rows = aggregator.summary().breakdowns["department"].rows
    assert rows[-1].label == UNATTRIBUTED and not rows[-1].attributed
    assert [r.cost_units for r in rows[:-1]] == sorted(
        (r.cost_units for r in rows[:-1]), reverse=True
    )


def test_counts_policy_errors_and_unpriced() -> None:
    aggregator = Aggregator()
    aggregator.extend(small_events())
    summary = aggregator.summary()
    assert (summary.flagged, summary.denied, summary.errors, summary.unpriced_events) == (
        1,
        1,
        1,
        1,
    )
    assert summary.unpriced_tokens == 5100


@given(
    st.lists(st.tuples(st.sampled_from(["A", "B", "C", None]), st.integers(0, 10**13)), max_size=40)
)
def test_ties_out_for_any_costs(costs: list[tuple[str | None, int]]) -> None:
    base = small_events()[0]
    aggregator = Aggregator()
    for n, (department, units) in enumerate(costs):
        aggregator.add(dataclasses.replace(base, event_id=str(n), department=department,
                                           cost=Decimal(units).scaleb(-12)))  # fmt: skip
    summary = aggregator.summary()
    for breakdown in summary.breakdowns.values():
        assert sum((row.cost for row in breakdown.rows), Decimal(0)) == summary.total


def test_provider_months_carry_their_departments_exactly() -> None:
    aggregator = Aggregator()
    aggregator.extend(small_events())
    months = aggregator.summary().provider_months
    assert {m.provider for m in months} == {"openai", "anthropic", "google"}
    for month in months:
        costs = [
            e.cost for e in small_events() if e.provider == month.provider and e.cost is not None
        ]
        departments = {
            e.department
            for e in small_events()
            if e.provider == month.provider and e.cost is not None
        }
        assert sum(units for _, units in month.departments) == month.cost_units
        assert month.cost_units == sum(to_units(cost) for cost in costs)
        assert {name for name, _ in month.departments} == departments
