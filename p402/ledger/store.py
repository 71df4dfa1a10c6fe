"""The ledger store: events and invoice lines in SQL through SQLAlchemy, exact and tenant-scoped.

SQLite in a local file by default, PostgreSQL (psycopg 3) by URL. Inserts are idempotent on
``(tenant, event_id)``: a re-import never double counts and never rewrites. Rows go to the
driver as tuples (SQLite ``executemany``; PostgreSQL ``COPY`` into a staging table, then one
``INSERT ... ON CONFLICT DO NOTHING``). Reads stream in a fixed, bytewise order and always name
a tenant.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, case, create_engine, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from p402.errors import P402Error
from p402.ledger.events import Event
from p402.ledger.invoices import InvoiceLine
from p402.ledger.schema import (
    EVENT_COLUMNS,
    SCHEMA_VERSION,
    event_from_row,
    event_row,
    events_table,
    invoice_line_row,
    invoice_lines_table,
    record_from_row,
)
from p402.period import Period, micros, moment

if TYPE_CHECKING:
    from p402.ledger.migrate import Upgrade

__all__ = ["DEFAULT_DATABASE", "Ledger", "StoreError", "database_url"]

DEFAULT_DATABASE = "p402-ledger.db"
_COLUMN_LIST = ", ".join(EVENT_COLUMNS)
_EVENT_ID = EVENT_COLUMNS.index("event_id")
_COPY_FROM = 64
"""From this many events the meter's PostgreSQL inserts go through COPY (a few round trips, but
per-row costs a fraction of a multi-row INSERT); below it, one INSERT ... RETURNING."""


BULK_CACHE_MIB = 256
"""The SQLite page cache of a bulk transaction (see :meth:`Ledger.transaction`)."""


@contextmanager
def _page_cache(connection: Connection, mib: int) -> Iterator[None]:
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{mib * 1024}")
    try:
        yield
    finally:  # the connection goes back to the pool with the cache it came with
        with suppress(SQLAlchemyError):  # never hides why the transaction failed
            connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous or 0)}")


class StoreError(P402Error):
    """The ledger database cannot be opened, read or written: the database's fault, not the
    request's, so HTTP answers it 503 (try again later)."""

    http_status = 503
    code = "ledger_unavailable"


def database_url(target: str | None) -> str:
    """Turn ``--db`` (a file path or URL), else ``P402_DATABASE_URL``, into a SQLAlchemy URL."""
    target = target or os.environ.get("P402_DATABASE_URL") or DEFAULT_DATABASE
    if target.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + target.split("://", 1)[1]
    if "://" in target:
        return target
    return f"sqlite:///{Path(target).expanduser()}"


def ledger_exists(target: str | None = None) -> bool:
    """Whether the ledger at *target* (see :func:`database_url`) is there: a SQLite file that
    exists, or any server database (whose existence only connecting can tell)."""
    url = database_url(target)
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return True
    return Path(url.removeprefix("sqlite:///")).exists()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers stream while an import writes; NORMAL is durable at each commit in WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _prepare(engine: Engine) -> None:
    """Create a new ledger at the current schema, or check an existing one is at it."""
    from p402.ledger.migrate import create_new, schema_version

    with engine.begin() as connection:
        if create_new(connection):
            return
        found = schema_version(connection)
        assert found is not None
    if found < SCHEMA_VERSION and found >= 2:
        raise StoreError(
            f"this ledger has schema version {found}; this p402 needs version {SCHEMA_VERSION}",
            hint="run `p402 db upgrade` (back the database up first)",
        )
    if found != SCHEMA_VERSION:
        raise StoreError(
            f"this ledger has schema version {found}; this p402 reads version {SCHEMA_VERSION}",
            hint="export it with the p402 that wrote it and import into a new ledger",
        )


class Ledger:
    """The event store of one database, shared by every tenant in it, read per tenant."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        self._insert_lines: Any = dialect.insert(invoice_lines_table).on_conflict_do_nothing(
            index_elements=["tenant", "line_id"]
        )

    @classmethod
    def open(
        cls, target: str | None = None, *, prepare: bool = True, existing: bool = False
    ) -> Ledger:
        """Open (and create if needed) the ledger at a path or URL; see :func:`database_url`.

        *prepare* false skips creating and checking the schema: for ``p402 db upgrade``.
        *existing*: a SQLite file that is not there is an error, never created: a command that
        only reads, or needs a tenant, leaves nothing behind when it fails."""
        url = database_url(target)
        if existing and not ledger_exists(target):
            raise StoreError(
                f"there is no ledger at {url.removeprefix('sqlite:///')}",
                hint="import events into it first (p402 import ...), or name one with --db",
            )
        if not url.startswith(("sqlite", "postgresql")):
            raise StoreError(
                f"unsupported database URL {url.split('://')[0]}://",
                hint="use a file path or postgresql://",
            )
        try:
            # hide_parameters: an error message never carries row values (which may be another
            # tenant's, when a group commit fails).
            engine = create_engine(url, hide_parameters=True)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _on_sqlite_connect)
            if prepare:
                _prepare(engine)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the ledger at {engine.url!r}: {exc.__class__.__name__}: {exc.args[0]}"
            ) from None
        return cls(engine)

    def upgrade(self) -> Upgrade:
        """Run every schema migration this ledger lacks (``p402 db upgrade``); open it with
        ``prepare=False`` first, since an older schema is refused otherwise."""
        from p402.ledger.migrate import upgrade

        return upgrade(self.engine)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    @contextmanager
    def transaction(self, *, bulk: bool = False) -> Iterator[Connection]:
        """One transaction: everything written in it lands together or not at all.

        *bulk*: it writes many events (an import). On SQLite the connection then keeps up to
        :data:`BULK_CACHE_MIB` of pages in memory for its duration, instead of SQLite's 2 MiB:
        an index on random event ids is otherwise read back and spilled to the WAL page by
        page, and inserts run at two thirds of the speed."""
        try:
            with self.engine.begin() as connection:
                if bulk and self.dialect == "sqlite":
                    with _page_cache(connection, BULK_CACHE_MIB):
                        yield connection
                else:
                    yield connection
        except SQLAlchemyError as exc:
            raise StoreError(
                f"the ledger could not be written: {exc.__class__.__name__}: {exc}"
            ) from None

    def insert(self, connection: Connection, batch: Sequence[Event]) -> None:
        """Insert events; ones whose ``(tenant, event_id)`` is already stored are left as they are."""
        self.insert_rows(connection, [event_row(item) for item in batch])

    def insert_rows(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        """:meth:`insert`, of events already turned into rows by :func:`event_row`."""
        if not rows:
            return
        if self.dialect == "postgresql":
            self._copy(connection, rows)
            return
        marks = ", ".join("?" * len(EVENT_COLUMNS))
        connection.exec_driver_sql(
            f"INSERT INTO events ({_COLUMN_LIST}) VALUES ({marks}) ON CONFLICT (tenant, event_id) DO NOTHING",
            rows,
        )

    def insert_new(self, connection: Connection, batch: Sequence[Event]) -> set[str]:
        """Like :meth:`insert`, and say which events were new: the event ids stored by this call
        (an id already in the ledger, or repeated in *batch*, is not among them)."""
        if not batch:
            return set()
        if self.dialect == "postgresql":
            rows = [event_row(item) for item in batch]
            if len(rows) >= _COPY_FROM:
                return self._copy(connection, rows, returning=True)
            # A few events (the live meter's usual call): one statement, one round trip.
            marks = ", ".join(["(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"] * len(rows))
            result = connection.exec_driver_sql(
                f"INSERT INTO events ({_COLUMN_LIST}) VALUES {marks} "
                "ON CONFLICT (tenant, event_id) DO NOTHING RETURNING event_id",
                tuple(value for row in rows for value in row),
            )
            return {row[0] for row in result}
        tenant = batch[0].tenant
        assert all(item.tenant == tenant for item in batch)
        ids = list({item.event_id for item in batch})
        table = events_table
        # SQLite has one writer at a time: what this transaction sees is what the insert meets.
        existing: set[str] = set()
        for start in range(0, len(ids), 500):
            existing.update(
                connection.execute(
                    select(table.c.event_id).where(
                        table.c.tenant == tenant, table.c.event_id.in_(ids[start : start + 500])
                    )
                ).scalars()
            )
        self.insert(connection, batch)
        return set(ids) - existing

    def _copy(
        self, connection: Connection, rows: list[tuple[Any, ...]], *, returning: bool = False
    ) -> set[str]:
        from psycopg.errors import UniqueViolation  # PostgreSQL only: imported when used

        raw = connection.connection.driver_connection
        assert raw is not None
        # Most batches hold no event already stored: they are copied straight into the table,
        # in a savepoint. COPY cannot skip a conflict, so a batch that meets one is rolled back
        # to the savepoint and goes through a per-transaction staging table instead. The
        # savepoint is SQLAlchemy's: psycopg's own transaction() would BEGIN and COMMIT a
        # transaction of its own when the COPY is the first statement of ours.
        try:
            with (
                connection.begin_nested(),
                raw.cursor() as cursor,
                cursor.copy(f"COPY events ({_COLUMN_LIST}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return {row[_EVENT_ID] for row in rows} if returning else set()
        except UniqueViolation:
            pass
        with raw.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS events_staging (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cursor.copy(f"COPY events_staging ({_COLUMN_LIST}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM events_staging "
                "ON CONFLICT (tenant, event_id) DO NOTHING"
                + (" RETURNING event_id" if returning else "")
            )
            stored = {row[0] for row in cursor.fetchall()} if returning else set()
            cursor.execute("TRUNCATE events_staging")
        return stored

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

    def insert_invoice_lines(self, connection: Connection, lines: Sequence[InvoiceLine]) -> None:
        """Insert billed lines; ones already stored (same tenant and line id) are left as they are."""
        if lines:
            connection.execute(self._insert_lines, [invoice_line_row(line) for line in lines])

    def count(
        self, tenant: str, period: Period | None = None, *, connection: Connection | None = None
    ) -> int:
        """How many events the tenant has, in the period if one is given."""
        query = (
            select(func.count()).select_from(events_table).where(events_table.c.tenant == tenant)
        )
        if period is not None:
            query = query.where(
                events_table.c.occurred_at_us >= micros(period.start),
                events_table.c.occurred_at_us < micros(period.end),
            )
        return self._scalar(query, connection)

    def count_invoice_lines(self, tenant: str, *, connection: Connection | None = None) -> int:
        """How many billed lines the tenant has."""
        query = (
            select(func.count())
            .select_from(invoice_lines_table)
            .where(invoice_lines_table.c.tenant == tenant)
        )
        return self._scalar(query, connection)

    def provider_totals(self, tenant: str, period: Period) -> dict[str, int]:
        """Cost units per provider in the period (exact: SQL sums of integers; SQLite raises
        rather than overflow, PostgreSQL sums BIGINT as NUMERIC)."""
        table = events_table
        query = (
            select(table.c.provider, func.sum(table.c.cost_units))
            .where(table.c.tenant == tenant)
            .where(
                table.c.occurred_at_us >= micros(period.start),
                table.c.occurred_at_us < micros(period.end),
            )
            .group_by(table.c.provider)
        )
        with self.engine.connect() as connection:
            return {provider: int(units or 0) for provider, units in connection.execute(query)}

    def spend(self, tenant: str, *, field: str, value: str, start: datetime, end: datetime) -> int:
        """Cost units of the tenant's events whose *field* is *value*, with ``start <=
        occurred_at < end``: one SQL sum, exact (a budget's spend so far)."""
        table = events_table
        assert field in EVENT_COLUMNS  # column names come from the code, never from input
        query = select(func.coalesce(func.sum(table.c.cost_units), 0)).where(
            table.c.tenant == tenant,
            table.c[field] == value,
            table.c.occurred_at_us >= micros(start),
            table.c.occurred_at_us < micros(end),
        )
        return self._scalar(query, None)

    def group_totals(
        self, tenant: str, period: Period, column: str
    ) -> list[tuple[str | None, int, int, int]]:
        """Per value of an event column in the period: (value, cost units, events, unpriced
        events), largest cost first, ties by value. Summed in SQL, exactly (integers)."""
        table = events_table
        assert column in EVENT_COLUMNS
        field = table.c[column]
        unpriced = func.sum(case((table.c.cost_units.is_(None), 1), else_=0))
        query = (
            select(field, func.sum(table.c.cost_units), func.count(), unpriced)
            .where(table.c.tenant == tenant)
            .where(
                table.c.occurred_at_us >= micros(period.start),
                table.c.occurred_at_us < micros(period.end),
            )
            .group_by(field)
        )
        with self.engine.connect() as connection:
            rows = [
                (value, int(units or 0), int(count), int(missing or 0))
                for value, units, count, missing in connection.execute(query)
            ]
        return sorted(rows, key=lambda row: (-row[1], row[0] is None, row[0] or ""))

    def billed_days(self, tenant: str, period: Period) -> dict[tuple[str, str], int]:
        """Billed amounts (storage units) per (provider, day ISO date) of the invoice lines that
        start inside the period: what the providers' cost exports say was charged."""
        table = invoice_lines_table
        query = (
            select(table.c.provider, table.c.start_us, table.c.amount_units)
            .where(table.c.tenant == tenant)
            .where(table.c.start_us >= micros(period.start), table.c.start_us < micros(period.end))
        )
        totals: dict[tuple[str, str], int] = {}
        with self.engine.connect() as connection:
            for provider, start_us, units in connection.execute(query):
                key = (provider, moment(start_us).date().isoformat())
                totals[key] = totals.get(key, 0) + units
        return totals

    def _scalar(self, query: Any, connection: Connection | None) -> int:
        if connection is not None:
            return int(connection.execute(query).scalar_one())
        with self.engine.connect() as own:
            return int(own.execute(query).scalar_one())

    def _byte_order(self, column: Any) -> Any:
        # PostgreSQL sorts text by locale; bundles must list events in the same order on every store.
        return column.collate("C") if self.dialect == "postgresql" else column

    def stream(
        self, tenant: str, period: Period | None = None, *, chunk: int = 5_000
    ) -> Iterator[Event]:
        """The tenant's events (in the period, if given), oldest first, ties by event_id bytewise;
        never all in memory."""
        for _, item in self.stream_with_ids(tenant, period, chunk=chunk):
            yield item

    def stream_with_ids(
        self, tenant: str, period: Period | None = None, *, chunk: int = 5_000
    ) -> Iterator[tuple[int, Event]]:
        """Like :meth:`stream`, with each event's row id (for :meth:`update_attribution`)."""
        table = events_table
        query = select(table.c.id, *(table.c[name] for name in EVENT_COLUMNS)).where(
            table.c.tenant == tenant
        )
        if period is not None:
            query = query.where(
                table.c.occurred_at_us >= micros(period.start),
                table.c.occurred_at_us < micros(period.end),
            )
        query = query.order_by(table.c.occurred_at_us, self._byte_order(table.c.event_id))
        with self.engine.connect() as connection:
            # Options on the statement: Connection.execution_options would change the connection.
            result = connection.execute(
                query, execution_options={"stream_results": True, "yield_per": chunk}
            )
            for row in result:
                yield row[0], event_from_row(row[1:])

    def stream_records(
        self, tenant: str, period: Period, *, chunk: int = 5_000
    ) -> Iterator[tuple[dict[str, Any], int | None, int]]:
        """The tenant's events in the period as canonical JSON objects (``Event.to_json()``), each
        with its exact cost units and its time in microseconds: the fast path of audits and
        reports, which never need the Event objects themselves."""
        table = events_table
        query = (
            select(*(table.c[name] for name in EVENT_COLUMNS))
            .where(table.c.tenant == tenant)
            .where(
                table.c.occurred_at_us >= micros(period.start),
                table.c.occurred_at_us < micros(period.end),
            )
            .order_by(table.c.occurred_at_us, self._byte_order(table.c.event_id))
        )
        with self.engine.connect() as connection:
            result = connection.execute(
                query, execution_options={"stream_results": True, "yield_per": chunk}
            )
            for row in result:
                yield record_from_row(row)

    def stream_columns(
        self, connection: Connection, tenant: str, names: Sequence[str], *, chunk: int = 5_000
    ) -> Iterator[tuple[Any, ...]]:
        """The tenant's events as ``(row id, *names)`` tuples, by row id, streamed in the
        caller's transaction: what :meth:`update_attribution` needs, and never whole events."""
        table = events_table
        assert set(names) <= set(EVENT_COLUMNS)  # column names come from the code, never input
        query = (
            select(table.c.id, *(table.c[name] for name in names))
            .where(table.c.tenant == tenant)
            .order_by(table.c.id)
        )
        result = connection.execute(
            query, execution_options={"stream_results": True, "yield_per": chunk}
        )
        for row in result:
            yield tuple(row)

    def update_attribution(self, connection: Connection, changes: Sequence[dict[str, Any]]) -> None:
        """Set attribution fields by row id: each change maps ``row_id`` and the fields to set."""
        if not changes:
            return
        names = [key for key in changes[0] if key != "row_id"]
        # Column names come from the event schema, never from input.
        assert set(names) <= set(EVENT_COLUMNS)
        assignments = ", ".join(f"{name} = :{name}" for name in names)
        connection.execute(
            text(f"UPDATE events SET {assignments} WHERE id = :row_id"), list(changes)
        )
