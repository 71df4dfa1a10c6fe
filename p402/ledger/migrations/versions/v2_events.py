"""Schema version 2: events and invoice lines (the baseline, as p402 0.x created it).

Frozen: written out column by column so it stays what version 2 was, whatever the current
schema module says.

Revision ID: v2
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v2"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TOKENS = (
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
    "output_tokens", "reasoning_tokens",
)  # fmt: skip
_TEXT = (
    "provider", "model", "operation", "currency", "cost_source", "price_ref", "owner",
    "department", "employee", "customer", "workflow", "project", "feature", "attribution_rule",
    "api_key_id", "provider_project_id", "workspace_id", "user_id", "service_tier",
    "policy_decision", "policy", "outcome", "evidence_status", "source",
)  # fmt: skip
_LINE_TEXT = (
    "description", "project_id", "workspace_id", "api_key_id", "model", "token_type", "service_tier",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "p402_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in _TOKENS),
        *(
            sa.Column(name, sa.Text if name == "price_ref" else sa.String(200), nullable=True)
            for name in _TEXT
        ),
        sa.Column("batch", sa.Boolean, nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("cost_units", sa.BigInteger, nullable=True),
        sa.Column("list_cost_units", sa.BigInteger, nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("retention_until_us", sa.BigInteger, nullable=True),
        sa.Column("source_attribution", sa.Text, nullable=True),
        sa.UniqueConstraint("tenant", "event_id", name="uq_events_tenant_event_id"),
    )
    op.create_index("ix_events_tenant_time", "events", ["tenant", "occurred_at_us", "event_id"])
    op.create_table(
        "invoice_lines",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("line_id", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("amount_units", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        *(sa.Column(name, sa.String(200), nullable=True) for name in _LINE_TEXT),
        sa.Column("source", sa.String(64), nullable=False),
        sa.UniqueConstraint("tenant", "line_id", name="uq_invoice_lines_tenant_line_id"),
    )
    op.create_index("ix_invoice_lines_tenant_time", "invoice_lines", ["tenant", "start_us"])
    op.bulk_insert(
        sa.table("p402_meta", sa.column("key"), sa.column("value")),
        [{"key": "schema", "value": "2"}],
    )
