"""The ledger: parse, validate, price, attribute and store economic events.

Usage::

    from p402.ledger import Ledger, import_files

    ledger = Ledger.open("p402-ledger.db")          # or a postgresql:// URL
    summary = import_files(ledger, ["usage.json"], tenant="acme", fmt="anthropic-usage")
    for event in ledger.stream("acme", period):     # streamed, in a fixed order
        ...

Names are imported on first use, so reading the list of formats does not load the database
layer.
"""

from __future__ import annotations

import importlib
from typing import Any

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

_HOMES = {
    "FIELDS": "events",
    "Event": "events",
    "validate": "validation",
    "ImportRejected": "importer",
    "ImportSummary": "importer",
    "import_files": "importer",
    "Problem": "problems",
    "Ledger": "store",
    "StoreError": "store",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'p402.ledger' has no attribute {name!r}")
    return getattr(importlib.import_module(f"p402.ledger.{_HOMES[name]}"), name)
