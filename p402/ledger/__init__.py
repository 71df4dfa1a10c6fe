"""The ledger: parse, validate, price and store economic events.

Usage::

    from p402.ledger import Ledger, import_files

    ledger = Ledger.open("p402-ledger.db")          # or a postgresql:// URL
    summary = import_files(ledger, ["events.jsonl"], tenant="acme")
    for event in ledger.stream("acme", period):     # streamed, in a fixed order
        ...
"""

from __future__ import annotations

from p402.ledger.events import FIELDS, Event, validate
from p402.ledger.importer import ImportRejected, ImportSummary, import_files
from p402.ledger.problems import Problem
from p402.ledger.store import Ledger, StoreError

__all__ = [
    "FIELDS",
    "Event",
    "ImportRejected",
    "ImportSummary",
    "Ledger",
    "Problem",
    "StoreError",
    "import_files",
    "validate",
]
