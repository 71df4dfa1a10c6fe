"""Monitor: where the period's spend is heading, and the days that left their own pattern.

Two findings, both from the period's daily series (exact units per day, per dimension value):

- **Forecast** (:func:`forecast`): a weekday-aware run rate. Spend on weekdays and on weekend
  days is averaged apart over the last :data:`WINDOW` days with data, and each remaining day to
  the horizon (the end of the month and of the quarter of the last day with data) is
  projected at its kind's average. The range comes from backtesting the same method on the
  ledger's own history: from every cut-off with at least :data:`MIN_HISTORY` days behind it, the next
  :data:`BACKTEST_DAYS` days are forecast and compared with what happened; the errors' 10th and
  90th percentiles widen the forecast. The median absolute error is stated.
- **Anomalies** (:func:`anomalies`): a day on which a department, model, workflow, customer,
  API key or tag value spent far above its own baseline. The baseline is the median of the same kind of day (weekday
  or weekend) over the trailing :data:`WINDOW` days, its spread the median absolute deviation
  (MAD, scaled by 1.4826 to match a standard deviation): robust to the very spikes it looks
  for. A day is an anomaly when its robust z-score is at least :data:`Z_THRESHOLD` and its
  excess over the baseline at least :data:`MIN_EXCESS` and a quarter of the baseline.

Money stays exact: series are integer storage units; figures are rounded to cents once, at the
edge. Statistics on counts of days (percentiles of errors) are exact ratios (``Fraction``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from p402.money import UNITS_PER_CENT, allocate_to, round_cents
from p402.reporting.aggregate import UNATTRIBUTED

__all__ = [
    "BACKTEST_DAYS",
    "MIN_EXCESS",
    "WINDOW",
    "Z_THRESHOLD",
    "Anomaly",
    "Forecast",
    "anomalies",
    "forecast",
    "monitor",
    "month_end",
    "projected",
    "run_out",
]

WINDOW = 28
"""Days of history a run rate and a baseline look back over."""
BACKTEST_DAYS = 7
"""How far ahead each backtest forecasts."""
Z_THRESHOLD = Fraction(7, 2)
"""A robust z-score from which a day is an anomaly (3.5, as Iglewicz and Hoaglin advise)."""
MIN_EXCESS = 10 * 100 * UNITS_PER_CENT
"""The smallest excess over the baseline worth a finding: $10, in storage units."""
MIN_HISTORY = 14
"""Days of history a backtest's run rate needs at least (it uses up to :data:`WINDOW`)."""
_MAD_SCALE = Fraction(14826, 10000)
_MIN_BASELINE_DAYS = 4


def _weekend(day: date) -> bool:
    return day.weekday() >= 5


@dataclass(frozen=True, slots=True)
class Forecast:
    """Spend to a horizon: what has been spent through the last day with data, and the rest
    projected, with the range the backtest gives."""

    dimension: str
    """``total``, ``provider`` or ``department``."""
    value: str
    horizon: str
    """``month`` or ``quarter``."""
    end: date
    """The horizon's last day."""
    actual: Decimal
    """Spent from the horizon's first day through the last day with data."""
    expected: Decimal
    low: Decimal
    high: Decimal
    remaining_days: int
    backtest_error: Decimal | None
    """The backtest's median absolute error, in percent of what happened (None: too little
    history to backtest)."""
    backtests: int


def _rates(series: Mapping[date, int], through: date, since: date) -> tuple[Fraction, Fraction]:
    """The average spend of a weekday and of a weekend day over the window ending *through*,
    from *since* on (the first day with any data: every series counts the same days, so the
    forecasts of a breakdown's rows add up to the whole's)."""
    days = [through - timedelta(days=n) for n in range(WINDOW)]
    kinds: dict[bool, list[int]] = {False: [], True: []}
    for day in days:
        if day >= since:
            kinds[_weekend(day)].append(series.get(day, 0))
    every = kinds[False] + kinds[True]
    overall = Fraction(sum(every), len(every)) if every else Fraction(0)
    weekday, weekend = (
        Fraction(sum(v), len(v)) if v else overall for v in (kinds[False], kinds[True])
    )
    return weekday, weekend


def _project(series: Mapping[date, int], through: date, end: date, since: date) -> Fraction:
    """The spend from the day after *through* to *end*, at the run rates of the window."""
    weekday, weekend = _rates(series, through, since)
    total = Fraction(0)
    day = through + timedelta(days=1)
    while day <= end:
        total += weekend if _weekend(day) else weekday
        day += timedelta(days=1)
    return total


def _percentile(values: Sequence[Fraction], share: Fraction) -> Fraction:
    """The nearest-rank percentile of *values* (sorted here)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def _backtest(series: Mapping[date, int], first: date, last: date) -> list[Fraction]:
    """Relative errors (forecast - actual) / actual of the method on the series' own history,
    from *first* to *last*."""
    errors = []
    cut = first + timedelta(days=MIN_HISTORY - 1)
    while cut + timedelta(days=BACKTEST_DAYS) <= last:
        end = cut + timedelta(days=BACKTEST_DAYS)
        actual = sum(series.get(cut + timedelta(days=n), 0) for n in range(1, BACKTEST_DAYS + 1))
        if actual:
            errors.append((_project(series, cut, end, first) - actual) / actual)
        cut += timedelta(days=1)
    return errors


def _horizon_end(day: date, horizon: str) -> date:
    month = day.month if horizon == "month" else ((day.month - 1) // 3 + 1) * 3
    following = date(day.year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)


def _horizon_start(day: date, horizon: str) -> date:
    month = day.month if horizon == "month" else ((day.month - 1) // 3) * 3 + 1
    return date(day.year, month, 1)


def _cents(value: Fraction) -> Decimal:
    return round_cents(int(value.numerator // value.denominator))


@dataclass(frozen=True, slots=True)
class _Parts:
    """A series' forecast before rounding: spent (exact units), the rest, the backtest."""

    end: date
    remaining_days: int
    spent: int
    rest: Fraction
    errors: tuple[Fraction, ...]


def _parts(series: Mapping[date, int], horizon: str, since: date, through: date) -> _Parts:
    start, end = _horizon_start(through, horizon), _horizon_end(through, horizon)
    spent = sum(units for day, units in series.items() if start <= day <= through)
    rest = _project(series, through, end, since)
    return _Parts(end, (end - through).days, spent, rest, tuple(_backtest(series, since, through)))


def _built(
    parts: _Parts, *, dimension: str, value: str, horizon: str, actual: Decimal, rest: Decimal
) -> Forecast:
    """The forecast of *parts* stating *actual* and *rest* (its cents, allocated by the caller
    so a breakdown's forecasts add up); the range is its own."""
    errors = parts.errors
    low = high = Fraction(parts.spent) + parts.rest
    if errors and parts.rest:
        # Where the method erred on this ledger before, read backwards; the range holds the
        # forecast itself even when every backtest erred the same way.
        low = min(
            low,
            parts.spent + parts.rest * max(Fraction(0), 1 - _percentile(errors, Fraction(9, 10))),
        )
        high = max(high, parts.spent + parts.rest * (1 - _percentile(errors, Fraction(1, 10))))
    expected = actual + rest
    error = None if not errors else _percent(_median([abs(e) for e in errors]))
    return Forecast(
        dimension, value, horizon, parts.end, actual, expected, min(expected, _cents(low)),
        max(expected, _cents(high)), parts.remaining_days, error, len(errors),
    )  # fmt: skip


def forecast(
    series: Mapping[date, int], horizon: str, *, dimension: str = "total", value: str = "All spend"
) -> Forecast | None:
    """The forecast of *series* (exact units per day) to the end of the *horizon* (``month``
    or ``quarter``) of its last day; ``None`` for an empty series.

    A horizon already over (the last day with data is its last day) forecasts nothing more:
    the expected figure is the actual one, with no range.
    """
    if not series:
        return None
    parts = _parts(series, horizon, min(series), max(series))
    return _built(parts, dimension=dimension, value=value, horizon=horizon,
                  actual=round_cents(parts.spent), rest=_cents(parts.rest))  # fmt: skip


def _breakdown(
    dimension: str, members: Mapping[str, Mapping[date, int]], total: Forecast, *,
    horizon: str, since: date, through: date,
) -> list[Forecast]:  # fmt: skip
    """The forecasts of a breakdown's rows, their spent and rest cents allocated from the
    whole's so they add up to it."""
    found = {name: _parts(series, horizon, since, through) for name, series in members.items()}
    # In the order of the report's breakdowns (largest first, Unattributed last), so where the
    # horizon's spend is the period's, each row's spent cents are its breakdown row's.
    names = sorted(found, key=lambda name: (name == UNATTRIBUTED, -found[name].spent, name))
    parts = [found[name] for name in names]
    if not parts:
        return []
    rests = [math.floor(p.rest) for p in parts]
    # The whole's rest is its rows' (the same days, the same kinds): any unit lost to flooring
    # goes to the largest row, so the rows' units are the whole's exactly.
    whole = math.floor(sum((p.rest for p in parts), Fraction(0)))
    rests[rests.index(max(rests))] += whole - sum(rests)
    spent = allocate_to(total.actual, [p.spent for p in parts])
    rest = allocate_to(total.expected - total.actual, rests)
    return [
        _built(p, dimension=dimension, value=name, horizon=horizon, actual=a, rest=r)
        for name, p, a, r in zip(names, parts, spent, rest, strict=True)
    ]


def month_end(series: Mapping[date, int], month: str, since: date, through: date) -> int:
    """A month's spend at its end, exact units (floored): what *series* spent in *month*
    (``YYYY-MM``), plus the run rate's projection of its days after *through*, the last day
    with any data, when the month ends after it. *since* is the first day with any data."""
    year, number = int(month[:4]), int(month[5:])
    end = _horizon_end(date(year, number, 1), "month")
    spent = sum(units for day, units in series.items() if (day.year, day.month) == (year, number))
    if through >= end or (through.year, through.month) != (year, number):
        return spent
    return spent + math.floor(_project(series, through, end, since))


def projected(series: Mapping[date, int], since: date, through: date, end: date) -> int:
    """The run rate's spend of *series* from the day after *through* to *end*, exact units
    (floored; 0 when *end* is not after *through*)."""
    return math.floor(_project(series, through, end, since)) if end > through else 0


def run_out(
    series: Mapping[date, int], remaining: int, since: date, through: date, *, days: int = 1_100
) -> date | None:
    """The day the run rate of *series* spends *remaining* units after *through*, or ``None``
    when it does not within *days* (or spends nothing)."""
    weekday, weekend = _rates(series, through, since)
    if remaining <= 0:
        return through
    spent = Fraction(0)
    day = through
    for _ in range(days):
        day += timedelta(days=1)
        spent += weekend if _weekend(day) else weekday
        if spent >= remaining:
            return day
    return None


def _percent(ratio: Fraction) -> Decimal:
    return (Decimal(ratio.numerator) * 100 / Decimal(ratio.denominator)).quantize(Decimal("0.1"))


def _median(values: Sequence[Fraction]) -> Fraction:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A day a dimension's value spent far above its own baseline."""

    dimension: str
    value: str
    day: date
    actual: Decimal
    expected: Decimal
    """The baseline: the median of the same kind of day over the trailing window."""
    excess: Decimal
    score: Decimal
    """The robust z-score, to one decimal (a flat baseline's spread counts as one cent)."""
    events: int = 0
    event_ids: tuple[str, ...] = ()
    """The first events behind it (by time), for ``p402 receipt``."""


def _anomaly(dimension: str, value: str, day: date, series: Mapping[date, int]) -> Anomaly | None:
    actual = series.get(day, 0)
    history = [
        series.get(day - timedelta(days=n), 0)
        for n in range(1, WINDOW + 1)
        if _weekend(day - timedelta(days=n)) == _weekend(day)
        and day - timedelta(days=n) >= min(series)
    ]
    if len(history) < _MIN_BASELINE_DAYS:
        return None
    baseline = _median([Fraction(v) for v in history])
    spread = _median([abs(Fraction(v) - baseline) for v in history]) * _MAD_SCALE
    excess = actual - baseline
    if excess < MIN_EXCESS or excess * 4 < baseline:
        return None
    # A flat baseline (MAD 0) is spread over a cent, so any real excess scores high but finitely.
    score = excess / max(spread, Fraction(UNITS_PER_CENT))
    if score < Z_THRESHOLD:
        return None
    return Anomaly(
        dimension, value, day, round_cents(actual), _cents(baseline), _cents(excess),
        Decimal(int(score * 10)) / 10,
    )  # fmt: skip


def anomalies(
    series: Mapping[tuple[str, str], Mapping[date, tuple[int, int]]],
    days: Sequence[date],
    event_ids: Mapping[tuple[str, str, date], tuple[str, ...]],
) -> list[Anomaly]:
    """The anomalies of every (dimension, value) series (per day: exact units and events) on
    *days*, largest excess first, each with its events' count and first ids."""
    found = []
    for (dimension, value), by_day in series.items():
        costs = {day: units for day, (units, _) in by_day.items()}
        for day in days:
            anomaly = _anomaly(dimension, value, day, costs) if costs else None
            if anomaly is not None:
                found.append(replace(anomaly, events=by_day.get(day, (0, 0))[1],
                                     event_ids=event_ids.get((dimension, value, day), ())))  # fmt: skip
    return sorted(found, key=lambda a: (-a.excess, a.day, a.dimension, a.value))


def monitor(
    daily: Mapping[tuple[date, str], int],
    series: Mapping[tuple[str, str], Mapping[date, tuple[int, int]]],
    event_ids: Mapping[tuple[str, str, date], tuple[str, ...]],
    days: Sequence[date],
) -> tuple[tuple[Forecast, ...], tuple[Anomaly, ...]]:
    """The period's forecasts (all spend to the month's and the quarter's end; each provider
    and department to the quarter's) and its anomalies on *days*.

    Args:
        daily: exact units per (day, provider).
        series: per (dimension, value), per day: exact units and events.
        event_ids: per (dimension, value, day): the first events' ids.
        days: the days of the period with data.
    """
    total: dict[date, int] = {}
    providers: dict[str, dict[date, int]] = {}
    for (day, provider), units in daily.items():
        total[day] = total.get(day, 0) + units
        providers.setdefault(provider, {})[day] = units
    if not total:
        return (), tuple(anomalies(series, days, event_ids))
    since, through = min(total), max(total)
    departments = {
        value: {day: units for day, (units, _) in by_day.items()}
        for (dimension, value), by_day in series.items()
        if dimension == "department"
    }
    found = []
    for horizon in ("month", "quarter"):
        parts = _parts(total, horizon, since, through)
        whole = _built(parts, dimension="total", value="All spend", horizon=horizon,
                       actual=round_cents(parts.spent), rest=_cents(parts.rest))  # fmt: skip
        found.append(whole)
        if horizon == "quarter":
            for dimension, members in (("provider", providers), ("department", departments)):
                found += _breakdown(
                    dimension, members, whole, horizon=horizon, since=since, through=through
                )
    return tuple(found), tuple(anomalies(series, days, event_ids))
