"""The roll-up of a period: its events grouped in SQL by day and by every field a report reads.

A report's figures are sums over events that agree on a handful of fields (who, which model,
which policy, which day), so the database can do the heavy lifting: one ``GROUP BY`` query
returns a few thousand groups where the period holds a million events, and
:meth:`p402.reporting.aggregate.Aggregator.add_group` counts each group as if its events had
come one by one. Sums are exact: ``SUM`` of ``BIGINT`` is an integer on SQLite (it raises
rather than overflow) and a ``NUMERIC`` on PostgreSQL, turned back into ``int`` here.

Example::

    aggregator = Aggregator()
    for group in rollup(ledger, "acme", parse_period("2026-10")):
        aggregator.add_group(group)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Connection, Text, case, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import JSONB

from p402.ledger.events import ROLLUP_FIELDS, Group
from p402.ledger.schema import events_table
from p402.period import Period, micros

if TYPE_CHECKING:
    from p402.ledger.store import Ledger

__all__ = ["rollup", "totals_by"]

_DAY_US = 86_400_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
)
"""The tokens a report counts (reasoning tokens are part of the output, not added twice)."""


def _hash_grouping(connection: Connection) -> None:
    # The planner multiplies the columns' distinct counts into ~one group per event, so it
    # sorts every row (on disk, at 4 MB of work_mem) where a hash table of the few real groups
    # is 3x faster. Both settings end with this read's transaction; a hash table larger than
    # its memory spills to disk rather than fail.
    connection.execute(text("SET LOCAL work_mem = '64MB'"))
    connection.execute(text("SET LOCAL enable_sort = off"))


def _number(value: int) -> Any:
    return literal_column(str(int(value)), BigInteger())


_HALF = 1 << 32


def exact_sums(dialect: str, column: Any) -> tuple[Any, ...]:
    """Select expressions whose values :func:`exact_total` turns into the exact sum of an
    integer column. PostgreSQL sums BIGINT into NUMERIC, which cannot overflow; SQLite's SUM
    stops with "integer overflow" past 2**63 (two events of the largest cost allowed), so there
    the column is summed in two halves, each far from overflowing, and joined in Python."""
    if dialect != "sqlite":
        return (func.sum(column),)
    # Truncating division and its remainder: high * 2**32 + low == value, for any sign.
    return (
        func.sum(column.op("/")(_number(_HALF))),
        func.sum(column.op("%")(_number(_HALF))),
    )


def exact_total(parts: Any) -> int:
    """The sum that :func:`exact_sums`'s values give (``0`` when every value was null)."""
    if len(parts) == 1:
        return int(parts[0] or 0)
    high, low = parts
    return int(high or 0) * _HALF + int(low or 0)


def _tag_value(dialect: str, name: str) -> Any:
    """The value of one tag of an event (its ``tags`` column holds a JSON object), or null."""
    if dialect == "postgresql":
        return events_table.c.tags.cast(JSONB).op("->>")(_string(name))
    # SQLite's JSON path, the key quoted: a tag name may hold dots (never a quote: TAG_NAME).
    return func.json_extract(events_table.c.tags, _string(f'$."{name}"'))


def _string(value: str) -> Any:
    # Inline, as the other constants: PostgreSQL matches the grouped expression by its text.
    return literal_column("'" + value.replace("'", "''") + "'", Text())


def rollup(
    ledger: Ledger, tenant: str, period: Period, *, chunk: int = 10_000, tags: tuple[str, ...] = ()
) -> Iterator[Group]:
    """The tenant's events in the period, grouped by UTC day and :data:`ROLLUP_FIELDS` in one
    query; never every group in memory at once. Groups come in no particular order.

    Args:
        ledger: the ledger to read.
        tenant: whose events.
        period: the events with ``period.start <= occurred_at < period.end``.
        chunk: how many groups the driver fetches at a time.
        tags: tags whose values group the events too (the journal's cost-centre tag, the
            reports' tag breakdowns), given as each group's ``tags``, in this order.
    """
    table = events_table
    start = micros(period.start)
    # Days count from the UTC midnight on or before the period's start, so the dividend is
    # never negative and integer division means the same on SQLite and PostgreSQL.
    base = start - start % _DAY_US
    # Constants inline, not bound: PostgreSQL matches a grouped expression to the selected one
    # by its text, and every bound parameter is a new placeholder.
    day = (table.c.occurred_at_us - _number(base)) // _number(_DAY_US)
    unpriced = case((table.c.cost_units.is_(None), _number(1)), else_=_number(0))
    keys = (day, *(table.c[name] for name in ROLLUP_FIELDS), unpriced)
    keys = (*keys, *(_tag_value(ledger.dialect, name) for name in tags))
    tokens = sum((table.c[name] for name in _TOKENS[1:]), table.c[_TOKENS[0]])
    query = (
        select(
            *keys,
            func.count(),
            func.sum(table.c.requests),
            func.sum(tokens),
            func.min(table.c.occurred_at_us),
            func.max(table.c.occurred_at_us),
            *exact_sums(ledger.dialect, table.c.cost_units),
            *exact_sums(ledger.dialect, table.c.tool_cost_units),
        )
        .where(table.c.tenant == tenant)
        .where(table.c.occurred_at_us >= start, table.c.occurred_at_us < micros(period.end))
        .group_by(*keys)
    )
    first_day = base // _DAY_US + _EPOCH_ORDINAL
    width = len(ROLLUP_FIELDS)
    with ledger.engine.connect() as connection:
        if ledger.dialect == "postgresql":
            _hash_grouping(connection)
        result = connection.execute(
            query, execution_options={"stream_results": True, "yield_per": chunk}
        )
        for row in result:
            shift = width + 2 + len(tags)
            events, requests, token_sum, first, last = row[shift : shift + 5]
            money = row[shift + 5 :]
            half = len(money) // 2
            units, tools = exact_total(money[:half]), exact_total(money[half:])
            yield Group(
                date.fromordinal(first_day + int(row[0])),
                tuple(row[1 : width + 1]),
                bool(row[width + 1]),
                int(events),
                int(requests),
                int(token_sum),
                units,
                int(first),
                int(last),
                tools,
                tuple(None if value is None else str(value) for value in row[width + 2 : shift]),
            )


def totals_by(
    ledger: Ledger, tenant: str, period: Period, columns: tuple[str, ...]
) -> dict[str, list[tuple[str | None, int, int, int]]]:
    """Per column, per value in the period: (value, cost units, events, unpriced events),
    largest cost first, ties by value. One grouped query over all the columns at once, so
    every breakdown comes from the same snapshot of the ledger and they all sum to the same
    total even while events are being recorded."""
    table = events_table
    fields = [table.c[name] for name in columns]
    unpriced = func.sum(case((table.c.cost_units.is_(None), 1), else_=0))
    money = exact_sums(ledger.dialect, table.c.cost_units)
    query = (
        select(*fields, func.count(), unpriced, *money)
        .where(table.c.tenant == tenant)
        .where(
            table.c.occurred_at_us >= micros(period.start),
            table.c.occurred_at_us < micros(period.end),
        )
        .group_by(*fields)
    )
    sums: dict[str, dict[str | None, list[int]]] = {name: {} for name in columns}
    with ledger.engine.connect() as connection:
        for row in connection.execute(query):
            width = len(columns)
            count, missing = int(row[width]), int(row[width + 1] or 0)
            units = exact_total(row[width + 2 :])
            for name, value in zip(columns, row, strict=False):
                slot = sums[name].setdefault(value, [0, 0, 0])
                slot[0] += units
                slot[1] += count
                slot[2] += missing
    return {
        name: sorted(
            ((value, units, count, missing) for value, (units, count, missing) in found.items()),
            key=lambda item: (-item[1], item[0] is None, item[0] or ""),
        )
        for name, found in sums.items()
    }
