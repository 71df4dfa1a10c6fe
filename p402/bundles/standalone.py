#!/usr/bin/env python3
"""verify_bundle.py: check a p402 audit bundle with Python's standard library and nothing else.

    python3 verify_bundle.py BUNDLE.zip --key p402-signing.pub

Exit status 0: valid. 1: invalid, with one line saying why (``--all`` lists every problem).
2: the command was wrong or a file cannot be read.

This file is shipped inside every bundle, at its root, so an auditor can read what is checked
before running it. It imports nothing from p402. What it checks:

1. the signature: ``manifest.json.sig`` is the Ed25519 signature (RFC 8032, verified below in
   pure Python, since ``hashlib`` has no Ed25519) of ``manifest.json`` by the key given, and
   the manifest's ``key_id`` is that key's id (SHA-256 of its DER SubjectPublicKeyInfo);
2. the members: the zip holds exactly the files the manifest lists, plus the manifest and its
   two signatures, each with the listed size and SHA-256;
3. the ledger (``ledger/events.jsonl``): every line is a canonical JSON event of the
   manifest's tenant, inside the period, in order, with no event id twice; the count, the
   exact and rounded total cost and the unpriced events are the manifest's; the RFC 9162
   Merkle root over the lines is the manifest's root;
4. the checkpoint (``ledger/checkpoint``): a signed note by the same key of the manifest's
   origin, tree size and root;
5. the reports' figures: the PDF's embedded summary, the workbook the PDF embeds (which must
   be ``report.xlsx``) and the workbook's Summary and By Provider figures equal what the
   ledger adds up to, rounded to cents as the reports round (half up, once, the cents of a
   breakdown allocated by largest remainder so its rows sum to the total);
6. the control records (``ledger/imports.jsonl``): each tie by their own figures or say they
   do not.

A valid bundle proves integrity (nothing changed since signing), origin (the holder of the
key signed it) and that the reports' figures come from these events. It does not prove that
every AI call was captured: the control records are the evidence for that.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import itertools
import json
import re
import sys
import zipfile
import zlib
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

MANIFEST, SIGNATURE, SSH_SIGNATURE = "manifest.json", "manifest.json.sig", "manifest.json.sshsig"
EVENTS, CHECKPOINT, IMPORTS = "ledger/events.jsonl", "ledger/checkpoint", "ledger/imports.jsonl"
PDF, XLSX = "report.pdf", "report.xlsx"
MAX_MEMBER = 1 << 33
CENT = Decimal("0.01")
UNITS = 10**12  # storage units per USD: amounts are exact to 12 decimal places

# ---------------------------------------------------------------- Ed25519 (RFC 8032, 5.1.7)
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)
_G_Y = 4 * pow(5, _P - 2, _P) % _P
_G_X = _recover_x(_G_Y, 0) or 0
_G: _Point = (_G_X, _G_Y, 1, _G_X * _G_Y % _P)


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    pa, pb = (y1 - x1) * (y2 - x2) % _P, (y1 + x1) * (y2 + x2) % _P
    pc, pd = t1 * 2 * _D * t2 % _P, z1 * 2 * z2 % _P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _multiply(scalar: int, point: _Point) -> _Point:
    result: _Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _encode(point: _Point) -> bytes:
    x, y, z, _ = point
    inverse = pow(z, _P - 2, _P)
    x, y = x * inverse % _P, y * inverse % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(data: bytes) -> _Point | None:
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether *signature* is *public*'s Ed25519 signature of *message* (RFC 8032 5.1.7: the
    check [S]B = R + [k]A, with R compared in its encoding and S below the group order)."""
    if len(public) != 32 or len(signature) != 64:
        return False
    point = _decode(public)
    s = int.from_bytes(signature[32:], "little")
    if point is None or s >= _L or _decode(signature[:32]) is None:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    negated = ((_P - point[0]) % _P, point[1], point[2], (_P - point[3]) % _P)
    return _encode(_add(_multiply(s, _G), _multiply(k, negated))) == signature[:32]


# ---------------------------------------------------------------- keys
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # SubjectPublicKeyInfo of Ed25519


def read_public_key(text: str) -> bytes:
    """The 32-byte key of a PEM public key (``p402-signing.pub``) or an OpenSSH line."""
    if text.startswith("ssh-ed25519 "):
        blob = base64.b64decode(text.split()[1])
        if blob[:4] != b"\x00\x00\x00\x0bssh-ed25519"[:4] or len(blob) != 51:
            raise ValueError("not an ssh-ed25519 key")
        return blob[-32:]
    body = re.search(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", text, re.S)
    if body is None:
        raise ValueError("not a PEM public key")
    der = base64.b64decode("".join(body.group(1).split()))
    if len(der) != 44 or not der.startswith(_SPKI_PREFIX):
        raise ValueError("not an Ed25519 public key")
    return der[12:]


def key_id(public: bytes) -> str:
    """p402's key id: SHA-256 of the DER SubjectPublicKeyInfo, in hex."""
    return hashlib.sha256(_SPKI_PREFIX + public).hexdigest()


# ---------------------------------------------------------------- canonical JSON (RFC 8785)
def is_canonical(record: Any, line: bytes) -> bool:
    """Whether *line* is the RFC 8785 text of *record*. Python's sorted, compact JSON is that
    text whenever no key holds a character beyond the Basic Multilingual Plane (RFC 8785 sorts
    keys by UTF-16 code units); only then is the slower exact serializer needed."""
    fast = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if fast.encode() == line:
        return not _has_float(record)
    return canonical(record).encode() == line


def _has_float(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_float(item) for item in value)
    return isinstance(value, float)


def canonical(value: Any) -> str:
    """RFC 8785 text of a value made of objects, arrays, strings, integers, booleans and null."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: item[0].encode("utf-16-be"))
        return "{" + ",".join(f"{canonical(k)}:{canonical(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, float):
        raise ValueError("a number is not an integer")
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------- Merkle tree (RFC 9162)
def merkle_root(leaves: list[bytes]) -> bytes:
    """The RFC 9162 root of leaf hashes (SHA-256(0x00 || line) each), level by level."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = leaves
    while len(level) > 1:
        pairs = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]


# ---------------------------------------------------------------- money
def cents(units: int) -> Decimal:
    return (Decimal(units) / UNITS).quantize(CENT, rounding=ROUND_HALF_UP)


def allocated(parts: dict[Any, int]) -> dict[Any, Decimal]:
    """Each part in cents, so the parts sum to the rounded whole: floors, then the missing
    cents to the largest remainders (earlier wins a tie), in the reports' order (no value
    last, larger first, then by name)."""
    order = sorted(parts, key=lambda key: (key is None, -parts[key], key or ""))
    whole = cents(sum(parts.values()))
    floors = [parts[key] // (UNITS // 100) for key in order]
    remainders = [
        parts[key] - floor * (UNITS // 100) for key, floor in zip(order, floors, strict=True)
    ]
    missing = int(whole / CENT) - sum(floors)
    for index in sorted(range(len(order)), key=lambda i: (-remainders[i], i))[:missing]:
        floors[index] += 1
    return {key: Decimal(floor).scaleb(-2) for key, floor in zip(order, floors, strict=True)}


def units_of(text: str) -> int:
    amount = Decimal(text)
    if not amount.is_finite() or amount != amount.quantize(Decimal(1).scaleb(-12)):
        raise ValueError(f"amount {text!r}")
    return int(amount * UNITS)


# ---------------------------------------------------------------- the reports
_EMBEDDED = re.compile(rb"\d+\s+\d+\s+obj\s*<<\s*/Type\s*/EmbeddedFile\b")
_XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def pdf_files(pdf: bytes) -> dict[str, bytes]:
    """The PDF's embedded files (``/Type /EmbeddedFile`` streams) by MIME type, inflated and
    checked against their own ``/Size`` and MD5 ``/CheckSum`` where the PDF states them.
    Raises ValueError when one cannot be read."""
    found = {}
    for match in _EMBEDDED.finditer(pdf):
        stream = pdf.find(b"stream", match.end())
        head = pdf[match.end() : stream]
        kind = re.search(rb"/Subtype\s*/([^\s/<>\[\]()]+)", head)
        length = re.search(rb"/Length\s+(\d+)(\s+\d+\s+R)?", head)
        if stream < 0 or kind is None or length is None or length.group(2):
            raise ValueError("an embedded file's type or direct length is missing")
        start = stream + 6 + (2 if pdf[stream + 6 : stream + 8] == b"\r\n" else 1)
        data = pdf[start : start + int(length.group(1))]
        if b"/FlateDecode" in head:
            try:
                data = zlib.decompressobj().decompress(data, MAX_MEMBER)
            except zlib.error as exc:
                raise ValueError(f"an embedded file does not inflate ({exc})") from None
        elif b"/Filter" in head:
            raise ValueError("an embedded file uses a filter other than FlateDecode")
        size = re.search(rb"/Size\s+(\d+)", head)
        checksum = re.search(rb"/CheckSum\s*<([0-9A-Fa-f]{32})>", head)
        if size is not None and int(size.group(1)) != len(data):
            raise ValueError("an embedded file is not the size the PDF states")
        # MD5 is what PDF states for an embedded file: an integrity check of the PDF's own.
        if (
            checksum is not None
            and hashlib.md5(data, usedforsecurity=False).hexdigest()
            != checksum.group(1).decode().lower()
        ):
            raise ValueError("an embedded file does not match the checksum the PDF states")
        name = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), kind.group(1))
        found[name.decode("latin-1")] = data
    return found


def _xml(book: zipfile.ZipFile, name: str) -> ElementTree.Element:
    """A part of the workbook, parsed. A part that declares a document type (the only way to
    entities, and so to their expansion) is refused before it is parsed, and so is one bigger
    than any report p402 writes."""
    if book.getinfo(name).file_size > MAX_MEMBER:
        raise ValueError(f"{name} is too large")
    data = book.read(name)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError(f"{name} declares a document type")
    return ElementTree.fromstring(data)  # noqa: S314  (no DTD: nothing for an attack to use)


def sheet(xlsx: bytes, title: str) -> list[list[Any]]:
    """A sheet's typed values row by row (text, Decimal; None for a formula with no value)."""
    with zipfile.ZipFile(io.BytesIO(xlsx)) as book:
        workbook, rels = _xml(book, "xl/workbook.xml"), _xml(book, "xl/_rels/workbook.xml.rels")
        targets = {r.get("Id"): r.get("Target") for r in rels.iter(f"{_PKG}Relationship")}
        ids = [s.get(f"{_REL}id") for s in workbook.iter(f"{_MAIN}sheet") if s.get("name") == title]
        if len(ids) != 1 or not targets.get(ids[0]):
            raise ValueError(f"no sheet {title!r}")
        target = str(targets[ids[0]]).lstrip("/")
        root = _xml(book, target if target.startswith("xl/") else f"xl/{target}")
    rows = []
    for row in root.iter(f"{_MAIN}row"):
        values: list[Any] = []
        for cell in row.iter(f"{_MAIN}c"):
            letters = re.match(r"[A-Z]+", cell.get("r") or "")
            column = 0
            for letter in letters.group(0) if letters else "A":
                column = column * 26 + ord(letter) - 64
            values.extend([None] * (column - 1 - len(values)))
            value = cell.find(f"{_MAIN}v")
            if cell.get("t") == "inlineStr":
                values.append("".join(t.text or "" for t in cell.iter(f"{_MAIN}t")))
            elif value is None or not value.text:
                values.append(None)
            else:
                values.append(Decimal(value.text) if cell.get("t") in (None, "n") else value.text)
        rows.append(values)
    return rows


class Tally:
    """What the ledger adds up to."""

    def __init__(self) -> None:
        self.count = self.units = self.unpriced = 0
        self.providers: dict[str, list[int]] = {}
        self.departments: dict[str | None, int] = {}
        self.leaves: list[bytes] = []
        self.ids: list[str] = []
        self.offsets: list[int] = [0]


def report_problems(members: dict[str, bytes], manifest: dict[str, Any], tally: Tally) -> list[str]:
    period, total = manifest["period"], cents(tally.units)
    providers = allocated({name: cell[1] for name, cell in tally.providers.items()})
    departments = {
        "Unattributed" if key is None else key: value
        for key, value in allocated(tally.departments).items()
    }
    problems = []
    files = pdf_files(members[PDF])
    if files.get(_XLSX_TYPE) != members[XLSX]:
        problems.append(f"{PDF}: the workbook it embeds is not {XLSX}")
    summary = json.loads(files["application/json"]) if "application/json" in files else None
    if summary is None:
        problems.append(f"{PDF}: no embedded summary of its figures")
    else:
        stated = {
            "tenant": summary["tenant"], "period": summary["period"],
            "window": [summary["window"]["start"], summary["window"]["end"]],
            "events": summary["events"], "total": Decimal(summary["total"]),
            "unpriced events": summary["unpriced_events"],
            "attributed + unattributed": Decimal(summary["attributed"]) + Decimal(summary["unattributed"]),
            "bundle id": summary["bundle_id"], "Merkle root": summary["merkle_root"],
            "by provider": {k: Decimal(v) for k, v in summary["by_provider"].items()},
            "by department": {k: Decimal(v) for k, v in summary["by_department"].items()},
        }  # fmt: skip
        ledger = {
            "tenant": manifest["tenant"], "period": period["label"],
            "window": [period["start"], period["end"]], "events": tally.count, "total": total,
            "unpriced events": tally.unpriced, "attributed + unattributed": total,
            "bundle id": manifest["bundle_id"], "Merkle root": manifest["merkle"]["root"],
            "by provider": providers, "by department": departments,
        }  # fmt: skip
        problems += [
            f"{PDF}: embedded summary {name} {stated[name]} != {ledger[name]}"
            for name in stated
            if stated[name] != ledger[name]
        ]
    items = {row[0]: row[1] for row in sheet(members[XLSX], "Summary")[1:] if len(row) > 1}
    wanted = {
        "Tenant": manifest["tenant"], "Period": period["label"],
        "Window start (UTC)": period["start"], "Window end (UTC, excluded)": period["end"],
        "Total spend, stored figure (USD)": total, "Unpriced events": Decimal(tally.unpriced),
    }  # fmt: skip
    problems += [
        f"{XLSX}: Summary {name!r} {items.get(name)} != {value}"
        for name, value in wanted.items()
        if items.get(name) != value
    ]
    rows: dict[str, tuple[Any, Any]] = {}
    for row in sheet(members[XLSX], "By Provider")[1:]:
        if not row or row[0] == "Total":
            break
        if len(row) > 4 and isinstance(
            row[1], Decimal
        ):  # a provider's row (an empty sheet has none)
            rows[str(row[0])] = (row[1], row[4])
    expected = {name: (Decimal(cell[0]), providers[name]) for name, cell in tally.providers.items()}
    if rows != expected:
        problems.append(f"{XLSX}: By Provider (events, cost) {rows} != {expected}")
    return problems


# ---------------------------------------------------------------- the bundle
_COUNTS = (
    "rows_read", "skipped", "duplicates", "already_stored", "stored", "ledger_added", "odd",
    "unpriced", "tier_unpriced", "content_fields_dropped", "valid", "size",
)  # fmt: skip
_AMOUNTS = (
    "read_cost",
    "duplicate_cost",
    "already_stored_cost",
    "stored_cost",
    "ledger_cost_change",
)


_CAPTURE_COUNTS = (
    "requests_refused",
    "received",
    "accepted",
    "duplicates",
    "rejected",
    "content_fields_dropped",
    "odd",
    "unpriced",
    "tier_unpriced",
)


def record_ties(record: dict[str, Any]) -> bool:
    """Whether a control record's own figures tie. An import (which must have been stored, not
    refused): every row read has one outcome (skipped, duplicate, already stored, stored), in
    count and in money, and the store gained exactly the rows stored and their cost. A capture
    day: every item received was accepted, a duplicate, or rejected."""
    if record.get("kind") == "capture":
        for name in _CAPTURE_COUNTS:
            value = record.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a count")
        for name in ("stored_cost", "duplicate_cost"):
            if not isinstance(record.get(name), str):
                raise ValueError(f"{name} must be a decimal string")
            Decimal(record[name])
        return bool(
            record["received"] == record["accepted"] + record["duplicates"] + record["rejected"]
        )
    if record.get("status") != "stored":
        return False
    for name in _COUNTS:
        value = record.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a count")
    money = {}
    for name in _AMOUNTS:
        if not isinstance(record.get(name), str):
            raise ValueError(f"{name} must be a decimal string")
        money[name] = Decimal(record[name])
    return (
        record["skipped"] + record["duplicates"] + record["already_stored"] + record["stored"]
        == record["rows_read"]
        and money["read_cost"]
        == money["duplicate_cost"] + money["already_stored_cost"] + money["stored_cost"]
        and record["ledger_added"] == record["stored"]
        and money["ledger_cost_change"] == money["stored_cost"]
    )


def _imports_problems(data: bytes, manifest: dict[str, Any]) -> list[str]:
    """The control records: canonical, of the tenant, touching the period, and saying truly
    whether they tie (a record that honestly does not tie is evidence, not a problem)."""
    problems = []
    lines = data.split(b"\n")[:-1] if data else []
    start, end = _moment(manifest["period"]["start"]), _moment(manifest["period"]["end"])
    in_period: list[Any] = [0, Decimal(0)]
    for number, line in enumerate(lines, 1):
        where = f"{IMPORTS}:{number}"
        try:
            record = _strict_json(line)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if not isinstance(record, dict):
            problems.append(f"{where}: not a control record")
            continue
        problems += _days(where, record, manifest["period"], in_period)
        if record.get("tenant") != manifest["tenant"]:
            problems.append(f"{where}: a record of tenant {record.get('tenant')!r}")
            continue
        first, last = record.get("first_event"), record.get("last_event")
        try:
            inside = _moment(first) < end and _moment(last) >= start  # type: ignore[arg-type]
        except (TypeError, ValueError, AttributeError):
            inside = False
        if not inside:
            problems.append(f"{where}: its events do not fall in the period")
        try:
            ties = record_ties(record)
        except (ValueError, ArithmeticError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        findings = record.get("findings")
        if record.get("ties") is not ties or not isinstance(findings, list) or (ties and findings):
            problems.append(
                f"{where}: says it ties ({record.get('ties')}) but its figures say {ties}"
            )
    if data and not data.endswith(b"\n"):
        problems.append(f"{IMPORTS}: the last line has no newline")
    if len(lines) != manifest["imports"]["count"]:
        problems.append(
            f"{IMPORTS}: {len(lines)} records, the manifest says {manifest['imports']['count']}"
        )
    if "in_period" in manifest["imports"]:
        problems += _tie(manifest, in_period[0], in_period[1])
    return problems


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _days(
    where: str, record: dict[str, Any], period: dict[str, str], in_period: list[Any]
) -> list[str]:
    """Add what a record put in the period (its stored events by UTC day: an import's, or a
    capture day's accepted events) to *in_period*; its days must add up to what it stored."""
    low, high = period["start"][:10], period["end"][:10]
    stored = "accepted" if record.get("kind") == "capture" else "stored"
    days = record.get("days")
    if days is None:
        return []  # an older record: not broken down by day, which the pack shows
    try:
        if not isinstance(days, dict):
            raise ValueError("days must be an object")
        events, cost = 0, Decimal(0)
        for day, cell in days.items():
            if (
                not isinstance(cell, dict)
                or not _is_count(cell.get("events"))
                or not isinstance(cell.get("cost"), str)
            ):
                raise ValueError(f"days.{day} must hold a count of events and a decimal cost")
            events, cost = events + cell["events"], cost + Decimal(cell["cost"])
            if low <= day < high:
                in_period[0] += cell["events"]
                in_period[1] += Decimal(cell["cost"])
        if events != record.get(stored) or cost != Decimal(str(record.get("stored_cost"))):
            return [
                f"{where}: its days hold {events} events (${cost}), it stored {record.get(stored)}"
            ]
    except (ValueError, ArithmeticError) as exc:
        return [f"{where}: {exc}"]
    return []


def _tie(manifest: dict[str, Any], events: int, cost: Decimal) -> list[str]:
    """The records' events of the period, the ledger's (the manifest's totals, tied to the
    ledger above) and the declared difference must tie exactly."""
    section = manifest["imports"]
    try:
        stated, read, difference = section["in_period"], section["read"], section["difference"]
        problems = []
        if stated["events"] != events or Decimal(stated["cost"]) != cost:
            problems.append(f"{IMPORTS}: the records' days put {events} events (${cost}) in the period, "
                            f"the manifest says {stated['events']} (${stated['cost']})")  # fmt: skip
        if read["events"] != manifest["events"]["count"] or Decimal(read["cost"]) != Decimal(
            manifest["totals"]["cost"]
        ):
            problems.append(f"{IMPORTS}: the tie's events read are not the ledger's")
        if difference["events"] != read["events"] - stated["events"] or Decimal(
            difference["cost"]
        ) != Decimal(read["cost"]) - Decimal(stated["cost"]):
            problems.append(f"{IMPORTS}: the declared difference is not events read less recorded")
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        return [f"{IMPORTS}: the manifest's completeness totals are malformed ({exc})"]
    return problems


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.utcoffset() is None:
        raise ValueError(f"time {text!r} has no offset")
    return moment


def _ledger(data: bytes, manifest: dict[str, Any], tally: Tally) -> list[str]:  # noqa: PLR0912
    # One branch per check a ledger line passes: a list to read, not a structure to factor.
    problems: list[str] = []
    period, previous, seen = manifest["period"], None, set()
    start, end = _moment(period["start"]), _moment(period["end"])
    for number, line in enumerate(data.split(b"\n")[:-1] if data else [], 1):
        where = f"{EVENTS}:{number}"
        tally.leaves.append(hashlib.sha256(b"\x00" + line).digest())
        tally.offsets.append(tally.offsets[-1] + len(line) + 1)
        tally.ids.append("")
        try:
            record = json.loads(line)
            if not is_canonical(record, line):
                raise ValueError("not in canonical JSON form")
            moment = _moment(record["occurred_at"])
            key = (moment, record["event_id"].encode())
            cost = record["cost"]
            units = None if cost is None else units_of(cost)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"{where}: not a canonical event ({exc})")
            continue
        tally.count += 1
        tally.ids[-1] = record["event_id"]
        if record["tenant"] != manifest["tenant"]:
            problems.append(f"{where}: event of tenant {record['tenant']!r}")
        if not start <= moment < end:
            problems.append(f"{where}: occurred_at outside the period")
        if previous is not None and key <= previous:
            problems.append(f"{where}: out of order or repeated")
        if record["event_id"] in seen:
            problems.append(f"{where}: event_id {record['event_id']!r} appears twice")
        previous = key
        seen.add(record["event_id"])
        if units is None:
            tally.unpriced += 1
            units = 0
        tally.units += units
        cell = tally.providers.setdefault(record["provider"], [0, 0])
        cell[0] += 1
        cell[1] += units
        tally.departments[record["department"]] = (
            tally.departments.get(record["department"], 0) + units
        )
    if data and not data.endswith(b"\n"):
        problems.append(f"{EVENTS}: the last line has no newline")
    totals, merkle = manifest["totals"], manifest["merkle"]
    exact = Decimal(tally.units).scaleb(-12).normalize()
    if len(tally.leaves) != manifest["events"]["count"] or len(tally.leaves) != merkle["size"]:
        problems.append(
            f"{EVENTS}: {len(tally.leaves)} events, the manifest says {manifest['events']['count']}"
        )
    if exact != Decimal(totals["cost"]) or str(cents(tally.units)) != totals["cost_rounded"]:
        problems.append(
            f"{EVENTS}: costs sum to {exact}, the manifest's total says {totals['cost']}"
        )
    if tally.unpriced != totals["unpriced_events"]:
        problems.append(
            f"{EVENTS}: {tally.unpriced} unpriced events, the manifest says {totals['unpriced_events']}"
        )
    if merkle_root(tally.leaves).hex() != merkle["root"]:
        problems.append(f"{EVENTS}: Merkle root does not match the manifest")
    return problems


def _checkpoint(note: bytes, manifest: dict[str, Any], public: bytes) -> list[str]:
    text, _, signatures = note.decode().rpartition("\n\n")
    text += "\n"
    lines = text.split("\n")
    merkle = manifest["merkle"]
    head = [
        merkle["origin"],
        str(merkle["size"]),
        base64.b64encode(bytes.fromhex(merkle["root"])).decode(),
    ]
    problems = (
        []
        if lines[:3] == head
        else [f"{CHECKPOINT}: the signed tree head is not the manifest's (origin, size, root)"]
    )
    name = f"p402/{key_id(public)[:16]}"
    prefix = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "\u2014" and parts[1] == name:
            blob = base64.b64decode(parts[2])
            if blob[:4] == prefix and ed25519_verify(public, text.encode(), blob[4:]):
                return problems
    return [*problems, f"{CHECKPOINT}: not signed by key {key_id(public)[:16]}"]


_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def _shown(name: Any) -> str:
    """A member name as a problem line shows it: as it is when plain, else quoted, so that no
    name from the bundle writes control characters to the auditor's terminal."""
    return name if isinstance(name, str) and _SAFE_NAME.fullmatch(name) else repr(name)


def _archive_problems(data: bytes, archive: zipfile.ZipFile) -> list[str]:
    """The zip itself: nothing before or after it, no member twice, every member a plain file
    with a plain relative name (no directory, link, dot segment or absolute path)."""
    problems = []
    if not data.startswith(b"PK\x03\x04"):
        problems.append("the zip does not start with a zip entry")
    end = data.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 + int.from_bytes(data[end + 20 : end + 22], "little") != len(data):
        problems.append("the zip does not end with the zip directory")
    names = archive.namelist()
    if len(set(names)) != len(names):
        problems.append("the zip holds a member twice")
    for info in archive.infolist():
        kind = (info.external_attr >> 16) & 0o170000
        segments = info.filename.split("/")
        if (
            not _SAFE_NAME.fullmatch(info.filename)
            or any(part in (".", "..") for part in segments)
            or kind not in (0, 0o100000)
        ):
            problems.append(f"{info.filename!r}: not a plain file with a plain name")
        elif info.flag_bits & 0x1 or info.compress_type not in (0, 8):
            problems.append(
                f"{info.filename}: encrypted or compressed in a way a zip reader may not read"
            )
        elif info.file_size > MAX_MEMBER:
            problems.append(f"{info.filename}: too large")
    return problems


def _strict_json(data: bytes) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("a key appears twice")
        return dict(items)

    value = json.loads(data, object_pairs_hook=pairs, parse_constant=float)
    if not is_canonical(value, data):
        raise ValueError("not in canonical JSON form (RFC 8785)")
    return value


def _ssh_string(blob: bytes, at: int) -> tuple[bytes, int]:
    size = int.from_bytes(blob[at : at + 4], "big")
    if at + 4 + size > len(blob):
        raise ValueError("truncated")
    return blob[at + 4 : at + 4 + size], at + 4 + size


def _ssh_signature(armoured: bytes, message: bytes, public: bytes) -> str | None:
    """``None`` if *armoured* is an SSHSIG of *message* by *public* in namespace p402-audit."""
    text = armoured.decode("ascii", "replace").strip().splitlines()
    if (
        len(text) < 3
        or text[0] != "-----BEGIN SSH SIGNATURE-----"
        or text[-1] != "-----END SSH SIGNATURE-----"
    ):
        return "not an armoured SSH signature"
    try:
        blob = base64.b64decode("".join(text[1:-1]), validate=True)
        if blob[:6] != b"SSHSIG" or int.from_bytes(blob[6:10], "big") != 1:
            return "not an SSHSIG version 1 signature"
        key, at = _ssh_string(blob, 10)
        namespace, at = _ssh_string(blob, at)
        reserved, at = _ssh_string(blob, at)
        hash_name, at = _ssh_string(blob, at)
        signature, at = _ssh_string(blob, at)
        key_type, key_at = _ssh_string(key, 0)
        raw_key, _ = _ssh_string(key, key_at)
        sig_type, sig_at = _ssh_string(signature, 0)
        raw_signature, _ = _ssh_string(signature, sig_at)
    except (ValueError, binascii.Error):
        return "cannot be read"
    if namespace != b"p402-audit":
        return f"is for namespace {namespace.decode(errors='replace')!r}"
    if (
        key_type != b"ssh-ed25519"
        or raw_key != public
        or sig_type != b"ssh-ed25519"
        or hash_name != b"sha512"
    ):
        return "is not by the key given"

    def string(value: bytes) -> bytes:
        return len(value).to_bytes(4, "big") + value

    signed = b"SSHSIG" + string(namespace) + string(reserved) + string(hash_name)
    signed += string(hashlib.sha512(message).digest())
    return None if ed25519_verify(public, signed, raw_signature) else "does not verify"


def _parent(level: list[bytes]) -> list[bytes]:
    pairs = [
        hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
        for i in range(0, len(level) - 1, 2)
    ]
    return pairs + ([level[-1]] if len(level) % 2 else [])


def _lookup_problems(
    members: dict[str, bytes], manifest: dict[str, Any], tally: Tally
) -> list[str]:
    """The members that make a receipt a few reads, rebuilt from the ledger and compared:
    the receipts, the stored levels of the tree, the sorted index and the block records."""
    problems = []
    receipts = b"".join(
        canonical({"event_id": event_id, "leaf_hash": leaf.hex(), "leaf_index": index}).encode()
        + b"\n"
        for index, (event_id, leaf) in enumerate(zip(tally.ids, tally.leaves, strict=True))
    )
    if "receipts/receipts.jsonl" in members and members["receipts/receipts.jsonl"] != receipts:
        problems.append("receipts/receipts.jsonl: not the receipts of the ledger's events")
    section = manifest.get("receipts")
    if not isinstance(section, dict):
        return problems
    level = section.get("tree_from_level", 0)
    if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 16:
        return [*problems, f"{MANIFEST}: receipts.tree_from_level must be from 0 to 16"]
    span = 1 << level
    nodes = [merkle_root(tally.leaves[at : at + span]) for at in range(0, len(tally.leaves), span)]
    tree = b""
    while nodes:
        tree += b"".join(nodes)
        nodes = _parent(nodes) if len(nodes) > 1 else []
    names = {value for key, value in section.items() if key != "tree_from_level"}
    for name in names:
        if name not in members:
            problems.append(f"{_shown(name)}: named in the manifest's receipts, missing")
    if "merkle/tree.bin" in names and members.get("merkle/tree.bin") != tree:
        problems.append("merkle/tree.bin: not the nodes of the ledger's tree")
    index = b"".join(
        sorted(hashlib.sha256(event_id.encode()).digest()[:8] + number.to_bytes(4, "big")
               for number, event_id in enumerate(tally.ids))
    )  # fmt: skip
    if "receipts/index.bin" in names and members.get("receipts/index.bin") != index:
        problems.append("receipts/index.bin: not the index of the ledger's events")
    if "ledger/offsets.bin" in names:
        offsets = b"".join(offset.to_bytes(8, "big") for offset in tally.offsets)
        if members.get("ledger/offsets.bin") != offsets:
            problems.append("ledger/offsets.bin: not where the ledger's lines start")
    if "ledger/blocks.bin" in names:
        lines = span if "tree_from_level" in section else 1024
        starts = [tally.offsets[at] for at in range(0, len(tally.leaves), lines)] + [
            tally.offsets[-1]
        ]
        data = members.get("ledger/blocks.bin", b"")
        records = [
            (
                int.from_bytes(data[at : at + 8], "big"),
                int.from_bytes(data[at + 8 : at + 16], "big"),
            )
            for at in range(0, len(data) - len(data) % 16, 16)
        ]
        compressed = [record[0] for record in records]
        if (
            len(data) != 16 * len(starts)
            or [record[1] for record in records] != starts
            or compressed[:1] != [0]
            or any(b <= a for a, b in itertools.pairwise(compressed))
        ):
            problems.append("ledger/blocks.bin: not the blocks of the ledger")
    return problems


def _verify_text_problems(text: bytes, manifest: dict[str, Any]) -> list[str]:
    """VERIFY.txt must state the manifest's figures (it is what a reader acts on)."""
    totals, merkle = manifest["totals"], manifest["merkle"]
    wanted = [
        f"Tenant: {manifest['tenant']}", f"Events: {manifest['events']['count']}",
        f"Total cost: {totals['cost_rounded']} USD (exact: {totals['cost']})", merkle["root"],
        manifest["key_id"],
    ]  # fmt: skip
    decoded = text.decode("utf-8", "replace")
    return (
        []
        if all(item in decoded for item in wanted)
        else ["VERIFY.txt: does not state the manifest's figures"]
    )


def _members(data: bytes) -> tuple[dict[str, bytes], list[str]]:
    """The zip's members by name, and what is wrong with the zip itself."""
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        problems = _archive_problems(data, archive)
        for name in [] if problems else archive.namelist():
            try:
                members[name] = archive.read(name)
            except Exception as exc:  # any failure to read is a problem of the zip, not a crash
                problems.append(f"{name}: cannot be read ({exc})")
    return members, problems


def _listing_problems(members: dict[str, bytes], manifest: dict[str, Any]) -> list[str]:
    """The members against the manifest's list: none missing, none extra, each as listed."""
    problems = []
    listed = {entry["path"]: entry for entry in manifest["files"]}
    for name in sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE, SSH_SIGNATURE}):
        problems.append(f"{name}: a member the manifest does not list")
    for name, entry in sorted(listed.items()):
        data = members.get(name)
        if data is None:
            problems.append(f"{_shown(name)}: listed in the manifest, missing from the zip")
        elif len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{_shown(name)}: not the size and SHA-256 the manifest lists")
    return problems


def _signed(members: dict[str, bytes], public: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """The manifest, if *public* signed it (both signatures) and it is a strict, canonical
    manifest of this format; and the problems found."""
    manifest_bytes, signature = members.get(MANIFEST), members.get(SIGNATURE)
    if manifest_bytes is None or signature is None:
        return None, [f"{MANIFEST} or {SIGNATURE} is missing"]
    if not ed25519_verify(public, manifest_bytes, signature):
        return None, [f"{SIGNATURE}: not a signature of {MANIFEST} by key {key_id(public)[:16]}"]
    problems = []
    if SSH_SIGNATURE not in members:
        problems.append(f"{SSH_SIGNATURE}: missing")
    elif (why := _ssh_signature(members[SSH_SIGNATURE], manifest_bytes, public)) is not None:
        problems.append(f"{SSH_SIGNATURE}: {why}")
    try:
        manifest = _strict_json(manifest_bytes)
    except ValueError as exc:
        return None, [*problems, f"{MANIFEST}: {exc}"]
    if manifest.get("format") != "p402-audit-bundle" or manifest.get("format_version") != 1:
        return None, [*problems, f"{MANIFEST}: not a p402 audit bundle of format version 1"]
    if manifest.get("key_id") != key_id(public):
        problems.append(f"{MANIFEST}: key_id is not the id of the key given")
    return manifest, problems


def verify(path: str, public: bytes) -> list[str]:
    """Every problem of the bundle at *path* for the key *public* (empty: valid)."""
    members, problems = _members(Path(path).read_bytes())
    if problems:
        return problems
    manifest, problems = _signed(members, public)
    if manifest is None:
        return problems
    problems += _listing_problems(members, manifest)
    if problems:
        return problems
    tally = Tally()
    problems += _ledger(members[EVENTS], manifest, tally)
    if CHECKPOINT in members:
        problems += _checkpoint(members[CHECKPOINT], manifest, public)
    problems += _lookup_problems(members, manifest, tally)
    if "VERIFY.txt" in members:
        problems += _verify_text_problems(members["VERIFY.txt"], manifest)
    if "imports" in manifest:
        if not isinstance(manifest["imports"], dict) or manifest["imports"].get("file") != IMPORTS:
            return [*problems, f"{MANIFEST}: imports must name {IMPORTS}"]
        problems += _imports_problems(members.get(IMPORTS, b""), manifest)
    if PDF in members and XLSX in members:
        try:
            problems += report_problems(members, manifest, tally)
        except (
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            InvalidOperation,
            zlib.error,
            zipfile.BadZipFile,
        ) as exc:
            problems.append(f"{PDF} or {XLSX}: cannot be read for its figures ({exc!r})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("bundle", help="the bundle zip")
    parser.add_argument("--key", required=True, help="p402-signing.pub (PEM) or its OpenSSH form")
    parser.add_argument("--all", action="store_true", help="list every problem, not the first")
    args = parser.parse_args(argv)
    try:
        public = read_public_key(Path(args.key).read_text(encoding="ascii"))
        problems = verify(args.bundle, public)
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        problems = [f"the bundle is malformed ({exc!r})"]
    if not problems:
        manifest = json.loads(zipfile.ZipFile(args.bundle).read(MANIFEST))
        print(
            f"valid: {args.bundle}: {manifest['events']['count']:,} events of tenant "
            f"{manifest['tenant']!r}, {manifest['period']['label']}, "
            f"${Decimal(manifest['totals']['cost_rounded']):,} total; signed by key "
            f"{key_id(public)[:16]}; Merkle root {manifest['merkle']['root'][:16]}"
        )
        return 0
    more = (
        f" (and {len(problems) - 1} more; --all lists them)"
        if len(problems) > 1 and not args.all
        else ""
    )
    print(f"invalid: {args.bundle}: {problems[0]}{more}")
    if args.all:
        for problem in problems[1:]:
            print(f"  {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
