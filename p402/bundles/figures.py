"""The reports' figures, read back from a bundle and held against its ledger.

A bundle's reports are hashed and signed, but a hash proves only that the file is the one the
manifest lists: a PDF from another period, re-listed and re-signed, would pass. So verification
also reads the figures the reports state and compares them with what it recomputes from
``ledger/events.jsonl``:

- the PDF's embedded ``summary.json`` (an associated file, PDF/A-3): tenant, window, event
  count, rounded total, unpriced events, attributed + unattributed = total, the provider and
  department breakdowns (rounded by the reports' one allocation), bundle id and Merkle root;
- the workbook the PDF embeds must be ``report.xlsx`` itself, byte for byte;
- ``report.xlsx``: the Summary sheet's typed values (tenant, period, window, the stored total,
  unpriced events) and the By Provider sheet's rows (events and rounded cost per provider).

Standard library only (``zlib`` for the PDF's streams, ``xml.etree`` for the workbook), so the
check reads like the documents it checks and can be mirrored by a stand-alone verifier.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from io import BytesIO
from typing import Any
from xml.etree import ElementTree

from p402.bundles.layout import PDF, XLSX
from p402.money import allocate_cents, round_cents

__all__ = ["Expected", "pdf_attachments", "report_problems", "sheet_rows"]

JSON_TYPE = "application/json"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UNATTRIBUTED = "Unattributed"  # the reports' label for events with no department
_MAX_ATTACHMENT = 1 << 30
_EMBEDDED = re.compile(rb"\d+\s+\d+\s+obj\s*<<\s*/Type\s*/EmbeddedFile\b")
_NAME = re.compile(rb"/Subtype\s*/([^\s/<>\[\]()]+)")
_LENGTH = re.compile(rb"/Length\s+(\d+)(\s+\d+\s+R)?")
_SIZE = re.compile(rb"/Size\s+(\d+)")
_CHECKSUM = re.compile(rb"/CheckSum\s*<([0-9A-Fa-f]{32})>")
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


class FigureError(ValueError):
    """A report cannot be read for its figures."""


@dataclass(slots=True)
class Expected:
    """What the ledger member adds up to, for the reports to state: counted line by line as
    verification reads the ledger."""

    units: int = 0
    events: int = 0
    unpriced: int = 0
    providers: dict[str, list[int]] = field(default_factory=dict)
    """Per provider: events and exact cost units."""
    departments: dict[str | None, int] = field(default_factory=dict)
    """Per department (``None``: unattributed): exact cost units."""

    def add(self, record: Mapping[str, Any], units: int | None) -> None:
        """Count one event of the ledger (*units*: its exact cost, ``None`` when unpriced)."""
        self.events += 1
        if units is None:
            self.unpriced += 1
            units = 0
        self.units += units
        cell = self.providers.setdefault(record["provider"], [0, 0])
        cell[0] += 1
        cell[1] += units
        department = record["department"]
        self.departments[department] = self.departments.get(department, 0) + units


def _allocated(cells: Mapping[Any, int]) -> dict[Any, Decimal]:
    # The reports' order (unattributed last, larger first, then by name) decides which part
    # takes a cent the allocation hands out, so it is followed here exactly.
    order = sorted(cells, key=lambda key: (key is None, -cells[key], key or ""))
    _, cents = allocate_cents([cells[key] for key in order])
    return dict(zip(order, cents, strict=True))


def pdf_attachments(pdf: bytes) -> dict[str, bytes]:
    """The files a PDF embeds (``/Type /EmbeddedFile`` streams), by MIME type, inflated and
    checked against their own ``/Size`` and MD5 ``/CheckSum`` where the PDF states them.

    Raises:
        FigureError: a stream cannot be read.
    """
    found: dict[str, bytes] = {}
    for match in _EMBEDDED.finditer(pdf):
        head_end = pdf.find(b"stream", match.end())
        if head_end < 0:
            raise FigureError("an embedded file has no stream")
        head = pdf[match.end() : head_end]
        name, length = _NAME.search(head), _LENGTH.search(head)
        if name is None or length is None or length.group(2):
            raise FigureError("an embedded file's type or direct length is missing")
        start = head_end + len(b"stream")
        start += 2 if pdf[start : start + 2] == b"\r\n" else 1
        data = pdf[start : start + int(length.group(1))]
        if b"/FlateDecode" in head:
            try:
                inflater = zlib.decompressobj()
                data = inflater.decompress(data, _MAX_ATTACHMENT)
            except zlib.error as exc:
                raise FigureError(f"an embedded file does not inflate ({exc})") from None
        elif b"/Filter" in head:
            raise FigureError("an embedded file uses a filter other than FlateDecode")
        size, checksum = _SIZE.search(head), _CHECKSUM.search(head)
        if size is not None and int(size.group(1)) != len(data):
            raise FigureError("an embedded file is not the size the PDF states")
        if (
            checksum is not None
            # MD5 is what PDF states for an embedded file: an integrity check of the PDF's own.
            and hashlib.md5(data, usedforsecurity=False).hexdigest()
            != checksum.group(1).decode().lower()
        ):
            raise FigureError("an embedded file does not match the checksum the PDF states")
        kind = re.sub(
            rb"#([0-9A-Fa-f]{2})", lambda hit: bytes([int(hit.group(1), 16)]), name.group(1)
        )
        found[kind.decode("latin-1")] = data
    return found


def _cell(cell: ElementTree.Element) -> str | Decimal | None:
    kind = cell.get("t")
    if kind == "inlineStr":
        return "".join(text.text or "" for text in cell.iter(f"{_MAIN}t"))
    value = cell.find(f"{_MAIN}v")
    if value is None or not value.text:
        return None  # a formula whose value the writer did not cache
    if kind in (None, "n"):
        try:
            return Decimal(value.text)
        except InvalidOperation:
            raise FigureError(f"cell {cell.get('r')}: not a number") from None
    return value.text


def _xml(book: zipfile.ZipFile, name: str) -> ElementTree.Element:
    """A part of the workbook, parsed. A part that declares a document type (the only way to
    entities, and so to their expansion) is refused before it is parsed, and so is one bigger
    than any report p402 writes."""
    if book.getinfo(name).file_size > _MAX_ATTACHMENT:
        raise FigureError(f"{name} is too large")
    data = book.read(name)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise FigureError(f"{name} declares a document type")
    return ElementTree.fromstring(data)  # noqa: S314  (no DTD: nothing for an attack to use)


def sheet_rows(xlsx: bytes, sheet: str) -> list[list[str | Decimal | None]]:
    """The typed values of a workbook's sheet, row by row (inline strings and numbers; a
    formula without a cached value is ``None``).

    Raises:
        FigureError: the workbook or the sheet cannot be read.
    """
    try:
        with zipfile.ZipFile(BytesIO(xlsx)) as book:
            workbook = _xml(book, "xl/workbook.xml")
            rels = _xml(book, "xl/_rels/workbook.xml.rels")
            ids = {
                item.get(f"{_REL}id"): item.get("name") for item in workbook.iter(f"{_MAIN}sheet")
            }
            targets = {
                item.get("Id"): item.get("Target")
                for item in rels.iter(f"{_PACKAGE_REL}Relationship")
            }
            wanted = [rid for rid, name in ids.items() if name == sheet]
            if len(wanted) != 1 or not targets.get(wanted[0]):
                raise FigureError(f"no sheet {sheet!r}")
            target = str(targets[wanted[0]]).lstrip("/")
            path = target if target.startswith("xl/") else f"xl/{target}"
            root = _xml(book, path)
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise FigureError(f"not a readable workbook ({exc})") from None
    rows: list[list[str | Decimal | None]] = []
    for row in root.iter(f"{_MAIN}row"):
        cells: list[str | Decimal | None] = []
        for cell in row.iter(f"{_MAIN}c"):
            column = _column(cell.get("r") or "")
            cells.extend([None] * (column - len(cells)))
            cells.append(_cell(cell))
        rows.append(cells)
    return rows


def _column(reference: str) -> int:
    letters = re.match(r"[A-Z]+", reference)
    if letters is None:
        raise FigureError(f"cell reference {reference!r}")
    index = 0
    for letter in letters.group(0):
        index = index * 26 + ord(letter) - 64
    return index - 1


def report_problems(
    pdf: bytes, xlsx: bytes, manifest: Mapping[str, Any], expected: Expected
) -> list[str]:
    """Every figure of the reports that is not what the ledger member adds up to."""
    problems: list[str] = []
    try:
        attachments = pdf_attachments(pdf)
    except FigureError as exc:
        return [f"{PDF}: {exc}"]
    if attachments.get(XLSX_TYPE) != xlsx:
        problems.append(f"{PDF}: the workbook it embeds is not {XLSX}")
    if JSON_TYPE not in attachments:
        problems.append(f"{PDF}: no embedded summary of its figures")
    else:
        try:
            summary = json.loads(attachments[JSON_TYPE])
            problems.extend(
                f"{PDF}: embedded summary {text}" for text in _summary(summary, manifest, expected)
            )
        except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation) as exc:
            problems.append(f"{PDF}: embedded summary cannot be read ({exc!r})")
    try:
        problems.extend(f"{XLSX}: {text}" for text in _workbook(xlsx, manifest, expected))
    except (FigureError, IndexError, InvalidOperation) as exc:
        problems.append(f"{XLSX}: cannot be read for its figures ({exc})")
    return problems


def _differs(what: str, stated: object, ledger: object, against: str = "ledger") -> list[str]:
    return [] if stated == ledger else [f"{what} {stated} != {against} {ledger}"]


def _summary(
    summary: Mapping[str, Any], manifest: Mapping[str, Any], expected: Expected
) -> list[str]:
    period = manifest["period"]
    total = round_cents(expected.units)
    found = [
        *_differs("tenant", summary["tenant"], manifest["tenant"], "manifest"),
        *_differs("period", summary["period"], period["label"], "manifest"),
        *_differs("window", (summary["window"]["start"], summary["window"]["end"]),
                  (period["start"], period["end"]), "manifest"),
        *_differs("events", summary["events"], expected.events),
        *_differs("total", Decimal(summary["total"]), total),
        *_differs("unpriced events", summary["unpriced_events"], expected.unpriced),
        *_differs(
            "attributed + unattributed",
            Decimal(summary["attributed"]) + Decimal(summary["unattributed"]),
            total,
        ),
        *_differs("bundle id", summary["bundle_id"], manifest["bundle_id"], "manifest"),
        *_differs("Merkle root", summary["merkle_root"], manifest["merkle"]["root"], "manifest"),
    ]  # fmt: skip
    providers = _allocated({name: cell[1] for name, cell in expected.providers.items()})
    stated = {name: Decimal(cost) for name, cost in summary["by_provider"].items()}
    found += _differs("by provider", stated, providers)
    departments = {
        UNATTRIBUTED if name is None else name: cost
        for name, cost in _allocated(expected.departments).items()
    }
    stated = {name: Decimal(cost) for name, cost in summary["by_department"].items()}
    found += _differs("by department", stated, departments)
    return found


def _workbook(xlsx: bytes, manifest: Mapping[str, Any], expected: Expected) -> list[str]:
    period = manifest["period"]
    items = {
        row[0]: row[1]
        for row in sheet_rows(xlsx, "Summary")[1:]
        if len(row) > 1 and isinstance(row[0], str)
    }
    found = [
        *_differs("Summary tenant", items.get("Tenant"), manifest["tenant"], "manifest"),
        *_differs("Summary period", items.get("Period"), period["label"], "manifest"),
        *_differs("Summary window start", items.get("Window start (UTC)"), period["start"], "manifest"),
        *_differs("Summary window end", items.get("Window end (UTC, excluded)"), period["end"], "manifest"),
        *_differs("Summary total", items.get("Total spend, stored figure (USD)"), round_cents(expected.units)),
        *_differs("Summary unpriced events", items.get("Unpriced events"), Decimal(expected.unpriced)),
    ]  # fmt: skip
    providers = _allocated({name: cell[1] for name, cell in expected.providers.items()})
    rows = sheet_rows(xlsx, "By Provider")
    stated: dict[str, tuple[Any, Any]] = {}
    for row in rows[1:]:
        if not row or row[0] == "Total":
            break
        if len(row) > 4 and isinstance(
            row[1], Decimal
        ):  # a provider's row (an empty sheet has none)
            stated[str(row[0])] = (row[1], row[4])
    ledger = {
        name: (Decimal(cell[0]), providers[name]) for name, cell in expected.providers.items()
    }
    found += _differs("By Provider (events, cost)", stated, ledger)
    return found
