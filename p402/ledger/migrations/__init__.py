"""Alembic migrations of the ledger schema: one revision per ``SCHEMA_VERSION``.

Run by ``p402 db upgrade`` (see :mod:`p402.ledger.migrate`), never by hand-written SQL.
"""
