"""Seal a period's events: canonical ledger lines, their receipts and the Merkle tree, in one pass.

Lines are spooled to disk as they come (a million events never sit in a Python list), as text
and deflated in blocks of :data:`~p402.bundles.lookup.BLOCK_LINES` lines, each ended by a full
flush, so that one block inflates on its own (see :mod:`p402.bundles.lookup`); the writer puts
that deflate stream in the zip as it is. What stays in memory is one 32-byte leaf hash and one
12-byte index record per event, and one block record and block root per 1,024. Each block's
root is computed as the block ends; :meth:`Sealer.finish` then writes the lookup members: the
tree's levels over the blocks' roots as the root is computed (no hash is computed twice; the
levels below, within a block, are not stored), the sorted event-id index and the block table.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from p402.bundles.canonical import dumps_record
from p402.bundles.layout import BLOCKS, EVENTS, INDEX, RECEIPTS, TREE
from p402.bundles.lookup import (
    TREE_FROM_LEVEL,
    block_root,
    blocks_bytes,
    index_key,
    tree_levels,
)
from p402.bundles.merkle import EMPTY_ROOT, leaf_hash
from p402.money import parse_amount, to_units

__all__ = ["Sealed", "Sealer", "receipt_line"]


def receipt_line(event_id: str, index: int, leaf: bytes) -> bytes:
    """The receipt of one event: its id, its leaf index and leaf hash under the signed root."""
    return dumps_record({"event_id": event_id, "leaf_hash": leaf.hex(), "leaf_index": index})


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed ledger: the spooled files and the figures the manifest signs."""

    events_path: Path
    deflated_path: Path
    """The ledger as one raw deflate stream, flushed after each block (the member's data)."""
    blocks: list[tuple[int, int]]
    """Where each block starts in *deflated_path* and in *events_path*, then both ends."""
    receipts_path: Path
    tree_path: Path
    index_path: Path
    blocks_path: Path
    count: int
    cost_units: int
    unpriced: int
    root: bytes
    leaves: list[bytes]
    """The leaf hashes, in ledger order (the audit log appends them)."""
    tree_from_level: int
    """The lowest level *tree_path* holds; a block holds ``2**tree_from_level`` lines."""

    def members(self) -> dict[str, Path]:
        """The spooled files, by the bundle member each becomes."""
        return {
            EVENTS: self.events_path,
            RECEIPTS: self.receipts_path,
            TREE: self.tree_path,
            INDEX: self.index_path,
            BLOCKS: self.blocks_path,
        }

    def records(self) -> Iterator[dict[str, Any]]:
        """Read the sealed events back, in ledger order."""
        with self.events_path.open("rb") as handle:
            for line in handle:
                yield orjson.loads(line)


class Sealer:
    """Feed it canonical event records in ledger order, then :meth:`finish`.

    *tree_from_level* sets the blocks' size, ``2**tree_from_level`` lines, and so the lowest
    level of the tree that ``merkle/tree.bin`` stores (the default, 10, everywhere but tests,
    which need many blocks from few events)."""

    def __init__(self, directory: Path, tree_from_level: int = TREE_FROM_LEVEL) -> None:
        self._directory = directory
        self._from_level = tree_from_level
        self._block_lines = 1 << tree_from_level
        self._events_path = directory / "events.jsonl"
        self._receipts_path = directory / "receipts.jsonl"
        self._deflated_path = directory / "events.jsonl.deflate"
        self._events: IO[bytes] = self._events_path.open("wb")
        self._deflated: IO[bytes] = self._deflated_path.open("wb")
        self._receipts: IO[bytes] = self._receipts_path.open("wb")
        # zipfile's own settings (level 6, raw deflate, 32 KB window). zlib at a fixed level
        # and version gives the same bytes for the same input: a bundle is reproducible with
        # the same zlib, as every deflated member already was.
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._block: list[bytes] = []
        self._blocks: list[tuple[int, int]] = []
        self._roots: list[bytes] = []
        self._at = (0, 0)
        self._leaves: list[bytes] = []
        self._keys: list[bytes] = []
        self._units = 0
        self._unpriced = 0

    def add(self, record: Mapping[str, Any], units: int | None = None) -> None:
        """Append one event record to the ledger (*units*: its exact cost units when the caller
        has them, which spares parsing the cost text back)."""
        line = dumps_record(record)
        leaf = leaf_hash(line)
        index = len(self._leaves)
        self._block.append(line)
        self._leaves.append(leaf)
        if len(self._block) == self._block_lines:
            self._end_block()
        self._receipts.write(receipt_line(record["event_id"], index, leaf) + b"\n")
        self._keys.append(index_key(record["event_id"]) + index.to_bytes(4, "big"))
        if record["cost"] is None:
            self._unpriced += 1
        else:
            self._units += units if units is not None else to_units(parse_amount(record["cost"]))

    def _end_block(self) -> None:
        """Spool the pending lines as text and as one block of the deflate stream, and keep the
        root of the block's leaves (a node of the tree's level *tree_from_level*)."""
        self._roots.append(block_root(self._leaves[-len(self._block) :]))
        text = b"".join(line + b"\n" for line in self._block)
        self._block = []
        data = self._compressor.compress(text) + self._compressor.flush(zlib.Z_FULL_FLUSH)
        self._events.write(text)
        self._deflated.write(data)
        self._blocks.append(self._at)
        self._at = (self._at[0] + len(data), self._at[1] + len(text))

    def finish(self) -> Sealed:
        """Close the spool files, compute the root and write the lookup members."""
        if self._block:
            self._end_block()
        self._blocks.append(self._at)  # where the closing bytes start, and the text's size
        self._deflated.write(self._compressor.flush())
        self._events.close()
        self._deflated.close()
        self._receipts.close()
        tree_path = self._directory / "tree.bin"
        top: Sequence[bytes] = ()
        with tree_path.open("wb") as tree:
            for level in tree_levels(self._roots):
                tree.write(b"".join(level))
                top = level
        index_path = self._directory / "index.bin"
        self._keys.sort()
        index_path.write_bytes(b"".join(self._keys))
        self._keys = []
        blocks_path = self._directory / "blocks.bin"
        blocks_path.write_bytes(blocks_bytes(self._blocks))
        return Sealed(
            self._events_path, self._deflated_path, self._blocks, self._receipts_path,
            tree_path, index_path, blocks_path,
            len(self._leaves), self._units, self._unpriced,
            bytes(top[0]) if top else EMPTY_ROOT, self._leaves, self._from_level,
        )  # fmt: skip


def file_digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 (hex) of a file, streamed."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
