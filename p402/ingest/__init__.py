"""Ingest: a file or an HTTP call -> checked, priced, attributed values, ready for the ledger.

Usage::

    from p402.ingest import import_files
    from p402.ledger import Ledger

    ledger = Ledger.open("p402-ledger.db")
    summary = import_files(ledger, [Path("usage.json")], tenant="acme", fmt="anthropic-usage")

Names are imported on first use, so reading the list of formats does not load the pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p402 import lazy_names

if TYPE_CHECKING:  # the names as mypy sees them; at run time __getattr__ loads them
    from p402.ingest.importer import ImportRejected, ImportSummary, import_files
    from p402.ingest.pipeline import Pipeline
    from p402.ingest.validation import validate

__all__ = ["ImportRejected", "ImportSummary", "Pipeline", "import_files", "validate"]

_HOMES = {
    "validate": "validation",
    "ImportRejected": "importer",
    "ImportSummary": "importer",
    "Pipeline": "pipeline",
    "import_files": "importer",
}

__getattr__ = lazy_names(__name__, _HOMES)
