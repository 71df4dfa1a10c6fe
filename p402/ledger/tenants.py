"""Tenants and their API keys, as the live service needs them.

A key reads ``p402_<key_id>_<secret>``: the key id is public (it names the key in lists and
logs), the secret is 256 random bits shown once at creation and stored only as its SHA-256. A
plain hash is enough for a random secret of that length (there is nothing to brute-force), and
it keeps authentication a single indexed lookup. Every query here names its tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from p402.errors import P402Error
from p402.ledger.events import ATTRIBUTION_FIELDS
from p402.ledger.schema import TENANT_TABLES, api_keys_table, events_table, tenants_table
from p402.ledger.store import Ledger
from p402.period import micros, moment

__all__ = [
    "ApiKey",
    "Tenant",
    "TenantError",
    "authenticate",
    "create_api_key",
    "create_tenant",
    "credential",
    "delete_tenant_rows",
    "drop_events",
    "get_tenant",
    "list_api_keys",
    "list_tenants",
    "revoke_all_keys",
    "revoke_api_key",
    "tenant_row_counts",
    "unregistered",
]

TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEY = re.compile(r"p402_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


class TenantError(P402Error):
    """A tenant or key cannot be created, found or changed."""

    code = "tenant_refused"


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant of the service."""

    tenant: str
    name: str | None
    retention_days: int | None
    created_at: datetime
    client_retention: bool = False
    """Whether meter clients may ask for less than the tenant's retention (never for more)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's public facts (never its secret)."""

    key_id: str
    tenant: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None
    attribution: Mapping[str, str] | None = None
    """What the key always spends as (``department``, ``customer``...): set when it is
    created; a call's headers or a meter event cannot change it."""


def _now() -> datetime:
    return datetime.now(UTC)


def create_tenant(
    ledger: Ledger,
    tenant: str,
    *,
    name: str | None = None,
    retention_days: int | None = None,
    client_retention: bool = False,
) -> Tenant:
    """Register a tenant. Its id is lower-case letters, digits, ``.``, ``_`` and ``-``.
    *client_retention*: its meter clients may keep an event for less than *retention_days*."""
    if not TENANT_PATTERN.fullmatch(tenant):
        raise TenantError(
            f"tenant id {tenant!r} is not valid",
            hint="use 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if retention_days is not None and retention_days < 1:
        raise TenantError("retention_days must be at least 1")
    created = _now()
    try:
        with ledger.engine.begin() as connection:
            connection.execute(
                tenants_table.insert().values(
                    tenant=tenant,
                    name=name,
                    retention_days=retention_days,
                    created_at_us=micros(created),
                    client_retention=client_retention,
                )
            )
    except IntegrityError:
        raise TenantError(f"tenant {tenant!r} already exists") from None
    return Tenant(tenant, name, retention_days, created, client_retention)


def get_tenant(ledger: Ledger, tenant: str) -> Tenant | None:
    """The registered tenant, or ``None``."""
    table = tenants_table
    with ledger.engine.connect() as connection:
        row = connection.execute(select(table).where(table.c.tenant == tenant)).first()
    if row is None:
        return None
    return _tenant(row)


def list_tenants(ledger: Ledger) -> list[Tenant]:
    """Every registered tenant, by id (an operator's view: no route of the service calls it)."""
    table = tenants_table
    with ledger.engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.tenant))
        return [_tenant(row) for row in rows]


def _tenant(row: Any) -> Tenant:
    return Tenant(
        row.tenant, row.name, row.retention_days, moment(row.created_at_us),
        bool(row.client_retention),
    )  # fmt: skip


def _require(ledger: Ledger, tenant: str) -> Tenant:
    found = get_tenant(ledger, tenant)
    if found is None:
        raise TenantError(
            f"no tenant {tenant!r} in this ledger", hint=f"create it: p402 tenant create {tenant}"
        )
    return found


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _fixed(attribution: Mapping[str, str] | None) -> dict[str, str] | None:
    """A key's fixed attribution, checked: known fields, values as events take them."""
    if not attribution:
        return None
    fixed: dict[str, str] = {}
    for name, value in attribution.items():
        if name not in ATTRIBUTION_FIELDS:
            raise TenantError(
                f"a key cannot fix {name!r}", hint=f"fix any of: {', '.join(ATTRIBUTION_FIELDS)}"
            )
        text = value.strip() if isinstance(value, str) else ""
        if not text or len(text) > 200 or not text.isprintable():
            raise TenantError(f"the key's {name} must be 1 to 200 printable characters")
        fixed[name] = text
    return dict(sorted(fixed.items()))


def create_api_key(
    ledger: Ledger,
    tenant: str,
    *,
    label: str | None = None,
    attribution: Mapping[str, str] | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the tenant, and its full text (shown once: only a hash is kept).

    *attribution*: what every event the key records is attributed to (``{"department":
    "Support"}``); a call's headers or a meter event that says otherwise is refused, so a
    team's key cannot spend as another team, nor out of its budget."""
    _require(ledger, tenant)
    fixed = _fixed(attribution)
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    created = _now()
    with ledger.engine.begin() as connection:
        connection.execute(
            api_keys_table.insert().values(
                key_id=key_id,
                tenant=tenant,
                secret_sha256=_digest(secret),
                label=label,
                created_at_us=micros(created),
                attribution=None
                if fixed is None
                else orjson.dumps(fixed, option=orjson.OPT_SORT_KEYS).decode(),
            )
        )
    return ApiKey(key_id, tenant, label, created, None, fixed), f"p402_{key_id}_{secret}"


def _attribution(text: str | None) -> dict[str, str] | None:
    return None if text is None else dict(orjson.loads(text))


def list_api_keys(ledger: Ledger, tenant: str) -> list[ApiKey]:
    """The tenant's keys, oldest first, revoked ones included."""
    table = api_keys_table
    query = select(table).where(table.c.tenant == tenant).order_by(table.c.created_at_us)
    with ledger.engine.connect() as connection:
        return [
            ApiKey(
                row.key_id,
                row.tenant,
                row.label,
                moment(row.created_at_us),
                None if row.revoked_at_us is None else moment(row.revoked_at_us),
                _attribution(row.attribution),
            )
            for row in connection.execute(query)
        ]


def revoke_api_key(ledger: Ledger, tenant: str, key_id: str) -> None:
    """Revoke one of the tenant's keys; it stops working at once."""
    table = api_keys_table
    with ledger.engine.begin() as connection:
        done = connection.execute(
            update(table)
            .where(table.c.tenant == tenant, table.c.key_id == key_id)
            .where(table.c.revoked_at_us.is_(None))
            .values(revoked_at_us=micros(_now()))
        ).rowcount
    if not done:
        raise TenantError(f"tenant {tenant!r} has no active key {key_id!r}")


def authenticate(ledger: Ledger, presented: str) -> str | None:
    """The tenant a presented key belongs to, or ``None`` for a malformed, unknown or revoked
    key (one comparison in constant time, whatever was wrong)."""
    found = credential(ledger, presented)
    return None if found is None else found[0]


def credential(ledger: Ledger, presented: str) -> tuple[str, dict[str, str]] | None:
    """The tenant of a presented key and the attribution the key is fixed to (empty when
    none), or ``None`` as for :func:`authenticate`."""
    match = _KEY.fullmatch(presented)
    key_id, secret = match.groups() if match else ("", presented)
    table = api_keys_table
    with ledger.engine.connect() as connection:
        row = connection.execute(
            select(table.c.tenant, table.c.secret_sha256, table.c.attribution).where(
                table.c.key_id == key_id, table.c.revoked_at_us.is_(None)
            )
        ).first()
    expected = row.secret_sha256 if row is not None else "0" * 64
    good = hmac.compare_digest(_digest(secret), expected)
    if not good or row is None:
        return None
    return row.tenant, _attribution(row.attribution) or {}


def tenant_row_counts(ledger: Ledger, tenant: str) -> dict[str, int]:
    """How many rows the tenant has in every table that holds tenant rows."""
    with ledger.engine.connect() as connection:
        return {
            table.name: int(
                connection.execute(
                    select(func.count()).select_from(table).where(table.c.tenant == tenant)
                ).scalar_one()
            )
            for table in TENANT_TABLES
        }


def unregistered(connection: Connection, tenants: set[str]) -> set[str]:
    """Which of *tenants* have no row, read in the caller's transaction with their rows
    share-locked until it ends (PostgreSQL): a deletion, which locks the row first, then waits
    for this transaction, or has committed and the tenant is reported gone."""
    table = tenants_table
    found = connection.execute(
        select(table.c.tenant).where(table.c.tenant.in_(sorted(tenants))).with_for_update(read=True)
    ).scalars()
    return tenants - set(found)


def drop_events(connection: Connection, tenants: set[str]) -> None:
    """Delete every event of *tenants* in the caller's transaction (tenants just found gone)."""
    table = events_table
    connection.execute(delete(table).where(table.c.tenant.in_(sorted(tenants))))


def revoke_all_keys(ledger: Ledger, tenant: str) -> int:
    """Revoke every active key of the tenant (committed at once: a process that reads a key
    from the database from now on refuses it); how many."""
    table = api_keys_table
    with ledger.engine.begin() as connection:
        done: int = connection.execute(
            update(table)
            .where(table.c.tenant == tenant, table.c.revoked_at_us.is_(None))
            .values(revoked_at_us=micros(_now()))
        ).rowcount
    return done


def delete_tenant_rows(ledger: Ledger, tenant: str) -> dict[str, int]:
    """Delete every row of the tenant, in every table, in one transaction; the counts deleted.

    The tenant's row is locked first: a ``p402 serve`` writer storing its events holds a share
    lock on it until its commit (``serve/service.py``), so the deletion waits for those events
    and deletes them too, and any write after it finds the tenant gone and stores nothing."""
    deleted: dict[str, int] = {}
    with ledger.transaction() as connection:
        connection.execute(
            select(tenants_table.c.tenant).where(tenants_table.c.tenant == tenant).with_for_update()
        )
        for table in TENANT_TABLES:
            deleted[table.name] = connection.execute(
                delete(table).where(table.c.tenant == tenant)
            ).rowcount
    return deleted
