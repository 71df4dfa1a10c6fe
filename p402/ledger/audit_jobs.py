"""The audits ``p402 serve`` builds in the background, as the database keeps them: one row per
request, from ``queued`` through ``running`` to ``done`` (with the bundle's path) or ``failed``
(with one line saying why). Every read names its tenant.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from p402.ledger.schema import audits_table
from p402.ledger.store import Ledger
from p402.period import micros, moment

__all__ = ["AuditJob", "create_job", "fail_job", "finish_job", "get_job", "list_jobs", "start_job"]


@dataclass(frozen=True, slots=True)
class AuditJob:
    """One requested audit and where it stands."""

    audit_id: str
    tenant: str
    period: str
    status: str
    """``queued``, ``running``, ``done`` or ``failed``."""
    requested_at: datetime
    finished_at: datetime | None = None
    folder: str | None = None
    bundle: str | None = None
    error: str | None = None


def _job(row: Any) -> AuditJob:
    finished = None if row.finished_at_us is None else moment(row.finished_at_us)
    return AuditJob(
        row.audit_id, row.tenant, row.period, row.status, moment(row.requested_at_us), finished,
        row.folder, row.bundle, row.error,
    )  # fmt: skip


def create_job(ledger: Ledger, tenant: str, period: str) -> AuditJob:
    """Queue an audit of the tenant's *period* (its label) under a new random id."""
    job = AuditJob(secrets.token_hex(8), tenant, period, "queued", datetime.now(UTC))
    with ledger.engine.begin() as connection:
        connection.execute(
            audits_table.insert().values(
                audit_id=job.audit_id,
                tenant=tenant,
                period=period,
                status=job.status,
                requested_at_us=micros(job.requested_at),
            )
        )
    return job


def get_job(ledger: Ledger, tenant: str, audit_id: str) -> AuditJob | None:
    """The tenant's audit of that id, or ``None`` (also when it is another tenant's)."""
    table = audits_table
    query = select(table).where(table.c.tenant == tenant, table.c.audit_id == audit_id)
    with ledger.engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else _job(row)


def list_jobs(ledger: Ledger, tenant: str) -> list[AuditJob]:
    """The tenant's audits, newest first."""
    table = audits_table
    query = (
        select(table)
        .where(table.c.tenant == tenant)
        .order_by(table.c.requested_at_us.desc(), table.c.audit_id)
    )
    with ledger.engine.connect() as connection:
        return [_job(row) for row in connection.execute(query)]


def _set(ledger: Ledger, audit_id: str, **values: Any) -> None:
    table = audits_table
    with ledger.engine.begin() as connection:
        connection.execute(update(table).where(table.c.audit_id == audit_id).values(**values))


def start_job(ledger: Ledger, audit_id: str) -> None:
    """The audit is being built."""
    _set(ledger, audit_id, status="running")


def finish_job(ledger: Ledger, audit_id: str, *, folder: str, bundle: str) -> None:
    """The audit is built: its folder and its bundle's path."""
    now = micros(datetime.now(UTC))
    _set(ledger, audit_id, status="done", folder=folder, bundle=bundle, finished_at_us=now)


def fail_job(ledger: Ledger, audit_id: str, error: str) -> None:
    """The audit failed, for the reason *error* gives in one line."""
    _set(ledger, audit_id, status="failed", error=error, finished_at_us=micros(datetime.now(UTC)))


ABANDONED = "the server stopped before this audit was finished; request it again"


def abandon_jobs(ledger: Ledger) -> int:
    """Mark every audit still queued or running as failed, with :data:`ABANDONED` as the reason:
    ``p402 serve`` calls it as it starts, since an audit runs in the server process that took it
    and none survives that process (killed, or restarted). How many were marked."""
    table = audits_table
    now = micros(datetime.now(UTC))
    with ledger.engine.begin() as connection:
        found = connection.execute(
            update(table)
            .where(table.c.status.in_(("queued", "running")))
            .values(status="failed", error=ABANDONED, finished_at_us=now)
        )
    return int(found.rowcount or 0)
