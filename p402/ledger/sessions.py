"""The HTML page's sign-ins: a random session id in the browser, its hash in the database.

Signing in with a tenant's API key opens a session (:func:`open_session`); the cookie then
carries only the session id, never the key. A session ends when it expires
(:data:`SESSION_SECONDS`), when the browser signs out (:func:`end_session` deletes it, so a
copied cookie stops working too), or when the key it was opened with is revoked. Every worker
and host reads the same table.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete, select

from p402.ledger.schema import api_keys_table, sessions_table
from p402.ledger.store import Ledger

__all__ = ["SESSION_SECONDS", "end_session", "open_session", "session_tenant"]

SESSION_SECONDS = 12 * 3600
"""How long a sign-in lasts."""


def _digest(session: str) -> str:
    return hashlib.sha256(session.encode()).hexdigest()


def open_session(ledger: Ledger, tenant: str, key_id: str, *, now_us: int) -> str:
    """A new session of *tenant*, opened with key *key_id*: its id (256 random bits)."""
    session = secrets.token_urlsafe(32)
    with ledger.transaction() as connection:
        table = sessions_table
        connection.execute(table.delete().where(table.c.expires_at_us <= now_us))
        connection.execute(
            table.insert().values(
                session_sha256=_digest(session), tenant=tenant, key_id=key_id,
                created_at_us=now_us, expires_at_us=now_us + SESSION_SECONDS * 1_000_000,
            )
        )  # fmt: skip
    return session


def session_tenant(ledger: Ledger, session: str, *, now_us: int) -> str | None:
    """The tenant of a live session: not expired, not signed out, its key not revoked."""
    table, keys = sessions_table, api_keys_table
    query = (
        select(table.c.tenant)
        .join(keys, (keys.c.key_id == table.c.key_id) & (keys.c.tenant == table.c.tenant))
        .where(
            table.c.session_sha256 == _digest(session),
            table.c.expires_at_us > now_us,
            keys.c.revoked_at_us.is_(None),
        )
    )
    with ledger.engine.connect() as connection:
        found: str | None = connection.execute(query).scalar()
    return found


def end_session(ledger: Ledger, session: str) -> None:
    """Sign out: the session is deleted, so its cookie is worth nothing anywhere."""
    with ledger.transaction() as connection:
        table = sessions_table
        connection.execute(delete(table).where(table.c.session_sha256 == _digest(session)))
