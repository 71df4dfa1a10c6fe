"""Signed ledger entries: facts about the ledger itself (a retention purge), signed with the
audit key over their RFC 8785 bytes, so a bundle can carry them and an auditor check them
offline. Shared by the writer (:mod:`p402.audit.lifecycle`) and the verifier."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from p402.bundles.canonical import dumps
from p402.bundles.signing import PublicKey, SigningKey

__all__ = ["ENTRY_KINDS", "entry_problem", "sign_entry"]

ENTRY_KINDS = frozenset({"retention_purge", "tenant_deletion"})


def sign_entry(body: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """The entry as stored and shipped: the body, the key id and the Ed25519 signature (base64)
    of the body's canonical bytes."""
    return {
        "entry": dict(body),
        "key_id": key.public.key_id,
        "signature": base64.b64encode(key.sign(dumps(body))).decode(),
    }


def entry_problem(item: Any, trusted: Sequence[PublicKey], tenant: str) -> str | None:
    """What is wrong with a shipped entry, or ``None`` when a trusted key signed it for *tenant*."""
    if not isinstance(item, dict) or set(item) != {"entry", "key_id", "signature"}:
        return "not a signed ledger entry (entry, key_id, signature)"
    entry = item["entry"]
    if not isinstance(entry, dict) or entry.get("kind") not in ENTRY_KINDS:
        return "an entry of an unknown kind"
    if entry.get("tenant") != tenant:
        return f"an entry of tenant {entry.get('tenant')!r}"
    keys = [key for key in trusted if key.key_id == item["key_id"]]
    if not keys:
        return f"signed by key {str(item['key_id'])[:16]}, which is not trusted"
    return _signature_problem(keys[0], item["signature"], entry)


def _signature_problem(key: PublicKey, text: Any, entry: Mapping[str, Any]) -> str | None:
    try:
        signature = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        return "the signature is not base64"
    return None if key.verify(signature, dumps(entry)) else "the signature does not match the entry"
