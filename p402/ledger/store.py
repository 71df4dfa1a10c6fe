"""The ledger store: events in SQL through SQLAlchemy Core, exact and tenant-scoped.

SQLite in a local file by default, PostgreSQL (psycopg 3) by URL. Money is stored as integer
units of 10^-12 USD (``BIGINT``), times as integer microseconds since the epoch (UTC), so both
databases hold exactly the same values and sort them the same way. Inserts are idempotent on
``(tenant, event_id)``. Reads stream in a fixed order and always name a tenant.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from p402.errors import P402Error
from p402.ledger.events import ATTRIBUTION_FIELDS, SOURCE_ID_FIELDS, TOKEN_FIELDS, Event
from p402.money import from_units, to_units
from p402.period import Period

__all__ = ["DEFAULT_DATABASE", "Ledger", "StoreError", "database_url"]

DEFAULT_DATABASE = "p402-ledger.db"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite only auto-increments INTEGER

metadata = MetaData()
_text_columns = (
    "provider", "model", "operation", "currency", "cost_source", "price_ref",
    *ATTRIBUTION_FIELDS, "attribution_rule", *SOURCE_ID_FIELDS, "service_tier",
    "policy_decision", "policy", "outcome", "evidence_status", "source",
)  # fmt: skip
events_table = Table(
    "events",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("occurred_at_us", BigInteger, nullable=False),
    Column("requests", BigInteger, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in TOKEN_FIELDS),
    Column("cost_units", BigInteger, nullable=True),
    *(
        Column(name, Text if name == "price_ref" else String(200), nullable=True)
        for name in _text_columns
    ),
    Column("batch", Boolean, nullable=False),
    Column("tags", Text, nullable=False),
    Column("retention_until_us", BigInteger, nullable=True),
    UniqueConstraint("tenant", "event_id", name="uq_events_tenant_event_id"),
    Index("ix_events_tenant_time", "tenant", "occurred_at_us", "event_id"),
)
_COLUMNS = tuple(column.name for column in events_table.columns if column.name != "id")


class StoreError(P402Error):
    """The ledger database cannot be opened, read or written."""


def database_url(target: str | None) -> str:
    """Turn ``--db`` (a file path or URL), else ``P402_DATABASE_URL``, into a SQLAlchemy URL."""
    target = target or os.environ.get("P402_DATABASE_URL") or DEFAULT_DATABASE
    if target.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + target.split("://", 1)[1]
    if "://" in target:
        return target
    return f"sqlite:///{Path(target).expanduser()}"


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _row(item: Event) -> dict[str, Any]:
    row = {name: getattr(item, name) for name in _COLUMNS if hasattr(item, name)}
    row["occurred_at_us"] = _micros(item.occurred_at)
    row["cost_units"] = None if item.cost is None else to_units(item.cost)
    row["tags"] = orjson.dumps(dict(item.tags), option=orjson.OPT_SORT_KEYS).decode()
    row["retention_until_us"] = (
        None if item.retention_until is None else _micros(item.retention_until)
    )
    return row


# Columns read back as they are, by position in the SELECT of :meth:`Ledger.stream`.
_AS_STORED = tuple((i, name) for i, name in enumerate(_COLUMNS) if name in Event.__slots__)
_AT = {name: i for i, name in enumerate(_COLUMNS)}
_NO_TAGS = "{}"


def _event(row: Any) -> Event:
    fields = {name: row[i] for i, name in _AS_STORED}
    fields["occurred_at"] = _moment(row[_AT["occurred_at_us"]])
    units = row[_AT["cost_units"]]
    fields["cost"] = None if units is None else from_units(units)
    tags = row[_AT["tags"]]
    fields["tags"] = () if tags == _NO_TAGS else tuple(sorted(orjson.loads(tags).items()))
    until = row[_AT["retention_until_us"]]
    fields["retention_until"] = None if until is None else _moment(until)
    return Event(**fields)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers stream while an import writes; NORMAL is durable at each commit in WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Ledger:
    """The event store of one database, shared by every tenant in it, read per tenant."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert: Any = (
            postgresql.insert(events_table)
            if engine.dialect.name == "postgresql"
            else sqlite.insert(events_table)
        ).on_conflict_do_nothing(index_elements=["tenant", "event_id"])

    @classmethod
    def open(cls, target: str | None = None) -> Ledger:
        """Open (and create if needed) the ledger at a path or URL; see :func:`database_url`."""
        url = database_url(target)
        if not url.startswith(("sqlite", "postgresql")):
            raise StoreError(
                f"unsupported database URL {url.split('://')[0]}://",
                hint="use a file path or postgresql://",
            )
        try:
            engine = create_engine(url)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _on_sqlite_connect)
            metadata.create_all(engine)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the ledger at {engine.url!r}: {exc.__class__.__name__}: {exc.args[0]}"
            ) from None
        return cls(engine)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: everything written in it lands together or not at all."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StoreError(
                f"the ledger could not be written: {exc.__class__.__name__}: {exc}"
            ) from None

    def insert(self, connection: Connection, batch: Sequence[Event]) -> None:
        """Insert events; ones whose ``(tenant, event_id)`` is already stored are left as they are."""
        if batch:
            connection.execute(self._insert, [_row(item) for item in batch])

    def add(self, items: Iterable[Event], *, batch_size: int = 5_000) -> None:
        """Insert many events in one transaction, in batches."""
        with self.transaction() as connection:
            batch: list[Event] = []
            for item in items:
                batch.append(item)
                if len(batch) >= batch_size:
                    self.insert(connection, batch)
                    batch.clear()
            self.insert(connection, batch)

    def count(
        self, tenant: str, period: Period | None = None, *, connection: Connection | None = None
    ) -> int:
        """How many events the tenant has, in the period if one is given."""
        query = (
            select(func.count()).select_from(events_table).where(events_table.c.tenant == tenant)
        )
        if period is not None:
            query = query.where(
                events_table.c.occurred_at_us >= _micros(period.start),
                events_table.c.occurred_at_us < _micros(period.end),
            )
        if connection is not None:
            return int(connection.execute(query).scalar_one())
        with self.engine.connect() as own:
            return int(own.execute(query).scalar_one())

    def _byte_order(self, column: Any) -> Any:
        # PostgreSQL sorts text by locale; bundles must list events in the same order on every store.
        return column.collate("C") if self.engine.dialect.name == "postgresql" else column

    def stream(self, tenant: str, period: Period, *, chunk: int = 5_000) -> Iterator[Event]:
        """The tenant's events in the period, oldest first (ties by event_id), never all in memory."""
        query = (
            select(*(events_table.c[name] for name in _COLUMNS))
            .where(
                events_table.c.tenant == tenant,
                events_table.c.occurred_at_us >= _micros(period.start),
                events_table.c.occurred_at_us < _micros(period.end),
            )
            .order_by(events_table.c.occurred_at_us, self._byte_order(events_table.c.event_id))
        )
        with self.engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=chunk).execute(
                query
            )
            for row in result:
                yield _event(row)
