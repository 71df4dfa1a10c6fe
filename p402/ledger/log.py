"""Each tenant's append-only audit log, as the database keeps it: one *head* per audit that
appended to it (its position, size, root and frontier). The hashing is the bundle's (see
:mod:`p402.bundles.merkle`); this module only stores and finds heads, hashes as hex text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from p402.ledger.schema import log_heads_table
from p402.ledger.store import Ledger, StoreError
from p402.period import micros

__all__ = ["LogHead", "latest_head", "place_in_log", "record_head"]


@dataclass(frozen=True, slots=True)
class LogHead:
    """The tenant's log after one audit appended ``size - first_index`` leaves to it."""

    first_index: int
    size: int
    root: str
    frontier: tuple[str, ...]
    origin: str
    period_root: str


def _head(row: Any) -> LogHead:
    frontier = tuple(orjson.loads(row.frontier))
    return LogHead(row.first_index, row.size, row.root, frontier, row.origin, row.period_root)


def _latest(connection: Connection, tenant: str) -> LogHead | None:
    table = log_heads_table
    row = connection.execute(
        select(table).where(table.c.tenant == tenant).order_by(table.c.size.desc()).limit(1)
    ).first()
    return None if row is None else _head(row)


def latest_head(ledger: Ledger, tenant: str) -> LogHead | None:
    """The tenant's newest head (the largest log), or ``None`` for an empty log."""
    with ledger.engine.connect() as connection:
        return _latest(connection, tenant)


def _of_size(connection: Connection, tenant: str, size: int) -> LogHead | None:
    table = log_heads_table
    row = connection.execute(
        select(table).where(table.c.tenant == tenant, table.c.size == size)
    ).first()
    return None if row is None else _head(row)


def _appended(
    connection: Connection, tenant: str, origin: str, period_root: str, count: int
) -> LogHead | None:
    table = log_heads_table
    row = connection.execute(
        select(table)
        .where(table.c.tenant == tenant, table.c.origin == origin)
        .where(table.c.period_root == period_root, table.c.size - table.c.first_index == count)
        .order_by(table.c.first_index)
        .limit(1)
    ).first()
    return None if row is None else _head(row)


def place_in_log(
    ledger: Ledger, tenant: str, *, origin: str, period_root: str, count: int
) -> tuple[LogHead | None, LogHead | None]:
    """Where an audited tree (origin, root, *count* leaves) goes in the tenant's log, read in
    one snapshot: the earliest head that already appended exactly this tree (re-issuing an
    audit reuses its place, so the bundle comes out byte-identical), or ``None``; and the head
    it appends to: the one just before that earlier append, else the newest (``None`` for an
    empty log)."""
    with ledger.engine.connect() as connection:
        found = _appended(connection, tenant, origin, period_root, count)
        if found is not None and count:
            return found, _of_size(connection, tenant, found.first_index)
        return found, _latest(connection, tenant)


def record_head(ledger: Ledger, tenant: str, head: LogHead) -> None:
    """Append a head. Two audits that appended from the same position race; the second fails
    rather than fork the log."""
    try:
        with ledger.engine.begin() as connection:
            connection.execute(
                log_heads_table.insert().values(
                    tenant=tenant,
                    first_index=head.first_index,
                    size=head.size,
                    root=head.root,
                    frontier=orjson.dumps(list(head.frontier)).decode(),
                    origin=head.origin,
                    period_root=head.period_root,
                    recorded_at_us=micros(datetime.now(UTC)),
                )
            )
    except IntegrityError:
        raise StoreError(
            f"another audit of tenant {tenant!r} appended to its log at the same time",
            hint="run the audit again",
        ) from None
