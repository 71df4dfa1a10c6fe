"""The RFC 9162 (Certificate Transparency v2, section 2.1) Merkle tree that seals the audit ledger.

Leaves are hashed by the caller with :func:`leaf_hash`; everything here works on those 32-byte
leaf hashes. :func:`root` computes the Merkle Tree Hash (MTH) of a list of leaf hashes,
:class:`MerkleTree` keeps every level of the tree so that inclusion and consistency proofs are
cheap to produce, and :func:`verify_inclusion` / :func:`verify_consistency` are the RFC's
verification algorithms, which a third party can run offline with nothing but the proof, the
sizes and the signed roots.

The tree is built level by level: adjacent nodes are paired and an odd last node is promoted to
the next level unchanged. That yields exactly the RFC's recursive tree, which splits ``n`` leaves
at the largest power of two smaller than ``n``: the first ``k`` leaves always fill a perfect
subtree on the left, and only the right edge of every level can be ragged. Node ``i`` of level
``L`` is therefore the MTH of leaves ``[i * 2**L, min((i + 1) * 2**L, n))``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "append_leaves",
    "frontier_root",
    "leaf_hash",
    "node_hash",
    "parent_level",
    "root",
    "subtree_consistency_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

_sha256 = hashlib.sha256
# Domain separation (RFC 9162 2.1.1): a leaf can never be replayed as an interior node.
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT: bytes = _sha256(b"").digest()
"""MTH({}), the root of the empty tree: SHA-256 of the empty string (RFC 9162 2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """Hash one ledger entry into a leaf.

    Args:
        data: The serialised entry.

    Returns:
        SHA-256(0x00 || data), 32 bytes.
    """
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child nodes into their parent.

    The lengths are not checked, so this stays cheap inside loops over trusted nodes; the
    verifiers check every hash they are handed before calling it.

    Args:
        left: The left child's 32-byte hash.
        right: The right child's 32-byte hash.

    Returns:
        SHA-256(0x01 || left || right), 32 bytes.
    """
    return _sha256(_NODE_PREFIX + left + right).digest()


def _check_leaf_hashes(leaf_hashes: Sequence[bytes]) -> None:
    # One C-level pass over the lengths; the slow scan only runs to name the culprit.
    if set(map(len, leaf_hashes)) - {HASH_SIZE}:
        for i, h in enumerate(leaf_hashes):
            if len(h) != HASH_SIZE:
                msg = f"leaf hash {i} is {len(h)} bytes; every leaf hash must be {HASH_SIZE}"
                raise ValueError(msg)


def parent_level(nodes: Sequence[bytes]) -> list[bytes]:
    """The level above *nodes*: adjacent pairs hashed, an odd last node carried up as is."""
    # zip over one iterator twice walks the pairs without slicing copies of the level (not
    # strict: an odd last node is left over on purpose). This comprehension measured as fast
    # as anything else pure CPython offers for a million nodes.
    pairs = iter(nodes)
    parents = [
        _sha256(_NODE_PREFIX + left + right).digest()
        for left, right in zip(pairs, pairs, strict=False)
    ]
    if len(nodes) % 2:
        parents.append(nodes[-1])
    return parents


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Compute the Merkle Tree Hash of a list of leaf hashes (RFC 9162 2.1.1).

    Iterative, so the size of the tree is bounded by memory rather than recursion depth, and
    it keeps only one level alive at a time.

    Args:
        leaf_hashes: The leaf hashes in ledger order, each as returned by :func:`leaf_hash`.

    Returns:
        The 32-byte root; :data:`EMPTY_ROOT` for no leaves and the leaf hash itself for one.

    Raises:
        ValueError: If a leaf hash is not 32 bytes long.
    """
    _check_leaf_hashes(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    level: Sequence[bytes] = leaf_hashes
    while len(level) > 1:
        level = parent_level(level)
    return bytes(level[0])


class MerkleTree:
    """A Merkle tree over fixed leaf hashes that keeps every level, so proofs cost no hashing.

    Level 0 holds the leaf hashes and each level above holds the parents of the one below; an
    odd last node is carried up unchanged. The last level of a non-empty tree is its root.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        """Build the tree.

        Args:
            leaf_hashes: The leaf hashes in ledger order, each as returned by :func:`leaf_hash`.
                They are copied, so later changes to the caller's sequence do not leak in.

        Raises:
            ValueError: If a leaf hash is not 32 bytes long.
        """
        level = tuple(leaf_hashes)
        _check_leaf_hashes(level)
        levels = [level]
        while len(level) > 1:
            level = tuple(parent_level(level))
            levels.append(level)
        self._levels: tuple[tuple[bytes, ...], ...] = tuple(levels)

    def __repr__(self) -> str:
        return f"MerkleTree(size={self.size}, root={self.root.hex()})"

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        """The Merkle Tree Hash; :data:`EMPTY_ROOT` for an empty tree."""
        top = self._levels[-1]
        return top[0] if top else EMPTY_ROOT

    def levels(self) -> tuple[tuple[bytes, ...], ...]:
        """Every level of the tree, from the leaves up, for serialising the nodes once.

        ``levels()[0]`` is the leaf hashes and ``levels()[L][i]`` is the MTH of leaves
        ``[i * 2**L, min((i + 1) * 2**L, size))``. A tree with leaves ends with the one-node
        level ``(root,)``; the empty tree is ``((),)``. The tuples are the tree's own storage,
        handed out without copying, which immutability makes safe.

        Returns:
            The levels, leaves first.
        """
        return self._levels

    def _path(self, index: int, level: int) -> list[bytes]:
        # Siblings of node (level, index) on the way to the root. A missing sibling means the
        # node was carried up unchanged, which is exactly where the RFC's recursion adds nothing.
        proof = []
        for nodes in self._levels[level:-1]:
            sibling = index ^ 1
            if sibling < len(nodes):
                proof.append(nodes[sibling])
            index >>= 1
        return proof

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path of one leaf (RFC 9162 2.1.3.1, ``PATH(index, D[size])``).

        Args:
            index: The zero-based position of the leaf.

        Returns:
            The sibling hashes from the leaf upwards; empty for a one-leaf tree.

        Raises:
            ValueError: If ``index`` is not in ``[0, size)``.
        """
        if not 0 <= index < self.size:
            msg = f"leaf index {index} is out of range for a tree of {self.size} leaves"
            raise ValueError(msg)
        return self._path(index, 0)

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """Prove that the first ``old_size`` leaves are a prefix of this tree (RFC 9162 2.1.4.1).

        This is ``PROOF(old_size, D[size])``. The RFC's recursion reduces to one node plus its
        audit path: the largest perfect subtree that ends at ``old_size`` (left out when
        ``old_size`` is a power of two, because it is then the old root, which the verifier
        already holds), followed by the siblings on the way from it to the root of this tree.

        Args:
            old_size: The size of the earlier tree, ``0 < old_size <= size``.

        Returns:
            The proof hashes from the bottom up; empty when ``old_size == size``.

        Raises:
            ValueError: If ``old_size`` is not in ``(0, size]``. The empty tree is a prefix of
                every tree, so there is nothing to prove for ``old_size == 0``, and the RFC
                defines no proof for it.
        """
        if not 0 < old_size <= self.size:
            msg = (
                f"old size {old_size} is out of range for a tree of {self.size} leaves; "
                f"it must be in 1..{self.size}"
            )
            raise ValueError(msg)
        if old_size == self.size:
            return []
        level = (old_size & -old_size).bit_length() - 1  # trailing zero bits of old_size
        index = (old_size - 1) >> level
        proof = self._path(index, level)
        if index:
            proof.insert(0, self._levels[level][index])
        return proof


def _is_size(value: object) -> bool:
    return isinstance(value, int) and value >= 0


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_proof(proof: object, max_length: int) -> bool:
    # The length bound comes first so that a hostile proof costs nothing to reject.
    return isinstance(proof, Sequence) and len(proof) <= max_length and all(map(_is_hash, proof))


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof with the algorithm of RFC 9162 2.1.3.2.

    The proof does not commit to ``tree_size`` on its own: the signed tree head binds the size
    to the root, and the caller must take both from it.

    Args:
        leaf: The leaf hash, as returned by :func:`leaf_hash`.
        index: The zero-based position of the leaf.
        tree_size: The number of leaves in the tree that ``root`` seals.
        proof: The audit path, from the leaf upwards.
        root: The expected root of the tree of ``tree_size`` leaves.

    Returns:
        True only if the proof shows ``leaf`` at ``index`` under ``root``. Any malformed input
        (a negative or non-integer size, ``index >= tree_size``, a hash that is not 32 bytes,
        a proof of the wrong length) gives False; this never raises.
    """
    if not (_is_size(index) and _is_size(tree_size) and index < tree_size):
        return False
    # Each proof hash costs at least one right shift of sn = tree_size - 1 and the RFC fails the
    # proof once sn reaches 0, so a longer proof could never pass.
    max_length = (tree_size - 1).bit_length()
    if not (_is_hash(leaf) and _is_hash(root) and _is_proof(proof, max_length)):
        return False
    fn = index
    sn = tree_size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Climb past the levels where this node was the odd one out and carried up as is.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # The RFC's final sn == 0 means every level of the path was used (and, as fn <= sn
    # throughout, fn == sn == 0): a proof for a smaller subtree cannot pass as a full one.
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof with the algorithm of RFC 9162 2.1.4.2.

    The RFC defines the algorithm for ``0 < old_size < new_size``. The two trivial cases it
    leaves out are settled here, as Sigsum and transparency-dev/merkle settle them:

    * ``old_size == new_size``: consistent exactly when the proof is empty and the roots are
      equal (a tree head is consistent with itself; RFC 9162 2.1.4.1 makes ``PROOF(m, D[m])``
      empty).
    * ``old_size == 0``: the empty list is a prefix of every list, so there is nothing to prove.
      Consistent exactly when the proof is empty and ``old_root`` is :data:`EMPTY_ROOT`, the
      only root a tree of size 0 can have (transparency-dev/merkle does not check the old root).
      ``new_root`` must still be a well-formed hash, and :data:`EMPTY_ROOT` if ``new_size`` is 0.

    As with inclusion, the proof does not commit to the sizes on their own; the signed tree
    heads bind each size to its root.

    Args:
        old_size: The size of the earlier tree.
        new_size: The size of the later tree.
        old_root: The root of the earlier tree.
        new_root: The root of the later tree.
        proof: The consistency proof, from the bottom up.

    Returns:
        True only if the proof shows the earlier tree is a prefix of the later one. Any
        malformed input (negative or non-integer sizes, ``old_size > new_size``, a hash that is
        not 32 bytes, a proof of the wrong length) gives False; this never raises.
    """
    if not (_is_size(old_size) and _is_size(new_size) and old_size <= new_size):
        return False
    # As for inclusion: every hash after the first costs a shift of sn = new_size - 1.
    max_length = max(new_size - 1, 0).bit_length() + 1
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_proof(proof, max_length)):
        return False
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT and (new_size > 0 or new_root == old_root)
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    return _consistency_path_holds(old_size, new_size, old_root, new_root, proof)


def _consistency_path_holds(
    first: int,
    second: int,
    first_hash: bytes,
    second_hash: bytes,
    consistency_path: Sequence[bytes],
) -> bool:
    # RFC 9162 2.1.4.2 steps 1 to 7, in its names, for 0 < first < second and checked inputs.
    if not consistency_path:
        return False
    path = list(consistency_path)
    if first & (first - 1) == 0:
        # The proof leaves out the old root when it is a whole left subtree of the new tree.
        path.insert(0, first_hash)
    fn = first - 1
    sn = second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # Climb past the levels where this node was the odd one out and carried up as is.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


# --- Appending to a log known only by its frontier ------------------------------------------
#
# A tree of n leaves is, from the left, one perfect subtree per set bit of n, largest first
# (its *frontier*, at most 64 hashes). The frontier is all a log needs to keep to append leaves,
# compute the new root, and prove (RFC 9162) that the old tree is a prefix of the new one; and
# it is all a verifier needs, with the appended leaves, to check the new root itself.


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The root of the tree whose frontier this is (:data:`EMPTY_ROOT` for none)."""
    if not frontier:
        return EMPTY_ROOT
    result = frontier[-1]
    for node in reversed(frontier[:-1]):
        result = node_hash(node, result)
    return bytes(result)


def append_leaves(
    frontier: Sequence[bytes], size: int, leaf_hashes: Sequence[bytes]
) -> list[bytes]:
    """The frontier after appending *leaf_hashes* to the tree of *size* leaves with *frontier*.

    The leaves go in as aligned perfect subtrees (their roots computed level by level, as
    :func:`root` does), so a million leaves cost about a million node hashes.

    Raises:
        ValueError: the frontier does not have one hash per set bit of *size*.
    """
    if size < 0 or len(frontier) != size.bit_count():
        raise ValueError(f"a frontier of a {size}-leaf tree has {max(size, 0).bit_count()} hashes")
    _check_leaf_hashes(leaf_hashes)
    stack = list(frontier)
    done = 0
    while done < len(leaf_hashes):
        left = len(leaf_hashes) - done
        chunk = 1 << (left.bit_length() - 1)
        if size:
            chunk = min(chunk, size & -size)  # stay aligned: size must be a multiple of chunk
        node = root(leaf_hashes[done : done + chunk])
        units = size // chunk
        while units & 1:
            node = node_hash(stack.pop(), node)
            units >>= 1
        stack.append(node)
        size += chunk
        done += chunk
    return stack


def _ranges(size: int) -> list[tuple[int, int]]:
    """The leaf ranges [lo, hi) of the frontier nodes of a tree of *size* leaves."""
    found, start = [], 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            found.append((start, start + (1 << bit)))
            start += 1 << bit
    return found


def subtree_consistency_proof(
    frontier: Sequence[bytes], old_size: int, leaf_hashes: Sequence[bytes]
) -> list[bytes]:
    """``PROOF(old_size, D[new_size])`` of RFC 9162 2.1.4.1 for the tree of *old_size* leaves
    with *frontier* extended by *leaf_hashes*, without the old leaves: every node the proof
    takes from the old tree is one of its frontier nodes.

    Raises:
        ValueError: *old_size* is 0 (the RFC defines no proof), or the frontier is malformed.
    """
    if old_size <= 0 or len(frontier) != old_size.bit_count():
        raise ValueError("a consistency proof needs a non-empty old tree and its frontier")
    known = dict(zip(_ranges(old_size), frontier, strict=True))
    new_size = old_size + len(leaf_hashes)

    def mth(lo: int, hi: int) -> bytes:
        if hi <= old_size:
            return known[(lo, hi)]
        assert lo >= old_size
        return root(leaf_hashes[lo - old_size : hi - old_size])

    def subproof(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [mth(lo, hi)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return [*subproof(m, lo, lo + k, whole), mth(lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, False), mth(lo, lo + k)]

    return subproof(old_size, 0, new_size, True)
