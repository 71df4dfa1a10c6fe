"""Monitor: the weekday-aware forecast and its backtest, and robust anomalies, on series whose
right answers are known."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from p402.ledger.store import Ledger
from p402.money import to_units
from p402.reporting.monitor import MIN_EXCESS, anomalies, forecast
from tests.conftest import small_events
from tests.test_cli import run

OCTOBER = [date(2026, 10, 1) + timedelta(days=n) for n in range(31)]


def weekly(weekday: str, weekend: str, days: list[date] = OCTOBER) -> dict[date, int]:
    return {d: to_units(Decimal(weekend if d.weekday() >= 5 else weekday)) for d in days}


def test_a_steady_week_is_projected_exactly_and_backtests_without_error() -> None:
    series = weekly("100", "20")
    month = forecast(series, "month")
    assert month is not None and month.expected == month.actual == Decimal(
        "2380.00"
    )  # 22 x 100 + 9 x 20
    quarter = forecast(series, "quarter")
    assert quarter is not None and quarter.remaining_days == 61
    # November: 21 weekdays, 9 weekend days; December: 23 and 8.
    assert quarter.expected == Decimal("2380.00") + Decimal(44 * 100 + 17 * 20)
    assert quarter.backtest_error == Decimal("0.0") and quarter.backtests == 11
    assert quarter.low == quarter.expected == quarter.high


def test_the_range_comes_from_the_backtest_and_holds_the_forecast() -> None:
    series = weekly("100", "20")
    for n, day in enumerate(OCTOBER):
        series[day] += to_units(Decimal(15 if n % 3 == 0 else 0))  # a ragged week
    quarter = forecast(series, "quarter")
    assert quarter is not None and quarter.backtest_error is not None and quarter.backtest_error > 0
    assert quarter.low <= quarter.expected <= quarter.high and quarter.low < quarter.high


def test_too_little_history_gives_no_range() -> None:
    quarter = forecast(weekly("100", "20", OCTOBER[:10]), "quarter")
    assert quarter is not None and quarter.backtests == 0 and quarter.backtest_error is None
    assert quarter.low == quarter.expected == quarter.high
    assert forecast({}, "month") is None


def _series(values: dict[date, int]) -> dict[tuple[str, str], dict[date, tuple[int, int]]]:
    return {("department", "Legal"): {d: (u, 3) for d, u in values.items()}}


def test_a_weekday_spike_is_an_anomaly_with_its_events_and_a_quiet_weekend_is_not() -> None:
    series = weekly("100", "20")
    spike = date(2026, 10, 22)  # a Thursday
    series[spike] += to_units(Decimal("60"))
    series[date(2026, 10, 24)] = 0  # a Saturday with nothing: below baseline, not a spike
    ids = {("department", "Legal", spike): ("e1", "e2")}
    (found,) = anomalies(_series(series), OCTOBER, ids)
    assert (found.day, found.actual, found.expected, found.excess) == (
        spike, Decimal("160.00"), Decimal("100.00"), Decimal("60.00"),
    )  # fmt: skip
    assert (found.events, found.event_ids) == (3, ("e1", "e2"))
    # Weekend days are not judged against weekdays: $20 on a Saturday is the norm.
    assert anomalies(_series(weekly("100", "20")), OCTOBER, {}) == []


def test_small_excesses_are_not_findings() -> None:
    series = weekly("10", "2")
    series[date(2026, 10, 22)] += MIN_EXCESS - 1  # a spike, but under $10
    assert anomalies(_series(series), OCTOBER, {}) == []


@given(st.lists(st.integers(0, 10**14), min_size=31, max_size=31), st.integers(0, 30))
def test_no_anomaly_is_ever_below_its_baseline_or_under_the_floor(
    costs: list[int], spike: int
) -> None:
    series = dict(zip(OCTOBER, costs, strict=True))
    series[OCTOBER[spike]] += 10**15
    for found in anomalies(_series(series), OCTOBER, {}):
        assert found.actual > found.expected and found.excess >= Decimal(10)
        # each figure rounded once, on its own: they agree to the cent
        assert abs(found.excess - (found.actual - found.expected)) <= Decimal("0.01")


def test_the_findings_command_names_the_events_behind_a_spike(tmp_path: Path) -> None:
    start = datetime(2026, 10, 1, 12, tzinfo=UTC)
    base = small_events("acme")[0].evolve(department="Legal", workflow="contracts", customer=None)
    events = [
        base.evolve(
            event_id=f"day-{n:02d}", occurred_at=start + timedelta(days=n), cost=Decimal("20")
        )
        for n in range(31)
    ]
    spike = start + timedelta(days=21)  # Thursday 2026-10-22
    events += [base.evolve(event_id=f"spike-{n}", occurred_at=spike + timedelta(minutes=n), cost=Decimal("30"))
               for n in range(3)]  # fmt: skip
    db = tmp_path / "l.db"
    ledger = Ledger.open(str(db))
    try:
        ledger.add(events)
    finally:
        ledger.close()
    found = run("findings", "--db", str(db), "--tenant", "acme", "--period", "2026-10", "--json")
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    legal = [a for a in result["anomalies"] if a["dimension"] == "department"]
    assert legal == [{
        "day": "2026-10-22", "dimension": "department", "value": "Legal", "actual": "110.00", "expected": "20.00",
        "excess": "90.00", "score": legal[0]["score"], "events": 4,
        "event_ids": ["day-21", "spike-0", "spike-1", "spike-2"],
    }]  # fmt: skip
    quarter = next(
        f for f in result["forecasts"] if f["dimension"] == "total" and f["horizon"] == "quarter"
    )
    assert quarter["actual"] == "710.00" and quarter["end"] == "2026-12-31"
    text = run("findings", "--db", str(db), "--tenant", "acme", "--period", "2026-10")
    assert "2026-10-22  department Legal: $110.00 against $20.00 (+$90.00" in text.stdout


def test_budgets_hold_each_matching_value_against_its_limit_and_its_forecast() -> None:
    from p402.config import Budget
    from p402.reporting.budgets import budget_lines

    def department(
        name: str, daily: str, days: list[date]
    ) -> dict[tuple[str, str], dict[date, tuple[int, int]]]:
        return {("department", name): {d: (to_units(Decimal(daily)), 1) for d in days}}

    half = OCTOBER[:15]  # data through 2026-10-15: the month is forecast
    series = {**department("Legal", "10", half), **department("Sales", "2", half)}
    series[("workflow", "x")] = {d: (to_units(Decimal("7")), 1) for d in half}
    budgets = [
        Budget("legal", "department", "Legal", "month", Decimal("100.00")),
        Budget("all", "department", "*", "month", Decimal("60.00"), "soft"),
        Budget("x-daily", "workflow", "x", "day", Decimal("5.00")),
        Budget("keys", "api_key", "*", "month", Decimal("1.00")),  # the proxy's, not a report's
    ]
    lines = {(b.name, b.value): b for b in budget_lines(budgets, series, ["2026-10"])}
    assert set(lines) == {("legal", "Legal"), ("all", "Legal"), ("all", "Sales"), ("x-daily", "x")}
    legal = lines[("legal", "Legal")]
    assert (legal.actual, legal.crossed, legal.status) == (
        Decimal("150.00"),
        date(2026, 10, 11),
        "over",
    )  # past $100
    assert legal.forecast == Decimal("310.00")  # ten dollars a day, every day, to the 31st
    sales = lines[("all", "Sales")]
    assert (sales.actual, sales.forecast, sales.status, sales.crossed) == (
        Decimal("30.00"), Decimal("62.00"), "heading over", None,
    )  # fmt: skip
    daily = lines[("x-daily", "x")]
    assert (daily.actual, daily.days_over, daily.crossed, daily.month) == (
        Decimal("7.00"),
        15,
        date(2026, 10, 1),
        None,
    )
    assert [line.used for line in budget_lines(budgets, series, ["2026-10"])] == sorted(
        (line.used for line in lines.values()), reverse=True
    )


def test_credits_run_out_expire_unused_or_fall_short_at_the_run_rate() -> None:
    from p402.config import Credit
    from p402.reporting.credits import credit_lines

    daily = {(d, "openrouter"): to_units(Decimal("10")) for d in OCTOBER}  # $10 every day
    prepaid = Credit("pre", "openrouter", Decimal("500.00"), date(2026, 9, 1))
    short_lived = Credit(
        "grant", "openrouter", Decimal("500.00"), date(2026, 9, 1), date(2026, 11, 10), "grant"
    )
    commitment = Credit(
        "commit",
        "openrouter",
        Decimal("1000.00"),
        date(2026, 10, 1),
        date(2026, 12, 31),
        "commitment",
    )
    used = {
        "pre": to_units(Decimal("310")),
        "grant": to_units(Decimal("310")),
        "commit": to_units(Decimal("310")),
    }
    pre, grant, commit = credit_lines([prepaid, short_lived, commitment], used, daily)
    # $190 left at $10 a day: 19 days after 2026-10-31.
    assert (pre.remaining, pre.runs_out, pre.at_expiry, pre.status) == (
        Decimal("190.00"), date(2026, 11, 19), None, "runs out 2026-11-19",
    )  # fmt: skip
    assert (
        grant.at_expiry == Decimal("90.00")
        and grant.status == "expires 2026-11-10 with $90.00 unused"
    )
    # $310 spent, $610 more by 2026-12-31 (61 days): $80 short of $1,000.
    assert (commit.at_expiry, commit.status) == (Decimal("80.00"), "short by $80.00 at expiry")
    met = credit_lines([commitment], {"commit": to_units(Decimal("1000"))}, daily)[0]
    assert (met.at_expiry, met.status) == (Decimal("0.00"), "met")
    assert credit_lines([prepaid], {"pre": to_units(Decimal("600"))}, daily)[0].status == "used up"


def test_a_credit_s_use_reaches_before_the_period(tmp_path: Path) -> None:
    from p402.audit.draft import credits_used
    from p402.config import Credit
    from p402.period import parse_period

    base = small_events("acme")[0].evolve(provider="openrouter", cost=Decimal("5"))
    start = datetime(2026, 9, 15, 12, tzinfo=UTC)
    ledger = Ledger.open(str(tmp_path / "l.db"))
    try:
        ledger.add(
            [
                base.evolve(event_id=f"e{n}", occurred_at=start + timedelta(days=n))
                for n in range(40)
            ]
        )
        used = credits_used(ledger, "acme", parse_period("2026-10"), [
            Credit("all", "openrouter", Decimal("500"), date(2026, 9, 1)),
            Credit("short", "openrouter", Decimal("500"), date(2026, 9, 20), date(2026, 9, 30)),
            Credit("other", "anthropic", Decimal("500"), date(2026, 9, 1)),
        ])  # fmt: skip
    finally:
        ledger.close()
    # From 2026-09-15 to the period's end: 40 days, all before 2026-11-01 (17 + 23), $5 each.
    assert used == {"all": to_units(Decimal(200)), "short": to_units(Decimal(55)), "other": 0}


def test_an_api_key_and_a_tag_have_their_own_baselines(tmp_path: Path) -> None:
    # One department spends steadily across two keys; on one day one key, tagged staging,
    # triples: the key and the tag are anomalies even when the department's whole barely moves.
    start = datetime(2026, 10, 1, 12, tzinfo=UTC)
    base = small_events("acme")[0].evolve(department="Platform", workflow="batch", customer=None)
    events = []
    for n in range(31):
        day = start + timedelta(days=n)
        events.append(base.evolve(event_id=f"a-{n:02d}", occurred_at=day, cost=Decimal("200"),
                                  api_key_id="key_prod", tags=(("env", "prod"),)))  # fmt: skip
        cost = Decimal("60") if n == 21 else Decimal("20")
        events.append(base.evolve(event_id=f"b-{n:02d}", occurred_at=day, cost=cost,
                                  api_key_id="key_stage", tags=(("env", "staging"),)))  # fmt: skip
    db = tmp_path / "l.db"
    (tmp_path / "p402.toml").write_text('[report]\nbreakdowns = ["tag.env"]\n')
    ledger = Ledger.open(str(db))
    try:
        ledger.add(events)
    finally:
        ledger.close()
    found = run("findings", "--db", str(db), "--tenant", "acme", "--period", "2026-10", "--json",
                "--config", str(tmp_path / "p402.toml"))  # fmt: skip
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    by = {(a["dimension"], a["value"]): a for a in result["anomalies"]}
    assert set(by) == {("api_key", "key_stage"), ("tag.env", "staging")}
    for anomaly in by.values():
        assert (anomaly["day"], anomaly["actual"], anomaly["expected"], anomaly["excess"]) == (
            "2026-10-22",
            "60.00",
            "20.00",
            "40.00",
        )
        assert anomaly["event_ids"] == ["b-21"]
    # The department's day is 12 % over its baseline: under a quarter, not a finding.
    assert ("department", "Platform") not in by
