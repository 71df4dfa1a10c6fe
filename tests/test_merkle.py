"""Tests for the RFC 9162 Merkle tree in p402.bundles.merkle.

Three independent checks: a slow recursive reference written straight from the RFC's
definitions of MTH, PATH and PROOF/SUBPROOF; the published Certificate Transparency test
vectors; and Hypothesis properties that every honest proof verifies and every tampered one fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p402.bundles.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleTree,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------------------------
# Reference implementation: RFC 9162 section 2.1, transcribed. Recursive, slow, and shares no
# code with the module under test (it hashes raw entries with hashlib itself).
# --------------------------------------------------------------------------------------------


def _ref_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _ref_k(n: int) -> int:
    """The largest power of two smaller than n, for n > 1 (RFC 9162 2.1.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 2.1.1."""
    n = len(entries)
    if n == 0:
        return _ref_hash(b"")
    if n == 1:
        return _ref_hash(b"\x00" + entries[0])
    k = _ref_k(n)
    return _ref_hash(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:]))


def ref_path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    n = len(entries)
    if n == 1:
        return []
    k = _ref_k(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_subproof(m: int, entries: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(entries)
    if m == n:
        return [] if b else [ref_mth(entries)]
    k = _ref_k(n)
    if m <= k:
        return [*ref_subproof(m, entries[:k], b), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def ref_proof(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1."""
    return ref_subproof(m, entries, True)


# The same recursions, keeping only the role each proof hash plays rather than its value. The
# verifiers' hashing is fixed by these roles, so two (index, size) or (old, new) pairs with the
# same shape accept the same proofs: RFC 9162 proofs do not commit to the tree sizes, the signed
# tree heads do. The size-mutation properties below need this to state what must fail.


def ref_path_shape(m: int, n: int) -> tuple[str, ...]:
    """Which side each hash of PATH(m, D[n]) sits on, from the leaf upwards."""
    if n == 1:
        return ()
    k = _ref_k(n)
    if m < k:
        return (*ref_path_shape(m, k), "right")
    return (*ref_path_shape(m - k, n - k), "left")


def ref_proof_shape(m: int, n: int, b: bool = True) -> tuple[str, ...]:
    """The role of each hash of PROOF(m, D[n]), from the bottom up."""
    if m == n:
        return () if b else ("subtree",)
    k = _ref_k(n)
    if m <= k:
        return (*ref_proof_shape(m, k, b), "right")
    return (*ref_proof_shape(m - k, n - k, False), "left")


# --------------------------------------------------------------------------------------------
# Fixtures shared by the exhaustive and property tests.
# --------------------------------------------------------------------------------------------

MAX_EXHAUSTIVE = 70
MAX_PROPERTY = 64

DATA = [b"p402 ledger entry %d" % i for i in range(MAX_EXHAUSTIVE + 20)]
LEAVES = [leaf_hash(d) for d in DATA]
TREES = [MerkleTree(LEAVES[:n]) for n in range(len(LEAVES) + 1)]
ROOTS = [t.root for t in TREES]


def _flip(h: bytes, bit: int) -> bytes:
    out = bytearray(h)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _h(hex_digest: str) -> bytes:
    value = bytes.fromhex(hex_digest)
    assert len(value) == HASH_SIZE
    return value


# --------------------------------------------------------------------------------------------
# Hashing primitives.
# --------------------------------------------------------------------------------------------


def test_hash_primitives_follow_rfc_9162() -> None:
    data = b"some entry"
    assert leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != node_hash(right, left)
    assert HASH_SIZE == len(leaf_hash(b"")) == 32


def test_empty_tree() -> None:
    # RFC 9162 2.1.1: MTH({}) = HASH(); the value is SHA-256 of the empty string.
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([]) == EMPTY_ROOT
    tree = MerkleTree([])
    assert tree.size == 0
    assert tree.root == EMPTY_ROOT
    assert tree.levels() == ((),)


# --------------------------------------------------------------------------------------------
# 1. Against the reference, for every tree size 0..70 and every index / old size.
# --------------------------------------------------------------------------------------------

SIZES = range(MAX_EXHAUSTIVE + 1)


@pytest.mark.parametrize("n", SIZES)
def test_root_matches_reference(n: int) -> None:
    expected = ref_mth(DATA[:n])
    assert root(LEAVES[:n]) == expected
    assert TREES[n].root == expected
    assert TREES[n].size == n


@pytest.mark.parametrize("n", SIZES)
def test_levels_are_subtree_hashes(n: int) -> None:
    # The documented invariant a serialiser relies on: node i of level L is the MTH of leaves
    # [i * 2**L, min((i + 1) * 2**L, n)), with the odd last node of a level carried up.
    levels = TREES[n].levels()
    assert levels[0] == tuple(LEAVES[:n])
    for level, nodes in enumerate(levels):
        width = 1 << level
        assert len(nodes) == -(-n // width)
        for i, node in enumerate(nodes):
            assert node == ref_mth(DATA[i * width : min((i + 1) * width, n)])
    if n:
        assert levels[-1] == (ref_mth(DATA[:n]),)


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_proofs_match_reference(n: int) -> None:
    tree = TREES[n]
    for index in range(n):
        expected = ref_path(index, DATA[:n])
        assert tree.inclusion_proof(index) == expected, (index, n)
        assert verify_inclusion(LEAVES[index], index, n, expected, ROOTS[n])


@pytest.mark.parametrize("n", SIZES)
def test_consistency_proofs_match_reference(n: int) -> None:
    tree = TREES[n]
    for m in range(1, n + 1):
        expected = ref_proof(m, DATA[:n])
        assert tree.consistency_proof(m) == expected, (m, n)
        assert verify_consistency(m, n, ROOTS[m], ROOTS[n], expected)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(MAX_EXHAUSTIVE + 1, 2500))
def test_level_pairing_is_the_rfc_split_tree_for_larger_sizes(n: int) -> None:
    data = [i.to_bytes(4, "big") for i in range(n)]
    assert root([leaf_hash(d) for d in data]) == ref_mth(data)


# --------------------------------------------------------------------------------------------
# 2. Published test vectors.
#
# Source: transparency-dev/merkle, proof/verify_test.go (vars `leaves`, `roots`,
# `inclusionProofs`, `consistencyProofs`; read at commit 02194e9afb6c1d95b5381350007963aa70fff472)
# and testonly/constants.go (`LeafInputs`, `NodeHashes`, `RootHashes`; commit
# 582a6ad190b6848f1d26f8bf08ddef29955d9db1). They carry over the RFC 6962 reference data of
# Certificate Transparency's original C++ merkle_tree_test.cc. The Go vectors number leaves and
# sizes from 1; they are converted here to zero-based leaf indices.
# --------------------------------------------------------------------------------------------

VECTOR_DATA = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
VECTOR_LEAVES = [leaf_hash(d) for d in VECTOR_DATA]

# RootHashes() / roots: the root of the tree over the first `size` entries, for sizes 1..8.
VECTOR_ROOTS = {
    1: _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    2: _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    3: _h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    4: _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    5: _h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    6: _h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    7: _h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    8: _h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
}

# NodeHashes(): every complete subtree of the 8-leaf tree, level by level.
VECTOR_NODES = (
    (
        _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        _h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        _h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        _h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        _h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        _h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ),
    (
        _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ),
    (
        _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ),
    (_h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),),
)

# inclusionProofs: (zero-based leaf index, tree size, audit path).
VECTOR_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [_h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# consistencyProofs: (old size, new size, proof).
VECTOR_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# sha256SomeHash in verify_test.go: a well-formed hash that is in no tree.
SOME_HASH = _h("abacaba000000000000000000000000000000000000000000060061e00123456")


@pytest.mark.parametrize("size", sorted(VECTOR_ROOTS))
def test_published_roots(size: int) -> None:
    # The reference agrees with the vector, so a mismatch below would be the module's fault.
    assert ref_mth(VECTOR_DATA[:size]) == VECTOR_ROOTS[size]
    assert root(VECTOR_LEAVES[:size]) == VECTOR_ROOTS[size]
    assert MerkleTree(VECTOR_LEAVES[:size]).root == VECTOR_ROOTS[size]


def test_published_node_hashes() -> None:
    assert MerkleTree(VECTOR_LEAVES).levels() == VECTOR_NODES


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root_hash: bytes, leaf: bytes
) -> list[tuple[str, bytes, int, int, list[bytes], bytes]]:
    # corruptInclusionProof in verify_test.go: (description, leaf, index, size, proof, root).
    probes = [
        ("index - 1", leaf, index - 1, size, proof, root_hash),
        ("index + 1", leaf, index + 1, size, proof, root_hash),
        ("index ^ 2", leaf, index ^ 2, size, proof, root_hash),
        ("size * 2", leaf, index, size * 2, proof, root_hash),
        ("size // 2", leaf, index, size // 2, proof, root_hash),
        ("wrong leaf", b"WrongLeaf", index, size, proof, root_hash),
        ("empty root", leaf, index, size, proof, EMPTY_ROOT),
        ("random root", leaf, index, size, proof, SOME_HASH),
        ("trailing garbage", leaf, index, size, [*proof, b""], root_hash),
        ("trailing root", leaf, index, size, [*proof, root_hash], root_hash),
        ("preceding garbage", leaf, index, size, [b"", *proof], root_hash),
        ("preceding root", leaf, index, size, [root_hash, *proof], root_hash),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = _flip(wrong[i], 3)
        probes.append((f"proof[{i}] bit 3", leaf, index, size, wrong, root_hash))
    if proof:
        probes.append(("removed component", leaf, index, size, proof[:-1], root_hash))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted component", leaf, index, size, inserted, root_hash))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), VECTOR_INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    assert ref_path(index, VECTOR_DATA[:size]) == proof
    assert MerkleTree(VECTOR_LEAVES[:size]).inclusion_proof(index) == proof
    leaf, root_hash = VECTOR_LEAVES[index], VECTOR_ROOTS[size]
    assert verify_inclusion(leaf, index, size, proof, root_hash)
    for desc, p_leaf, p_index, p_size, p_proof, p_root in _inclusion_probes(
        index, size, proof, root_hash, leaf
    ):
        assert not verify_inclusion(p_leaf, p_index, p_size, p_proof, p_root), desc


def _consistency_probes(
    m: int, n: int, old: bytes, new: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    # corruptConsistencyProof in verify_test.go: (description, old size, new size, old root,
    # new root, proof), for proofs that are not empty.
    probes = [
        ("old size - 1", m - 1, n, old, new, proof),
        ("old size + 1", m + 1, n, old, new, proof),
        ("old size ^ 2", m ^ 2, n, old, new, proof),
        ("new size * 2", m, n * 2, old, new, proof),
        ("new size // 2", m, n // 2, old, new, proof),
        ("wrong old root", m, n, b"WrongRoot", new, proof),
        ("wrong new root", m, n, old, b"WrongRoot", proof),
        ("swapped roots", m, n, new, old, proof),
        ("empty proof", m, n, old, new, []),
        ("trailing garbage", m, n, old, new, [*proof, b""]),
        ("trailing old root", m, n, old, new, [*proof, old]),
        ("trailing new root", m, n, old, new, [*proof, new]),
        ("preceding garbage", m, n, old, new, [b"", *proof]),
        ("preceding old root", m, n, old, new, [old, *proof]),
        ("preceding new root", m, n, old, new, [new, *proof]),
        ("preceding proof[0]", m, n, old, new, [proof[0], *proof]),
        ("truncated proof", m, n, old, new, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = _flip(wrong[i], 4)
        probes.append((f"proof[{i}] bit 4", m, n, old, new, wrong))
    return probes


@pytest.mark.parametrize(("m", "n", "proof"), VECTOR_CONSISTENCY)
def test_published_consistency_proofs(m: int, n: int, proof: list[bytes]) -> None:
    assert ref_proof(m, VECTOR_DATA[:n]) == proof
    assert MerkleTree(VECTOR_LEAVES[:n]).consistency_proof(m) == proof
    old, new = VECTOR_ROOTS[m], VECTOR_ROOTS[n]
    assert verify_consistency(m, n, old, new, proof)
    if proof:
        for desc, p_m, p_n, p_old, p_new, p_proof in _consistency_probes(m, n, old, new, proof):
            assert not verify_consistency(p_m, p_n, p_old, p_new, p_proof), desc


# --------------------------------------------------------------------------------------------
# Edge cases of the verifiers, after TestVerifyInclusion* and TestVerifyConsistency in
# verify_test.go. Where this module is stricter (the old root of an empty tree must be
# EMPTY_ROOT; every hash must be 32 bytes) the table says so.
# --------------------------------------------------------------------------------------------


def test_verify_inclusion_single_leaf_and_empty_tree() -> None:
    leaf = leaf_hash(b"data")
    assert verify_inclusion(leaf, 0, 1, [], leaf)  # a one-leaf tree's root is its leaf hash
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], leaf)
    assert not verify_inclusion(b"", 0, 1, [], b"")
    assert not verify_inclusion(leaf, 0, 1, [leaf], leaf)
    for index, size in ((0, 0), (1, 0), (2, 1), (1, 1)):
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
        assert not verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


@pytest.mark.parametrize(
    ("m", "n", "roots", "proof", "expected"),
    [
        # old_size == new_size: an empty proof and equal roots, nothing else.
        (0, 0, (EMPTY_ROOT, EMPTY_ROOT), [], True),
        (1, 1, (ROOTS[1], ROOTS[1]), [], True),
        (5, 5, (ROOTS[5], ROOTS[5]), [], True),
        (5, 5, (ROOTS[5], ROOTS[4]), [], False),
        (5, 5, (ROOTS[5], ROOTS[5]), [ROOTS[5]], False),
        (0, 0, (EMPTY_ROOT, SOME_HASH), [], False),
        (0, 0, (SOME_HASH, SOME_HASH), [], False),  # transparency-dev accepts this
        (0, 0, (EMPTY_ROOT, EMPTY_ROOT), [EMPTY_ROOT], False),
        # old_size == 0: the empty tree is a prefix of everything; the proof must be empty.
        (0, 1, (EMPTY_ROOT, ROOTS[1]), [], True),
        (0, 5, (EMPTY_ROOT, ROOTS[5]), [], True),
        (0, 5, (SOME_HASH, ROOTS[5]), [], False),  # transparency-dev accepts this
        (0, 5, (EMPTY_ROOT, ROOTS[5]), [EMPTY_ROOT], False),
        (0, 5, (EMPTY_ROOT, b"short"), [], False),
        # Time travel to the past.
        (1, 0, (ROOTS[1], EMPTY_ROOT), [], False),
        (2, 1, (ROOTS[2], ROOTS[1]), [], False),
        # 0 < old_size < new_size needs a proof (RFC 9162 2.1.4.2 step 1).
        (1, 2, (ROOTS[1], ROOTS[2]), [], False),
        (4, 8, (ROOTS[4], ROOTS[8]), [], False),
        # Malformed sizes and hashes, next to the well-formed proof they spoil.
        (1, 2, (ROOTS[1], ROOTS[2]), [LEAVES[1]], True),
        (-1, 5, (ROOTS[1], ROOTS[5]), [], False),
        (1, -5, (ROOTS[1], ROOTS[5]), [], False),
        (1, 2, (ROOTS[1][:31], ROOTS[2]), [LEAVES[1]], False),
        (1, 2, (ROOTS[1], ROOTS[2]), [LEAVES[1] + b"\x00"], False),
    ],
)
def test_verify_consistency_edge_cases(
    m: int, n: int, roots: tuple[bytes, bytes], proof: list[bytes], expected: bool
) -> None:
    assert verify_consistency(m, n, *roots, proof) is expected


def test_proofs_do_not_commit_to_the_tree_size() -> None:
    # RFC 9162 behaviour this module keeps, pinned so nobody relies on the opposite: leaf 0 has
    # the same audit-path shape in trees of 3 and 4 leaves, so the size-3 proof and root also
    # pass as size 4. A verifier must take the size and the root from the same signed head.
    assert ref_path_shape(0, 3) == ref_path_shape(0, 4)
    assert verify_inclusion(LEAVES[0], 0, 4, TREES[3].inclusion_proof(0), ROOTS[3])
    assert ref_proof_shape(2, 3) == ref_proof_shape(2, 4)
    assert verify_consistency(2, 4, ROOTS[2], ROOTS[3], TREES[3].consistency_proof(2))


def test_verifiers_never_raise_on_wrong_types() -> None:
    bad: Any
    good_proof = TREES[5].inclusion_proof(2)
    for bad in (None, "2", 2.0, b"\x02", [2]):
        assert verify_inclusion(LEAVES[2], bad, 5, good_proof, ROOTS[5]) is False
        assert verify_inclusion(LEAVES[2], 2, bad, good_proof, ROOTS[5]) is False
        assert verify_inclusion(bad, 2, 5, good_proof, ROOTS[5]) is False
        assert verify_inclusion(LEAVES[2], 2, 5, good_proof, bad) is False
        assert verify_inclusion(LEAVES[2], 2, 5, bad, ROOTS[5]) is False
        assert verify_inclusion(LEAVES[2], 2, 5, [*good_proof[:-1], bad], ROOTS[5]) is False
        consistency = TREES[5].consistency_proof(3)
        assert verify_consistency(bad, 5, ROOTS[3], ROOTS[5], consistency) is False
        assert verify_consistency(3, bad, ROOTS[3], ROOTS[5], consistency) is False
        assert verify_consistency(3, 5, bad, ROOTS[5], consistency) is False
        assert verify_consistency(3, 5, ROOTS[3], bad, consistency) is False
        assert verify_consistency(3, 5, ROOTS[3], ROOTS[5], bad) is False
    # A str is a Sequence too, of one-character strs.
    assert verify_inclusion(LEAVES[2], 2, 5, "x" * 32, ROOTS[5]) is False  # type: ignore[arg-type]
    # A huge proof is rejected by its length, not hashed.
    assert verify_inclusion(LEAVES[2], 2, 5, [SOME_HASH] * 10**6, ROOTS[5]) is False


# --------------------------------------------------------------------------------------------
# Argument checking of the builders.
# --------------------------------------------------------------------------------------------


def test_leaf_hashes_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="leaf hash 1 is 31 bytes"):
        root([LEAVES[0], LEAVES[1][:31]])
    with pytest.raises(ValueError, match="leaf hash 0 is 0 bytes"):
        MerkleTree([b""])
    with pytest.raises(ValueError, match="leaf hash 2 is 33 bytes"):
        MerkleTree([LEAVES[0], LEAVES[1], LEAVES[2] + b"!"])


@pytest.mark.parametrize("n", [0, 1, 7])
def test_inclusion_proof_index_out_of_range(n: int) -> None:
    for index in (-1, n, n + 1):
        with pytest.raises(ValueError, match=f"leaf index {index} is out of range"):
            TREES[n].inclusion_proof(index)


@pytest.mark.parametrize("n", [0, 1, 7])
def test_consistency_proof_old_size_out_of_range(n: int) -> None:
    for old_size in (-1, 0, n + 1):
        with pytest.raises(ValueError, match=f"old size {old_size} is out of range"):
            TREES[n].consistency_proof(old_size)


def test_tree_copies_its_input() -> None:
    leaves = list(LEAVES[:5])
    tree = MerkleTree(leaves)
    leaves[0] = LEAVES[7]
    assert tree.root == ROOTS[5]
    assert tree.levels()[0] == tuple(LEAVES[:5])
    assert repr(tree) == f"MerkleTree(size=5, root={ROOTS[5].hex()})"


# --------------------------------------------------------------------------------------------
# 3. Properties.
# --------------------------------------------------------------------------------------------

_sizes = st.integers(1, MAX_PROPERTY)


def test_every_leaf_of_every_small_tree_verifies() -> None:
    for n in range(1, MAX_PROPERTY + 1):
        for index in range(n):
            proof = TREES[n].inclusion_proof(index)
            assert verify_inclusion(LEAVES[index], index, n, proof, ROOTS[n]), (index, n)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(2, MAX_PROPERTY), data=st.data())
def test_inclusion_fails_on_any_bit_flip(n: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = TREES[n].inclusion_proof(index)
    target = data.draw(st.integers(0, len(proof) + 1), label="target")
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1), label="bit")
    leaf, root_hash = LEAVES[index], ROOTS[n]
    if target < len(proof):
        proof = [*proof[:target], _flip(proof[target], bit), *proof[target + 1 :]]
    elif target == len(proof):
        leaf = _flip(leaf, bit)
    else:
        root_hash = _flip(root_hash, bit)
    assert not verify_inclusion(leaf, index, n, proof, root_hash)


@settings(max_examples=300, deadline=None)
@given(n=_sizes, data=st.data())
def test_inclusion_fails_on_a_proof_of_the_wrong_length(n: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = TREES[n].inclusion_proof(index)
    truncate = data.draw(st.booleans(), label="truncate")
    if proof and truncate:
        keep = data.draw(st.integers(0, len(proof) - 1), label="keep")
        drop = data.draw(st.sampled_from(["head", "tail", "one"]), label="drop")
        if drop == "head":
            proof = proof[len(proof) - keep :]
        elif drop == "tail":
            proof = proof[:keep]
        else:
            proof = proof[:keep] + proof[keep + 1 :]
    else:
        at = data.draw(st.integers(0, len(proof)), label="at")
        extra = data.draw(
            st.sampled_from([SOME_HASH, ROOTS[n], LEAVES[index], *proof]), label="extra"
        )
        proof = [*proof[:at], extra, *proof[at:]]
    assert not verify_inclusion(LEAVES[index], index, n, proof, ROOTS[n])


@settings(max_examples=300, deadline=None)
@given(n=_sizes, data=st.data())
def test_inclusion_fails_for_a_wrong_index_or_leaf(n: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = TREES[n].inclusion_proof(index)
    wrong_index = data.draw(st.integers(-3, n + 3).filter(lambda i: i != index), label="wrong")
    assert not verify_inclusion(LEAVES[index], wrong_index, n, proof, ROOTS[n])
    other_leaf = data.draw(st.sampled_from(LEAVES).filter(lambda h: h != LEAVES[index]))
    assert not verify_inclusion(other_leaf, index, n, proof, ROOTS[n])


@settings(max_examples=300, deadline=None)
@given(n=_sizes, data=st.data())
def test_inclusion_fails_for_a_wrong_tree_size(n: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = TREES[n].inclusion_proof(index)
    wrong_size = data.draw(st.integers(-1, 2 * n + 3).filter(lambda s: s != n), label="size")
    # Only a size whose audit path has the same shape can pass (see
    # test_proofs_do_not_commit_to_the_tree_size); every other size must fail.
    passes = 0 <= index < wrong_size and ref_path_shape(index, wrong_size) == ref_path_shape(
        index, n
    )
    assert verify_inclusion(LEAVES[index], index, wrong_size, proof, ROOTS[n]) is passes


def test_every_consistency_proof_of_small_trees_verifies() -> None:
    for n in range(MAX_PROPERTY + 1):
        assert verify_consistency(0, n, EMPTY_ROOT, ROOTS[n], [])
        for m in range(1, n + 1):
            proof = TREES[n].consistency_proof(m)
            assert verify_consistency(m, n, ROOTS[m], ROOTS[n], proof), (m, n)


_size_pairs = _sizes.flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))


@settings(max_examples=300, deadline=None)
@given(sizes=_size_pairs, data=st.data())
def test_consistency_fails_on_any_bit_flip(sizes: tuple[int, int], data: st.DataObject) -> None:
    m, n = sizes
    proof = TREES[n].consistency_proof(m)
    old, new = ROOTS[m], ROOTS[n]
    target = data.draw(st.integers(0, len(proof) + 1), label="target")
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1), label="bit")
    if target < len(proof):
        proof = [*proof[:target], _flip(proof[target], bit), *proof[target + 1 :]]
    elif target == len(proof):
        old = _flip(old, bit)
    else:
        new = _flip(new, bit)
    assert not verify_consistency(m, n, old, new, proof)


@settings(max_examples=300, deadline=None)
@given(sizes=_size_pairs, data=st.data())
def test_consistency_fails_on_a_proof_of_the_wrong_length(
    sizes: tuple[int, int], data: st.DataObject
) -> None:
    m, n = sizes
    proof = TREES[n].consistency_proof(m)
    truncate = data.draw(st.booleans(), label="truncate")
    if proof and truncate:
        keep = data.draw(st.integers(0, len(proof) - 1), label="keep")
        drop = data.draw(st.sampled_from(["head", "tail", "one"]), label="drop")
        if drop == "head":
            proof = proof[len(proof) - keep :]
        elif drop == "tail":
            proof = proof[:keep]
        else:
            proof = proof[:keep] + proof[keep + 1 :]
    else:
        at = data.draw(st.integers(0, len(proof)), label="at")
        extra = data.draw(
            st.sampled_from([SOME_HASH, ROOTS[m], ROOTS[n], EMPTY_ROOT, *proof]), label="extra"
        )
        proof = [*proof[:at], extra, *proof[at:]]
    assert not verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)


@settings(max_examples=300, deadline=None)
@given(sizes=_size_pairs, data=st.data())
def test_consistency_fails_for_wrong_sizes(sizes: tuple[int, int], data: st.DataObject) -> None:
    m, n = sizes
    proof = TREES[n].consistency_proof(m)
    wrong = data.draw(
        st.tuples(st.integers(-1, 2 * n + 3), st.integers(-1, 2 * n + 3)).filter(
            lambda s: s != (m, n)
        ),
        label="wrong sizes",
    )
    wrong_m, wrong_n = wrong
    # As for inclusion, only sizes whose proof has the same shape can pass; a tree head is
    # consistent with itself whatever size is claimed for both.
    if m == n:
        passes = 0 < wrong_m == wrong_n
    else:
        passes = 0 < wrong_m < wrong_n and ref_proof_shape(wrong_m, wrong_n) == ref_proof_shape(
            m, n
        )
    assert verify_consistency(wrong_m, wrong_n, ROOTS[m], ROOTS[n], proof) is passes


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(-2, 70),
    tree_size=st.integers(-2, 70),
    leaf=st.binary(max_size=40) | st.sampled_from(LEAVES),
    proof=st.lists(st.binary(min_size=30, max_size=34) | st.sampled_from(LEAVES), max_size=9),
    root_hash=st.binary(max_size=40) | st.sampled_from(ROOTS),
)
def test_verify_inclusion_never_raises(
    index: int, tree_size: int, leaf: bytes, proof: list[bytes], root_hash: bytes
) -> None:
    assert isinstance(verify_inclusion(leaf, index, tree_size, proof, root_hash), bool)


@settings(max_examples=300, deadline=None)
@given(
    old_size=st.integers(-2, 70),
    new_size=st.integers(-2, 70),
    old_root=st.binary(max_size=40) | st.sampled_from(ROOTS),
    new_root=st.binary(max_size=40) | st.sampled_from(ROOTS),
    proof=st.lists(st.binary(min_size=30, max_size=34) | st.sampled_from(LEAVES), max_size=9),
)
def test_verify_consistency_never_raises(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    assert isinstance(verify_consistency(old_size, new_size, old_root, new_root, proof), bool)


# --------------------------------------------------------------------------------------------
# 4. A million leaves (plus an odd three, so every level has a ragged edge somewhere).
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_million_leaves() -> None:
    n = 1_000_003
    leaves = [i.to_bytes(HASH_SIZE, "big") for i in range(n)]
    tree = MerkleTree(leaves)
    top = root(leaves)
    assert tree.size == n
    assert tree.root == top
    for index in (0, 1, 2**19 + 5, n // 2, n - 2, n - 1):
        assert verify_inclusion(leaves[index], index, n, tree.inclusion_proof(index), top)
    m = 2**19 + 3
    old = root(leaves[:m])
    assert verify_consistency(m, n, old, top, tree.consistency_proof(m))
