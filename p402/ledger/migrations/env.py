"""Alembic environment: runs on the connection :mod:`p402.ledger.migrate` hands over."""

from __future__ import annotations

from alembic import context

from p402.ledger.schema import metadata

connection = context.config.attributes["connection"]
# Batch mode: SQLite alters a table by copying it, which Alembic does for us.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
