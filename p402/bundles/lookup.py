"""The bundle's lookup members: the Merkle tree's nodes, the event-id index and the ledger's blocks.

With them one receipt costs a few reads at known offsets instead of a pass over the ledger: a
binary search of the index gives the event's leaf index, the block table gives the piece of the
deflated ledger that holds its line (inflated on its own), and the tree gives the inclusion
proof. Every format is fixed-width and big-endian, with no header; the sizes follow from the
event count *n*:

* ``merkle/tree.bin``: the levels of the RFC 9162 tree, leaves first (level 0, *n* leaf
  hashes), then each level of parents up to the root, 32 bytes a node. An odd last node is
  carried up unchanged, so level *L* holds ``ceil(n / 2**L)`` nodes (see :mod:`merkle`).
* ``receipts/index.bin``: *n* records of 12 bytes, the first 8 bytes of SHA-256(event_id)
  then the leaf index (unsigned 32-bit), sorted bytewise.
* ``ledger/blocks.bin``: ``ceil(n / 1024) + 1`` records of 16 bytes, two unsigned 64-bit
  offsets each. ``ledger/events.jsonl`` is one ordinary deflate stream (a zip member that any
  unzip inflates), compressed in blocks of :data:`BLOCK_LINES` (1,024) lines with a full flush
  (zlib ``Z_FULL_FLUSH``) after each: the stream is then byte-aligned and nothing after the
  flush refers to data before it, so a raw inflater can start at a block. Record *k* holds
  where block *k* starts in the member's compressed data, then in its text (where line
  ``1024 k`` starts); the last record holds where the stream's closing bytes start and the
  text's size. Block *k*'s compressed bytes end where block *k + 1*'s start.

Bundles of the previous layout (ledger stored, not deflated) have ``ledger/offsets.bin``
instead: *n + 1* unsigned 64-bit offsets, where each line starts, then the member's size.

The verifier recomputes the tree, the index and the text offsets of the block table from the
ledger and names the first difference. It does not recompute the compressed offsets: they
describe how the zip encodes the member, which only a second compression could reproduce, and
which a bundle re-zipped by stock tools (its signed contents unchanged) legitimately changes.
It checks they start at 0 and increase. That is sound because nothing read through them is
trusted: a block that does not inflate on its own to exactly its text length and line count is
read by inflating the member from its start instead, and every line found is checked for its
event id and against the signed checkpoint through its proof. A wrong compressed offset costs
time, never a wrong receipt.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from sys import byteorder

from p402.bundles.merkle import HASH_SIZE, node_hash

__all__ = [
    "BLOCK_LINES",
    "BLOCK_RECORD",
    "INDEX_RECORD",
    "ReadAt",
    "block_count",
    "block_span",
    "blocks_bytes",
    "find_leaves",
    "index_bytes",
    "index_key",
    "level_sizes",
    "offsets_bytes",
    "proof_from_tree",
    "root_from_proof",
    "tree_levels",
]

INDEX_RECORD = 12
BLOCK_LINES = 1024
"""Lines a block of the deflated ledger holds (the last block may hold fewer). 1,024 lines of
~1 KB cost 1.7% of the ratio of one unflushed stream (256 lines: 6.7%) and inflate in ~2 ms."""
BLOCK_RECORD = 16
_KEY = 8
_sha256 = hashlib.sha256
_NODE_PREFIX = b"\x01"

ReadAt = Callable[[int, int], bytes]
"""Read *length* bytes at *offset* of one member (raises if the member is shorter)."""


def level_sizes(count: int) -> list[int]:
    """How many nodes each level of a tree of *count* leaves holds, leaves first."""
    sizes = [count]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def _parents(nodes: Sequence[bytes]) -> list[bytes]:
    pairs = iter(nodes)
    parents = [
        _sha256(_NODE_PREFIX + left + right).digest()
        for left, right in zip(pairs, pairs, strict=False)
    ]
    if len(nodes) % 2:
        parents.append(nodes[-1])
    return parents


def tree_levels(leaves: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
    """Each level of the tree over *leaves* (32-byte leaf hashes), from the leaves up; the last
    is ``[root]``. Only one level is alive at a time, so the caller can write them as they
    come."""
    level: Sequence[bytes] = leaves
    yield level
    while len(level) > 1:
        level = _parents(level)
        yield level


def proof_from_tree(read_at: ReadAt, size: int, index: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf *index*, read from ``merkle/tree.bin`` of a tree
    of *size* leaves: one sibling per level, skipped where the node was carried up."""
    proof = []
    start = 0
    for count in level_sizes(size)[:-1]:
        sibling = index ^ 1
        if sibling < count:
            proof.append(read_at(start + sibling * HASH_SIZE, HASH_SIZE))
        start += count * HASH_SIZE
        index >>= 1
    return proof


def root_from_proof(leaf: bytes, size: int, index: int, proof: Sequence[bytes]) -> bytes:
    """The root a proof from :func:`proof_from_tree` leads to (for a quick self-check)."""
    node, remaining = leaf, iter(proof)
    for count in level_sizes(size)[:-1]:
        if index ^ 1 < count:
            sibling = next(remaining)
            node = node_hash(sibling, node) if index & 1 else node_hash(node, sibling)
        index >>= 1
    return node


def index_key(event_id: str) -> bytes:
    """The 8-byte key an event id is filed under in ``receipts/index.bin``."""
    return _sha256(event_id.encode()).digest()[:_KEY]


def index_bytes(event_ids: Iterable[str]) -> bytes:
    """``receipts/index.bin`` for the events with these ids, in ledger order."""
    records = [
        _sha256(event_id.encode()).digest()[:_KEY] + number.to_bytes(4, "big")
        for number, event_id in enumerate(event_ids)
    ]
    records.sort()
    return b"".join(records)


def find_leaves(read_at: ReadAt, count: int, event_id: str) -> list[int]:
    """The leaf indexes filed under *event_id*'s key (usually one; a shared 8-byte key, which
    the caller settles by reading the lines, is possible but rare). A binary search: about
    log2(count) reads of 12 bytes."""
    key = index_key(event_id)
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        if read_at(middle * INDEX_RECORD, _KEY) < key:
            low = middle + 1
        else:
            high = middle
    found = []
    while low < count:
        record = read_at(low * INDEX_RECORD, INDEX_RECORD)
        if record[:_KEY] != key:
            break
        found.append(int.from_bytes(record[_KEY:], "big"))
        low += 1
    return found


def offsets_bytes(offsets: array[int]) -> bytes:
    """``ledger/offsets.bin`` from the offsets (an ``array('Q')``), big-endian."""
    if byteorder == "little":
        offsets = array("Q", offsets)
        offsets.byteswap()
    return offsets.tobytes()


def block_count(lines: int) -> int:
    """How many blocks a ledger of *lines* lines is deflated in."""
    return -(-lines // BLOCK_LINES)


def blocks_bytes(records: Iterable[tuple[int, int]]) -> bytes:
    """``ledger/blocks.bin`` from its (compressed offset, text offset) records."""
    return b"".join(struct.pack(">QQ", *record) for record in records)


def block_span(read_at: ReadAt, block: int) -> tuple[int, int, int, int]:
    """Where block *block* starts and ends: (compressed start, compressed end, text start, text
    end), read from ``ledger/blocks.bin``."""
    start, text_start, end, text_end = struct.unpack(
        ">QQQQ", read_at(block * BLOCK_RECORD, 2 * BLOCK_RECORD)
    )
    return start, end, text_start, text_end
