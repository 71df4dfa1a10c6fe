"""Audit periods: a month ``2026-10``, a quarter ``2026-Q3``, or explicit UTC dates.

A period is a half-open UTC window ``[start, end)``; every query and report uses the same one.
Times are stored as integer microseconds since the epoch (:func:`micros`, :func:`moment`) and
written as RFC 3339 in UTC (:func:`format_time`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from p402.errors import ConfigError

__all__ = ["Period", "format_time", "micros", "moment", "parse_period", "previous_period"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """A named half-open UTC window ``[start, end)``."""

    label: str
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        """Whether *moment* falls inside the window."""
        return self.start <= moment < self.end


def _month_start(year: int, month: int) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def parse_period(
    text: str | None = None, *, start: date | None = None, end: date | None = None
) -> Period:
    """Parse ``YYYY-MM`` or ``YYYY-Qn``, or build a period from explicit dates.

    Args:
        text: the period label, or ``None`` when *start* and *end* are given.
        start: first day included (UTC), with *end*.
        end: last day included (UTC), with *start*.

    Raises:
        ConfigError: the label is not a month or quarter, or the dates are reversed.
    """
    if text is None:
        if start is None or end is None:
            raise ConfigError("give a period (2026-10 or 2026-Q3) or both --from and --to")
        if end < start:
            raise ConfigError(f"the period ends ({end}) before it starts ({start})")
        if end >= date.max:
            raise ConfigError(f"the period must end before {date.max} (its end is the day after)")
        first = datetime(start.year, start.month, start.day, tzinfo=UTC)
        after = datetime.fromordinal(end.toordinal() + 1).replace(tzinfo=UTC)
        return Period(f"{start.isoformat()}..{end.isoformat()}", first, after)
    if match := _MONTH.match(text.strip()):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise ConfigError(f"period {text!r}: month must be 01 to 12")
        if (year, month) == (9999, 12) or year == 0:
            raise ConfigError(
                f"period {text!r} is at the calendar's edge: give one from 0001-01 to 9999-11"
            )
        return Period(
            f"{year:04d}-{month:02d}", _month_start(year, month), _month_start(year, month + 1)
        )
    if match := _QUARTER.match(text.strip()):
        year, quarter = int(match[1]), int(match[2])
        if (year, quarter) == (9999, 4) or year == 0:
            raise ConfigError(
                f"period {text!r} is at the calendar's edge: give one from 0001-Q1 to 9999-Q3"
            )
        first_month = 3 * (quarter - 1) + 1
        return Period(
            f"{year:04d}-Q{quarter}",
            _month_start(year, first_month),
            _month_start(year, first_month + 3),
        )
    raise ConfigError(f"period {text!r} is not a month (2026-10) or a quarter (2026-Q3)")


def previous_period(period: Period) -> Period | None:
    """The period before *period*, of the same kind: the month before a month, the quarter
    before a quarter, and before explicit dates as many days ending where it starts; ``None``
    when that would start before the calendar does (year 1)."""
    try:
        return _previous(period)
    except (OverflowError, ValueError):
        return None


def _previous(period: Period) -> Period:
    if _MONTH.fullmatch(period.label):
        start = _month_start(period.start.year, period.start.month - 1)
        return Period(f"{start.year:04d}-{start.month:02d}", start, period.start)
    if match := _QUARTER.fullmatch(period.label):
        year, quarter = int(match[1]), int(match[2])
        label = f"{year - 1:04d}-Q4" if quarter == 1 else f"{year:04d}-Q{quarter - 1}"
        return parse_period(label)
    start = period.start - (period.end - period.start)
    last = period.start - timedelta(days=1)
    return Period(f"{start.date().isoformat()}..{last.date().isoformat()}", start, period.start)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; microseconds only when there are any. The canonical form of
    every time in the ledger, the manifest and the reports."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"


def micros(when: datetime) -> int:
    """Microseconds since the epoch, UTC."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def moment(value: int) -> datetime:
    """The aware UTC time of *value* microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)
