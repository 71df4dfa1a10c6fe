"""Self-contained receipts: one event, proven to belong to a signed ledger, verifiable alone.

A receipt holds the event (its canonical JSON object), its leaf index, the tree size, the
RFC 9162 inclusion proof and the signed checkpoint. With the signer's public key it proves,
offline, that this exact event is leaf *i* of the ledger whose root the key signed; an
auditor hands it to a third party without the rest of the bundle.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from p402.bundles._zipcheck import MemberError, member_lines, read_member
from p402.bundles.canonical import CanonicalError, dumps, dumps_record, loads
from p402.bundles.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from p402.bundles.layout import CHECKPOINT, EVENTS
from p402.bundles.merkle import MerkleTree, leaf_hash, verify_inclusion
from p402.bundles.signing import PublicKey
from p402.errors import P402Error

__all__ = ["RECEIPT_FORMAT", "ReceiptInvalid", "receipt_from_bundle", "verify_receipt"]

RECEIPT_FORMAT = "p402-receipt"


class ReceiptInvalid(P402Error):
    """The receipt does not prove what it claims."""

    exit_code = 1
    bare = True


def receipt_from_bundle(bundle: Path, event_id: str) -> bytes:
    """The canonical JSON receipt of *event_id* in *bundle* (verify the bundle first).

    Raises:
        P402Error: the bundle cannot be read or has no such event.
    """
    try:
        with zipfile.ZipFile(bundle) as archive:
            note = read_member(archive, CHECKPOINT, 1 << 16).decode()
            leaves: list[bytes] = []
            found: tuple[int, bytes] | None = None
            for number, line in member_lines(archive, EVENTS):
                leaves.append(leaf_hash(line))
                if found is None and loads(line).get("event_id") == event_id:
                    found = (number - 1, line)
    except (OSError, zipfile.BadZipFile, MemberError, CanonicalError, UnicodeDecodeError) as exc:
        raise P402Error(f"{bundle}: cannot be read ({exc})") from None
    if found is None:
        raise P402Error(f"{bundle}: no event {event_id!r} in {EVENTS}")
    index, line = found
    receipt = {
        "format": RECEIPT_FORMAT,
        "format_version": 1,
        "event": loads(line),
        "leaf_index": index,
        "tree_size": len(leaves),
        "inclusion_proof": [node.hex() for node in MerkleTree(leaves).inclusion_proof(index)],
        "checkpoint": note,
    }
    return dumps(receipt) + b"\n"


def verify_receipt(data: bytes, trusted: list[PublicKey]) -> tuple[Checkpoint, dict[str, Any]]:
    """The checkpoint and event a receipt proves, if a trusted key signed its tree head.

    Raises:
        ReceiptInvalid: saying which part does not hold.
    """
    try:
        receipt = loads(data.strip())
        if not isinstance(receipt, dict) or receipt.get("format") != RECEIPT_FORMAT:
            raise ReceiptInvalid("invalid: not a p402 receipt")
        event, index, size = receipt["event"], receipt["leaf_index"], receipt["tree_size"]
        proof = [bytes.fromhex(node) for node in receipt["inclusion_proof"]]
        note = receipt["checkpoint"]
        if not isinstance(event, dict) or not isinstance(index, int) or not isinstance(size, int):
            raise ReceiptInvalid("invalid: event, leaf_index or tree_size has the wrong type")
    except (CanonicalError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReceiptInvalid(f"invalid: not a readable receipt ({exc})") from None
    try:
        checkpoint = open_checkpoint(str(note), trusted)
    except CheckpointError as exc:
        raise ReceiptInvalid(f"invalid: checkpoint: {exc}") from None
    if size != checkpoint.size:
        raise ReceiptInvalid(
            f"invalid: the receipt says tree size {size}, its checkpoint {checkpoint.size}"
        )
    if not verify_inclusion(leaf_hash(dumps_record(event)), index, size, proof, checkpoint.root):
        raise ReceiptInvalid(f"invalid: the event is not leaf {index} of the signed tree")
    return checkpoint, event
