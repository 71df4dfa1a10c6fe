"""Schema version 6: hard budgets shared by every process, and API keys with fixed attribution.

``budget_windows`` holds a hard budget's spend in one window (per tenant, budget and matched
value), the row every admission of a call locks; ``budget_holds`` what each call in flight may
cost, reserved at admission and released when its event is stored (see
``p402/serve/budgets.py``). ``api_keys.attribution`` is the attribution a key always spends as
(a JSON object, or NULL): a call's headers cannot change it. Earlier keys have none.
``tenants.client_retention``: whether the tenant's meter clients may ask for a shorter
retention than the tenant's own (``retention_until``); false for earlier tenants. ``sessions``:
the HTML page's sign-ins (the hash of a random session id, never the key).

Revision ID: v6
Revises: v5
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v6"
down_revision = "v5"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "budget_windows",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("budget", sa.String(200), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
        sa.Column("window_start_us", sa.BigInteger, primary_key=True),
        sa.Column("spent_units", sa.BigInteger, nullable=True),
        sa.Column("seeded_at_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "budget_holds",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("hold_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("budget", sa.String(200), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("window_start_us", sa.BigInteger, nullable=False),
        sa.Column("units", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_budget_holds_hold_id", "budget_holds", ["hold_id"])
    op.create_index(
        "ix_budget_holds_window", "budget_holds", ["tenant", "budget", "value", "window_start_us"]
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("attribution", sa.Text, nullable=True))
    op.create_table(
        "sessions",
        sa.Column("session_sha256", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sessions_tenant", "sessions", ["tenant"])
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("client_retention", sa.Boolean, nullable=False, server_default="0")
        )
    meta = sa.table("p402_meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema").values(value="6"))
