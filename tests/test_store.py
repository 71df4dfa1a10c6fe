"""The store, on SQLite and PostgreSQL alike: exact money, idempotent inserts, fixed order,
tenants apart."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import cycle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p402.ledger.events import Event
from p402.ledger.store import BULK_CACHE_MIB, Ledger, StoreError, database_url
from p402.money import MAX_EVENT_COST
from tests.conftest import PERIOD, TENANT, small_events


def test_events_round_trip_unchanged(ledger: Ledger) -> None:
    items = small_events()
    ledger.add(items)
    assert list(ledger.stream(TENANT, PERIOD)) == sorted(
        items, key=lambda e: (e.occurred_at, e.event_id)
    )


@settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    st.lists(st.decimals(min_value=0, max_value=MAX_EVENT_COST, places=12), min_size=1, max_size=20)
)
def test_money_is_exact_to_the_last_digit(ledger: Ledger, costs: list[Decimal]) -> None:
    base = small_events()[0]
    stamp = datetime.now(UTC).isoformat()  # a fresh id space for each example
    items = [
        dataclasses.replace(base, event_id=f"{stamp}-{n}", cost=cost, cost_source="provider")
        for n, cost in enumerate(costs)
    ]
    ledger.add(items)
    stored = {
        e.event_id: e.cost for e in ledger.stream(TENANT, PERIOD) if e.event_id.startswith(stamp)
    }
    assert stored == {e.event_id: e.cost for e in items}


def test_insert_is_idempotent(ledger: Ledger) -> None:
    items = small_events()
    ledger.add(items)
    ledger.add(items)
    changed = [dataclasses.replace(e, cost=Decimal(999)) for e in items]
    ledger.add(changed)  # the first version stays: re-import never double counts or rewrites
    assert ledger.count(TENANT) == len(items)
    assert [e.cost for e in ledger.stream(TENANT, PERIOD)] != [Decimal(999)] * len(items)


def test_tenants_never_see_each_other(ledger: Ledger) -> None:
    ledger.add(small_events("acme"))
    ledger.add(small_events("globex"))
    assert ledger.count("acme") == ledger.count("globex") == len(small_events())
    assert {e.tenant for e in ledger.stream("globex", PERIOD)} == {"globex"}
    assert ledger.count("initech") == 0


def test_order_is_bytewise_on_every_store(ledger: Ledger) -> None:
    moment = datetime(2026, 10, 2, tzinfo=UTC)
    ids = ["b", "B", "a", "A", "_z", "é", "10", "9"]
    base = small_events()[0]
    ledger.add(dataclasses.replace(base, event_id=i, occurred_at=moment) for i in ids)
    streamed = [e.event_id for e in ledger.stream(TENANT, PERIOD)]
    assert streamed == sorted(ids, key=lambda i: i.encode())


def test_period_window_is_half_open(ledger: Ledger) -> None:
    base = small_events()[0]
    edges = {
        "before": PERIOD.start - timedelta(microseconds=1),
        "first": PERIOD.start,
        "last": PERIOD.end - timedelta(microseconds=1),
        "after": PERIOD.end,
    }
    ledger.add(
        dataclasses.replace(base, event_id=name, occurred_at=moment)
        for name, moment in edges.items()
    )
    assert {e.event_id for e in ledger.stream(TENANT, PERIOD)} == {"first", "last"}
    assert ledger.count(TENANT, PERIOD) == 2


def test_database_url_forms() -> None:
    assert database_url("x.db") == "sqlite:///x.db"
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"


def test_events_keep_their_microseconds(ledger: Ledger) -> None:
    moment = datetime(2026, 10, 3, 4, 5, 6, 789012, tzinfo=UTC)
    ledger.add([dataclasses.replace(small_events()[0], occurred_at=moment)])
    (event,) = ledger.stream(TENANT, PERIOD)
    assert event.occurred_at == moment
    assert isinstance(event, Event)


def test_order_ignores_a_locale_collation_on_postgres(ledger: Ledger) -> None:
    if ledger.engine.dialect.name != "postgresql":
        return
    from sqlalchemy import text

    with ledger.engine.begin() as connection:
        # Give the column a linguistic collation, as a server with an en_US locale would have.
        connection.execute(
            text('ALTER TABLE events ALTER COLUMN event_id TYPE varchar(200) COLLATE "und-x-icu"')
        )
        linguistic = (
            connection.execute(
                text(
                    "SELECT x FROM unnest(ARRAY['b','B','a','_z']) x ORDER BY x COLLATE \"und-x-icu\""
                )
            )
            .scalars()
            .all()
        )
    assert linguistic != sorted(linguistic, key=str.encode)  # the collation really reorders
    test_order_is_bytewise_on_every_store(ledger)


def test_records_from_rows_are_exactly_the_events_json(ledger: Ledger) -> None:
    from p402.ingest.demo import generate
    from p402.money import to_units
    from p402.period import micros

    ledger.add([*small_events(), *generate(count=600, tenant=TENANT)])
    events = list(ledger.stream(TENANT, PERIOD))
    records = list(ledger.stream_records(TENANT, PERIOD))
    assert len(records) == len(events) > 600
    for event, (record, units, at) in zip(events, records, strict=True):
        assert record == event.to_json()
        assert {type(key) for key in record} == {str}  # not a str subclass: orjson refuses those
        assert units == (None if event.cost is None else to_units(event.cost))
        assert at == micros(event.occurred_at)


@pytest.mark.parametrize("size", [3, 200])  # one INSERT ... RETURNING; COPY through staging
def test_insert_new_names_exactly_the_events_it_stored(ledger: Ledger, size: int) -> None:
    events = [e.evolve(event_id=f"n-{i}") for i, e in zip(range(size), cycle(small_events()))]
    with ledger.transaction() as connection:
        assert ledger.insert_new(connection, events[: size // 2]) == {
            e.event_id for e in events[: size // 2]
        }
    repeated = [*events, events[-1], events[0]]
    with ledger.transaction() as connection:
        assert ledger.insert_new(connection, repeated) == {e.event_id for e in events[size // 2 :]}
    assert ledger.count(TENANT) == size
    other = [e.evolve(tenant="umbrella") for e in events[:2]]
    with ledger.transaction() as connection:  # the same ids in another tenant are new there
        assert ledger.insert_new(connection, other) == {events[0].event_id, events[1].event_id}


def test_a_bulk_transaction_has_a_big_page_cache_and_gives_it_back(sqlite_ledger: Ledger) -> None:
    def cache(connection: Any) -> int:
        return int(connection.exec_driver_sql("PRAGMA cache_size").scalar())

    with sqlite_ledger.transaction() as connection:
        default = cache(connection)
    with sqlite_ledger.transaction(bulk=True) as connection:
        assert cache(connection) == -BULK_CACHE_MIB * 1024
    with pytest.raises(StoreError), sqlite_ledger.transaction(bulk=True) as connection:
        connection.exec_driver_sql("SELECT * FROM no_such_table")
    with sqlite_ledger.transaction() as connection:
        assert cache(connection) == default


def test_big_batches_keep_the_first_version_whether_or_not_they_conflict(ledger: Ledger) -> None:
    # From 64 events PostgreSQL copies a batch straight into the table, and goes through a
    # staging table when one of them is already stored or repeated: the outcome is the same.
    first = small_events()[0]
    made = [first.evolve(event_id=f"big-{n}") for n in range(200)]
    overlapping = [e.evolve(cost=Decimal(7)) for e in made[50:150]]
    for batch in (made[:100], overlapping, made[150:] + made[150:160]):
        with ledger.transaction() as connection:
            ledger.insert(connection, batch)
    assert ledger.count(TENANT) == 200
    costs = {e.event_id: e.cost for e in ledger.stream(TENANT, PERIOD)}
    assert costs["big-60"] == first.cost and costs["big-120"] == Decimal(7)


@pytest.mark.parametrize("size", [3, 200])  # one INSERT ... RETURNING; COPY
def test_a_failed_transaction_keeps_none_of_its_events(ledger: Ledger, size: int) -> None:
    # The insert is the transaction's first statement: whatever road it takes (a COPY in a
    # savepoint included), it belongs to the transaction and goes with its rollback.
    events = [e.evolve(event_id=f"f-{i}") for i, e in zip(range(size), cycle(small_events()))]

    def fail_after(insert: Any) -> None:
        with ledger.transaction() as connection:
            insert(connection, events)
            raise RuntimeError("the caller fails after the insert")

    for insert in (ledger.insert_new, ledger.insert):
        with pytest.raises(RuntimeError):
            fail_after(insert)
    assert ledger.count(TENANT) == 0
