"""Fixtures shared by the format tests."""

from __future__ import annotations

import pytest

from p402.ledger.store import Ledger


@pytest.fixture
def ledger(sqlite_ledger: Ledger) -> Ledger:
    """An empty SQLite ledger (the store itself is tested on every store in tests/test_store.py)."""
    return sqlite_ledger
