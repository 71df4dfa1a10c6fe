"""Self-contained receipts: one event, proven to belong to a signed ledger, verifiable alone.

A receipt holds the event (its canonical JSON object), its leaf index, the tree size, the
RFC 9162 inclusion proof and the signed checkpoint. With the signer's public key it proves,
offline, that this exact event is leaf *i* of the ledger whose root the key signed; an
auditor hands it to a third party without the rest of the bundle.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zipfile
from pathlib import Path
from typing import IO, Any

from p402.bundles._zipcheck import MemberError, member_lines, member_reader, read_member
from p402.bundles.canonical import CanonicalError, dumps, dumps_record, loads
from p402.bundles.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from p402.bundles.layout import CHECKPOINT, EVENTS, INDEX, OFFSETS, TREE
from p402.bundles.lookup import find_leaves, proof_from_tree, root_from_proof
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
    """The canonical JSON receipt of *event_id* in *bundle*.

    Reads only what the receipt needs (see :mod:`p402.bundles.lookup`): a binary search of the
    index, the event's line and one tree node per level, so a million-event bundle answers in
    milliseconds. Nothing read is trusted: the receipt is checked against the bundle's
    checkpoint before it is returned, and its reader checks that checkpoint's signature. A
    bundle without the lookup members (made before p402 wrote them) is read in full.

    Raises:
        P402Error: the bundle cannot be read, has no such event, or is damaged.
    """
    try:
        with bundle.open("rb") as handle, zipfile.ZipFile(handle) as archive:
            note = read_member(archive, CHECKPOINT, 1 << 16).decode()
            names = set(archive.namelist())
            if {TREE, INDEX, OFFSETS} <= names:
                found = _look_up(archive, handle, note, event_id)
            else:
                found = _scan(archive, event_id)
    except (OSError, zipfile.BadZipFile, MemberError, CanonicalError, UnicodeDecodeError) as exc:
        raise P402Error(f"{bundle}: cannot be read ({exc})") from None
    if found is None:
        raise P402Error(f"{bundle}: no event {event_id!r} in {EVENTS}")
    line, index, size, proof = found
    signed = _note_head(note)
    if signed is None or (size, root_from_proof(leaf_hash(line), size, index, proof)) != signed:
        raise P402Error(
            f"{bundle}: the receipt of {event_id!r} does not lead to the bundle's checkpoint "
            "(the bundle is damaged; run p402 verify)"
        )
    receipt = {
        "format": RECEIPT_FORMAT,
        "format_version": 1,
        "event": loads(line),
        "leaf_index": index,
        "tree_size": size,
        "inclusion_proof": [node.hex() for node in proof],
        "checkpoint": note,
    }
    return dumps(receipt) + b"\n"


_Found = tuple[bytes, int, int, list[bytes]]
"""The event's line, its leaf index, the tree size and the inclusion proof."""


def _note_head(note: str) -> tuple[int, bytes] | None:
    """The (size, root) a checkpoint states, unverified (the receipt's reader verifies it)."""
    try:
        text, _, _ = note.rpartition("\n\n")
        _, size, encoded = text.split("\n")[:3]
        return int(size), base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        return None


def _look_up(
    archive: zipfile.ZipFile, handle: IO[bytes], note: str, event_id: str
) -> _Found | None:
    head = _note_head(note)
    size = archive.getinfo(OFFSETS).file_size // 8 - 1
    if head is None or head[0] != size:
        raise MemberError(f"{OFFSETS}: {size} lines, the checkpoint says otherwise")
    index_at = member_reader(archive, handle, INDEX)
    offsets_at = member_reader(archive, handle, OFFSETS)
    events_at = member_reader(archive, handle, EVENTS)
    for index in find_leaves(index_at, size, event_id):
        start, end = struct.unpack(">QQ", offsets_at(index * 8, 16))
        if not start < end:
            raise MemberError(f"{OFFSETS}: line {index + 1} is empty")
        line = events_at(start, end - start - 1)
        if loads(line).get("event_id") == event_id:
            return (
                line,
                index,
                size,
                proof_from_tree(member_reader(archive, handle, TREE), size, index),
            )
    return None


def _scan(archive: zipfile.ZipFile, event_id: str) -> _Found | None:
    leaves: list[bytes] = []
    found: tuple[int, bytes] | None = None
    for number, line in member_lines(archive, EVENTS):
        leaves.append(leaf_hash(line))
        if found is None and loads(line).get("event_id") == event_id:
            found = (number - 1, line)
    if found is None:
        return None
    index, line = found
    return line, index, len(leaves), MerkleTree(leaves).inclusion_proof(index)


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
