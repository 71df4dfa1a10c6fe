"""The ledger: the store of economic events and invoice lines (SQLAlchemy: SQLite or PostgreSQL).

Usage::

    from p402.ledger import Ledger

    ledger = Ledger.open("p402-ledger.db")          # or a postgresql:// URL
    for record, units, at in ledger.stream_records("acme", period):   # fixed order, streamed
        ...

Names are imported on first use, so naming the event fields does not load the database layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p402 import lazy_names

if TYPE_CHECKING:  # the names as mypy sees them; at run time __getattr__ loads them
    from p402.ledger.events import FIELDS, Event
    from p402.ledger.store import Ledger, StoreError

__all__ = ["FIELDS", "Event", "Ledger", "StoreError"]

_HOMES = {
    "FIELDS": "events",
    "Event": "events",
    "Ledger": "store",
    "StoreError": "store",
}

__getattr__ = lazy_names(__name__, _HOMES)
