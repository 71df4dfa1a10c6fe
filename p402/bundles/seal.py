"""Seal a period's events: canonical ledger lines, their receipts and the Merkle tree, in one pass.

Lines are spooled to disk as they come (a million events never sit in a Python list); what
stays in memory is one 32-byte leaf hash per event, which the tree needs anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from p402.bundles.canonical import dumps_record
from p402.bundles.merkle import leaf_hash, root
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
    count: int
    cost_units: int
    unpriced: int
    root: bytes
    leaves: list[bytes]
    """The leaf hashes, in ledger order (the audit log appends them)."""

    def records(self) -> Iterator[dict[str, Any]]:
        """Read the sealed events back, in ledger order."""
        with self.events_path.open("rb") as handle:
            for line in handle:
                yield orjson.loads(line)


class Sealer:
    """Feed it canonical event records in ledger order, then :meth:`finish`."""

    def __init__(self, directory: Path) -> None:
        self._events_path = directory / "events.jsonl"
        self._receipts_path = directory / "receipts.jsonl"
        self._events: IO[bytes] = self._events_path.open("wb")
        self._receipts: IO[bytes] = self._receipts_path.open("wb")
        self._leaves: list[bytes] = []
        self._units = 0
        self._unpriced = 0

    def add(self, record: Mapping[str, Any], units: int | None = None) -> None:
        """Append one event record to the ledger (*units*: its exact cost units when the caller
        has them, which spares parsing the cost text back)."""
        line = dumps_record(record)
        leaf = leaf_hash(line)
        self._events.write(line + b"\n")
        self._receipts.write(receipt_line(record["event_id"], len(self._leaves), leaf) + b"\n")
        self._leaves.append(leaf)
        if record["cost"] is None:
            self._unpriced += 1
        else:
            self._units += units if units is not None else to_units(parse_amount(record["cost"]))

    def finish(self) -> Sealed:
        """Close the spool files and compute the root."""
        self._events.close()
        self._receipts.close()
        return Sealed(
            self._events_path, self._receipts_path, len(self._leaves), self._units, self._unpriced,
            root(self._leaves), self._leaves,
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
