"""A tenant's lifecycle in the live ledger: retention purges and deletion.

A purge never hides a gap: before expired events are deleted, what they were (how many, the
time range, the cost, month by month) is written as a *ledger entry* signed with the
service's Ed25519 key, in the same transaction as the delete. Later audits carry the entries
that touch their period, so an auditor sees that events were removed by policy, and how much.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from p402.bundles.canonical import dumps
from p402.bundles.entries import entry_problem, sign_entry
from p402.bundles.signing import PublicKey, SigningKey
from p402.ledger.entries import StoredEntry, insert_entry, stored_entries
from p402.ledger.log import latest_head
from p402.ledger.retention import delete_expired
from p402.ledger.store import Ledger
from p402.ledger.tenants import (
    TenantError,
    delete_tenant_rows,
    get_tenant,
    revoke_all_keys,
    tenant_row_counts,
)
from p402.money import format_amount, from_units
from p402.period import format_time, moment

__all__ = [
    "Purge",
    "delete_tenant",
    "enforce_retention",
    "entry_signature_valid",
    "ledger_entries",
]

ENTRY_KIND_PURGE = "retention_purge"


@dataclass(frozen=True, slots=True)
class Purge:
    """What one retention run removed (``entry`` is ``None`` when nothing had expired)."""

    tenant: str
    count: int
    cost_units: int
    entry: Mapping[str, Any] | None


def _purge_body(
    tenant: str,
    now: datetime,
    retention_days: int | None,
    removed: list[tuple[int, int | None]],
    key: SigningKey,
) -> dict[str, Any]:
    """The purge entry, before its id and signature: what the delete removed, month by month."""
    count = len(removed)
    units = sum(cost or 0 for _, cost in removed)
    unpriced = sum(1 for _, cost in removed if cost is None)
    first = min(at for at, _ in removed)
    last = max(at for at, _ in removed)
    months: dict[str, list[int]] = {}
    for at, cost in removed:
        label = moment(at).strftime("%Y-%m")
        slot = months.setdefault(label, [0, 0])
        slot[0] += 1
        slot[1] += cost or 0
    return {
        "kind": ENTRY_KIND_PURGE,
        "tenant": tenant,
        "recorded_at": format_time(now),
        "reason": "retention",
        "retention_days": retention_days,
        "events": {
            "count": count,
            "first_occurred_at": format_time(moment(first)),
            "last_occurred_at": format_time(moment(last)),
            "cost": format_amount(from_units(units)),
            "unpriced": unpriced,
        },
        "by_month": [
            {"month": label, "count": n, "cost": format_amount(from_units(cost))}
            for label, (n, cost) in sorted(months.items())
        ],
        "key_id": key.public.key_id,
    }


def enforce_retention(
    ledger: Ledger, tenant: str, *, key: SigningKey, now: datetime | None = None
) -> Purge:
    """Delete the tenant's expired events and record the purge as a signed ledger entry."""
    registered = get_tenant(ledger, tenant)
    if registered is None:
        raise TenantError(
            f"no tenant {tenant!r} in this ledger",
            hint=f"create it: p402 tenant create {tenant} --retention-days N",
        )
    now = now or datetime.now(UTC)
    with ledger.transaction() as connection:
        # The entry describes exactly the rows this DELETE removed, not a count taken before
        # it: an expired event committed in between would otherwise be deleted without being
        # in the signed record.
        removed = delete_expired(
            connection, tenant, now=now, retention_days=registered.retention_days
        )
        if not removed:
            return Purge(tenant, 0, 0, None)
        body = _purge_body(tenant, now, registered.retention_days, removed, key)
        body["entry_id"] = hashlib.sha256(dumps(body)).hexdigest()[:32]
        signed = sign_entry(body, key)
        stored = StoredEntry(dumps(body).decode(), signed["key_id"], signed["signature"])
        insert_entry(
            connection, tenant=tenant, entry_id=body["entry_id"], kind=ENTRY_KIND_PURGE,
            recorded_at=now, entry=stored,
        )  # fmt: skip
    return Purge(tenant, body["events"]["count"], sum(cost or 0 for _, cost in removed), body)


def ledger_entries(
    ledger: Ledger, tenant: str, *, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """The tenant's signed ledger entries, oldest first, as ``{"entry", "signature", "key_id"}``;
    only those whose purged range touches [since, until) when a window is given."""
    import orjson

    found = []
    for row in stored_entries(ledger, tenant):
        entry = orjson.loads(row.body)
        events = entry.get("events", {})
        if since is not None and until is not None and events:
            first = datetime.fromisoformat(events["first_occurred_at"].replace("Z", "+00:00"))
            last = datetime.fromisoformat(events["last_occurred_at"].replace("Z", "+00:00"))
            if last < since or first >= until:
                continue
        found.append({"entry": entry, "key_id": row.key_id, "signature": row.signature})
    return found


def entry_signature_valid(item: Mapping[str, Any], keys: list[PublicKey]) -> bool:
    """Whether a ledger entry's signature is good under one of *keys* (by key id)."""
    return entry_problem(item, keys, item["entry"].get("tenant")) is None


def delete_tenant(
    ledger: Ledger,
    tenant: str,
    *,
    key: SigningKey | None = None,
    export: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, int], dict[str, Any] | None]:
    """Remove every row of the tenant, in every table; the rows deleted per table, and, with a
    *key*, the signed deletion certificate: what was deleted, when, the last head of the
    tenant's audit log (so its earlier bundles can be tied to the deletion) and the final export
    (*export*: its file name, SHA-256 and event count), if one was written."""
    revoke_all_keys(ledger, tenant)  # committed first: no process takes its keys from now on
    head = latest_head(ledger, tenant)
    deleted = delete_tenant_rows(ledger, tenant)
    left = {table: n for table, n in tenant_row_counts(ledger, tenant).items() if n}
    if left:  # never certify a deletion that is not whole
        raise TenantError(
            f"tenant {tenant!r} still has rows after its deletion ({left}); nothing was certified",
            hint="stop every p402 serve of this ledger and run the deletion again",
        )
    if key is None:
        return deleted, None
    body: dict[str, Any] = {
        "kind": "tenant_deletion",
        "tenant": tenant,
        "recorded_at": format_time(now or datetime.now(UTC)),
        "deleted_rows": deleted,
        "log": None if head is None else {"size": head.size, "root": head.root},
        "final_export": None if export is None else dict(export),
        "key_id": key.public.key_id,
    }
    body["entry_id"] = hashlib.sha256(dumps(body)).hexdigest()[:32]
    return deleted, sign_entry(body, key)
