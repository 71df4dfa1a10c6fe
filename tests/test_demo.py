"""The demo generator: deterministic, streamed, in the period, priced, and shaped like a company."""

from __future__ import annotations

import dataclasses
import inspect
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import islice, pairwise

import pytest

from p402.config import Config
from p402.errors import ConfigError
from p402.ingest.demo import DEMO_PERIOD, DEMO_TENANT, generate
from p402.ingest.pricing import Pricer
from p402.ingest.validation import validate
from p402.ledger.events import TOKEN_FIELDS, Event
from p402.money import parse_amount
from p402.period import parse_period
from p402.reporting.aggregate import Aggregator
from p402.reporting.report import build_report

COUNT = 5_000


@pytest.fixture(scope="module")
def events() -> list[Event]:
    """One demo run, small enough to be quick and large enough for its proportions to hold."""
    return list(generate(count=COUNT))


def _cost(events: list[Event]) -> Decimal:
    return sum((e.cost for e in events if e.cost is not None), Decimal(0))


def test_the_same_arguments_give_the_same_events() -> None:
    first = list(generate(count=2_000, seed=7))
    assert first == list(generate(count=2_000, seed=7))
    other = list(generate(count=2_000, seed=8))
    assert [dataclasses.replace(e, event_id="") for e in other] != [
        dataclasses.replace(e, event_id="") for e in first
    ]


def test_the_defaults_are_the_demo_tenant_and_period(events: list[Event]) -> None:
    assert {e.tenant for e in events} == {DEMO_TENANT}
    assert DEMO_PERIOD == "2026-10"
    assert {e.tenant for e in generate(tenant="acme", count=50)} == {"acme"}


@pytest.mark.parametrize("count", [0, 1, 31, 999])
def test_the_count_is_exact(count: int) -> None:
    assert sum(1 for _ in generate(count=count)) == count


def test_events_are_in_the_period_and_in_time_order(events: list[Event]) -> None:
    window = parse_period(DEMO_PERIOD)
    assert len(events) == COUNT
    assert all(window.contains(e.occurred_at) for e in events)
    assert all(a.occurred_at <= b.occurred_at for a, b in pairwise(events))
    quarter = parse_period("2026-Q1")
    spread = list(generate(period="2026-Q1", count=3_000))
    assert all(quarter.contains(e.occurred_at) for e in spread)
    assert {e.occurred_at.month for e in spread} == {1, 2, 3}


def test_event_ids_are_unique_and_carry_the_seed(events: list[Event]) -> None:
    assert len({e.event_id for e in events}) == COUNT
    assert all(e.event_id.startswith("demo-402-") for e in events)


def test_it_streams_instead_of_building_a_list() -> None:
    stream = generate(count=500_000)
    assert inspect.isgenerator(stream)
    assert len(list(islice(stream, 3))) == 3


def test_bad_arguments_fail_before_any_event() -> None:
    with pytest.raises(ConfigError, match="count"):
        generate(count=-1)
    with pytest.raises(ConfigError, match="month"):
        generate(period="2026-13")


def test_the_organisation_has_the_promised_shape(events: list[Event]) -> None:
    assert len({e.provider for e in events}) >= 4
    assert len({e.model for e in events}) >= 12
    assert len({e.department for e in events} - {None}) == 8
    assert 50 <= len({e.employee for e in events} - {None}) <= 70
    assert 30 <= len({e.customer for e in events} - {None}) <= 45
    assert 15 <= len({e.workflow for e in events} - {None}) <= 25
    assert all(e.employee.endswith("@northwind.example") for e in events if e.employee)
    assert {e.operation for e in events} >= {"chat", "responses"}
    # Only customer-facing workflows carry a customer, and on every call; most work is internal.
    with_customer = {e.workflow for e in events if e.customer}
    assert all(e.customer for e in events if e.workflow in with_customer)
    assert sum(1 for e in events if e.customer) < COUNT / 2


def test_unattributed_spend_is_five_to_ten_percent(events: list[Event]) -> None:
    unattributed = [e for e in events if e.department is None]
    share = _cost(unattributed) / _cost(events)
    assert Decimal("0.05") <= share <= Decimal("0.10")
    for e in unattributed:
        assert (e.owner, e.employee, e.workflow, e.attribution_rule) == (None, None, None, None)
    attributed = [e for e in events if e.department is not None]
    assert all(e.owner and e.workflow and e.attribution_rule for e in attributed)


def test_a_few_workflows_dominate_the_spend(events: list[Event]) -> None:
    by_workflow: defaultdict[str | None, Decimal] = defaultdict(Decimal)
    for e in events:
        by_workflow[e.workflow] += e.cost or Decimal(0)
    largest = sorted(by_workflow.values(), reverse=True)
    assert sum(largest[:3], Decimal(0)) > _cost(events) / 2


def test_the_month_costs_what_a_mid_size_company_spends() -> None:
    # 5,000 events are a tenth of the demo's 50,000: $500 to $6,000 here is $5k to $60k there.
    assert Decimal(500) < _cost(list(generate(count=COUNT, seed=1))) < Decimal(6_000)


def test_policies_and_errors_appear_in_realistic_shares(events: list[Event]) -> None:
    decisions = Counter(e.policy_decision for e in events)
    assert 0.02 <= decisions["flag"] / COUNT <= 0.04
    assert 0 < decisions["deny"] < COUNT * 0.01
    for e in events:
        assert (e.policy is None) == (e.policy_decision == "allow")
        if e.policy_decision == "deny":
            assert sum(getattr(e, name) for name in TOKEN_FIELDS) == 0
            assert e.cost == 0
    errors = [e for e in events if e.outcome == "error"]
    assert 0.005 <= len(errors) / COUNT <= 0.02
    assert all(e.output_tokens == 0 for e in errors)


def test_every_event_is_priced_exactly(events: list[Event]) -> None:
    sources = Counter(e.cost_source for e in events)
    assert set(sources) == {"price_table", "provider"}
    assert 0.015 <= sources["provider"] / COUNT <= 0.045
    for e in events:
        assert isinstance(e.cost, Decimal)
        assert parse_amount(e.cost) == e.cost
        assert (e.price_ref is not None) == (e.cost_source == "price_table")


def test_openrouter_reports_the_list_price_plus_its_fee(events: list[Event]) -> None:
    pricer = Pricer()
    reported = [e for e in events if e.model == "anthropic/claude-sonnet-4.5"]
    assert reported
    for e in reported:
        assert e.provider == "openrouter"
        assert e.cost_source == "provider"
        quote = pricer.quote("anthropic", "claude-sonnet-4-5", e.occurred_at, False, None)
        assert quote is not None
        priced = quote.price(e)
        assert priced is not None
        expected = (priced[0] * Decimal("1.055")).quantize(Decimal("1e-10"), rounding=ROUND_HALF_UP)
        assert e.cost == expected


def test_token_buckets_do_not_overlap(events: list[Event]) -> None:
    for e in events:
        assert all(getattr(e, name) >= 0 for name in TOKEN_FIELDS)
        assert e.reasoning_tokens <= e.output_tokens
        assert e.requests >= 1
    for name in TOKEN_FIELDS:
        assert any(getattr(e, name) for e in events), name


def test_no_float_and_no_content_anywhere(events: list[Event]) -> None:
    for e in events[:1_000]:
        for value in (getattr(e, f.name) for f in dataclasses.fields(e)):
            assert not isinstance(value, float)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in e.tags)
        # Every demo event is a canonical event: the one validation gate gives it back unchanged.
        checked = validate(e.to_json(), tenant=e.tenant, source=e.source)
        assert checked.problems == []
        assert checked.dropped_content == ()
        assert checked.event == e


def test_traffic_follows_the_working_week_and_day(events: list[Event]) -> None:
    by_weekday = Counter(e.occurred_at.weekday() for e in events)
    days = Counter(datetime(2026, 10, d, tzinfo=UTC).weekday() for d in range(1, 32))
    per_day = {w: by_weekday[w] / days[w] for w in range(7)}
    assert min(per_day[w] for w in range(5)) > 2 * max(per_day[5], per_day[6])
    afternoons = sum(1 for e in events if 13 <= e.occurred_at.hour < 23)
    assert afternoons > COUNT / 2


def test_some_traffic_went_through_the_proxy(events: list[Event]) -> None:
    proxied = [e for e in events if e.source == "proxy"]
    assert 0.2 <= len(proxied) / COUNT <= 0.4
    assert all(e.evidence_status == "captured" for e in proxied)
    assert {e.evidence_status for e in events if e.source == "meter"} == {"reported"}


def test_demo_invoices_give_the_reconciliation_something_to_find() -> None:
    from p402.ingest.demo import demo_invoices
    from p402.money import to_units

    totals = {
        name: to_units(Decimal("1000"))
        for name in ("anthropic", "openai", "google", "bedrock", "openrouter")
    }
    invoices = {invoice.provider: invoice.amount for invoice in demo_invoices(totals)}
    assert invoices == {
        "anthropic": Decimal("1001.00"), "bedrock": Decimal("1000.00"), "google": Decimal("998.00"),
        "openai": Decimal("1023.00"),
    }  # fmt: skip


def test_the_demo_month_has_findings_that_name_their_events(events: list[Event]) -> None:
    aggregator = Aggregator()
    aggregator.extend(events)
    summary = aggregator.summary(start=parse_period(DEMO_PERIOD).start.date())
    report = build_report(
        summary, period=parse_period(DEMO_PERIOD), config=Config(), billed={}, tenant="demo"
    )
    assert report.anomalies
    ids = {event.event_id: event for event in events}
    field = {"department": "department", "workflow": "workflow", "customer": "customer",
             "api_key": "api_key_id"}  # fmt: skip
    for anomaly in report.anomalies:
        behind = [ids[i] for i in anomaly.event_ids]
        assert len(behind) == min(10, anomaly.events)
        for event in behind:
            assert event.occurred_at.date() == anomaly.day
            if anomaly.dimension in field:
                assert (getattr(event, field[anomaly.dimension]) or "Unattributed") == anomaly.value
            elif anomaly.dimension.startswith("tag."):
                assert dict(event.tags)[anomaly.dimension[4:]] == anomaly.value
            else:
                assert f"{event.provider}/{event.model}" == anomaly.value
    assert {a.dimension for a in report.anomalies} >= {"department", "api_key", "model"}
    quarter = next(f for f in report.forecasts if f.dimension == "total" and f.horizon == "quarter")
    assert (
        quarter.actual == summary.total
        and quarter.backtests > 0
        and quarter.low <= quarter.expected
    )
