"""The bundle's lookup members: the Merkle tree's nodes, the event-id index and the ledger's blocks.

With them one receipt costs a few reads at known offsets instead of a pass over the ledger: a
binary search of the index gives the event's leaf index, the block table gives the piece of the
deflated ledger that holds its line (inflated on its own), and the tree gives the inclusion
proof. Every format is fixed-width and big-endian, with no header; the sizes follow from the
event count *n*:

* ``merkle/tree.bin``: the levels of the RFC 9162 tree from level *F* =
  :data:`TREE_FROM_LEVEL` (10) up to the root, 32 bytes a node. An odd last node is carried
  up unchanged, so level *L* holds ``ceil(n / 2**L)`` nodes (see :mod:`merkle`), and node *k*
  of level *F* is the root of block *k* of the ledger (its ``2**F`` lines, or fewer in the
  last block). The levels below *F* are not stored: a receipt rebuilds them from the block it
  inflates anyway (:func:`proof_from_block`), which keeps the member at 32 bytes per block
  instead of 64 per event. The manifest's ``receipts`` section records *F* as
  ``tree_from_level``; bundles of the previous layouts, without it, store every level (*F* =
  0) with blocks of 1,024 lines.
* ``receipts/index.bin``: *n* records of 12 bytes, the first 8 bytes of SHA-256(event_id)
  then the leaf index (unsigned 32-bit), sorted bytewise.
* ``ledger/blocks.bin``: ``ceil(n / 2**F) + 1`` records of 16 bytes, two unsigned 64-bit
  offsets each. ``ledger/events.jsonl`` is one ordinary deflate stream (a zip member that any
  unzip inflates), compressed in blocks of ``2**F`` (:data:`BLOCK_LINES`, 1,024) lines with a
  full flush (zlib ``Z_FULL_FLUSH``) after each: the stream is then byte-aligned and nothing after the
  flush refers to data before it, so a raw inflater can start at a block. Record *k* holds
  where block *k* starts in the member's compressed data, then in its text (where line
  ``k 2**F`` starts); the last record holds where the stream's closing bytes start and the
  text's size. Block *k*'s compressed bytes end where block *k + 1*'s start.

Bundles of the previous layout (ledger stored, not deflated) have ``ledger/offsets.bin``
instead: *n + 1* unsigned 64-bit offsets, where each line starts, then the member's size.

The verifier recomputes the tree's stored levels, the index and the text offsets of the block
table from the ledger and names the first difference. It does not recompute the compressed
offsets: they describe how the zip encodes the member, which only a second compression could
reproduce, and which a bundle re-zipped by stock tools (its signed contents unchanged)
legitimately changes. It checks they start at 0 and increase. That is sound because nothing
read through them is trusted: a block that does not inflate on its own to exactly its text
length and line count is read by inflating the member from its start instead, and every line
found is checked for its event id and against the signed checkpoint through its proof. A wrong
compressed offset costs time, never a wrong receipt.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from sys import byteorder

from p402.bundles.merkle import HASH_SIZE, node_hash, parent_level

__all__ = [
    "BLOCK_LINES",
    "BLOCK_RECORD",
    "INDEX_RECORD",
    "MAX_TREE_FROM_LEVEL",
    "TREE_FROM_LEVEL",
    "ReadAt",
    "block_count",
    "block_root",
    "block_span",
    "blocks_bytes",
    "find_leaves",
    "index_bytes",
    "index_key",
    "level_sizes",
    "offsets_bytes",
    "proof_from_block",
    "proof_from_tree",
    "root_from_proof",
    "stored_levels",
    "stored_sizes",
    "tree_levels",
]

INDEX_RECORD = 12
TREE_FROM_LEVEL = 10
"""The lowest level of the tree that ``merkle/tree.bin`` stores: log2 of a block's lines."""
BLOCK_LINES = 1 << TREE_FROM_LEVEL
"""Lines a block of the deflated ledger holds (the last block may hold fewer). 1,024 lines of
~1 KB cost 1.7% of the ratio of one unflushed stream (256 lines: 6.7%) and inflate in ~2 ms."""
MAX_TREE_FROM_LEVEL = 16
"""The largest ``tree_from_level`` a reader accepts: a block it inflates holds at most 65,536
lines (small levels are for tests, which need many blocks from few events)."""
BLOCK_RECORD = 16
_KEY = 8
_sha256 = hashlib.sha256

ReadAt = Callable[[int, int], bytes]
"""Read *length* bytes at *offset* of one member (raises if the member is shorter)."""


def level_sizes(count: int) -> list[int]:
    """How many nodes each level of a tree of *count* leaves holds, leaves first."""
    sizes = [count]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def tree_levels(leaves: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
    """Each level of the tree over *leaves* (32-byte leaf hashes), from the leaves up; the last
    is ``[root]``. Only one level is alive at a time, so the caller can write them as they
    come."""
    level: Sequence[bytes] = leaves
    yield level
    while len(level) > 1:
        level = parent_level(level)
        yield level


def stored_sizes(count: int, from_level: int) -> list[int]:
    """How many nodes each stored level of the tree of *count* leaves holds, from level
    *from_level* (one node per block) up to the root; none for the empty tree."""
    return level_sizes(-(-count >> from_level))


def stored_levels(leaves: Sequence[bytes], from_level: int) -> Iterator[Sequence[bytes]]:
    """The levels of the tree over *leaves* from level *from_level* up, as
    ``merkle/tree.bin`` holds them: the roots of the blocks of ``2**from_level`` leaves, then
    the levels over them. Only one block's levels are alive at a time below *from_level*."""
    span = 1 << from_level
    return tree_levels([block_root(leaves[at : at + span]) for at in range(0, len(leaves), span)])


def block_root(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree over a block's leaf hashes (at least one)."""
    level: Sequence[bytes] = leaves
    while len(level) > 1:
        level = parent_level(level)
    return bytes(level[0])


def proof_from_block(
    block: Sequence[bytes], read_at: ReadAt, size: int, index: int, from_level: int
) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf *index* of a tree of *size* leaves, from the leaf
    hashes of its block (the ``2**from_level`` leaves from ``index >> from_level <<
    from_level``, fewer in the last block) and ``merkle/tree.bin``, which stores the levels
    from *from_level* up: the path within the block's own tree, then the block's path in the
    tree over the blocks' roots. Node *k* of level *from_level* is block *k*'s root (an odd
    last node is carried up unchanged), so the two paths join into the full tree's."""
    within = index & ((1 << from_level) - 1)
    levels = b"".join(b"".join(level) for level in tree_levels(block))
    blocks = -(-size >> from_level)
    return proof_from_tree(_bytes_reader(levels), len(block), within) + proof_from_tree(
        read_at, blocks, index >> from_level
    )


def _bytes_reader(data: bytes) -> ReadAt:
    def read_at(offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > len(data):
            raise IndexError("read past the end")
        return data[offset : offset + length]

    return read_at


def proof_from_tree(read_at: ReadAt, size: int, index: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf *index* of a tree of *size* leaves whose levels
    *read_at* reads, leaves first (``merkle/tree.bin`` of a full tree; for the stored levels
    above a block, *size* and *index* count blocks): one sibling per level, skipped where the
    node was carried up."""
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


def block_count(lines: int, block_lines: int = BLOCK_LINES) -> int:
    """How many blocks of *block_lines* lines a ledger of *lines* lines is deflated in."""
    return -(-lines // block_lines)


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
