"""Seal a period's events: canonical ledger lines, their receipts and the Merkle tree, in one pass.

Lines are spooled to disk as they come (a million events never sit in a Python list); what
stays in memory is one 32-byte leaf hash, one 12-byte index record and one offset per event.
:meth:`Sealer.finish` then writes the lookup members (:mod:`p402.bundles.lookup`): the tree's
nodes, level by level as the root is computed (no hash is computed twice), the sorted event-id
index and the line offsets.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from p402.bundles.canonical import dumps_record
from p402.bundles.layout import EVENTS, INDEX, OFFSETS, RECEIPTS, TREE
from p402.bundles.lookup import index_key, offsets_bytes, tree_levels
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
    receipts_path: Path
    tree_path: Path
    index_path: Path
    offsets_path: Path
    count: int
    cost_units: int
    unpriced: int
    root: bytes
    leaves: list[bytes]
    """The leaf hashes, in ledger order (the audit log appends them)."""

    def members(self) -> dict[str, Path]:
        """The spooled files, by the bundle member each becomes."""
        return {
            EVENTS: self.events_path,
            RECEIPTS: self.receipts_path,
            TREE: self.tree_path,
            INDEX: self.index_path,
            OFFSETS: self.offsets_path,
        }

    def records(self) -> Iterator[dict[str, Any]]:
        """Read the sealed events back, in ledger order."""
        with self.events_path.open("rb") as handle:
            for line in handle:
                yield orjson.loads(line)


class Sealer:
    """Feed it canonical event records in ledger order, then :meth:`finish`."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._events_path = directory / "events.jsonl"
        self._receipts_path = directory / "receipts.jsonl"
        self._events: IO[bytes] = self._events_path.open("wb")
        self._receipts: IO[bytes] = self._receipts_path.open("wb")
        self._leaves: list[bytes] = []
        self._keys: list[bytes] = []
        self._offsets = array("Q", [0])
        self._units = 0
        self._unpriced = 0

    def add(self, record: Mapping[str, Any], units: int | None = None) -> None:
        """Append one event record to the ledger (*units*: its exact cost units when the caller
        has them, which spares parsing the cost text back)."""
        line = dumps_record(record)
        leaf = leaf_hash(line)
        index = len(self._leaves)
        self._events.write(line + b"\n")
        self._receipts.write(receipt_line(record["event_id"], index, leaf) + b"\n")
        self._leaves.append(leaf)
        self._keys.append(index_key(record["event_id"]) + index.to_bytes(4, "big"))
        self._offsets.append(self._offsets[-1] + len(line) + 1)
        if record["cost"] is None:
            self._unpriced += 1
        else:
            self._units += units if units is not None else to_units(parse_amount(record["cost"]))

    def finish(self) -> Sealed:
        """Close the spool files, compute the root and write the lookup members."""
        self._events.close()
        self._receipts.close()
        tree_path = self._directory / "tree.bin"
        top: Sequence[bytes] = ()
        with tree_path.open("wb") as tree:
            for level in tree_levels(self._leaves):
                tree.write(b"".join(level))
                top = level
        index_path = self._directory / "index.bin"
        self._keys.sort()
        index_path.write_bytes(b"".join(self._keys))
        self._keys = []
        offsets_path = self._directory / "offsets.bin"
        offsets_path.write_bytes(offsets_bytes(self._offsets))
        return Sealed(
            self._events_path, self._receipts_path, tree_path, index_path, offsets_path,
            len(self._leaves), self._units, self._unpriced,
            bytes(top[0]) if top else EMPTY_ROOT, self._leaves,
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
