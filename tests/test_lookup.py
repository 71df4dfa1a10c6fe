"""The lookup members' formats agree with the reference tree, and the verifier's fast paths with
the reference checks they stand in for."""

from __future__ import annotations

import hashlib
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from p402.bundles.lookup import (
    INDEX_RECORD,
    ReadAt,
    find_leaves,
    index_bytes,
    level_sizes,
    proof_from_tree,
    root_from_proof,
    tree_levels,
)
from p402.bundles.merkle import MerkleTree, leaf_hash
from p402.bundles.verify import _canonical_time, _canonical_units
from p402.money import format_amount, parse_amount, to_units
from p402.period import format_time


def reader(data: bytes) -> ReadAt:
    def read_at(offset: int, length: int) -> bytes:
        assert offset >= 0 and offset + length <= len(data)
        return data[offset : offset + length]

    return read_at


@given(size=st.integers(min_value=1, max_value=70), pick=st.integers(min_value=0))
def test_tree_file_gives_the_reference_tree_and_proofs(size: int, pick: int) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    reference = MerkleTree(leaves)
    levels = [tuple(level) for level in tree_levels(leaves)]
    assert tuple(levels) == reference.levels()
    assert [len(level) for level in levels] == level_sizes(size)
    tree = b"".join(b"".join(level) for level in levels)
    index = pick % size
    proof = proof_from_tree(reader(tree), size, index)
    assert proof == reference.inclusion_proof(index)
    assert root_from_proof(leaves[index], size, index, proof) == reference.root


@given(ids=st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=40))
def test_index_finds_every_event_and_nothing_else(ids: list[str]) -> None:
    index = index_bytes(ids)
    assert len(index) == INDEX_RECORD * len(ids)
    read_at = reader(index)
    for number, event_id in enumerate(ids):
        assert number in find_leaves(read_at, len(ids), event_id)
    missing = "not-an-id-" + hashlib.sha256(repr(ids).encode()).hexdigest()
    assert find_leaves(read_at, len(ids), missing) == []


def _reference_units(text: str) -> int | None:
    try:
        amount = parse_amount(text)
    except ValueError:
        return None
    return to_units(amount) if format_amount(amount) == text else None


amounts = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=14).map(lambda d: format(d, "f")),
    st.from_regex(r"-?[0-9]{1,18}(\.[0-9]{0,14})?", fullmatch=True),
    st.sampled_from(["0", "-0", "0.0", "1.", ".5", "+1", " 1", "1e3", "\u0661", "0.000000000001"]),
)


@given(text=amounts)
def test_the_fast_cost_path_agrees_with_the_reference(text: str) -> None:
    fast = _canonical_units(text)
    if fast is not None:
        assert fast == _reference_units(text)


@given(
    # naive on purpose: the text is built with a Z, as the ledger writes it
    moment=st.datetimes(
        min_value=datetime(1000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds here
        max_value=datetime(9999, 12, 31),  # noqa: DTZ001 - same
    ),
    micro=st.booleans(),
)
def test_the_fast_time_path_agrees_with_the_reference(moment: datetime, micro: bool) -> None:
    text = moment.isoformat(timespec="microseconds" if micro else "seconds") + "Z"
    if _canonical_time(text):
        assert format_time(datetime.fromisoformat(text)) == text
    canonical = format_time(datetime.fromisoformat(text))
    assert _canonical_time(canonical)
