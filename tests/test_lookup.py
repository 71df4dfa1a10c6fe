"""The lookup members' formats agree with the reference tree, and the verifier's fast paths with
the reference checks they stand in for."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
import zlib
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p402.archive import member_info, write_deflated
from p402.bundles._zipcheck import member_data
from p402.bundles.canonical import dumps_record, loads
from p402.bundles.layout import BLOCKS, EVENTS
from p402.bundles.lookup import (
    BLOCK_LINES,
    INDEX_RECORD,
    TREE_FROM_LEVEL,
    ReadAt,
    find_leaves,
    index_bytes,
    level_sizes,
    proof_from_block,
    proof_from_tree,
    root_from_proof,
    stored_levels,
    stored_sizes,
    tree_levels,
)
from p402.bundles.merkle import MerkleTree, leaf_hash
from p402.bundles.receipt import _block_lines
from p402.bundles.seal import Sealed, Sealer
from p402.bundles.verify import _canonical_time, _canonical_units
from p402.money import format_amount, parse_amount, to_units
from p402.period import format_time


def loads_line(line: bytes) -> dict[str, object]:
    """A ledger line's object."""
    value = loads(line)
    assert isinstance(value, dict)
    return value


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


def _stored_tree(leaves: list[bytes], from_level: int) -> bytes:
    return b"".join(b"".join(level) for level in stored_levels(leaves, from_level))


def _block_proof(leaves: list[bytes], tree: bytes, index: int, from_level: int) -> list[bytes]:
    first = index >> from_level << from_level
    block = leaves[first : first + (1 << from_level)]
    return proof_from_block(block, reader(tree), len(leaves), index, from_level)


# Sizes around block boundaries (2**level lines a block): one short, exact, one over, for one to
# four blocks and more.
@given(
    level=st.integers(min_value=0, max_value=4),
    blocks=st.integers(min_value=0, max_value=9),
    offset=st.integers(min_value=-1, max_value=1),
    pick=st.integers(min_value=0),
)
def test_stored_levels_and_a_block_give_the_full_trees_proofs(
    level: int, blocks: int, offset: int, pick: int
) -> None:
    size = max(1, blocks * (1 << level) + offset)
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    reference = MerkleTree(leaves)
    stored = [tuple(each) for each in stored_levels(leaves, level)]
    # the stored levels are the full tree's from *level* up, the odd last node carried up
    full = reference.levels()
    assert tuple(stored) == full[level:] if level < len(full) else stored == [(reference.root,)]
    assert [len(each) for each in stored] == stored_sizes(size, level)
    tree = _stored_tree(leaves, level)
    assert tree[-32:] == reference.root
    index = pick % size
    proof = _block_proof(leaves, tree, index, level)
    assert proof == reference.inclusion_proof(index)
    assert root_from_proof(leaves[index], size, index, proof) == reference.root


@pytest.mark.parametrize(
    "size", [1, BLOCK_LINES - 1, BLOCK_LINES, BLOCK_LINES + 1, 3 * BLOCK_LINES + 5]
)
def test_the_default_level_gives_the_full_trees_proofs(size: int) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    reference = MerkleTree(leaves)
    tree = _stored_tree(leaves, TREE_FROM_LEVEL)
    assert len(tree) == 32 * sum(stored_sizes(size, TREE_FROM_LEVEL))
    for index in {0, 1, size // 2, BLOCK_LINES - 1, BLOCK_LINES, size - 2, size - 1}:
        if 0 <= index < size:
            assert _block_proof(leaves, tree, index, TREE_FROM_LEVEL) == (
                reference.inclusion_proof(index)
            )


def test_an_empty_ledger_stores_no_node() -> None:
    assert stored_sizes(0, TREE_FROM_LEVEL) == [0]
    assert _stored_tree([], TREE_FROM_LEVEL) == b""


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


# The ledger member: one deflate stream, flushed after each block of lines.

LINES = 2 * BLOCK_LINES + 300  # two full blocks and a short one


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sealed, Path]:
    """A ledger of three blocks, sealed and written into a zip as the bundle writer does."""
    directory = tmp_path_factory.mktemp("sealed")
    sealer = Sealer(directory)
    for number in range(LINES):
        sealer.add({"cost": None, "event_id": f"e{number:05}", "note": "x" * (number % 97)})
    done = sealer.finish()
    path = directory / "ledger.zip"
    moment = datetime.fromisoformat("2026-10-31T00:00:00+00:00")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member_info(BLOCKS, moment, stored=True), done.blocks_path.read_bytes())
        with done.events_path.open("rb") as text, done.deflated_path.open("rb") as stream:
            write_deflated(archive, member_info(EVENTS, moment), text, stream, done.blocks)
    return done, path


def test_the_ledger_member_is_an_ordinary_deflated_zip_member(
    sealed: tuple[Sealed, Path],
) -> None:
    done, path = sealed
    text = done.events_path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(EVENTS)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert (info.file_size, info.CRC) == (len(text), zlib.crc32(text))
        assert info.compress_size == done.deflated_path.stat().st_size
        assert archive.read(EVENTS) == text  # zipfile checks the CRC as it reads
        assert archive.testzip() is None
    assert len(done.blocks) == 3 + 1
    if shutil.which("unzip"):
        run = subprocess.run(["unzip", "-p", str(path), EVENTS], capture_output=True, check=True)
        assert run.stdout == text
        assert subprocess.run(["unzip", "-tq", str(path)], check=False).returncode == 0


def test_each_block_inflates_alone_to_its_lines(sealed: tuple[Sealed, Path]) -> None:
    done, path = sealed
    text = done.events_path.read_bytes()
    with path.open("rb") as handle, zipfile.ZipFile(handle) as archive:
        data_at = member_data(archive, handle, EVENTS)
        spans = zip(done.blocks, done.blocks[1:], strict=False)
        for block, ((start, text_start), (end, text_end)) in enumerate(spans):
            inflated = zlib.decompressobj(-15).decompress(data_at(start, end - start))
            assert inflated == text[text_start:text_end]
            assert inflated.count(b"\n") == min(BLOCK_LINES, LINES - block * BLOCK_LINES)
        lines_at = _block_lines(archive, handle, LINES)
        lines = text.split(b"\n")
        for index in (0, BLOCK_LINES - 1, BLOCK_LINES, 2 * BLOCK_LINES + 7, LINES - 1):
            held, first = lines_at(index)
            assert first == index // BLOCK_LINES * BLOCK_LINES
            assert held == lines[first : first + BLOCK_LINES][: LINES - first]
            assert held[index - first] == lines[index]


def test_a_recompressed_ledger_is_read_from_its_start(
    sealed: tuple[Sealed, Path], tmp_path: Path
) -> None:
    # The block table's compressed offsets do not fit a stream deflated without the flushes.
    done, path = sealed
    copy = tmp_path / "copy.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as out:
        for name in (BLOCKS, EVENTS):
            out.writestr(name, source.read(name))
    lines = done.events_path.read_bytes().split(b"\n")
    with copy.open("rb") as handle, zipfile.ZipFile(handle) as archive:
        lines_at = _block_lines(archive, handle, LINES)
        assert [lines_at(i)[0][i % BLOCK_LINES] for i in (5, BLOCK_LINES + 5, LINES - 1)] == [
            lines[5],
            lines[BLOCK_LINES + 5],
            lines[LINES - 1],
        ]


def test_the_same_lines_give_the_same_stream(sealed: tuple[Sealed, Path], tmp_path: Path) -> None:
    done, _ = sealed
    again = Sealer(tmp_path)
    for line in done.events_path.read_bytes().splitlines():
        again.add(loads_line(line))
    other = again.finish()
    assert other.deflated_path.read_bytes() == done.deflated_path.read_bytes()
    assert other.blocks == done.blocks


@pytest.mark.parametrize("count", [0, 1, 4, 11, 12, 17])
def test_the_sealer_stores_the_levels_from_its_block_size(count: int, tmp_path: Path) -> None:
    sealer = Sealer(tmp_path, tree_from_level=2)
    records = [{"cost": None, "event_id": f"e{n:03}", "note": "x" * n} for n in range(count)]
    for record in records:
        sealer.add(record)
    done = sealer.finish()
    leaves = [leaf_hash(dumps_record(record)) for record in records]
    assert done.tree_path.read_bytes() == _stored_tree(leaves, 2)
    assert done.root == MerkleTree(leaves).root
    assert (done.tree_from_level, len(done.blocks)) == (2, -(-count // 4) + 1)
