"""Schema version 5: what the meter and the proxy did with what they received.

``capture_counts`` holds, per tenant, channel (``meter``, ``proxy``) and UTC day of arrival,
the requests refused whole, the items received and what became of each (accepted, duplicate,
rejected), the content fields dropped and the exact cost of the accepted and duplicate items;
``capture_days`` the accepted events of each such day by the day of their own time (see
``p402/ledger/captures.py``). Each ``p402 serve`` process counts in rows of its own
(``writer``), so two processes never wait for each other's row locks; a day is the sum of its
writers' rows. Earlier ledgers have no counts: their captured events are the
completeness section's declared difference, never a tie.

Revision ID: v5
Revises: v4
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v5"
down_revision = "v4"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_COUNTS = (
    "requests_refused", "received", "accepted", "duplicates", "rejected",
    "content_fields_dropped", "odd", "unpriced", "tier_unpriced", "accepted_units",
    "duplicate_units",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "capture_counts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("writer", sa.BigInteger, nullable=False, server_default="0"),
        *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in _COUNTS),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "tenant", "channel", "day", "writer", name="uq_capture_counts_tenant_channel_day"
        ),
    )
    op.create_table(
        "capture_days",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("writer", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("event_day", sa.Integer, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in ("events", "units", "tokens")),
        sa.UniqueConstraint(
            "tenant",
            "channel",
            "day",
            "writer",
            "event_day",
            name="uq_capture_days_tenant_channel_days",
        ),
    )
    op.create_index("ix_capture_days_tenant_event_day", "capture_days", ["tenant", "event_day"])
    meta = sa.table("p402_meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema").values(value="5"))
