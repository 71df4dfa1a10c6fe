"""Which of a tenant's events have outlived its retention, and deleting them.

An event carries ``retention_until`` from the tenant's retention when it was stored; events
stored before the tenant had a retention period carry none, and expire by their age instead.
The delete says exactly which rows it removed (``RETURNING``), so what the signed purge entry
records is what the database deleted, not a count taken before it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, or_

from p402.ledger.schema import events_table
from p402.period import micros

__all__ = ["delete_expired"]

_DAY_US = 86_400_000_000


def _expired(tenant: str, now_us: int, days: int | None) -> Any:
    table = events_table
    dated = and_(table.c.retention_until_us.is_not(None), table.c.retention_until_us <= now_us)
    if days is None:
        return and_(table.c.tenant == tenant, dated)
    # Events stored before the tenant had a retention period carry no retention_until.
    cutoff = now_us - days * _DAY_US
    undated = and_(table.c.retention_until_us.is_(None), table.c.occurred_at_us < cutoff)
    return and_(table.c.tenant == tenant, or_(dated, undated))


def delete_expired(
    connection: Connection, tenant: str, *, now: datetime, retention_days: int | None
) -> list[tuple[int, int | None]]:
    """Delete the tenant's events expired at *now*, in the caller's transaction; for each one
    removed, its time (microseconds since the epoch) and cost units (``None``: unpriced)."""
    table = events_table
    where = _expired(tenant, micros(now), retention_days)
    removed = connection.execute(
        delete(table).where(where).returning(table.c.occurred_at_us, table.c.cost_units)
    )
    return [(at, cost) for at, cost in removed]
