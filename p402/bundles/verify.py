"""Verify an audit bundle offline: needs the zip and a public key, never the database.

Checks, in order, and reports every problem found (each names the member):

1. the file is a zip and nothing else, and safe to read: unique, relative, plain, unencrypted
   members within size limits (see :mod:`p402.bundles._zipcheck`);
2. ``manifest.json.sig`` (raw Ed25519) and ``manifest.json.sshsig`` (SSHSIG, namespace
   ``p402-audit``) are the trusted key's signatures of ``manifest.json``;
3. the manifest is canonical JSON of the known format and shape, naming that key;
4. the zip holds exactly the members the manifest lists, each with its size and SHA-256;
5. the ledger's lines are canonical events (canonical text in every field too), ordered,
   unique, inside the period and of the tenant; their count, total cost and Merkle root
   (RFC 9162) are what the manifest signs;
6. the checkpoint (a C2SP signed note) is signed by the trusted key and is the manifest's
   tree head; each receipt names its event's id, leaf index and leaf hash; VERIFY.txt states
   the manifest's figures;
7. the lookup members are the ledger's: the tree's stored levels, the index and the block
   table's text offsets are rebuilt from it; the table's compressed offsets are checked for their shape
   only (see :mod:`p402.bundles.lookup` for why that is sound).

Nothing is extracted to disk; members are streamed, the ledger once (hashed and read in one
pass). Whatever the bytes, the outcome is a
:class:`Verification`: a hostile bundle never makes this module raise.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zipfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from p402.bundles._zipcheck import (
    Limits,
    MemberError,
    check_archive,
    check_framing,
    chunk_lines,
    member_chunks,
    member_lines,
    read_member,
)
from p402.bundles.canonical import CanonicalError, canonical_lines, dumps, dumps_record, loads
from p402.bundles.checkpoint import CheckpointError, open_checkpoint
from p402.bundles.entries import entry_problem
from p402.bundles.figures import Expected, report_problems
from p402.bundles.instructions import verify_text
from p402.bundles.layout import (
    BLOCKS,
    CHECKPOINT,
    ENTRIES,
    EVENTS,
    IMPORTS,
    INDEX,
    MANIFEST,
    OFFSETS,
    PDF,
    RECEIPTS,
    SIGNATURE,
    SSH_SIGNATURE,
    TREE,
    VERIFY_TEXT,
    XLSX,
)
from p402.bundles.lookup import (
    BLOCK_RECORD,
    INDEX_RECORD,
    block_count,
    index_bytes,
    offsets_bytes,
    stored_levels,
    stored_sizes,
)
from p402.bundles.manifest import lookup_geometry, manifest_problems
from p402.bundles.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    append_leaves,
    frontier_root,
    leaf_hash,
    root,
    verify_consistency,
)
from p402.bundles.pack import import_problems
from p402.bundles.seal import receipt_line
from p402.bundles.signing import PublicKey
from p402.bundles.sshsig import verify_sshsig
from p402.errors import P402Error
from p402.money import (
    CURRENCY,
    UNIT_SCALE,
    format_amount,
    from_units,
    parse_amount,
    round_cents,
    to_units,
)
from p402.period import format_time

__all__ = [
    "BundleInvalid",
    "Limits",
    "Verification",
    "chain_problems",
    "log_problems",
    "verify_bundle",
]


class BundleInvalid(P402Error):
    """The bundle failed verification."""

    exit_code = 1
    http_status = 422
    code = "bundle_invalid"
    bare = True


@dataclass(slots=True)
class Verification:
    """The outcome: valid only if there are no problems."""

    bundle: str
    key_id: str
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        """Whether every check passed."""
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        """The outcome as JSON, for ``--json``."""
        manifest = self.manifest or {}
        return {
            "bundle": self.bundle,
            "valid": self.valid,
            "key_id": self.key_id,
            "problems": self.problems,
            "tenant": manifest.get("tenant"),
            "period": manifest.get("period"),
            "events": manifest.get("events", {}).get("count"),
            "total": manifest.get("totals", {}).get("cost"),
            "merkle_root": manifest.get("merkle", {}).get("root"),
        }


def _check_manifest(data: bytes, key: PublicKey, problems: list[str]) -> dict[str, Any] | None:
    try:
        manifest = loads(data)
    except CanonicalError as exc:
        problems.append(f"{MANIFEST}: {exc}")
        return None
    if dumps(manifest) != data:
        problems.append(f"{MANIFEST}: not in canonical JSON form (RFC 8785)")
        return None
    if found := manifest_problems(manifest):
        problems.extend(found)
        return None
    if manifest["key_id"] != key.key_id:
        problems.append(
            f"{MANIFEST}: names key {manifest['key_id'][:16]}, signed by {key.key_id[:16]}"
        )
    return dict(manifest)


def _authenticate(
    archive: zipfile.ZipFile, trusted: Sequence[PublicKey], limits: Limits, problems: list[str]
) -> tuple[dict[str, Any], PublicKey] | None:
    """The manifest and the trusted key that signed it, if the archive is safe and the manifest
    is canonical and sound."""
    check_archive(archive, limits, problems)
    names = set(archive.namelist())
    problems.extend(
        f"{name}: missing" for name in (MANIFEST, SIGNATURE, SSH_SIGNATURE) if name not in names
    )
    if problems:
        return None
    try:
        manifest_bytes = read_member(archive, MANIFEST, limits.max_small_member)
        signature = read_member(archive, SIGNATURE, 1024)
    except MemberError as exc:
        problems.append(str(exc))
        return None
    key = next(
        (candidate for candidate in trusted if candidate.verify(signature, manifest_bytes)), None
    )
    if key is None:
        ids = ", ".join(candidate.key_id[:16] for candidate in trusted)
        which = f"key {ids}" if len(trusted) == 1 else f"any trusted key ({ids})"
        problems.append(f"{SIGNATURE}: not a signature of {MANIFEST} by {which}")
        return None
    try:
        ssh_signature = read_member(archive, SSH_SIGNATURE, 1 << 16)
    except MemberError as exc:
        problems.append(str(exc))
        return None
    if (why := verify_sshsig(ssh_signature, manifest_bytes, key)) is not None:
        problems.append(f"{SSH_SIGNATURE}: {why}")
        return None
    manifest = _check_manifest(manifest_bytes, key, problems)
    return None if manifest is None else (manifest, key)


def _hashed(chunks: Iterable[bytes], digest: Any, size: list[int]) -> Iterator[bytes]:
    """*chunks*, passed on as they are hashed and counted."""
    for chunk in chunks:
        digest.update(chunk)
        size[0] += len(chunk)
        yield chunk


def _check_members(
    archive: zipfile.ZipFile, manifest: dict[str, Any], problems: list[str]
) -> _LedgerTally | None:
    """Each listed member's size and SHA-256. The ledger's lines are tallied in the same pass
    (inflating a million lines twice would cost seconds); the tally, and the problems it
    found, count only if the ledger matches the manifest."""
    tally = None
    listed = {entry["path"]: entry for entry in manifest["files"]}
    present = set(archive.namelist()) - {MANIFEST, SIGNATURE, SSH_SIGNATURE}
    problems.extend(
        f"{name}: listed in the manifest but missing" for name in sorted(set(listed) - present)
    )
    problems.extend(f"{name}: not listed in the manifest" for name in sorted(present - set(listed)))
    for name in sorted(set(listed) & present):
        digest = hashlib.sha256()
        counted = [0]
        try:
            chunks = _hashed(member_chunks(archive, name), digest, counted)
            if name == EVENTS:
                tally = _check_ledger(chunks, manifest)
            else:
                for _ in chunks:
                    pass
        except MemberError as exc:
            problems.append(str(exc))
            continue
        size = counted[0]
        if size != listed[name]["size"]:
            problems.append(f"{name}: {size} bytes, the manifest says {listed[name]['size']}")
        if digest.hexdigest() != listed[name]["sha256"]:
            problems.append(f"{name}: SHA-256 does not match the manifest")
    return tally


@dataclass(slots=True)
class _LedgerTally:
    """What the ledger's lines add up to, as they are read."""

    start: datetime
    end: datetime
    tenant: str
    leaves: list[bytes] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    offsets: array[int] = field(default_factory=lambda: array("Q", [0]))
    units: int = 0
    unpriced: int = 0
    previous: tuple[datetime, bytes] | None = None
    problems: list[str] = field(default_factory=list)
    figures: Expected = field(default_factory=Expected)
    """What the reports must state, counted from the same lines."""

    def check(self, where: str, record: dict[str, Any], problems: list[str]) -> None:
        """Count one parsed line and note what is wrong with it."""
        moment = datetime.fromisoformat(record["occurred_at"])
        event_id = record["event_id"]
        if not isinstance(event_id, str):
            raise TypeError("event_id must be a string")
        if (
            not _canonical_time(record["occurred_at"])
            and format_time(moment) != record["occurred_at"]
        ):
            problems.append(f"{where}: occurred_at is not in canonical UTC form")
        if record["tenant"] != self.tenant:
            problems.append(f"{where}: event of tenant {record['tenant']!r}")
        if record["currency"] != CURRENCY:
            problems.append(f"{where}: currency {record['currency']!r}")
        if not self.start <= moment < self.end:
            problems.append(f"{where}: occurred_at outside the period")
        key = (moment, event_id.encode())
        if self.previous is not None and key <= self.previous:
            problems.append(f"{where}: out of order or repeated")
        if event_id in self.seen:
            problems.append(f"{where}: event_id {event_id!r} appears twice")
        self.seen.add(event_id)
        self.previous = key
        if record["cost"] is None:
            self.unpriced += 1
            self.figures.add(record, None)
            return
        if (units := _canonical_units(record["cost"])) is None:
            cost = parse_amount(record["cost"])
            if format_amount(cost) != record["cost"]:
                problems.append(f"{where}: cost is not in canonical decimal form")
            units = to_units(cost)
        self.units += units
        self.figures.add(record, units)


# Fast paths for the two per-line checks that dominate a million lines. Each accepts only text
# that the reference (parse, then format and compare) accepts with the same figure, and sends
# anything else, including every way to fail, to the reference.
_TIME = re.compile(r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?Z")
_COST = re.compile(r"(-?)(0|[1-9][0-9]{0,15})(?:\.([0-9]{0,11}[1-9]))?")


def _canonical_time(text: str) -> bool:
    """Whether *text*, which :func:`datetime.fromisoformat` has read, is ``format_time``'s
    form: fixed-width UTC fields, microseconds only when there are any."""
    return _TIME.fullmatch(text) is not None and not text.endswith(".000000Z")


def _canonical_units(text: Any) -> int | None:
    """The storage units of a canonical amount (as ``format_amount`` writes it, within
    ``parse_amount``'s range), or ``None`` to take the reference path."""
    found = _COST.fullmatch(text) if isinstance(text, str) else None
    if found is None or text == "-0":
        return None
    sign, whole, fraction = found.group(1, 2, 3)
    units: int = int(whole) * 10**UNIT_SCALE + int((fraction or "0").ljust(UNIT_SCALE, "0"))
    return -units if sign else units


def _ledger_line(line: bytes) -> dict[str, Any]:
    """A ledger line's object, if the line is its canonical form. The round trip through orjson
    refuses what the strict reader would (a duplicate key is dropped, so the bytes differ) at a
    third of its cost; floats are refused explicitly, as amounts travel as strings."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CanonicalError(f"not valid JSON: {exc}") from None
    if not isinstance(record, dict) or dumps_record(record) != line:
        raise CanonicalError("not in canonical JSON form")
    if float in set(map(type, record.values())):  # one C-level pass over the values
        raise CanonicalError("a number is not an integer; amounts are written as strings")
    return record


def _check_ledger(chunks: Iterable[bytes], manifest: dict[str, Any]) -> _LedgerTally:
    """Tally the ledger's text, given in *chunks*; what is wrong goes to its ``problems``."""
    window = manifest["period"]
    tally = _LedgerTally(
        datetime.fromisoformat(window["start"]),
        datetime.fromisoformat(window["end"]),
        manifest["tenant"],
    )
    problems = tally.problems
    for number, line in chunk_lines(chunks):
        where = f"{EVENTS}:{number}"
        event_id = ""
        try:
            record = _ledger_line(line)
            event_id = record["event_id"]
            tally.check(where, record, problems)
        except (CanonicalError, KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(f"{where}: not a canonical event ({exc})")
        tally.leaves.append(leaf_hash(line))
        tally.ids.append(event_id if isinstance(event_id, str) else "")
        tally.offsets.append(tally.offsets[-1] + len(line) + 1)
    return tally


def _tree(leaves: list[bytes], from_level: int) -> bytes:
    """The nodes of the tree over *leaves* from level *from_level* up, as ``merkle/tree.bin``
    holds them (the root last)."""
    return b"".join(b"".join(level) for level in stored_levels(leaves, from_level))


def _check_totals(
    tally: _LedgerTally, top: bytes, manifest: dict[str, Any], problems: list[str]
) -> None:
    events, totals, merkle = manifest["events"], manifest["totals"], manifest["merkle"]
    count = len(tally.leaves)
    if count != events["count"]:
        problems.append(
            f"{EVENTS}: {count} events, the manifest's event count says {events['count']}"
        )
    if count != merkle["size"]:
        problems.append(
            f"{EVENTS}: {count} events, the manifest's Merkle tree size says {merkle['size']}"
        )
    exact, rounded = format_amount(from_units(tally.units)), str(round_cents(tally.units))
    if exact != totals["cost"]:
        problems.append(
            f"{EVENTS}: costs sum to {exact}, the manifest's total says {totals['cost']}"
        )
    if rounded != totals["cost_rounded"]:
        problems.append(
            f"{EVENTS}: costs round to {rounded}, the manifest's rounded total says {totals['cost_rounded']}"
        )
    if tally.unpriced != totals["unpriced_events"]:
        problems.append(
            f"{EVENTS}: {tally.unpriced} unpriced events, the manifest says {totals['unpriced_events']}"
        )
    if top.hex() != merkle["root"]:
        problems.append(f"{EVENTS}: Merkle root does not match the manifest")


def _check_receipts(archive: zipfile.ZipFile, tally: _LedgerTally, problems: list[str]) -> None:
    count = 0
    for number, line in member_lines(archive, RECEIPTS):
        count += 1
        index = number - 1
        if index >= len(tally.leaves):
            problems.append(f"{RECEIPTS}:{number}: a receipt for no event of the ledger")
            continue
        if line != receipt_line(tally.ids[index], index, tally.leaves[index]):
            problems.append(f"{RECEIPTS}:{number}: does not match event {index} of the ledger")
    if count != len(tally.leaves):
        problems.append(f"{RECEIPTS}: {count} receipts for {len(tally.leaves)} events")


def _first_difference(archive: zipfile.ZipFile, name: str, expected: bytes) -> int | None:
    """Where the member first differs from *expected* (its length if it is a prefix), or
    ``None`` when they are equal."""
    at = 0
    for chunk in member_chunks(archive, name, 1 << 22):
        if expected[at : at + len(chunk)] != chunk:
            return at + next(
                (i for i, (a, b) in enumerate(zip(chunk, expected[at:], strict=False)) if a != b),
                min(len(chunk), len(expected) - at),
            )
        at += len(chunk)
    return None if at == len(expected) else at


def _check_lookup(
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    tally: _LedgerTally,
    tree: bytes,
    problems: list[str],
) -> None:
    """The lookup members (:mod:`p402.bundles.lookup`), rebuilt from the ledger and compared."""
    count = len(tally.leaves)
    block_lines, from_level = lookup_geometry(manifest["receipts"])
    if (at := _first_difference(archive, TREE, tree)) is not None:
        level, node = from_level, at // HASH_SIZE
        for size in stored_sizes(count, from_level):
            if node < size:
                break
            level, node = level + 1, node - size
        problems.append(
            f"{TREE}: node {node} of level {level} is not the ledger's"
            if at < len(tree)
            else f"{TREE}: longer than the {len(tree)} bytes of the ledger's tree"
        )
    if (at := _first_difference(archive, INDEX, index_bytes(tally.ids))) is not None:
        problems.append(
            f"{INDEX}: record {at // INDEX_RECORD} is not the ledger's"
            if at < count * INDEX_RECORD
            else f"{INDEX}: more records than the ledger's {count} events"
        )
    if BLOCKS in manifest["receipts"].values():
        _check_blocks(archive, tally, block_lines, problems)
        return
    offsets = offsets_bytes(tally.offsets)
    if (at := _first_difference(archive, OFFSETS, offsets)) is not None:
        problems.append(
            f"{OFFSETS}: offset {at // 8} is not where line {at // 8 + 1} of the ledger starts"
            if at < len(offsets)
            else f"{OFFSETS}: more offsets than the ledger's {count} lines and its end"
        )


def _check_blocks(
    archive: zipfile.ZipFile, tally: _LedgerTally, block_lines: int, problems: list[str]
) -> None:
    """``ledger/blocks.bin``: its record count and text offsets, recomputed from the ledger;
    its compressed offsets only for their shape (from 0, increasing), as they describe the
    zip's encoding of the ledger, not its content (see :mod:`p402.bundles.lookup` for why that
    is sound)."""
    count = len(tally.leaves)
    blocks = block_count(count, block_lines)
    data = read_member(archive, BLOCKS, (blocks + 2) * BLOCK_RECORD)
    if len(data) != (blocks + 1) * BLOCK_RECORD:
        problems.append(
            f"{BLOCKS}: {len(data)} bytes, not the {blocks + 1} records of a ledger of "
            f"{count} lines"
        )
        return
    records = list(struct.iter_unpack(">QQ", data))
    starts = [tally.offsets[block * block_lines] for block in range(blocks)] + [tally.offsets[-1]]
    for block, ((compressed, text), start) in enumerate(zip(records, starts, strict=True)):
        if text != start:
            problems.append(
                f"{BLOCKS}: block {block} does not start where line {block * block_lines + 1} "
                "of the ledger starts"
                if block < blocks
                else f"{BLOCKS}: its last record is not the ledger's size"
            )
            return
        if compressed <= (records[block - 1][0] if block else -1) or (not block and compressed):
            problems.append(f"{BLOCKS}: compressed offset {block} does not follow the previous")
            return


def _check_checkpoint(
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    trusted: Sequence[PublicKey],
    problems: list[str],
) -> None:
    merkle = manifest["merkle"]
    try:
        checkpoint = open_checkpoint(
            read_member(archive, CHECKPOINT, 1 << 16).decode(), list(trusted)
        )
    except (CheckpointError, UnicodeDecodeError) as exc:
        problems.append(f"{CHECKPOINT}: {exc}")
        return
    signed = (checkpoint.origin, checkpoint.size, checkpoint.root.hex())
    if signed != (merkle["origin"], merkle["size"], merkle["root"]):
        problems.append(
            f"{CHECKPOINT}: the signed tree head is not the manifest's (origin, size, root)"
        )


_REPORT_LIMIT = 1 << 30
"""The largest report read for its figures (a million-event workbook is ~150 MB)."""


def _check_contents(
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    trusted: Sequence[PublicKey],
    tally: _LedgerTally,
    problems: list[str],
) -> None:
    try:
        _check_checkpoint(archive, manifest, trusted, problems)
        problems.extend(tally.problems)
        lookup = "receipts" in manifest  # the lookup members, checked listed by the shape check
        tree = _tree(tally.leaves, lookup_geometry(manifest["receipts"])[1]) if lookup else b""
        _check_totals(tally, tree[-HASH_SIZE:] if tree else root(tally.leaves), manifest, problems)
        _check_receipts(archive, tally, problems)
        if lookup:
            _check_lookup(archive, manifest, tally, tree, problems)
        if "log" in manifest:
            problems.extend(log_problems(manifest["log"], tally.leaves))
        if "ledger_entries" in manifest:
            _check_entries(archive, manifest, trusted, problems)
        if "imports" in manifest:
            problems.extend(import_problems(member_lines(archive, IMPORTS), manifest))
        listed = {entry["path"] for entry in manifest["files"]}
        if PDF in listed and XLSX in listed:
            problems.extend(
                report_problems(
                    read_member(archive, PDF, _REPORT_LIMIT),
                    read_member(archive, XLSX, _REPORT_LIMIT),
                    manifest,
                    tally.figures,
                )
            )
        if VERIFY_TEXT in listed and read_member(archive, VERIFY_TEXT, 1 << 20) != verify_text(
            manifest
        ):
            problems.append(f"{VERIFY_TEXT}: does not state the manifest's figures")
    except MemberError as exc:
        problems.append(str(exc))


def _check_entries(
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    trusted: Sequence[PublicKey],
    problems: list[str],
) -> None:
    count = 0
    for where, item in canonical_lines(member_lines(archive, ENTRIES), ENTRIES, problems):
        count += 1
        if item is not None and (why := entry_problem(item, trusted, manifest["tenant"])):
            problems.append(f"{where}: {why}")
    if count != manifest["ledger_entries"]["count"]:
        problems.append(
            f"{ENTRIES}: {count} entries, the manifest says {manifest['ledger_entries']['count']}"
        )


def log_problems(log: dict[str, Any], leaves: list[bytes]) -> list[str]:
    """Check that this bundle's events are exactly what its audit appended to the tenant's log:
    the previous log's frontier gives its signed root, appending the events' leaves to it gives
    the new root, and the RFC 9162 consistency proof agrees."""
    where = f"{MANIFEST}: log"
    previous = log["previous"] or {"size": 0, "root": EMPTY_ROOT.hex()}
    old_size, new_size = previous["size"], log["size"]
    frontier = [bytes.fromhex(node) for node in log["frontier"]]
    if len(frontier) != old_size.bit_count() or frontier_root(frontier).hex() != previous["root"]:
        return [f"{where}: the frontier is not that of the previous log ({old_size} leaves)"]
    if log["previous"] is None and old_size == 0 and log["frontier"]:
        return [f"{where}: a first audit has no frontier"]
    if new_size != old_size + len(leaves):
        return [
            f"{where}: grows from {old_size} to {new_size} leaves, "
            f"but the bundle carries {len(leaves)} events"
        ]
    problems = []
    if frontier_root(append_leaves(frontier, old_size, leaves)).hex() != log["root"]:
        problems.append(f"{where}: appending the bundle's events does not give the log's root")
    proof = [bytes.fromhex(node) for node in log["consistency_proof"]]
    old_root, new_root = bytes.fromhex(previous["root"]), bytes.fromhex(log["root"])
    if old_size and not verify_consistency(old_size, new_size, old_root, new_root, proof):
        problems.append(f"{where}: the consistency proof does not hold (RFC 9162)")
    if not old_size and proof:
        problems.append(f"{where}: a consistency proof from an empty log")
    return problems


def chain_problems(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """Whether *new* (a verified manifest) extends the log of *old* (another verified manifest):
    *old*'s log must be the log *new* appended to, or the same log (a re-issued audit)."""
    if new["tenant"] != old["tenant"]:
        return [f"the bundles are of different tenants ({old['tenant']!r}, {new['tenant']!r})"]
    if "log" not in new or "log" not in old:
        return ["a bundle has no log section (made before p402 kept an audit log)"]
    new_log, old_log = new["log"], old["log"]
    if (old_log["size"], old_log["root"]) == (new_log["size"], new_log["root"]):
        return []
    # A first audit appended to the empty log (an empty audit before it leaves it empty).
    previous = new_log["previous"] or {"size": 0, "root": EMPTY_ROOT.hex()}
    if (previous["size"], previous["root"]) == (old_log["size"], old_log["root"]):
        return []
    if previous["size"] == old_log["size"]:
        return [
            f"the log forked: the new bundle extends a log of {previous['size']} leaves with root "
            f"{previous['root'][:16]}, the previous bundle's has root {old_log['root'][:16]}"
        ]
    at = previous["size"]
    return [
        f"the previous bundle's log ({old_log['size']} leaves) is not the one the new bundle "
        f"appended to ({at} leaves); verify each step of the chain, bundle by bundle"
    ]


def verify_bundle(
    path: Path,
    key: PublicKey | Sequence[PublicKey],
    *,
    limits: Limits | None = None,
    previous: Path | None = None,
) -> Verification:
    """Verify the bundle at *path* against one trusted public key, or several (during a key
    change-over, a bundle signed by any of them is accepted). Never raises for a bad bundle: the
    problems are in the result, and ``key_id`` names the key that signed.

    With *previous* (an earlier audit bundle of the same tenant, verified against the same
    keys), also prove that this bundle's log only appended to that one's (see
    :func:`chain_problems`)."""
    trusted = [key] if isinstance(key, PublicKey) else list(key)
    if previous is not None:
        result = verify_bundle(path, trusted, limits=limits)
        earlier = verify_bundle(previous, trusted, limits=limits)
        result.problems.extend(f"{previous.name}: {problem}" for problem in earlier.problems)
        if result.manifest is not None and earlier.manifest is not None and not result.problems:
            result.problems.extend(chain_problems(result.manifest, earlier.manifest))
        return result
    result = Verification(str(path), trusted[0].key_id)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        result.problems.append(f"{path.name}: not a readable zip archive ({exc})")
        return result
    with archive:
        check_framing(path, result.problems)
        signed = _authenticate(archive, trusted, limits or Limits(), result.problems)
        if signed is not None:
            result.manifest, signer = signed
            result.key_id = signer.key_id
            tally = _check_members(archive, result.manifest, result.problems)
            if not result.problems and tally is not None:
                _check_contents(archive, result.manifest, trusted, tally, result.problems)
    return result
