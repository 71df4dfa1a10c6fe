"""The manifest, in one place: :class:`Manifest` builds it, :func:`manifest_problems` checks it.

The audit fills a :class:`Manifest` with its figures and :func:`~p402.bundles.writer.write_bundle`
lists the files, checks the result with :func:`manifest_problems` (the very check the verifier
runs) and signs it only when it passes, so a manifest the verifier would refuse is never signed.

A manifest can be signed and canonical and still be malformed (a signer bug, or an attacker
holding the key). Checking the shape first lets every later check read fields without guarding
each access.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from p402.bundles.layout import (
    BLOCKS,
    CHECKPOINT,
    ENTRIES,
    EVENTS,
    FORMAT,
    FORMAT_VERSION,
    IMPORTS,
    INDEX,
    MANIFEST,
    OFFSETS,
    RECEIPTS,
    TREE,
)
from p402.bundles.lookup import BLOCK_LINES, MAX_TREE_FROM_LEVEL
from p402.money import CURRENCY, format_amount, from_units, parse_amount, round_cents
from p402.period import Period, format_time

__all__ = ["LOOKUP", "STORED_LEDGER_LOOKUP", "Manifest", "lookup_geometry", "manifest_problems"]

ORDER = "occurred_at, then event_id bytewise"
"""How the ledger's lines are ordered, as the manifest's query states it."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a bundle's manifest says, but the list of its files (the writer adds that).

    Money is in storage units (10^-12 USD) and written twice: exact, and rounded to cents.
    """

    generator: str
    bundle_id: str
    tenant: str
    period: Period
    data_through: datetime
    """The time of the period's last event (the period's start when it has none)."""
    events: int
    cost_units: int
    unpriced_events: int
    origin: str
    """The Merkle tree's origin line, ``p402/<tenant>/<period>``."""
    root: str
    """The Merkle root, as hex."""
    tree_from_level: int
    key_id: str
    price_table: str
    rules_version: str
    log: Mapping[str, Any]
    """Where the audit sits in the tenant's append-only log (see ``p402.audit.run``)."""
    reconciliation: tuple[Mapping[str, Any], ...] = ()
    ledger_entries: int = 0
    """How many signed entries :data:`~p402.bundles.layout.ENTRIES` holds (0: no such member)."""
    imports: int = 0
    """How many control records :data:`~p402.bundles.layout.IMPORTS` holds (0: no such member)."""

    def to_json(self) -> dict[str, Any]:
        """The manifest's fields as they are signed (``files`` aside)."""
        window = {"start": format_time(self.period.start), "end": format_time(self.period.end)}
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generator": self.generator,
            "bundle_id": self.bundle_id,
            "tenant": self.tenant,
            "period": {"label": self.period.label, **window},
            "data_through": format_time(self.data_through),
            "query": {
                "tenant": self.tenant,
                "occurred_at": {"from": window["start"], "before": window["end"]},
                "order": ORDER,
            },
            "events": {"count": self.events, "file": EVENTS},
            "totals": {
                "currency": CURRENCY,
                "cost": format_amount(from_units(self.cost_units)),
                "cost_rounded": str(round_cents(self.cost_units)),
                "unpriced_events": self.unpriced_events,
            },
            "merkle": {
                "tree": "RFC 9162", "hash": "SHA-256", "origin": self.origin, "size": self.events,
                "root": self.root, "checkpoint": CHECKPOINT,
            },
            "receipts": {**LOOKUP, "tree_from_level": self.tree_from_level},
            "log": dict(self.log),
            "price_table": self.price_table,
            "rules_version": self.rules_version,
            "reconciliation": [dict(row) for row in self.reconciliation],
            "key_id": self.key_id,
        }  # fmt: skip
        if self.ledger_entries:
            manifest["ledger_entries"] = {"file": ENTRIES, "count": self.ledger_entries}
        if self.imports:
            manifest["imports"] = {"file": IMPORTS, "count": self.imports}
        return manifest


def _counted_member(manifest: Mapping[str, Any], key: str, member: str) -> bool:
    counted = manifest[key]
    files = manifest.get("files")
    return (
        isinstance(counted, dict)
        and counted.get("file") == member
        and _is_count(counted.get("count"))
        and isinstance(files, list)
        and member in [f.get("path") for f in files if isinstance(f, dict)]
    )


_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CENTS = re.compile(r"^-?\d+\.\d{2}$")


def _get(manifest: dict[str, Any], path: str) -> Any:
    value: Any = manifest
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _is_time(text: Any) -> bool:
    try:
        return isinstance(text, str) and format_time(datetime.fromisoformat(text)) == text
    except ValueError:
        return False


def _is_amount(text: Any) -> bool:
    try:
        return isinstance(text, str) and format_amount(parse_amount(text)) == text
    except ValueError:
        return False


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_FIELDS: tuple[tuple[str, Any, str], ...] = (
    ("tenant", lambda v: isinstance(v, str) and bool(v), "a tenant id"),
    ("period.label", lambda v: isinstance(v, str), "a period label"),
    ("period.start", _is_time, "an RFC 3339 UTC time"),
    ("period.end", _is_time, "an RFC 3339 UTC time"),
    ("events.count", _is_count, "a count"),
    ("events.file", lambda v: v == EVENTS, f"{EVENTS!r}"),
    ("totals.currency", lambda v: v == "USD", "'USD'"),
    ("totals.cost", _is_amount, "an exact decimal string"),
    (
        "totals.cost_rounded",
        lambda v: isinstance(v, str) and bool(_CENTS.match(v)),
        "an amount in cents",
    ),
    ("totals.unpriced_events", _is_count, "a count"),
    ("merkle.size", _is_count, "a count"),
    ("merkle.root", lambda v: isinstance(v, str) and bool(_HEX64.match(v)), "64 hex digits"),
    (
        "merkle.origin",
        lambda v: isinstance(v, str) and bool(v) and "\n" not in v,
        "one line of text",
    ),
    ("merkle.checkpoint", lambda v: v == CHECKPOINT, f"{CHECKPOINT!r}"),
    ("key_id", lambda v: isinstance(v, str) and bool(_HEX64.match(v)), "64 hex digits"),
)


def _file_problems(files: Any) -> list[str]:
    if not isinstance(files, list):
        return [f"{MANIFEST}: files must be a list"]
    problems: list[str] = []
    for index, entry in enumerate(files):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("path"), str)
            and _is_count(entry.get("size"))
            and isinstance(entry.get("sha256"), str)
            and _HEX64.match(entry["sha256"])
        ):
            problems.append(f"{MANIFEST}: files[{index}] must have a path, a size and a SHA-256")
    paths = [entry.get("path") for entry in files if isinstance(entry, dict)]
    if len(set(paths)) != len(paths):
        problems.append(f"{MANIFEST}: a file is listed twice")
    problems.extend(
        f"{MANIFEST}: does not list {name}" for name in (EVENTS, RECEIPTS) if name not in paths
    )
    return problems


def _is_hex(value: Any) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def _is_hashes(value: Any, most: int) -> bool:
    return isinstance(value, list) and len(value) <= most and all(map(_is_hex, value))


def _log_problems(log: Any) -> list[str]:
    """The optional ``log`` section: where this audit sits in the tenant's append-only log."""
    where = f"{MANIFEST}: log"
    if not isinstance(log, dict):
        return [f"{where} must be an object"]
    checks = (
        ("origin", isinstance(log.get("origin"), str) and "\n" not in log["origin"], "one line of text"),
        ("size", _is_count(log.get("size")), "a count"),
        ("root", _is_hex(log.get("root")), "64 hex digits"),
        ("frontier", _is_hashes(log.get("frontier"), 64), "a list of at most 64 hashes"),
        ("consistency_proof", _is_hashes(log.get("consistency_proof"), 130), "a list of hashes"),
    )  # fmt: skip
    problems = [f"{where}.{name} must be {what}" for name, good, what in checks if not good]
    previous = log.get("previous")
    if previous is not None and not (
        isinstance(previous, dict)
        and _is_count(previous.get("size"))
        and _is_hex(previous.get("root"))
    ):
        problems.append(f"{where}.previous must be null or a size and a root")
    return problems


LOOKUP = {"blocks": BLOCKS, "file": RECEIPTS, "index": INDEX, "tree": TREE}
"""The optional ``receipts`` section: the members that make one receipt a few reads, and
``tree_from_level``, the lowest level ``merkle/tree.bin`` stores (log2 of a block's lines).
Bundles of the previous layout have no ``tree_from_level``: every level, blocks of 1,024."""
STORED_LEDGER_LOOKUP = {"file": RECEIPTS, "index": INDEX, "offsets": OFFSETS, "tree": TREE}
"""The same section in bundles of the previous layout, whose ledger is stored, not deflated."""


def lookup_geometry(section: Mapping[str, Any]) -> tuple[int, int]:
    """A sound ``receipts`` section's (lines per block of the ledger, lowest level of the tree
    that ``merkle/tree.bin`` stores)."""
    if "tree_from_level" in section:
        level = int(section["tree_from_level"])
        return 1 << level, level
    return BLOCK_LINES, 0  # the previous layouts: every level of the tree


def _is_tree_level(value: Any) -> bool:
    return _is_count(value) and value <= MAX_TREE_FROM_LEVEL


def _receipts_problems(manifest: dict[str, Any]) -> list[str]:
    files = manifest.get("files")
    paths = [f.get("path") for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    section = manifest["receipts"]
    names = (
        {key: value for key, value in section.items() if key != "tree_from_level"}
        if isinstance(section, dict)
        else None
    )
    if (
        names not in (LOOKUP, STORED_LEDGER_LOOKUP)
        or not set(names.values()) <= set(paths)
        or ("tree_from_level" in section and names != LOOKUP)
    ):
        listed = ", ".join(f"{key} {value!r}" for key, value in LOOKUP.items())
        return [f"{MANIFEST}: receipts must name {listed}, each listed"]
    if "tree_from_level" in section and not _is_tree_level(section["tree_from_level"]):
        return [
            f"{MANIFEST}: receipts.tree_from_level must be a level from 0 to {MAX_TREE_FROM_LEVEL}"
        ]
    return []


def manifest_problems(manifest: Any) -> list[str]:
    """Everything wrong with the manifest's shape (empty when it can be relied on)."""
    if not isinstance(manifest, dict):
        return [f"{MANIFEST}: not a JSON object"]
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        return [f"{MANIFEST}: not a {FORMAT} version {FORMAT_VERSION} manifest"]
    problems = [
        f"{MANIFEST}: {path} must be {what}"
        for path, check, what in _FIELDS
        if not check(_get(manifest, path))
    ]
    problems.extend(_file_problems(manifest.get("files")))
    if "log" in manifest:
        problems.extend(_log_problems(manifest["log"]))
    # Optional members the manifest counts: each must name its file, be listed, and count.
    for key, member in (("ledger_entries", ENTRIES), ("imports", IMPORTS)):
        if key in manifest and not _counted_member(manifest, key, member):
            problems.append(f"{MANIFEST}: {key} must name {member!r}, listed, and a count")
    if "receipts" in manifest:
        problems.extend(_receipts_problems(manifest))
    period = manifest.get("period", {})
    if not problems and datetime.fromisoformat(period["start"]) >= datetime.fromisoformat(
        period["end"]
    ):
        problems.append(f"{MANIFEST}: period ends before it starts")
    return problems
