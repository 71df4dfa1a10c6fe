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
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from p402.bundles._zipcheck import (
    MemberError,
    member_data,
    member_lines,
    member_reader,
    read_member,
)
from p402.bundles.canonical import CanonicalError, dumps, dumps_record, loads
from p402.bundles.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from p402.bundles.layout import BLOCKS, CHECKPOINT, EVENTS, INDEX, MANIFEST, OFFSETS, TREE
from p402.bundles.lookup import (
    BLOCK_LINES,
    BLOCK_RECORD,
    MAX_TREE_FROM_LEVEL,
    block_count,
    block_span,
    find_leaves,
    proof_from_block,
    root_from_proof,
)
from p402.bundles.manifest import lookup_geometry
from p402.bundles.merkle import MerkleTree, leaf_hash, verify_inclusion
from p402.bundles.signing import PublicKey
from p402.errors import P402Error

__all__ = [
    "RECEIPT_FORMAT",
    "ReceiptInvalid",
    "ReceiptUnavailable",
    "receipt_from_bundle",
    "verify_receipt",
]

RECEIPT_FORMAT = "p402-receipt"


class ReceiptInvalid(P402Error):
    """The receipt does not prove what it claims."""

    exit_code = 1
    http_status = 422
    code = "receipt_invalid"
    bare = True


class ReceiptUnavailable(P402Error):
    """No receipt can be made: the bundle cannot be read, does not hold the event, or is
    damaged."""

    http_status = 404
    code = "receipt_unavailable"


def receipt_from_bundle(bundle: Path, event_id: str) -> bytes:
    """The canonical JSON receipt of *event_id* in *bundle*.

    Reads only what the receipt needs (see :mod:`p402.bundles.lookup`): a binary search of the
    index, the block of the ledger that holds the event's line (inflated on its own: 1,024
    lines, whose leaves give the proof's levels within the block) and one stored tree node per
    level above it, so a million-event bundle answers in milliseconds.
    Nothing read is trusted: the line must carry *event_id*, and the receipt is checked against
    the bundle's checkpoint before it is returned (its reader checks that checkpoint's
    signature). A block that does not inflate on its own as the block table says (a bundle
    re-zipped by other tools) is read by inflating the ledger from its start: slower, as
    correct. A bundle whose ledger is stored (the previous layout) is read at its line offsets;
    one without the lookup members (made before p402 wrote them) is read in full.

    Raises:
        P402Error: the bundle cannot be read, has no such event, or is damaged.
    """
    try:
        with bundle.open("rb") as handle, zipfile.ZipFile(handle) as archive:
            note = read_member(archive, CHECKPOINT, 1 << 16).decode()
            names = set(archive.namelist())
            if {TREE, INDEX, BLOCKS} <= names:
                block_lines, from_level = _geometry(archive)
                found = _look_up(
                    archive, handle, note, event_id, _block_lines,
                    block_lines=block_lines, from_level=from_level,
                )  # fmt: skip
            elif {TREE, INDEX, OFFSETS} <= names:
                found = _look_up(
                    archive, handle, note, event_id, _offset_lines, block_lines=1, from_level=0
                )
            else:
                found = _scan(archive, event_id)
    except (OSError, zipfile.BadZipFile, MemberError, CanonicalError, UnicodeDecodeError) as exc:
        raise ReceiptUnavailable(f"{bundle}: cannot be read ({exc})") from None
    if found is None:
        raise ReceiptUnavailable(f"{bundle}: no event {event_id!r} in {EVENTS}")
    line, index, size, proof = found
    signed = _note_head(note)
    if signed is None or (size, root_from_proof(leaf_hash(line), size, index, proof)) != signed:
        raise ReceiptUnavailable(
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


def _geometry(archive: zipfile.ZipFile) -> tuple[int, int]:
    """The manifest's (lines per block, lowest stored tree level), unverified: a wrong one gives
    a proof that does not lead to the checkpoint, never a wrong receipt."""
    manifest = loads(read_member(archive, MANIFEST, 1 << 20))
    section = manifest.get("receipts") if isinstance(manifest, dict) else None
    if not isinstance(section, dict):
        raise MemberError(f"{MANIFEST}: no receipts section")
    level = section.get("tree_from_level", 0)
    if not (isinstance(level, int) and 0 <= level <= MAX_TREE_FROM_LEVEL):
        raise MemberError(f"{MANIFEST}: receipts.tree_from_level is not a level")
    return lookup_geometry(section)


_LinesAt = Callable[[int], tuple[list[bytes], int]]
"""The lines (without their newlines) of the piece of the ledger that holds line *i*, and the
number of its first line (raises :class:`MemberError` if unreadable)."""


def _block_lines(
    archive: zipfile.ZipFile, handle: IO[bytes], size: int, block_lines: int = BLOCK_LINES
) -> _LinesAt:
    """Lines read through ``ledger/blocks.bin``: the block that holds the line, inflated alone."""
    blocks = block_count(size, block_lines)
    if archive.getinfo(BLOCKS).file_size != (blocks + 1) * BLOCK_RECORD:
        raise MemberError(f"{BLOCKS}: not {blocks + 1} records, as the checkpoint says")
    blocks_at = member_reader(archive, handle, BLOCKS)

    def lines_at(index: int) -> tuple[list[bytes], int]:
        block = index // block_lines
        start, end, text_start, text_end = block_span(blocks_at, block)
        length = text_end - text_start
        text = _inflate_block(member_data(archive, handle, EVENTS), start, end, length)
        if text is None:  # not where the table says: inflate the member up to the block
            text = member_reader(archive, handle, EVENTS)(text_start, max(length, 0))
        lines = text.split(b"\n")
        if lines.pop() or len(lines) != min(block_lines, size - block * block_lines):
            raise MemberError(f"{BLOCKS}: block {block} does not hold whole lines of {EVENTS}")
        return lines, block * block_lines

    return lines_at


def _inflate_block(
    data_at: Callable[[int, int], bytes], start: int, end: int, length: int
) -> bytes | None:
    """The text of the compressed bytes [*start*, *end*) of the ledger, inflated on their own,
    if they give exactly *length* bytes; ``None`` otherwise."""
    if not 0 <= start < end or length <= 0:
        return None
    try:
        text = zlib.decompressobj(-15).decompress(data_at(start, end - start), length + 1)
    except (zlib.error, MemberError):
        return None
    return text if len(text) == length else None


def _offset_lines(
    archive: zipfile.ZipFile, handle: IO[bytes], size: int, _block_lines: int = 1
) -> _LinesAt:
    """Lines read through ``ledger/offsets.bin`` (the previous layout: the ledger stored), one
    at a time."""
    if archive.getinfo(OFFSETS).file_size // 8 - 1 != size:
        raise MemberError(f"{OFFSETS}: not {size} lines and the end, as the checkpoint says")
    offsets_at = member_reader(archive, handle, OFFSETS)
    events_at = member_reader(archive, handle, EVENTS)

    def lines_at(index: int) -> tuple[list[bytes], int]:
        start, end = struct.unpack(">QQ", offsets_at(index * 8, 16))
        if not start < end:
            raise MemberError(f"{OFFSETS}: line {index + 1} is empty")
        return [events_at(start, end - start - 1)], index

    return lines_at


def _look_up(
    archive: zipfile.ZipFile,
    handle: IO[bytes],
    note: str,
    event_id: str,
    lines: Callable[[zipfile.ZipFile, IO[bytes], int, int], _LinesAt],
    *,
    block_lines: int,
    from_level: int,
) -> _Found | None:
    """The event's line and proof, through the lookup members: its block's lines give the
    proof's levels below *from_level* (see :func:`~p402.bundles.lookup.proof_from_block`)."""
    head = _note_head(note)
    if head is None:
        raise MemberError(f"{CHECKPOINT}: no tree size")
    size = head[0]
    lines_at = lines(archive, handle, size, block_lines)
    index_at = member_reader(archive, handle, INDEX)
    for index in find_leaves(index_at, size, event_id):
        block, first = lines_at(index)
        line = block[index - first]
        if loads(line).get("event_id") == event_id:
            start = (index >> from_level << from_level) - first
            leaves = [leaf_hash(each) for each in block[start : start + (1 << from_level)]]
            tree_at = member_reader(archive, handle, TREE)
            return line, index, size, proof_from_block(leaves, tree_at, size, index, from_level)
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
