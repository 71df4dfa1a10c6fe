"""The roll-up: the database's grouped sums give exactly the summary of event-by-event counting."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p402.audit import draft
from p402.config import Config
from p402.ingest import demo
from p402.ledger.events import ROLLUP_FIELDS, Event
from p402.ledger.rollup import rollup
from p402.ledger.store import Ledger
from p402.period import Period, parse_period
from p402.reporting import xlsx
from p402.reporting.aggregate import DIMENSIONS, Aggregator, Summary
from tests.conftest import PERIOD, TENANT, _postgres_ledger, small_events

QUARTER = parse_period("2026-Q4")
_tenants = itertools.count()


def by_event(
    ledger: Ledger,
    tenant: str,
    period: Period,
    tag: str | None = None,
    breakdowns: tuple[str, ...] = (),
) -> Summary:
    """The summary counted one event at a time (the audit's path)."""
    aggregator = Aggregator(cost_center_tag=tag, tag_breakdowns=breakdowns)
    for record, units, at in ledger.stream_records(tenant, period):
        aggregator.add_record(record, units, at)
    return aggregator.summary(start=period.start.date())


def by_rollup(
    ledger: Ledger,
    tenant: str,
    period: Period,
    tag: str | None = None,
    breakdowns: tuple[str, ...] = (),
) -> Summary:
    """The summary counted from the database's grouped sums."""
    aggregator = Aggregator(cost_center_tag=tag, tag_breakdowns=breakdowns)
    for group in rollup(ledger, tenant, period, tags=aggregator.tag_names):
        aggregator.add_group(group)
    return aggregator.summary(start=period.start.date())


def assert_ties_out(summary: Summary) -> None:
    """Every view of the summary sums to the same rounded total, to the cent."""
    for breakdown in summary.breakdowns.values():
        assert breakdown.total == summary.total
        assert sum((row.cost for row in breakdown.rows), Decimal(0)) == summary.total
        assert sum(row.events for row in breakdown.rows) == summary.events
        assert sum(row.tokens for row in breakdown.rows) == summary.tokens
        assert sum(row.cost_units for row in breakdown.rows) == summary.cost_units
    assert summary.attributed + summary.unattributed == summary.total
    assert sum(summary.daily.cells.values(), Decimal(0)) == summary.total
    assert sum((row.cost for row in summary.detail), Decimal(0)) == summary.total
    assert sum(row.events for row in summary.detail) == summary.events
    assert sum(m.cost_units for m in summary.provider_months) == summary.cost_units


names = st.sampled_from(["Alpha", "Beta", "Gamma"])
maybe = st.one_of(st.none(), names)
_DAY_US = 86_400_000_000


@st.composite
def who(draw: st.DrawFn) -> dict[str, object]:
    """What a group of events shares: provider, model, attribution (often none), policy."""
    return {
        "provider": draw(st.sampled_from(["openai", "anthropic"])),
        "model": draw(st.sampled_from(["m1", "in-house"])),
        **{f: draw(maybe) for f in ("owner", "department", "employee", "customer", "workflow")},
        "project": draw(maybe),
        "policy_decision": draw(st.sampled_from(["allow", "allow", "flag", "deny"])),
        "policy": draw(st.one_of(st.none(), st.sampled_from(["cap", "pii"]))),
        "outcome": draw(st.sampled_from(["success", "error"])),
        "quality": draw(
            st.sampled_from([None, "model_missing", "model_missing,reasoning_exceeds_output"])
        ),
    }


@st.composite
def events(draw: st.DrawFn, tenant: str) -> list[Event]:
    """Events over a quarter and just outside it, many sharing their fields (so groups hold
    several events): priced (sub-cent, zero, large) or not, at any time of day."""
    kinds = draw(st.lists(who(), min_size=1, max_size=4))
    items = []
    for n in range(draw(st.integers(0, 40))):
        cost = draw(
            st.one_of(
                st.none(),
                st.integers(0, 10**16).map(lambda units: Decimal(units).scaleb(-12)),
                st.sampled_from([Decimal("0.000000000001"), Decimal("0.004999999999")]),
            )
        )
        day = draw(st.integers(-1, 92))
        time_of_day = draw(
            st.one_of(
                st.sampled_from([0, 1, _DAY_US // 3, _DAY_US - 1]), st.integers(0, _DAY_US - 1)
            )
        )
        items.append(
            Event(
                event_id=f"e{n}",
                tenant=tenant,
                occurred_at=QUARTER.start + timedelta(microseconds=day * _DAY_US + time_of_day),
                requests=draw(st.integers(1, 50)),
                input_tokens=draw(st.integers(0, 10**9)),
                cache_read_tokens=draw(st.integers(0, 1000)),
                cache_write_tokens=draw(st.integers(0, 1000)),
                cache_write_1h_tokens=draw(st.integers(0, 1000)),
                output_tokens=draw(st.integers(0, 10**6)),
                reasoning_tokens=draw(st.integers(0, 1000)),
                cost=cost,
                cost_source=draw(st.sampled_from(["unpriced", "tier_unpriced"]))
                if cost is None
                else "provider",
                # Some of the cost may be tool calls: none, all, a third, or nothing of it.
                tool_cost=None
                if cost is None
                else draw(
                    st.sampled_from([None, cost, (cost / 3).quantize(Decimal("1e-12")), Decimal(0)])
                ),
                **draw(st.sampled_from(kinds)),  # type: ignore[arg-type]
            )
        )
    return items


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_rollup_summary_is_the_event_by_event_summary(ledger: Ledger, data: st.DataObject) -> None:
    tenant = f"prop{next(_tenants)}"  # a fresh tenant for each example
    ledger.add(data.draw(events(tenant)))
    # The quarter, a month of it, and a window starting and ending mid-day.
    odd = Period(
        "odd",
        datetime(2026, 10, 20, 7, 30, tzinfo=UTC),
        datetime(2026, 11, 9, 16, 45, 0, 1, tzinfo=UTC),
    )
    for period in (QUARTER, parse_period("2026-11"), odd):
        expected = by_event(ledger, tenant, period)
        assert by_rollup(ledger, tenant, period) == expected
        assert_ties_out(expected)


@pytest.mark.parametrize("tag", ["cost_center", "cc.code:v/2"])
def test_the_journal_cost_centre_tag_rolls_up_as_counted_event_by_event(
    ledger: Ledger, tag: str
) -> None:
    tenant = f"tag{next(_tenants)}"
    values = ["4100", 'it\'s "quoted"', None, "5200"]
    ledger.add([
        event.evolve(tags=() if values[n % 4] is None else ((tag, str(values[n % 4])), ("env", "prod")))
        for n, event in enumerate(small_events(tenant))
    ])  # fmt: skip
    expected = by_event(ledger, tenant, PERIOD, tag)
    assert by_rollup(ledger, tenant, PERIOD, tag) == expected
    tags = {charge.tag for month in expected.provider_months for charge in month.charges}
    assert tags == {"4100", 'it\'s "quoted"', None, "5200"}


def test_tag_breakdowns_roll_up_as_counted_event_by_event(ledger: Ledger) -> None:
    tenant = f"tagbd{next(_tenants)}"
    envs = ["prod", "staging", None]
    ledger.add([
        event.evolve(tags=tuple(sorted(
            ([("env", envs[n % 3])] if envs[n % 3] else []) + ([("cost_center", str(4100 + n % 2))] if n % 4 else [])
        )))
        for n, event in enumerate(small_events(tenant))
    ])  # fmt: skip
    shape = ("cost_center", ("env", "cost_center"))
    expected = by_event(ledger, tenant, PERIOD, *shape)
    assert by_rollup(ledger, tenant, PERIOD, *shape) == expected
    assert_ties_out(expected)
    env = expected.breakdowns["tag.env"]
    assert {row.label for row in env.rows} == {
        "prod",
        "staging",
        "No env tag",
    } and not env.empty_is_gap
    assert [row.label for row in env.rows][-1] == "No env tag"


def test_small_ledger_rolls_up_to_the_same_summary(ledger: Ledger) -> None:
    ledger.add(small_events())
    summary = by_rollup(ledger, TENANT, PERIOD)
    assert summary == by_event(ledger, TENANT, PERIOD)
    assert (summary.flagged, summary.denied, summary.errors, summary.unpriced_events) == (
        1,
        1,
        1,
        1,
    )
    assert summary.unpriced_models == (("openai/in-house-finetune-7", 1, 5100),)
    assert_ties_out(summary)


@pytest.mark.slow
def test_demo_ledger_rolls_up_to_the_same_summary(ledger: Ledger) -> None:
    ledger.add(demo.generate(count=6_000))
    period = parse_period(demo.DEMO_PERIOD)
    summary = by_rollup(ledger, demo.DEMO_TENANT, period)
    assert summary == by_event(ledger, demo.DEMO_TENANT, period)
    assert summary.events == 6_000 and summary.flagged and summary.denied and summary.errors
    groups = list(rollup(ledger, demo.DEMO_TENANT, period))
    assert sum(group.events for group in groups) == 6_000 < 2 * len(groups)  # groups, not events
    assert_ties_out(summary)


def test_a_window_of_part_days_rolls_up_to_the_same_summary(ledger: Ledger) -> None:
    ledger.add(small_events())  # an event every 7 hours: every time of day
    for hour in (0, 5, 7, 13, 23):
        period = Period(
            "part", datetime(2026, 10, 2, hour, 30, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC)
        )
        summary = by_rollup(ledger, TENANT, period)
        assert summary == by_event(ledger, TENANT, period)
        assert summary.first is not None and summary.first >= period.start


def test_the_summary_does_not_depend_on_the_order_of_the_groups(sqlite_ledger: Ledger) -> None:
    sqlite_ledger.add(demo.generate(count=2_000))
    period = parse_period(demo.DEMO_PERIOD)
    groups = list(rollup(sqlite_ledger, demo.DEMO_TENANT, period))
    summaries = []
    for order in (groups, groups[::-1], sorted(groups, key=lambda g: -g.cost_units)):
        aggregator = Aggregator()
        for group in order:
            aggregator.add_group(group)
        summaries.append(aggregator.summary(start=period.start.date()))
    # Equal field by field (ProviderMonth.days is a set: only ever asked what it contains).
    assert summaries[0] == summaries[1] == summaries[2]
    assert [row.label for row in summaries[0].breakdowns["employee"].rows] == [
        row.label for row in summaries[1].breakdowns["employee"].rows
    ]


def test_an_empty_period_rolls_up_to_an_empty_summary(ledger: Ledger) -> None:
    ledger.add(small_events())
    assert list(rollup(ledger, "nobody", PERIOD)) == []
    assert by_rollup(ledger, "nobody", PERIOD) == by_event(ledger, "nobody", PERIOD)


def test_other_tenants_and_periods_stay_out(ledger: Ledger) -> None:
    ledger.add(small_events())
    ledger.add(small_events("other"))
    september = parse_period("2026-09")
    assert list(rollup(ledger, TENANT, september)) == []
    assert sum(g.events for g in rollup(ledger, TENANT, PERIOD)) == len(small_events())


def test_the_rollup_groups_by_every_field_aggregation_reads() -> None:
    # Aggregation must read nothing but the roll-up's fields: a record with only those (plus
    # what add_record sums) counts; a new dimension on another field would fail here first.
    record = dict.fromkeys(ROLLUP_FIELDS, "x") | {
        "requests": 1,
        "input_tokens": 1,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "output_tokens": 1,
    }
    for key in DIMENSIONS.values():
        key(record)
    aggregator = Aggregator()
    aggregator.add_record(record, 7, 0)
    assert aggregator.summary().tokens == 2


@pytest.fixture
def postgres_ledger() -> Iterator[Ledger]:
    """An empty PostgreSQL ledger (skipped without a server)."""
    yield from _postgres_ledger()


@pytest.mark.postgres
@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_sqlite_and_postgresql_roll_up_identically(
    sqlite_ledger: Ledger, postgres_ledger: Ledger, data: st.DataObject
) -> None:
    tenant = f"both{next(_tenants)}"
    items = data.draw(events(tenant))
    sqlite_ledger.add(items)
    postgres_ledger.add(items)
    for period in (QUARTER, parse_period("2026-12")):
        summary = by_rollup(sqlite_ledger, tenant, period)
        assert by_rollup(postgres_ledger, tenant, period) == summary
        assert by_event(postgres_ledger, tenant, period) == summary


def test_report_without_the_events_sheet_reads_only_the_rollup(
    sqlite_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_ledger.add(small_events())
    expected = by_event(sqlite_ledger, TENANT, PERIOD)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the events were read one by one")

    monkeypatch.setattr(sqlite_ledger, "stream_records", refuse)
    summary, records = draft._summarise(sqlite_ledger, TENANT, PERIOD, events_sheet=False)
    assert (summary, records) == (expected, [])
    # More events than the sheet lists: the workbook shows the roll-up, so no event is read.
    monkeypatch.setattr(draft, "EVENTS_SHEET_LIMIT", 10)
    summary, records = draft._summarise(sqlite_ledger, TENANT, PERIOD, events_sheet=True)
    assert (summary, records) == (expected, [])


def test_report_with_the_events_sheet_lists_every_event(sqlite_ledger: Ledger) -> None:
    sqlite_ledger.add(small_events())
    summary, records = draft._summarise(sqlite_ledger, TENANT, PERIOD, events_sheet=True)
    assert summary == by_event(sqlite_ledger, TENANT, PERIOD)
    assert [r["event_id"] for r in records] == [
        r["event_id"] for r, _, _ in sqlite_ledger.stream_records(TENANT, PERIOD)
    ]


def test_a_large_period_reports_from_the_rollup(
    sqlite_ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openpyxl import load_workbook

    sqlite_ledger.add(small_events())
    monkeypatch.setattr(draft, "EVENTS_SHEET_LIMIT", 10)
    monkeypatch.setattr(xlsx, "EVENTS_SHEET_LIMIT", 10)
    files = draft.write_reports(
        sqlite_ledger, tenant=TENANT, period=PERIOD, config=Config(), out_dir=tmp_path,
        formats={"xlsx"}, page_size="A4",
    )  # fmt: skip
    assert files.report.summary == by_event(sqlite_ledger, TENANT, PERIOD)
    sheet = load_workbook(files.files[0], read_only=True)["Events"]
    rows = list(sheet.iter_rows(values_only=True))
    detail = files.report.summary.detail
    assert rows[0][:2] == ("Date", "Department")
    assert [row[5] for row in rows[1 : len(detail) + 1]] == [r.events for r in detail]
    assert sum(r.events for r in detail) == len(small_events())
