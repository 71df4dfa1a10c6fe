"""Verify an audit bundle offline: needs the zip and a public key, never the database.

Checks, in order, and reports every problem found (each names the member):

1. the archive is safe to read: unique, relative, plain-file member names, within size limits;
2. ``manifest.json.sig`` is the trusted key's Ed25519 signature of ``manifest.json``;
3. the manifest is canonical JSON of the known format;
4. the zip holds exactly the members the manifest lists, each with its size and SHA-256;
5. the ledger's lines are canonical, ordered, unique, inside the period and of the tenant; their
   count, total cost and Merkle root (RFC 9162) are what the manifest signs;
6. each receipt names its event's id, leaf index and leaf hash.

Nothing is extracted to disk; members are streamed.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from p402.bundles.canonical import CanonicalError, dumps, dumps_record, loads
from p402.bundles.layout import EVENTS, FORMAT, FORMAT_VERSION, MANIFEST, RECEIPTS, SIGNATURE
from p402.bundles.merkle import leaf_hash, root
from p402.bundles.seal import receipt_line
from p402.bundles.signing import PublicKey
from p402.errors import P402Error
from p402.money import format_amount, from_units, parse_amount, round_cents, to_units

__all__ = ["BundleInvalid", "Limits", "Verification", "verify_bundle"]

_MANIFEST_LIMIT = 64 << 20


class BundleInvalid(P402Error):
    """The bundle failed verification."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a bundle may unpack to before it is refused as a zip bomb."""

    max_members: int = 64
    max_total_bytes: int = 32 << 30
    max_ratio: int = 200


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


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    path = PurePosixPath(name)
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or ":" in path.parts[0]
        or ".." in path.parts
    ):
        return "unsafe member name"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.is_dir():
        return "is a directory"
    return None


def _check_archive(archive: zipfile.ZipFile, limits: Limits, problems: list[str]) -> None:
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        problems.append(
            f"archive: {len(infos)} members, more than the limit of {limits.max_members}"
        )
    seen: set[str] = set()
    total = 0
    for info in infos:
        if info.filename in seen:
            problems.append(f"{info.filename}: appears more than once")
        seen.add(info.filename)
        if reason := _unsafe(info):
            problems.append(f"{info.filename!r}: {reason}")
        total += info.file_size
        if info.file_size > 1 << 20 and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            problems.append(
                f"{info.filename}: compression ratio over {limits.max_ratio} (zip bomb?)"
            )
    if total > limits.max_total_bytes:
        problems.append(
            f"archive: unpacks to {total} bytes, more than the limit of {limits.max_total_bytes}"
        )


def _read_small(archive: zipfile.ZipFile, name: str) -> bytes:
    with archive.open(name) as handle:
        data = handle.read(_MANIFEST_LIMIT + 1)
    if len(data) > _MANIFEST_LIMIT:
        raise CanonicalError(f"larger than {_MANIFEST_LIMIT} bytes")
    return data


def _check_manifest(data: bytes, problems: list[str]) -> dict[str, Any] | None:
    try:
        manifest = loads(data)
    except CanonicalError as exc:
        problems.append(f"{MANIFEST}: {exc}")
        return None
    if not isinstance(manifest, dict) or dumps(manifest) != data:
        problems.append(f"{MANIFEST}: not in canonical JSON form (RFC 8785)")
        return None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        problems.append(f"{MANIFEST}: not a {FORMAT} version {FORMAT_VERSION} manifest")
        return None
    return manifest


def _check_members(archive: zipfile.ZipFile, manifest: dict[str, Any], problems: list[str]) -> None:
    listed = {entry["path"]: entry for entry in manifest.get("files", [])}
    present = set(archive.namelist()) - {MANIFEST, SIGNATURE}
    problems.extend(
        f"{name}: listed in the manifest but missing" for name in sorted(set(listed) - present)
    )
    problems.extend(f"{name}: not listed in the manifest" for name in sorted(present - set(listed)))
    for name in sorted(set(listed) & present):
        digest = hashlib.sha256()
        size = 0
        try:
            with archive.open(name) as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            problems.append(f"{name}: cannot be read ({exc})")
            continue
        if size != listed[name]["size"]:
            problems.append(f"{name}: {size} bytes, the manifest says {listed[name]['size']}")
        if digest.hexdigest() != listed[name]["sha256"]:
            problems.append(f"{name}: SHA-256 does not match the manifest")


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(handle, start=1):
        yield number, line.rstrip(b"\n")


@dataclass(slots=True)
class _LedgerTally:
    """What the ledger's lines add up to, as they are read."""

    start: datetime
    end: datetime
    tenant: str
    leaves: list[bytes] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    units: int = 0
    unpriced: int = 0
    previous: tuple[datetime, bytes] | None = None

    def check(self, where: str, record: Any, problems: list[str]) -> None:
        """Count one parsed line and note what is wrong with it."""
        moment = datetime.fromisoformat(record["occurred_at"])
        key = (moment, record["event_id"].encode())
        if record["tenant"] != self.tenant:
            problems.append(f"{where}: event of tenant {record['tenant']!r}")
        if not self.start <= moment < self.end:
            problems.append(f"{where}: occurred_at outside the period")
        if self.previous is not None and key <= self.previous:
            problems.append(f"{where}: out of order or repeated")
        if record["event_id"] in self.ids:
            problems.append(f"{where}: event_id {record['event_id']!r} appears twice")
        self.ids.add(record["event_id"])
        self.previous = key
        if record["cost"] is None:
            self.unpriced += 1
        else:
            self.units += to_units(parse_amount(record["cost"]))


def _check_ledger(
    archive: zipfile.ZipFile, manifest: dict[str, Any], problems: list[str]
) -> list[bytes]:
    window = manifest["period"]
    tally = _LedgerTally(
        datetime.fromisoformat(window["start"]),
        datetime.fromisoformat(window["end"]),
        manifest["tenant"],
    )
    with archive.open(EVENTS) as handle:
        for number, line in _lines(handle):
            where = f"{EVENTS}:{number}"
            try:
                record = loads(line)
                if dumps_record(record) != line:
                    raise CanonicalError("not in canonical JSON form")
                tally.check(where, record, problems)
            except (CanonicalError, KeyError, TypeError, ValueError, AttributeError) as exc:
                problems.append(f"{where}: not a canonical event ({exc})")
            tally.leaves.append(leaf_hash(line))
    _check_totals(tally, manifest, problems)
    return tally.leaves


def _check_totals(tally: _LedgerTally, manifest: dict[str, Any], problems: list[str]) -> None:
    events, totals, merkle = manifest["events"], manifest["totals"], manifest["merkle"]
    count = len(tally.leaves)
    if count != events["count"] or count != merkle["size"]:
        problems.append(f"{EVENTS}: {count} events, the manifest says {events['count']}")
    exact = format_amount(from_units(tally.units))
    if exact != totals["cost"] or str(round_cents(tally.units)) != totals["cost_rounded"]:
        problems.append(f"{EVENTS}: costs sum to {exact}, the manifest says {totals['cost']}")
    if tally.unpriced != totals["unpriced_events"]:
        problems.append(
            f"{EVENTS}: {tally.unpriced} unpriced events, the manifest says {totals['unpriced_events']}"
        )
    if root(tally.leaves).hex() != merkle["root"]:
        problems.append(f"{EVENTS}: Merkle root does not match the manifest")


def _check_receipts(archive: zipfile.ZipFile, leaves: list[bytes], problems: list[str]) -> None:
    count = 0
    with archive.open(RECEIPTS) as handle:
        for number, line in _lines(handle):
            count += 1
            index = number - 1
            try:
                receipt = loads(line)
                expected = (
                    receipt_line(receipt["event_id"], index, leaves[index])
                    if index < len(leaves)
                    else b""
                )
            except (CanonicalError, KeyError, TypeError) as exc:
                problems.append(f"{RECEIPTS}:{number}: not a receipt ({exc})")
                continue
            if line != expected:
                problems.append(f"{RECEIPTS}:{number}: does not match event {index} of the ledger")
    if count != len(leaves):
        problems.append(f"{RECEIPTS}: {count} receipts for {len(leaves)} events")


def _authenticate(
    archive: zipfile.ZipFile, key: PublicKey, limits: Limits, problems: list[str]
) -> dict[str, Any] | None:
    """The manifest, if the archive is safe and the manifest is the key's and canonical."""
    _check_archive(archive, limits, problems)
    names = set(archive.namelist())
    problems.extend(f"{name}: missing" for name in (MANIFEST, SIGNATURE) if name not in names)
    if problems:
        return None
    try:
        manifest_bytes = _read_small(archive, MANIFEST)
        signature = _read_small(archive, SIGNATURE)
    except (CanonicalError, zipfile.BadZipFile, OSError) as exc:
        problems.append(f"{MANIFEST}: cannot be read ({exc})")
        return None
    if not key.verify(signature, manifest_bytes):
        problems.append(f"{SIGNATURE}: not a signature of {MANIFEST} by key {key.key_id[:16]}")
        return None
    return _check_manifest(manifest_bytes, problems)


def verify_bundle(path: Path, key: PublicKey, *, limits: Limits | None = None) -> Verification:
    """Verify the bundle at *path* against a trusted public key. Never raises for a bad bundle:
    the problems are in the result."""
    result = Verification(str(path), key.key_id)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        result.problems.append(f"{path.name}: not a readable zip archive ({exc})")
        return result
    with archive:
        result.manifest = _authenticate(archive, key, limits or Limits(), result.problems)
        if result.manifest is None:
            return result
        _check_members(archive, result.manifest, result.problems)
        if not result.problems:
            leaves = _check_ledger(archive, result.manifest, result.problems)
            _check_receipts(archive, leaves, result.problems)
    return result
