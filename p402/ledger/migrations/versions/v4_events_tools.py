"""Schema version 4: tool calls priced apart from tokens, data-quality codes, the user an
invoice line was billed for, and a control record of every import.

Events gain ``web_search_calls`` and ``file_search_calls`` (counts, 0 for every earlier event),
``tool_cost_units`` (the part of the cost that is tool calls; NULL for every earlier event) and
``quality`` (the oddities of a genuine record; NULL: none). Invoice lines gain ``user_id``, part of
what distinguishes a line of a cost export grouped by user. ``imports`` holds one control record
per file imported (see ``p402/ledger/imports.py``).

Revision ID: v4
Revises: v3
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v4"
down_revision = "v3"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        for name in ("web_search_calls", "file_search_calls"):
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("tool_cost_units", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("quality", sa.String(200), nullable=True))
    with op.batch_alter_table("invoice_lines") as batch:
        batch.add_column(sa.Column("user_id", sa.String(200), nullable=True))
    op.create_table(
        "imports",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("import_id", sa.String(64), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
        sa.Column("format", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("tenant", "import_id", name="uq_imports_tenant_import_id"),
    )
    op.create_index("ix_imports_tenant_time", "imports", ["tenant", "recorded_at_us"])
    meta = sa.table("p402_meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema").values(value="4"))
