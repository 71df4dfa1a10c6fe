"""Schema version 3: tenants, their API keys, signed ledger entries (retention purges),
audits requested through the service, and each tenant's append-only audit log.

Revision ID: v3
Revises: v2
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v3"
down_revision = "v2"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("retention_days", sa.Integer, nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.UniqueConstraint("tenant", "entry_id", name="uq_ledger_entries_tenant_entry_id"),
    )
    op.create_index("ix_ledger_entries_tenant_time", "ledger_entries", ["tenant", "recorded_at_us"])
    op.create_table(
        "audits",
        sa.Column("audit_id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at_us", sa.BigInteger, nullable=False),
        sa.Column("finished_at_us", sa.BigInteger, nullable=True),
        sa.Column("folder", sa.Text, nullable=True),
        sa.Column("bundle", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_audits_tenant", "audits", ["tenant"])
    op.create_table(
        "log_heads",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("first_index", sa.BigInteger, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("frontier", sa.Text, nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("period_root", sa.String(64), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("tenant", "first_index", name="uq_log_heads_tenant_first_index"),
    )
    meta = sa.table("p402_meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema").values(value="3"))
