"""Signed ledger entries, as the database keeps them: what a purge removed, signed by the
service's key (see :mod:`p402.audit.lifecycle`, which builds and signs them).

The body is stored as the exact canonical bytes that were signed, so an entry read back is
verified against what was signed, never against a re-serialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from p402.ledger.schema import ledger_entries_table
from p402.ledger.store import Ledger
from p402.period import micros

__all__ = ["StoredEntry", "insert_entry", "stored_entries"]


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One signed entry: its canonical JSON body (the signed bytes, as text) and signature."""

    body: str
    key_id: str
    signature: str


def insert_entry(
    connection: Connection,
    *,
    tenant: str,
    entry_id: str,
    kind: str,
    recorded_at: datetime,
    entry: StoredEntry,
) -> None:
    """Store a signed entry in the caller's transaction (the one that made it true)."""
    connection.execute(
        ledger_entries_table.insert().values(
            tenant=tenant,
            entry_id=entry_id,
            kind=kind,
            recorded_at_us=micros(recorded_at),
            body=entry.body,
            key_id=entry.key_id,
            signature=entry.signature,
        )
    )


def stored_entries(ledger: Ledger, tenant: str) -> list[StoredEntry]:
    """The tenant's signed entries, oldest first."""
    table = ledger_entries_table
    query = (
        select(table.c.body, table.c.key_id, table.c.signature)
        .where(table.c.tenant == tenant)
        .order_by(table.c.recorded_at_us, table.c.id)
    )
    with ledger.engine.connect() as connection:
        return [StoredEntry(*row) for row in connection.execute(query)]
