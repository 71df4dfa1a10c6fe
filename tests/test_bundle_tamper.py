"""Good and tampered audit bundles, side by side, through the offline verifier and the CLI.

Every tamper test builds a new zip from the good bundle and asserts the specific problem the
verifier reports (the member it names and a distinctive phrase), never just ``valid is False``.
The re-signed attacks give the attacker the signing key: the signature then holds, so they
prove the semantic checks (canonical form, totals, count, Merkle root, order, tenant, period,
receipts) on their own.

One good bundle is built per module, because an audit renders a PDF and that is the slow part;
the conftest ``small_bundle`` is used where a test needs a bundle and key files of its own.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import shutil
import stat
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pytest

from p402.audit import AuditResult, run_audit
from p402.bundles import standalone
from p402.bundles.canonical import dumps, dumps_record, loads
from p402.bundles.checkpoint import Checkpoint, sign_checkpoint
from p402.bundles.instructions import verify_text
from p402.bundles.layout import (
    BLOCKS,
    CHECKPOINT,
    EVENTS,
    INDEX,
    MANIFEST,
    OFFSETS,
    PDF,
    RECEIPTS,
    SIGNATURE,
    SSH_SIGNATURE,
    TREE,
    VERIFIER,
    VERIFY_TEXT,
    XLSX,
)
from p402.bundles.lookup import (
    TREE_FROM_LEVEL,
    blocks_bytes,
    index_bytes,
    offsets_bytes,
    stored_levels,
)
from p402.bundles.manifest import LOOKUP as RECEIPTS_SECTION
from p402.bundles.manifest import STORED_LEDGER_LOOKUP
from p402.bundles.merkle import MerkleTree, leaf_hash, root
from p402.bundles.receipt import receipt_from_bundle, verify_receipt
from p402.bundles.seal import Sealer, receipt_line
from p402.bundles.signing import PUBLIC_KEY_NAME, PublicKey, SigningKey, create_keys, generate
from p402.bundles.sshsig import sign_sshsig
from p402.bundles.verify import Limits, verify_bundle
from p402.errors import P402Error
from p402.ledger.store import Ledger
from p402.money import format_amount, from_units, parse_amount, round_cents, to_units
from tests.conftest import PERIOD, TENANT, small_events

MEMBERS = [
    VERIFY_TEXT, CHECKPOINT, EVENTS, MANIFEST, SIGNATURE, SSH_SIGNATURE, RECEIPTS, PDF, XLSX,
    TREE, INDEX, BLOCKS, VERIFIER,
]  # fmt: skip
LOOKUP = (TREE, INDEX, BLOCKS)
SIGNED = (MANIFEST, SIGNATURE, SSH_SIGNATURE)
CLI = Path(sys.executable).parent / "p402"

Entry: TypeAlias = tuple[str | zipfile.ZipInfo, bytes]
Members: TypeAlias = dict[str, bytes]
Manifest: TypeAlias = dict[str, Any]


# --------------------------------------------------------------------------------------------
# The good bundle and the helpers that tamper with it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Good:
    """The good bundle: its path, bytes, members by name, signing key and public key file."""

    path: Path
    data: bytes
    members: Members
    key: SigningKey
    public_key: Path

    def signature_problem(self, key: SigningKey | None = None) -> str:
        """The problem a manifest that *key* (default: ours) did not sign comes out as."""
        key_id = (key or self.key).public.key_id
        return f"{SIGNATURE}: not a signature of {MANIFEST} by key {key_id[:16]}"


def _build(base: Path) -> Good:
    _, public_path, key = create_keys(base / "keys")
    ledger = Ledger.open(str(base / "ledger.db"))
    try:
        ledger.add(small_events())
        result = run_audit(ledger, tenant=TENANT, period=PERIOD, key=key, out_dir=base / "out")
    finally:
        ledger.close()
    data = result.bundle.read_bytes()
    return Good(result.bundle, data, read_members(data), key, public_path)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Good:
    """The small ledger's bundle, built once for the module: one block of the ledger, so its
    tree member holds one node, the root (level 10)."""
    return _build(tmp_path_factory.mktemp("good"))


SMALL_LEVEL = 2
"""Blocks of 4 lines: the small ledger's 24 events make 6 blocks, and the tree member holds
levels 2 to 5 (6, 3, 2 and 1 nodes)."""


@pytest.fixture(scope="module")
def small_blocks(tmp_path_factory: pytest.TempPathFactory) -> Good:
    """The small ledger's bundle with blocks of 4 lines, to tamper with a tree of many blocks."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "p402.audit.run.Sealer", functools.partial(Sealer, tree_from_level=SMALL_LEVEL)
        )
        return _build(tmp_path_factory.mktemp("small-blocks"))


def read_members(data: bytes) -> Members:
    """The members of a zip, by name, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_zip(path: Path, entries: Iterable[Entry]) -> Path:
    """Write *entries* as a deflated zip; a repeated name is written twice, on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return path


def bundle(tmp_path: Path, members: Members, *extra: Entry) -> Path:
    """A tampered bundle: *members*, then the *extra* entries."""
    return write_zip(tmp_path / "tampered.zip", [*members.items(), *extra])


def without(members: Members, name: str) -> Members:
    """*members* less *name*."""
    return {other: data for other, data in members.items() if other != name}


def invalid(path: Path, good: Good, limits: Limits | None = None) -> list[str]:
    """Verify *path* with the good key: it must be invalid, with its problems listed, and the
    stand-alone verifier shipped in every bundle (``verify_bundle.py``) must say so too."""
    outcome = verify_bundle(path, good.key.public, limits=limits)
    assert not outcome.valid
    assert outcome.problems
    if limits is None:
        assert standalone_problems(path, good), "verify_bundle.py calls it valid"
    return outcome.problems


def valid(path: Path, public: PublicKey) -> list[str]:
    """The problems both verifiers find in *path*: p402 verify's, then verify_bundle.py's (a
    valid bundle has none from either)."""
    found = verify_bundle(path, public).problems
    return found + [
        f"verify_bundle.py: {problem}" for problem in standalone.verify(str(path), public.raw())
    ]


def standalone_problems(path: Path, good: Good) -> list[str]:
    """What the stand-alone verifier finds in *path* (its command line's verdict, in-process)."""
    try:
        return standalone.verify(str(path), good.key.public.raw())
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            zipfile.BadZipFile, UnicodeDecodeError) as exc:  # fmt: skip
        return [f"refused ({exc!r})"]


def ledger_problems(problems: list[str]) -> list[str]:
    """*problems* less the reports' figures. :func:`reseal` rewrites the ledger and all it
    determines but not the PDF and workbook, whose figures then no longer match: a check of its
    own (tests/test_bundle_reports.py). Tests of the ledger's checks look past it."""
    return [problem for problem in problems if not problem.startswith((PDF, XLSX))]


def assert_problem(problems: list[str], prefix: str, fragment: str) -> None:
    """Some problem starts with *prefix* (the member) and says *fragment*."""
    assert any(p.startswith(prefix) and fragment in p for p in problems), problems


def flip(data: bytes) -> bytes:
    """*data* with its middle byte's lowest bit flipped."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def symlink(name: str, data: bytes) -> Entry:
    """A Unix symbolic-link entry."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, data


def sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def resign(
    members: Members, key: SigningKey, edit: Callable[[Manifest], None] | None = None
) -> Members:
    """Apply *edit* to the manifest, restate its figures in VERIFY.txt as the writer would, list
    every content member's real size and SHA-256, and sign: what an attacker holding the key
    would do, so only the verifier's semantic checks stand in the way."""
    preview: Manifest = loads(members[MANIFEST])
    if edit is not None:
        edit(preview)
    if VERIFY_TEXT in members:
        with contextlib.suppress(KeyError, TypeError):  # a malformed manifest keeps the old text
            members = {**members, VERIFY_TEXT: verify_text(preview)}
    content = {n: d for n, d in sorted(members.items()) if n not in SIGNED}
    manifest: Manifest = loads(members[MANIFEST])
    manifest["files"] = [
        {"path": n, "sha256": sha256(d), "size": len(d)} for n, d in content.items()
    ]
    if edit is not None:
        edit(manifest)
    data = dumps(manifest)
    return {**content, MANIFEST: data, **signed(data, key)}


def signed(manifest: bytes, key: SigningKey) -> Members:
    """Both signatures of *manifest* by *key*: raw and SSH."""
    return {SIGNATURE: key.sign(manifest), SSH_SIGNATURE: sign_sshsig(manifest, key)}


def lines_of(data: bytes) -> list[bytes]:
    """The lines of a JSON Lines member, without their newlines."""
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def joined(lines: Iterable[bytes]) -> bytes:
    """JSON Lines from lines."""
    return b"".join(line + b"\n" for line in lines)


def rewrite(line: bytes, **changes: Any) -> bytes:
    """A canonical ledger line with some fields changed."""
    record = loads(line)
    record.update(changes)
    return dumps_record(record)


def with_ledger(good: Good, lines: list[bytes]) -> Members:
    """Replace the ledger, with only the manifest's file hashes and sizes updated and re-signed."""
    return resign({**good.members, EVENTS: joined(lines)}, good.key)


def reseal(good: Good, lines: list[bytes]) -> Members:
    """Replace the ledger and rewrite all it determines (receipts, count, totals, root), signed."""
    leaves = [leaf_hash(line) for line in lines]
    records = [loads(line) for line in lines]
    receipts = [
        receipt_line(r["event_id"], i, leaf)
        for i, (r, leaf) in enumerate(zip(records, leaves, strict=True))
    ]
    costs = [r["cost"] for r in records]
    units = sum(to_units(parse_amount(cost)) for cost in costs if cost is not None)

    def edit(manifest: Manifest) -> None:
        manifest["events"]["count"] = manifest["merkle"]["size"] = len(lines)
        manifest["merkle"]["root"] = root(leaves).hex()
        if manifest["log"]["previous"] is None:  # a first audit: the log is this ledger
            manifest["log"].update(size=len(lines), root=root(leaves).hex())
        manifest["totals"].update(
            cost=format_amount(from_units(units)),
            cost_rounded=str(round_cents(units)),
            unpriced_events=costs.count(None),
        )

    origin = loads(good.members[MANIFEST])["merkle"]["origin"]
    note = sign_checkpoint(Checkpoint(origin, len(lines), root(leaves)), [good.key]).encode()
    members = {**good.members, EVENTS: joined(lines), RECEIPTS: joined(receipts), CHECKPOINT: note}
    return resign({**members, **lookup_members(lines)}, good.key, edit)


def lookup_members(lines: list[bytes], from_level: int = TREE_FROM_LEVEL) -> Members:
    """The tree, index and block table of a ledger, rebuilt as the sealer builds them."""
    leaves = [leaf_hash(line) for line in lines]
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    records, at = [], (0, 0)
    for first in range(0, len(lines), 1 << from_level):
        text = joined(lines[first : first + (1 << from_level)])
        data = compressor.compress(text) + compressor.flush(zlib.Z_FULL_FLUSH)
        records.append(at)
        at = (at[0] + len(data), at[1] + len(text))
    return {
        TREE: tree_bytes(leaves, from_level),
        INDEX: index_bytes(loads(line)["event_id"] for line in lines),
        BLOCKS: blocks_bytes([*records, at]),
    }


def tree_bytes(leaves: list[bytes], from_level: int) -> bytes:
    """``merkle/tree.bin``: the tree's levels from *from_level* up (0: every level)."""
    return b"".join(b"".join(level) for level in stored_levels(leaves, from_level))


def offsets_member(lines: list[bytes]) -> bytes:
    """``ledger/offsets.bin`` of the previous layout (the ledger stored)."""
    starts = array("Q", [0])
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    return offsets_bytes(starts)


def ledger(good: Good) -> list[bytes]:
    """The good ledger's lines."""
    return lines_of(good.members[EVENTS])


def receipts(good: Good) -> list[bytes]:
    """The good receipts' lines."""
    return lines_of(good.members[RECEIPTS])


def data_offset(data: bytes, name: str) -> int:
    """Where *name*'s compressed data starts in the zip *data*."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        header = archive.getinfo(name).header_offset
    name_length, extra_length = struct.unpack_from("<HH", data, header + 26)
    return int(header + 30 + name_length + extra_length)


def patch_central(data: bytes, name: str, offset: int, fmt: str, value: int) -> bytes:
    """The zip *data* with one field of *name*'s central directory header set to *value*."""
    out = bytearray(data)
    end = data.rfind(b"PK\x05\x06")
    (position,) = struct.unpack_from("<I", data, end + 16)
    while data[position : position + 4] == b"PK\x01\x02":
        lengths = struct.unpack_from("<HHH", data, position + 28)
        if data[position + 46 : position + 46 + lengths[0]] == name.encode():
            struct.pack_into(fmt, out, position + offset, value)
        position += 46 + sum(lengths)
    assert out != data, f"{name} not found in the central directory"
    return bytes(out)


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``p402`` console script."""
    return subprocess.run(
        [str(CLI), *map(str, args)], capture_output=True, text=True, check=False, timeout=120
    )


def assert_cli_invalid(run: subprocess.CompletedProcess[str], first_problem: str) -> None:
    """Exit 1, no traceback, and exactly one line on stderr: ``invalid: <first problem>``."""
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [f"invalid: {first_problem}"]
    assert run.stdout == ""


# --------------------------------------------------------------------------------------------
# 1. Baseline
# --------------------------------------------------------------------------------------------


def test_untouched_bundle_verifies(
    small_bundle: AuditResult, signing_key: SigningKey, tmp_path: Path
) -> None:
    outcome = verify_bundle(small_bundle.bundle, signing_key.public)
    assert outcome.problems == []
    assert outcome.valid
    assert valid(small_bundle.bundle, signing_key.public) == []
    assert outcome.manifest == small_bundle.manifest
    run = run_cli("verify", small_bundle.bundle, "--key", tmp_path / "keys" / PUBLIC_KEY_NAME)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout.startswith(
        f"valid: {small_bundle.bundle.name}: 24 events of tenant 'acme', 2026-10"
    )


def test_the_bundle_holds_exactly_the_members_these_tests_tamper_with(good: Good) -> None:
    assert sorted(good.members) == sorted(MEMBERS)
    listed = [entry["path"] for entry in loads(good.members[MANIFEST])["files"]]
    assert listed == sorted(set(MEMBERS) - set(SIGNED))


def test_helpers_alone_do_not_break_a_bundle(good: Good, tmp_path: Path) -> None:
    # Re-zipping, re-signing and re-sealing the untouched ledger must all stay valid, or the
    # tamper tests below would pass for the wrong reason.
    for members in (good.members, resign(good.members, good.key), reseal(good, ledger(good))):
        assert valid(bundle(tmp_path, members), good.key.public) == []
    assert reseal(good, ledger(good)) == good.members


# --------------------------------------------------------------------------------------------
# 2-3. One member changed, truncated, missing, extra, repeated, or of the wrong kind
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MEMBERS)
def test_flipped_byte_is_caught_in_that_member(name: str, good: Good, tmp_path: Path) -> None:
    problems = invalid(bundle(tmp_path, {**good.members, name: flip(good.members[name])}), good)
    if name == SSH_SIGNATURE:
        (problem,) = problems
        assert problem.startswith(f"{SSH_SIGNATURE}: ")
    elif name in SIGNED:
        assert problems == [good.signature_problem()]
    else:
        assert problems == [f"{name}: SHA-256 does not match the manifest"]


@pytest.mark.parametrize("name", MEMBERS)
def test_truncated_member(name: str, good: Good, tmp_path: Path) -> None:
    original = good.members[name]
    half = len(original) // 2
    problems = invalid(bundle(tmp_path, {**good.members, name: original[:half]}), good)
    if name == SSH_SIGNATURE:
        assert problems == [f"{SSH_SIGNATURE}: not an armoured SSH signature"]
    elif name in SIGNED:
        assert problems == [good.signature_problem()]
    else:
        assert problems == [
            f"{name}: {half} bytes, the manifest says {len(original)}",
            f"{name}: SHA-256 does not match the manifest",
        ]


@pytest.mark.parametrize("name", MEMBERS)
def test_missing_member(name: str, good: Good, tmp_path: Path) -> None:
    problems = invalid(bundle(tmp_path, without(good.members, name)), good)
    if name in SIGNED:
        assert problems == [f"{name}: missing"]
    else:
        assert problems == [f"{name}: listed in the manifest but missing"]


@pytest.mark.parametrize("name", ["notes.txt", "ledger/events-2.jsonl", "REPORT.PDF"])
def test_extra_member_not_in_the_manifest(name: str, good: Good, tmp_path: Path) -> None:
    problems = invalid(bundle(tmp_path, good.members, (name, b"trust me")), good)
    assert problems == [f"{name}: not listed in the manifest"]


@pytest.mark.parametrize("name", [EVENTS, MANIFEST, SIGNATURE, PDF])
@pytest.mark.parametrize("same", [True, False], ids=["same-bytes", "other-bytes"])
def test_duplicate_member_name(name: str, same: bool, good: Good, tmp_path: Path) -> None:
    second = good.members[name] if same else b"the copy an extractor would keep"
    problems = invalid(bundle(tmp_path, good.members, (name, second)), good)
    assert problems == [f"{name}: appears more than once"]


@pytest.mark.parametrize(
    "name", ["../evil", "/etc/x", "ledger/../../evil", "..\\evil", "C:/evil", "c:evil"]
)
def test_unsafe_member_name(name: str, good: Good, tmp_path: Path) -> None:
    problems = invalid(bundle(tmp_path, good.members, (name, b"payload")), good)
    assert problems == [f"{name!r}: unsafe member name"]


@pytest.mark.parametrize("name", [".", "./"])
def test_dot_member_name_is_a_problem_not_a_crash(name: str, good: Good, tmp_path: Path) -> None:
    problems = invalid(bundle(tmp_path, good.members, (name, b"")), good)
    assert any(p.startswith((f"{name!r}:", f"{name}:")) for p in problems), problems


def test_symlink_entry(good: Good, tmp_path: Path) -> None:
    problems = invalid(bundle(tmp_path, good.members, symlink("link", b"/etc/passwd")), good)
    assert problems == ["'link': is a symbolic link"]


def test_listed_member_replaced_by_a_symlink_with_the_same_bytes(
    good: Good, tmp_path: Path
) -> None:
    # The content hashes match: only the entry's type gives it away.
    path = bundle(tmp_path, without(good.members, PDF), symlink(PDF, good.members[PDF]))
    assert invalid(path, good) == [f"{PDF!r}: is a symbolic link"]


@pytest.mark.parametrize("name", ["ledger/", "extra/"])
def test_directory_entry(name: str, good: Good, tmp_path: Path) -> None:
    problems = invalid(bundle(tmp_path, good.members, (name, b"")), good)
    assert problems == [f"{name!r}: is a directory"]


# --------------------------------------------------------------------------------------------
# Damage below the member level: the zip's own CRC, compressed stream and header flags
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        *(n for n in MEMBERS if n != SIGNATURE),
        SIGNATURE,
    ],
)
def test_bad_crc_names_the_member(name: str, good: Good, tmp_path: Path) -> None:
    with zipfile.ZipFile(good.path) as archive:
        crc = archive.getinfo(name).CRC
    path = tmp_path / "bad-crc.zip"
    path.write_bytes(patch_central(good.data, name, 16, "<I", crc ^ 0xFFFFFFFF))
    assert_problem(invalid(path, good), f"{name}: cannot be read", "Bad CRC-32")


@pytest.mark.parametrize("name", MEMBERS)
def test_corrupt_deflate_stream_is_a_problem_not_a_crash(
    name: str, good: Good, tmp_path: Path
) -> None:
    broken = bytearray(good.data)
    broken[data_offset(good.data, name)] = 0xFF  # BTYPE 11: a reserved, invalid deflate block
    path = tmp_path / "corrupt.zip"
    path.write_bytes(bytes(broken))
    assert_problem(invalid(path, good), f"{name}:", "cannot be read")


def test_cli_corrupt_deflate_stream_is_one_line_not_a_traceback(good: Good, tmp_path: Path) -> None:
    broken = bytearray(good.data)
    broken[data_offset(good.data, PDF)] = 0xFF
    path = tmp_path / "corrupt.zip"
    path.write_bytes(bytes(broken))
    run = run_cli("verify", path, "--key", good.public_key)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert len(run.stderr.splitlines()) == 1
    assert run.stderr.startswith(f"invalid: {PDF}:")


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [(8, 0x0001, "is encrypted"), (10, 99, "uses unsupported compression method 99")],
    ids=["encrypted", "method-99"],
)
@pytest.mark.parametrize("name", [MANIFEST, PDF])
def test_unreadable_header_flags_are_a_problem_not_a_crash(
    name: str, offset: int, value: int, reason: str, good: Good, tmp_path: Path
) -> None:
    path = tmp_path / "flags.zip"
    path.write_bytes(patch_central(good.data, name, offset, "<H", value))
    assert invalid(path, good) == [f"{name!r}: {reason}"]


# --------------------------------------------------------------------------------------------
# 4. Zip bombs and limits
# --------------------------------------------------------------------------------------------


def test_zip_bomb_member_over_the_ratio_limit(good: Good, tmp_path: Path) -> None:
    path = bundle(tmp_path, good.members, ("zeros.bin", bytes(2 << 20)))
    assert invalid(path, good) == ["zeros.bin: compression ratio over 200 (zip bomb?)"]


def test_listed_member_swapped_for_a_zip_bomb(good: Good, tmp_path: Path) -> None:
    path = bundle(tmp_path, {**good.members, PDF: bytes(2 << 20)})
    assert invalid(path, good) == [f"{PDF}: compression ratio over 200 (zip bomb?)"]


def test_bundle_over_the_total_size_limit(good: Good) -> None:
    total = sum(len(data) for data in good.members.values())
    problems = invalid(good.path, good, Limits(max_total_bytes=total - 1))
    assert problems == [f"archive: unpacks to {total} bytes, more than the limit of {total - 1}"]
    assert verify_bundle(good.path, good.key.public, limits=Limits(max_total_bytes=total)).valid


def test_more_members_than_the_limit(good: Good) -> None:
    count = len(good.members)
    problems = invalid(good.path, good, Limits(max_members=count - 1))
    assert problems == [f"archive: {count} members, more than the limit of {count - 1}"]
    assert verify_bundle(good.path, good.key.public, limits=Limits(max_members=count)).valid


def test_more_members_than_the_default_limit(good: Good, tmp_path: Path) -> None:
    extra = [(f"pad/{n:03d}", b"") for n in range(Limits().max_members)]
    problems = invalid(bundle(tmp_path, good.members, *extra), good)
    total = len(good.members) + len(extra)
    assert problems[0] == f"archive: {total} members, more than the limit of {Limits().max_members}"


# --------------------------------------------------------------------------------------------
# 5. Signatures
# --------------------------------------------------------------------------------------------


def test_wrong_key(good: Good) -> None:
    other = generate()
    outcome = verify_bundle(good.path, other.public)
    assert outcome.problems == [good.signature_problem(other)]


SIGNATURES: dict[str, Callable[[Good], bytes]] = {
    "truncated": lambda good: good.members[SIGNATURE][:32],
    "empty": lambda good: b"",
    "one-byte-longer": lambda good: good.members[SIGNATURE] + b"\x00",
    "zeros": lambda good: bytes(64),
    "of-other-bytes": lambda good: good.key.sign(b"some other manifest"),
    "by-another-key": lambda good: generate().sign(good.members[MANIFEST]),
}


@pytest.mark.parametrize("kind", SIGNATURES)
def test_bad_signature(kind: str, good: Good, tmp_path: Path) -> None:
    path = bundle(tmp_path, {**good.members, SIGNATURE: SIGNATURES[kind](good)})
    assert invalid(path, good) == [good.signature_problem()]


# --------------------------------------------------------------------------------------------
# 6. Re-signed attacks: the signature holds, so only the semantic checks can catch these
# --------------------------------------------------------------------------------------------


def _indented(manifest: bytes) -> bytes:
    return json.dumps(loads(manifest), indent=2, sort_keys=True).encode()


def _unsorted(manifest: bytes) -> bytes:
    return json.dumps(dict(reversed(loads(manifest).items())), separators=(",", ":")).encode()


NON_CANONICAL: dict[str, Callable[[bytes], bytes]] = {
    "indented": _indented,
    "keys-unsorted": _unsorted,
    "trailing-newline": lambda manifest: manifest + b"\n",
}


@pytest.mark.parametrize("kind", NON_CANONICAL)
def test_resigned_non_canonical_manifest(kind: str, good: Good, tmp_path: Path) -> None:
    text = NON_CANONICAL[kind](good.members[MANIFEST])
    assert loads(text) == loads(good.members[MANIFEST])
    path = bundle(tmp_path, {**good.members, MANIFEST: text, **signed(text, good.key)})
    assert invalid(path, good) == [f"{MANIFEST}: not in canonical JSON form (RFC 8785)"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (lambda m: m[:-1] + b',"tenant":"acme"}', "duplicate key 'tenant'"),
        (
            lambda m: m.replace(b'"format_version":1', b'"format_version":1.0'),
            "number 1.0 is not an integer",
        ),
        (lambda m: m[:-1], "not valid JSON"),
    ],
    ids=["duplicate-key", "float", "not-json"],
)
def test_resigned_manifest_that_is_not_strict_json(
    text: Callable[[bytes], bytes], fragment: str, good: Good, tmp_path: Path
) -> None:
    data = text(good.members[MANIFEST])
    path = bundle(tmp_path, {**good.members, MANIFEST: data, **signed(data, good.key)})
    problems = invalid(path, good)
    assert len(problems) == 1
    assert_problem(problems, f"{MANIFEST}: ", fragment)


@pytest.mark.parametrize(("field", "value"), [("format", "zip"), ("format_version", 2)])
def test_resigned_manifest_of_another_format(
    field: str, value: object, good: Good, tmp_path: Path
) -> None:
    path = bundle(tmp_path, resign(good.members, good.key, lambda m: m.update({field: value})))
    assert invalid(path, good) == [f"{MANIFEST}: not a p402-audit-bundle version 1 manifest"]


def test_resigned_manifest_whose_total_cost_disagrees(good: Good, tmp_path: Path) -> None:
    cost = loads(good.members[MANIFEST])["totals"]["cost"]
    path = bundle(tmp_path, resign(good.members, good.key, lambda m: m["totals"].update(cost="1")))
    assert invalid(path, good) == [f"{EVENTS}: costs sum to {cost}, the manifest's total says 1"]


def test_resigned_manifest_whose_rounded_total_disagrees(good: Good, tmp_path: Path) -> None:
    path = bundle(
        tmp_path, resign(good.members, good.key, lambda m: m["totals"].update(cost_rounded="0.35"))
    )
    assert invalid(path, good) == [
        f"{EVENTS}: costs round to 0.34, the manifest's rounded total says 0.35"
    ]


def test_resigned_manifest_whose_unpriced_count_disagrees(good: Good, tmp_path: Path) -> None:
    path = bundle(
        tmp_path, resign(good.members, good.key, lambda m: m["totals"].update(unpriced_events=2))
    )
    assert invalid(path, good) == [f"{EVENTS}: 1 unpriced events, the manifest says 2"]


@pytest.mark.parametrize("count", [23, 25])
def test_resigned_manifest_whose_event_count_disagrees(
    count: int, good: Good, tmp_path: Path
) -> None:
    path = bundle(
        tmp_path, resign(good.members, good.key, lambda m: m["events"].update(count=count))
    )
    assert invalid(path, good) == [f"{EVENTS}: 24 events, the manifest's event count says {count}"]


def test_resigned_manifest_whose_merkle_size_disagrees(good: Good, tmp_path: Path) -> None:
    path = bundle(tmp_path, resign(good.members, good.key, lambda m: m["merkle"].update(size=25)))
    assert invalid(path, good) == [
        f"{CHECKPOINT}: the signed tree head is not the manifest's (origin, size, root)",
        f"{EVENTS}: 24 events, the manifest's Merkle tree size says 25",
    ]


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [("merkle", "size", 25), ("totals", "cost_rounded", "0.35")],
    ids=["merkle-size", "cost-rounded"],
)
def test_resigned_manifest_problem_names_the_wrong_value(
    section: str, field: str, value: object, good: Good, tmp_path: Path
) -> None:
    path = bundle(
        tmp_path, resign(good.members, good.key, lambda m: m[section].update({field: value}))
    )
    problems = invalid(path, good)
    assert any(p.startswith(f"{EVENTS}: ") and str(value) in p for p in problems), problems


def test_resigned_manifest_with_the_merkle_root_of_another_ledger(
    good: Good, tmp_path: Path
) -> None:
    other = root([leaf_hash(line) for line in reversed(ledger(good))]).hex()
    path = bundle(
        tmp_path, resign(good.members, good.key, lambda m: m["merkle"].update(root=other))
    )
    assert invalid(path, good) == [
        f"{CHECKPOINT}: the signed tree head is not the manifest's (origin, size, root)",
        f"{EVENTS}: Merkle root does not match the manifest",
        f"{PDF}: embedded summary Merkle root {loads(good.members[MANIFEST])['merkle']['root']} "
        f"!= manifest {other}",
    ]


# Ledger edits with only the manifest's file hashes and sizes updated and re-signed.


def test_ledger_with_two_lines_swapped(good: Good, tmp_path: Path) -> None:
    lines = ledger(good)
    lines[1], lines[2] = lines[2], lines[1]
    problems = invalid(bundle(tmp_path, with_ledger(good, lines)), good)
    assert f"{EVENTS}:3: out of order or repeated" in problems
    assert f"{EVENTS}: Merkle root does not match the manifest" in problems
    assert f"{RECEIPTS}:2: does not match event 1 of the ledger" in problems


def test_ledger_with_a_line_dropped(good: Good, tmp_path: Path) -> None:
    lines = ledger(good)
    del lines[5]
    problems = invalid(bundle(tmp_path, with_ledger(good, lines)), good)
    assert f"{EVENTS}: 23 events, the manifest's event count says 24" in problems
    assert_problem(problems, f"{EVENTS}: ", "costs sum to")
    assert f"{EVENTS}: Merkle root does not match the manifest" in problems
    assert f"{RECEIPTS}: 24 receipts for 23 events" in problems


def test_ledger_with_a_line_duplicated(good: Good, tmp_path: Path) -> None:
    lines = ledger(good)
    lines.insert(6, lines[5])
    problems = invalid(bundle(tmp_path, with_ledger(good, lines)), good)
    assert f"{EVENTS}:7: out of order or repeated" in problems
    assert f"{EVENTS}:7: event_id 'evt-005' appears twice" in problems
    assert f"{EVENTS}: 25 events, the manifest's event count says 24" in problems


def test_ledger_with_a_line_inserted(good: Good, tmp_path: Path) -> None:
    lines = ledger(good)
    lines.insert(1, rewrite(lines[0], event_id="evt-000-forged"))
    problems = invalid(bundle(tmp_path, with_ledger(good, lines)), good)
    assert f"{EVENTS}: 25 events, the manifest's event count says 24" in problems
    assert_problem(problems, f"{EVENTS}: ", "costs sum to")
    assert f"{EVENTS}: Merkle root does not match the manifest" in problems
    assert not any(p.startswith(f"{EVENTS}:2:") for p in problems)  # the line itself is fine


# Ledger edits fully re-sealed: receipts, count, totals and root all agree with the new ledger.


def test_resealed_ledger_with_two_lines_swapped(good: Good, tmp_path: Path) -> None:
    lines = ledger(good)
    lines[1], lines[2] = lines[2], lines[1]
    assert ledger_problems(invalid(bundle(tmp_path, reseal(good, lines)), good)) == [
        f"{EVENTS}:3: out of order or repeated"
    ]


def test_resealed_ledger_with_a_line_duplicated(good: Good, tmp_path: Path) -> None:
    lines = ledger(good)
    lines.insert(6, lines[5])
    assert ledger_problems(invalid(bundle(tmp_path, reseal(good, lines)), good)) == [
        f"{EVENTS}:7: out of order or repeated",
        f"{EVENTS}:7: event_id 'evt-005' appears twice",
    ]


def test_resealed_ledger_with_an_event_id_reused_later(good: Good, tmp_path: Path) -> None:
    lines = ledger(good)
    lines.append(rewrite(lines[0], occurred_at="2026-10-31T00:00:00Z"))
    assert ledger_problems(invalid(bundle(tmp_path, reseal(good, lines)), good)) == [
        f"{EVENTS}:25: event_id 'evt-000' appears twice"
    ]


@pytest.mark.parametrize(
    "encode",
    [
        lambda record: json.dumps(dict(reversed(record.items())), separators=(",", ":")).encode(),
        lambda record: json.dumps(record, sort_keys=True).encode(),
    ],
    ids=["keys-unsorted", "spaces"],
)
def test_resealed_non_canonical_ledger_line(
    encode: Callable[[dict[str, Any]], bytes], good: Good, tmp_path: Path
) -> None:
    lines = ledger(good)
    lines[3] = encode(loads(lines[3]))
    assert loads(lines[3]) == loads(ledger(good)[3])
    problems = invalid(bundle(tmp_path, reseal(good, lines)), good)
    assert f"{EVENTS}:4: not a canonical event (not in canonical JSON form)" in problems


def test_resealed_event_of_another_tenant(good: Good, tmp_path: Path) -> None:
    lines = ledger(good)
    lines[3] = rewrite(lines[3], tenant="globex")
    assert ledger_problems(invalid(bundle(tmp_path, reseal(good, lines)), good)) == [
        f"{EVENTS}:4: event of tenant 'globex'"
    ]


@pytest.mark.parametrize(
    ("index", "moment"),
    [
        (0, "2026-09-30T23:59:59.999999Z"),
        (23, "2026-11-01T00:00:00Z"),
        (23, "2027-01-01T00:00:00Z"),
    ],
    ids=["before-start", "at-end", "next-year"],
)
def test_resealed_event_outside_the_period(
    index: int, moment: str, good: Good, tmp_path: Path
) -> None:
    lines = ledger(good)
    lines[index] = rewrite(lines[index], occurred_at=moment)
    problems = ledger_problems(invalid(bundle(tmp_path, reseal(good, lines)), good))
    assert problems == [f"{EVENTS}:{index + 1}: occurred_at outside the period"]


def test_resealed_event_at_the_last_instant_of_the_period_is_valid(
    good: Good, tmp_path: Path
) -> None:
    lines = ledger(good)
    lines[-1] = rewrite(lines[-1], occurred_at="2026-10-31T23:59:59.999999Z")
    outcome = verify_bundle(bundle(tmp_path, reseal(good, lines)), good.key.public)
    assert ledger_problems(outcome.problems) == []


@pytest.mark.parametrize(
    "changes",
    [{"occurred_at": "2026-10-01T14:00:00+05:00"}, {"cost": " 1.2345678910E-3"}],
    ids=["time-offset", "cost-exponent"],
)
def test_resealed_event_with_non_canonical_field_text(
    changes: dict[str, str], good: Good, tmp_path: Path
) -> None:
    lines = ledger(good)
    lines[0] = rewrite(lines[0], **changes)  # the same instant, the same amount
    problems = invalid(bundle(tmp_path, reseal(good, lines)), good)
    assert any(p.startswith(f"{EVENTS}:1: ") for p in problems), problems


# Receipts that do not match the ledger (hashes and sizes updated and re-signed).


def _receipt(line: bytes, **changes: Any) -> bytes:
    record = loads(line)
    record.update(changes)
    return dumps(record)


def test_receipts_with_two_lines_swapped(good: Good, tmp_path: Path) -> None:
    lines = receipts(good)
    lines[0], lines[1] = lines[1], lines[0]
    path = bundle(tmp_path, resign({**good.members, RECEIPTS: joined(lines)}, good.key))
    assert invalid(path, good) == [
        f"{RECEIPTS}:1: does not match event 0 of the ledger",
        f"{RECEIPTS}:2: does not match event 1 of the ledger",
    ]


@pytest.mark.parametrize(
    "field",
    ["leaf_hash", "leaf_index"],
)
def test_receipt_with_a_wrong_leaf(field: str, good: Good, tmp_path: Path) -> None:
    lines = receipts(good)
    lines[3] = _receipt(lines[3], **{field: loads(lines[4])[field]})
    path = bundle(tmp_path, resign({**good.members, RECEIPTS: joined(lines)}, good.key))
    assert invalid(path, good) == [f"{RECEIPTS}:4: does not match event 3 of the ledger"]


def test_receipt_naming_another_event(good: Good, tmp_path: Path) -> None:
    lines = receipts(good)
    lines[3] = _receipt(lines[3], event_id="evt-999")
    path = bundle(tmp_path, resign({**good.members, RECEIPTS: joined(lines)}, good.key))
    assert invalid(path, good) == [f"{RECEIPTS}:4: does not match event 3 of the ledger"]


def test_receipts_missing_one_or_with_one_extra(good: Good, tmp_path: Path) -> None:
    lines = receipts(good)
    path = bundle(tmp_path, resign({**good.members, RECEIPTS: joined(lines[:-1])}, good.key))
    assert invalid(path, good) == [f"{RECEIPTS}: 23 receipts for 24 events"]
    path = bundle(
        tmp_path, resign({**good.members, RECEIPTS: joined([*lines, lines[-1]])}, good.key)
    )
    assert invalid(path, good) == [
        f"{RECEIPTS}:25: a receipt for no event of the ledger",
        f"{RECEIPTS}: 25 receipts for 24 events",
    ]


def test_receipt_that_is_not_json(good: Good, tmp_path: Path) -> None:
    lines = receipts(good)
    lines[1] = b"{not json"
    path = bundle(tmp_path, resign({**good.members, RECEIPTS: joined(lines)}, good.key))
    assert invalid(path, good) == [f"{RECEIPTS}:2: does not match event 1 of the ledger"]


# The lookup members (tree nodes, event-id index, line offsets) are rebuilt from the ledger.


def _patched(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def test_the_tree_member_holds_the_levels_from_the_blocks_up(
    good: Good, small_blocks: Good
) -> None:
    leaves = [leaf_hash(line) for line in ledger(good)]
    full = MerkleTree(leaves)
    assert loads(good.members[MANIFEST])["receipts"]["tree_from_level"] == TREE_FROM_LEVEL
    assert good.members[TREE] == full.root  # one block: its root is the tree's
    assert loads(small_blocks.members[MANIFEST])["receipts"]["tree_from_level"] == SMALL_LEVEL
    assert small_blocks.members[TREE] == b"".join(
        b"".join(level) for level in full.levels()[SMALL_LEVEL:]
    )
    assert len(small_blocks.members[TREE]) == (6 + 3 + 2 + 1) * 32
    assert valid(small_blocks.path, small_blocks.key.public) == []


def test_tree_with_a_forged_node(good: Good, small_blocks: Good, tmp_path: Path) -> None:
    tree = small_blocks.members[TREE]
    forged = _patched(tree, (6 + 1) * 32, bytes(32))  # level 3 starts after level 2's 6 nodes
    path = bundle(tmp_path, resign({**small_blocks.members, TREE: forged}, small_blocks.key))
    assert invalid(path, small_blocks) == [f"{TREE}: node 1 of level 3 is not the ledger's"]
    path = bundle(tmp_path, resign({**good.members, TREE: bytes(32)}, good.key))
    assert invalid(path, good) == [f"{TREE}: node 0 of level 10 is not the ledger's"]


def test_tree_cut_short_or_too_long(small_blocks: Good, tmp_path: Path) -> None:
    good, tree = small_blocks, small_blocks.members[TREE]
    path = bundle(tmp_path, resign({**good.members, TREE: tree[:-32]}, good.key))
    assert invalid(path, good) == [f"{TREE}: node 0 of level 5 is not the ledger's"]
    path = bundle(tmp_path, resign({**good.members, TREE: tree + bytes(32)}, good.key))
    assert invalid(path, good) == [
        f"{TREE}: longer than the {len(tree)} bytes of the ledger's tree"
    ]


def test_tree_of_every_level_where_the_manifest_says_level_10(good: Good, tmp_path: Path) -> None:
    full = tree_bytes([leaf_hash(line) for line in ledger(good)], 0)
    path = bundle(tmp_path, resign({**good.members, TREE: full}, good.key))
    assert invalid(path, good) == [f"{TREE}: node 0 of level 10 is not the ledger's"]


@pytest.mark.parametrize(("level", "fragment"), [(17, "from 0 to 16"), ("10", "from 0 to 16")])
def test_manifest_with_a_tree_level_out_of_range(
    level: object, fragment: str, good: Good, tmp_path: Path
) -> None:
    edit = lambda m: m["receipts"].update(tree_from_level=level)  # noqa: E731 - one line
    path = bundle(tmp_path, resign(good.members, good.key, edit))
    assert_problem(invalid(path, good), f"{MANIFEST}: receipts.tree_from_level", fragment)


def test_index_pointing_an_event_at_another_leaf(good: Good, tmp_path: Path) -> None:
    index = bytearray(good.members[INDEX])
    index[12 * 3 + 11] ^= 1  # the low bit of record 3's leaf index
    path = bundle(tmp_path, resign({**good.members, INDEX: bytes(index)}, good.key))
    assert invalid(path, good) == [f"{INDEX}: record 3 is not the ledger's"]


def test_index_with_a_record_too_many(good: Good, tmp_path: Path) -> None:
    index = good.members[INDEX]
    path = bundle(tmp_path, resign({**good.members, INDEX: index + index[-12:]}, good.key))
    assert invalid(path, good) == [f"{INDEX}: more records than the ledger's 24 events"]


def _blocks_with(good: Good, record: int, column: int, delta: int) -> bytes:
    blocks = bytearray(good.members[BLOCKS])
    at = record * 16 + column * 8
    blocks[at : at + 8] = (int.from_bytes(blocks[at : at + 8], "big") + delta).to_bytes(8, "big")
    return bytes(blocks)


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (0, f"{BLOCKS}: block 0 does not start where line 1 of the ledger starts"),
        (1, f"{BLOCKS}: its last record is not the ledger's size"),
    ],
)
def test_blocks_with_a_shifted_text_offset(
    record: int, problem: str, good: Good, tmp_path: Path
) -> None:
    blocks = _blocks_with(good, record, 1, 1)
    path = bundle(tmp_path, resign({**good.members, BLOCKS: blocks}, good.key))
    assert invalid(path, good) == [problem]


def test_blocks_with_a_record_too_many_or_too_few(good: Good, tmp_path: Path) -> None:
    blocks = good.members[BLOCKS]
    for forged in (blocks + blocks[-16:], blocks[:-16]):
        path = bundle(tmp_path, resign({**good.members, BLOCKS: forged}, good.key))
        assert invalid(path, good) == [
            f"{BLOCKS}: {len(forged)} bytes, not the 2 records of a ledger of 24 lines"
        ]


def test_blocks_whose_compressed_offsets_do_not_increase(good: Good, tmp_path: Path) -> None:
    forged = _blocks_with(good, 1, 0, -int.from_bytes(good.members[BLOCKS][16:24], "big"))
    path = bundle(tmp_path, resign({**good.members, BLOCKS: forged}, good.key))
    assert invalid(path, good) == [f"{BLOCKS}: compressed offset 1 does not follow the previous"]


def test_forged_compressed_offset_costs_time_never_a_wrong_receipt(
    good: Good, tmp_path: Path
) -> None:
    # Not recomputed by the verifier (a re-zipped bundle changes them too): the extractor finds
    # the block does not inflate there and inflates the ledger from its start instead.
    forged = _blocks_with(good, 1, 0, -3)
    members = resign({**good.members, BLOCKS: forged}, good.key)
    path = tmp_path / "forged.zip"
    with zipfile.ZipFile(good.path) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():  # the good ledger's own deflate stream, kept as it is
            target.writestr(info, members[info.filename])
    assert valid(path, good.key.public) == []
    assert receipt_from_bundle(path, "evt-011") == receipt_from_bundle(good.path, "evt-011")


def test_blocks_of_another_text_give_an_error_not_a_wrong_receipt(
    good: Good, tmp_path: Path
) -> None:
    forged = _blocks_with(good, 1, 1, -1)  # the block one byte short: its last line cut
    path = bundle(tmp_path, resign({**good.members, BLOCKS: forged}, good.key))
    with pytest.raises(P402Error, match="does not hold whole lines"):
        receipt_from_bundle(path, "evt-011")


def test_lookup_members_of_another_ledger_are_named_beside_the_ledger(
    good: Good, tmp_path: Path
) -> None:
    # The ledger edited and re-signed, its tree, index and block table left as they were.
    lines = ledger(good)
    lines[1], lines[2] = lines[2], lines[1]
    problems = invalid(bundle(tmp_path, with_ledger(good, lines)), good)
    assert f"{TREE}: node 0 of level 10 is not the ledger's" in problems
    assert_problem(problems, f"{INDEX}: record ", "is not the ledger's")
    assert f"{EVENTS}: Merkle root does not match the manifest" in problems


@pytest.mark.parametrize("name", LOOKUP)
def test_lookup_member_dropped_from_a_resigned_manifest(
    name: str, good: Good, tmp_path: Path
) -> None:
    problems = invalid(bundle(tmp_path, resign(without(good.members, name), good.key)), good)
    assert_problem(problems, f"{MANIFEST}: ", "receipts must name")


def test_a_bundle_without_the_lookup_members_still_verifies(good: Good, tmp_path: Path) -> None:
    # Bundles made before p402 wrote them: no receipts section, no tree, index or offsets.
    members = {n: d for n, d in good.members.items() if n not in LOOKUP}
    path = bundle(tmp_path, resign(members, good.key, lambda m: m.pop("receipts", None)))
    assert valid(path, good.key.public) == []
    receipt = json.loads(receipt_from_bundle(path, "evt-007"))
    assert verify_receipt(dumps(receipt), [good.key.public])[1]["event_id"] == "evt-007"


def test_a_bundle_of_the_stored_ledger_layout_still_verifies(good: Good, tmp_path: Path) -> None:
    # The previous layout: the ledger stored, ledger/offsets.bin instead of the block table,
    # every level of the tree.
    full = tree_bytes([leaf_hash(line) for line in ledger(good)], 0)
    members = {**without(good.members, BLOCKS), OFFSETS: offsets_member(ledger(good)), TREE: full}
    members = resign(members, good.key, lambda m: m.update(receipts=STORED_LEDGER_LOOKUP))
    path = tmp_path / "stored.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(
                name, data, zipfile.ZIP_STORED if name != PDF else zipfile.ZIP_DEFLATED
            )
    assert valid(path, good.key.public) == []
    assert receipt_from_bundle(path, "evt-011") == receipt_from_bundle(good.path, "evt-011")
    shifted = (
        offsets_member(ledger(good))[:8]
        + (1).to_bytes(8, "big")
        + offsets_member(ledger(good))[16:]
    )
    path = bundle(tmp_path, resign({**members, OFFSETS: shifted}, good.key))
    assert invalid(path, good) == [f"{OFFSETS}: offset 1 is not where line 2 of the ledger starts"]


def test_a_bundle_of_the_full_tree_layout_still_verifies(good: Good, tmp_path: Path) -> None:
    # The previous layout: blocks of 1,024 lines, every level of the tree, no tree_from_level;
    # its VERIFY.txt says so (the bundles written then still state their manifest).
    full = tree_bytes([leaf_hash(line) for line in ledger(good)], 0)
    members = resign(
        {**good.members, TREE: full}, good.key, lambda m: m.update(receipts=RECEIPTS_SECTION)
    )
    assert b"every node of that tree" in members[VERIFY_TEXT]
    assert b"every node of that tree" not in good.members[VERIFY_TEXT]
    path = tmp_path / "full.zip"
    with zipfile.ZipFile(good.path) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():  # the good ledger's own deflate stream, kept as it is
            target.writestr(info, members[info.filename])
    assert valid(path, good.key.public) == []
    for line in ledger(good)[::7]:
        event_id = loads(line)["event_id"]
        assert receipt_from_bundle(path, event_id) == receipt_from_bundle(good.path, event_id)
    forged = _patched(full, (24 + 5) * 32, bytes(32))  # level 1 starts after the 24 leaves
    path = bundle(tmp_path, resign({**members, TREE: forged}, good.key))
    assert invalid(path, good) == [f"{TREE}: node 5 of level 1 is not the ledger's"]


def test_every_receipt_of_a_bundle_of_small_blocks_is_the_full_trees(
    small_blocks: Good,
) -> None:
    leaves = [leaf_hash(line) for line in ledger(small_blocks)]
    full = MerkleTree(leaves)
    for index, line in enumerate(ledger(small_blocks)):
        receipt = json.loads(receipt_from_bundle(small_blocks.path, loads(line)["event_id"]))
        assert receipt["leaf_index"] == index
        assert receipt["inclusion_proof"] == [node.hex() for node in full.inclusion_proof(index)]
        verify_receipt(dumps(receipt), [small_blocks.key.public])


def test_receipt_from_a_deflated_copy_reads_the_same(good: Good, tmp_path: Path) -> None:
    # write_zip deflates every member anew (no full flushes, so the block table's compressed
    # offsets are wrong) and the lookup members too: the extractor then inflates the ledger.
    path = bundle(tmp_path, good.members)
    assert receipt_from_bundle(path, "evt-011") == receipt_from_bundle(good.path, "evt-011")


def test_receipt_from_a_bundle_with_a_forged_tree_is_refused(
    small_blocks: Good, tmp_path: Path
) -> None:
    good = small_blocks
    forged = _patched(good.members[TREE], 6 * 32, bytes(32))  # node 0 of level 3
    path = bundle(tmp_path, resign({**good.members, TREE: forged}, good.key))
    assert invalid(path, good) == [f"{TREE}: node 0 of level 3 is not the ledger's"]
    lines = ledger(good)
    for index in (8, 15):  # blocks 2 and 3: node 0 of level 3 is in their proofs
        with pytest.raises(P402Error, match="does not lead to the bundle's checkpoint"):
            receipt_from_bundle(path, loads(lines[index])["event_id"])
    for index in (0, 7, 16, 23):  # the others' proofs do not hold it: their receipts stand
        event_id = loads(lines[index])["event_id"]
        assert receipt_from_bundle(path, event_id) == receipt_from_bundle(good.path, event_id)


def test_receipt_from_a_bundle_with_a_forged_root_node_is_right_or_refused(
    good: Good, tmp_path: Path
) -> None:
    # One block: its proofs come from its lines alone, so a forged tree member changes nothing.
    path = bundle(tmp_path, resign({**good.members, TREE: bytes(32)}, good.key))
    assert receipt_from_bundle(path, "evt-002") == receipt_from_bundle(good.path, "evt-002")


def test_receipt_from_a_bundle_with_a_forged_index_finds_nothing_false(
    good: Good, tmp_path: Path
) -> None:
    # Every record pointed at leaf 0: other events are not found, never mistaken for leaf 0.
    index = b"".join(
        good.members[INDEX][i : i + 8] + bytes(4) for i in range(0, len(good.members[INDEX]), 12)
    )
    path = bundle(tmp_path, resign({**good.members, INDEX: index}, good.key))
    with pytest.raises(P402Error, match="no event 'evt-009'"):
        receipt_from_bundle(path, "evt-009")


# A signed manifest that is canonical but malformed must still give problems, never raise.


def _drop(name: str) -> Callable[[Good], Members]:
    return lambda good: resign(without(good.members, name), good.key)


def _edit(edit: Callable[[Manifest], None]) -> Callable[[Good], Members]:
    return lambda good: resign(good.members, good.key, edit)


def _malformed(make: Callable[[Good], Members], fragment: str, id_: str) -> Any:
    return pytest.param(make, fragment, id=id_)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        _malformed(_drop(EVENTS), f"does not list {EVENTS}", "no-ledger-member"),
        _malformed(_drop(RECEIPTS), f"does not list {RECEIPTS}", "no-receipts-member"),
        _malformed(_edit(lambda m: m.pop("period")), "period.label must be", "no-period"),
        _malformed(
            _edit(lambda m: m["period"].update(start="garbage")),
            "period.start must be",
            "bad-period",
        ),
        _malformed(
            _edit(lambda m: m["files"][0].pop("sha256")), "files[0] must have", "file-without-hash"
        ),
        _malformed(
            _edit(lambda m: m.update(files="all of them")),
            "files must be a list",
            "files-not-a-list",
        ),
    ],
)
def test_resigned_malformed_manifest_is_a_problem_not_a_crash(
    make: Callable[[Good], Members], fragment: str, good: Good, tmp_path: Path
) -> None:
    assert_problem(invalid(bundle(tmp_path, make(good)), good), f"{MANIFEST}: ", fragment)


# --------------------------------------------------------------------------------------------
# 7. Hostile files that are not bundles at all
# --------------------------------------------------------------------------------------------

NOT_ZIPS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda data: b"",
    "random": lambda data: hashlib.shake_256(b"p402").digest(4096),
    "first-half": lambda data: data[: len(data) // 2],
    "all-but-last-byte": lambda data: data[:-1],
}


@pytest.mark.parametrize("kind", NOT_ZIPS)
def test_not_a_zip(kind: str, good: Good, tmp_path: Path) -> None:
    path = tmp_path / "hostile.zip"
    path.write_bytes(NOT_ZIPS[kind](good.data))
    problems = invalid(path, good)
    assert len(problems) == 1
    assert_problem(problems, "hostile.zip: not a readable zip archive", "")
    assert_cli_invalid(run_cli("verify", path, "--key", good.public_key), problems[0])


def test_empty_zip(good: Good, tmp_path: Path) -> None:
    path = write_zip(tmp_path / "empty.zip", [])
    assert invalid(path, good) == [
        f"{MANIFEST}: missing",
        f"{SIGNATURE}: missing",
        f"{SSH_SIGNATURE}: missing",
    ]


@pytest.mark.parametrize("cut", range(1, 32))
def test_bundle_cut_anywhere_is_a_problem_not_a_crash(cut: int, good: Good, tmp_path: Path) -> None:
    at = len(good.data) * cut // 32
    for data in (good.data[:at], good.data[at:]):
        path = tmp_path / "cut.zip"
        path.write_bytes(data)
        assert invalid(path, good)


# --------------------------------------------------------------------------------------------
# 8. The CLI
# --------------------------------------------------------------------------------------------


def test_cli_json_of_a_tampered_bundle(good: Good, tmp_path: Path) -> None:
    path = bundle(tmp_path, {**good.members, EVENTS: flip(good.members[EVENTS])})
    run = run_cli("verify", path, "--key", good.public_key, "--json")
    assert run.returncode == 1, run.stderr
    assert run.stderr == ""
    report = json.loads(run.stdout)
    assert report["valid"] is False
    assert report["problems"] == [f"{EVENTS}: SHA-256 does not match the manifest"]
    assert report["key_id"] == good.key.public.key_id
    assert report["tenant"] == TENANT


def test_cli_json_of_a_non_zip(good: Good, tmp_path: Path) -> None:
    path = tmp_path / "hostile.zip"
    path.write_bytes(b"")
    run = run_cli("verify", path, "--key", good.public_key, "--json")
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["valid"] is False
    assert len(report["problems"]) == 1
    assert report["problems"][0].startswith("hostile.zip: not a readable zip archive")
    assert report["tenant"] is None


def test_cli_json_of_the_good_bundle(good: Good) -> None:
    run = run_cli("verify", good.path, "--key", good.public_key, "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    manifest = loads(good.members[MANIFEST])
    assert report["valid"] is True
    assert report["problems"] == []
    assert report["events"] == 24
    assert report["merkle_root"] == manifest["merkle"]["root"]
    assert report["total"] == manifest["totals"]["cost"]


def test_cli_one_problem_is_one_line(good: Good, tmp_path: Path) -> None:
    path = bundle(tmp_path, {**good.members, SIGNATURE: b""})
    assert_cli_invalid(run_cli("verify", path, "--key", good.public_key), good.signature_problem())


def test_cli_headline_comes_first_when_there_are_several_problems(
    good: Good, tmp_path: Path
) -> None:
    lines = ledger(good)
    del lines[5]
    path = bundle(tmp_path, with_ledger(good, lines))
    problems = invalid(path, good)
    assert len(problems) > 1
    run = run_cli("verify", path, "--key", good.public_key)
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()
    assert line == f"invalid: {problems[0]} (and {len(problems) - 1} more; --json lists them all)"


# --------------------------------------------------------------------------------------------
# 9. Determinism
# --------------------------------------------------------------------------------------------


def _digests(path: Path) -> dict[str, str]:
    return {name: sha256(data) for name, data in read_members(path.read_bytes()).items()}


def test_same_ledger_period_and_key_give_the_same_bytes(
    small_bundle: AuditResult, sqlite_ledger: Ledger, signing_key: SigningKey, tmp_path: Path
) -> None:
    again = run_audit(
        sqlite_ledger, tenant=TENANT, period=PERIOD, key=signing_key, out_dir=tmp_path / "again"
    )
    assert again.bundle != small_bundle.bundle
    assert again.bundle.name == small_bundle.bundle.name
    assert _digests(again.bundle) == _digests(small_bundle.bundle)
    assert sha256(again.bundle.read_bytes()) == sha256(small_bundle.bundle.read_bytes())
    # Another database, filled in the opposite order: still the same bytes.
    other = Ledger.open(str(tmp_path / "reversed.db"))
    try:
        other.add(list(reversed(small_events())))
        third = run_audit(
            other, tenant=TENANT, period=PERIOD, key=signing_key, out_dir=tmp_path / "third"
        )
    finally:
        other.close()
    assert _digests(third.bundle) == _digests(small_bundle.bundle)
    assert sha256(third.bundle.read_bytes()) == sha256(small_bundle.bundle.read_bytes())


# --------------------------------------------------------------------------------------------
# 10. The verifier stands alone
# --------------------------------------------------------------------------------------------


def test_importing_the_verifier_loads_no_ledger_database_or_report_code() -> None:
    code = "import json, sys, p402.bundles.verify; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    modules = set(json.loads(run.stdout))
    assert "p402.bundles.verify" in modules
    heavy = (
        "p402.ledger",
        "p402.ingest",
        "p402.reporting",
        "p402.audit",
        "sqlalchemy",
        "weasyprint",
        "openpyxl",
    )
    loaded = sorted(m for m in modules if m in heavy or m.startswith(tuple(f"{h}." for h in heavy)))
    assert loaded == []


# --------------------------------------------------------------------------------------------
# 11. Stock tools: OpenSSL checks the manifest signature on its own
# --------------------------------------------------------------------------------------------


def _openssl_verify(
    public_key: Path, manifest: Path, signature: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(public_key), "-rawin",
         "-in", str(manifest), "-sigfile", str(signature)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_verifies_the_manifest_signature(good: Good, tmp_path: Path) -> None:
    with zipfile.ZipFile(good.path) as archive:
        archive.extract(MANIFEST, tmp_path)
        archive.extract(SIGNATURE, tmp_path)
    manifest, signature = tmp_path / MANIFEST, tmp_path / SIGNATURE
    accepted = _openssl_verify(good.public_key, manifest, signature)
    assert accepted.returncode == 0, accepted.stderr
    assert "Signature Verified Successfully" in accepted.stdout
    manifest.write_bytes(flip(manifest.read_bytes()))
    refused = _openssl_verify(good.public_key, manifest, signature)
    assert refused.returncode != 0
    assert "Signature Verification Failure" in refused.stdout + refused.stderr


# --------------------------------------------------------------------------------------------
# 12. Checks beyond the member hashes: framing, the instructions' figures, the key named
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("prepended", "does not start with a zip entry"),
        ("appended", "does not end with the zip directory"),
    ],
)
def test_data_around_the_archive(kind: str, fragment: str, good: Good, tmp_path: Path) -> None:
    junk = b"%PDF-1.7 not part of the bundle\n"
    path = tmp_path / "framed.zip"
    path.write_bytes(junk + good.data if kind == "prepended" else good.data + junk)
    assert_problem(invalid(path, good), path.name, fragment)


def test_verify_text_with_other_figures(good: Good, tmp_path: Path) -> None:
    forged = good.members[VERIFY_TEXT].replace(b"Total cost: 0.34", b"Total cost: 0.03")
    assert forged != good.members[VERIFY_TEXT]
    members = {**good.members, VERIFY_TEXT: forged}
    content = {n: d for n, d in sorted(members.items()) if n not in SIGNED}
    manifest = loads(good.members[MANIFEST])
    manifest["files"] = [
        {"path": n, "sha256": sha256(d), "size": len(d)} for n, d in content.items()
    ]
    data = dumps(manifest)
    path = bundle(tmp_path, {**content, MANIFEST: data, **signed(data, good.key)})
    assert invalid(path, good) == [f"{VERIFY_TEXT}: does not state the manifest's figures"]


def test_manifest_naming_another_key(good: Good, tmp_path: Path) -> None:
    path = bundle(tmp_path, resign(good.members, good.key, lambda m: m.update(key_id="0" * 64)))
    assert invalid(path, good) == [
        f"{MANIFEST}: names key {'0' * 16}, signed by {good.key.public.key_id[:16]}"
    ]


# --------------------------------------------------------------------------------------------
# 13. The SSH signature and the signed checkpoint
# --------------------------------------------------------------------------------------------


def test_ssh_signature_for_another_namespace(good: Good, tmp_path: Path) -> None:
    other = sign_sshsig(good.members[MANIFEST], good.key, namespace="file")
    path = bundle(tmp_path, {**good.members, SSH_SIGNATURE: other})
    assert invalid(path, good) == [f"{SSH_SIGNATURE}: is for namespace 'file', not 'p402-audit'"]


def test_ssh_signature_by_another_key(good: Good, tmp_path: Path) -> None:
    path = bundle(
        tmp_path, {**good.members, SSH_SIGNATURE: sign_sshsig(good.members[MANIFEST], generate())}
    )
    assert invalid(path, good) == [f"{SSH_SIGNATURE}: is not by the trusted key"]


def test_checkpoint_of_another_tree(good: Good, tmp_path: Path) -> None:
    manifest = loads(good.members[MANIFEST])
    forged = Checkpoint(manifest["merkle"]["origin"], 24, bytes(32))
    members = {**good.members, CHECKPOINT: sign_checkpoint(forged, [good.key]).encode()}
    path = bundle(tmp_path, resign(members, good.key))
    assert invalid(path, good) == [
        f"{CHECKPOINT}: the signed tree head is not the manifest's (origin, size, root)"
    ]


def test_checkpoint_signed_by_another_key(good: Good, tmp_path: Path) -> None:
    manifest = loads(good.members[MANIFEST])["merkle"]
    head = Checkpoint(manifest["origin"], manifest["size"], bytes.fromhex(manifest["root"]))
    members = {**good.members, CHECKPOINT: sign_checkpoint(head, [generate()]).encode()}
    path = bundle(tmp_path, resign(members, good.key))
    assert invalid(path, good) == [f"{CHECKPOINT}: no trusted key signed the checkpoint"]


def test_ssh_keygen_verifies_the_manifest(good: Good, tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    (tmp_path / MANIFEST).write_bytes(good.members[MANIFEST])
    (tmp_path / "sshsig").write_bytes(good.members[SSH_SIGNATURE])
    signers = good.public_key.parent / "allowed_signers"

    def verify(namespace: str, manifest: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "p402", "-n", namespace,
             "-s", str(tmp_path / "sshsig")],
            input=manifest, capture_output=True, check=False,
        )  # fmt: skip

    good_run = verify("p402-audit", good.members[MANIFEST])
    assert good_run.returncode == 0, good_run.stderr
    assert verify("file", good.members[MANIFEST]).returncode != 0
    assert verify("p402-audit", flip(good.members[MANIFEST])).returncode != 0


def test_ledger_line_with_a_float_count(good: Good, tmp_path: Path) -> None:
    lines = ledger(good)
    lines[3] = rewrite(lines[3], requests=1.0)  # orjson writes 1.0 back as it reads it
    problems = invalid(bundle(tmp_path, with_ledger(good, lines)), good)
    expected = f"{EVENTS}:4: not a canonical event (a number is not an integer; amounts are written as strings)"
    assert expected in problems


def test_any_of_several_trusted_keys_verifies(good: Good, tmp_path: Path) -> None:
    other = generate()
    outcome = verify_bundle(good.path, [other.public, good.key.public])
    assert outcome.valid and outcome.key_id == good.key.public.key_id
    problems = invalid(good.path, Good(good.path, good.data, good.members, other, good.public_key))
    assert problems == [
        f"{SIGNATURE}: not a signature of {MANIFEST} by key {other.public.key_id[:16]}"
    ]
    third = generate()
    refused = verify_bundle(good.path, [other.public, third.public])
    assert refused.problems == [
        f"{SIGNATURE}: not a signature of {MANIFEST} by any trusted key "
        f"({other.public.key_id[:16]}, {third.public.key_id[:16]})"
    ]
    old = tmp_path / "old.pub"
    old.write_bytes(other.public.pem())
    run = run_cli("verify", good.path, "--key", old, "--key", good.public_key)
    assert run.returncode == 0 and run.stdout.startswith("valid:")
