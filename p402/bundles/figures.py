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

The PDF and workbook are read by the stand-alone verifier's own readers
(:mod:`p402.bundles.standalone`, standard library only), so both verifiers see the same figures.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree import ElementTree

from p402.bundles import standalone
from p402.bundles.layout import PDF, XLSX
from p402.money import allocate_cents, round_cents

__all__ = ["Expected", "pdf_attachments", "report_problems", "sheet_rows"]

JSON_TYPE = "application/json"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UNATTRIBUTED = "Unattributed"  # the reports' label for events with no department


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
    """The files a PDF embeds, by MIME type, inflated and checked against their own stated size
    and checksum: the stand-alone verifier's reader (:func:`standalone.pdf_files`), one for both.

    Raises:
        FigureError: a stream cannot be read.
    """
    try:
        return standalone.pdf_files(pdf)
    except ValueError as exc:
        raise FigureError(str(exc)) from None


def sheet_rows(xlsx: bytes, sheet: str) -> list[list[str | Decimal | None]]:
    """The typed values of a workbook's sheet, row by row (inline strings and numbers; a
    formula without a cached value is ``None``): :func:`standalone.sheet`, one for both.

    Raises:
        FigureError: the workbook or the sheet cannot be read.
    """
    try:
        return standalone.sheet(xlsx, sheet)
    except (ValueError, KeyError, zipfile.BadZipFile, ElementTree.ParseError) as exc:
        raise FigureError(f"not a readable workbook ({exc})") from None


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
