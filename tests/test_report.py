"""Reports: the HTML matches its golden file, and the XLSX and PDF tie out to the ledger."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from p402.money import to_units
from p402.reporting.aggregate import Aggregator, Summary
from p402.reporting.document import ReportContext, render_html, top_rows
from p402.reporting.filters import money, percent
from p402.reporting.pdf import render_pdf
from p402.reporting.xlsx import SHEETS, render_xlsx
from tests.conftest import small_events

GOLDEN = Path(__file__).parent / "data" / "report_small.html"
CONTEXT = ReportContext(
    tenant="acme", period="2026-10", window_start="2026-10-01T00:00:00Z", window_end="2026-11-01T00:00:00Z",
    as_of="2026-10-21T09:00:00Z",
    bundle_id="0123456789abcdef", key_id="ab" * 32, merkle_root="cd" * 32, generator="p402 test",
    price_table="genai-prices test",
)  # fmt: skip
MOMENT = datetime(2026, 10, 21, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def summary() -> Summary:
    aggregator = Aggregator()
    aggregator.extend(small_events())
    return aggregator.summary()


def records() -> Iterator[dict[str, Any]]:
    for event in sorted(small_events(), key=lambda e: (e.occurred_at, e.event_id)):
        yield event.to_json()


def test_html_matches_golden_file(summary: Summary) -> None:
    # The stylesheet is its own package file; the snapshot is of the markup and the figures.
    html = re.sub(
        r"<style>.*?</style>",
        "<style>(report.css)</style>",
        render_html(summary, CONTEXT),
        flags=re.S,
    )
    if os.environ.get("P402_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(html, encoding="utf-8")
    assert html == GOLDEN.read_text(encoding="utf-8"), (
        "run with P402_UPDATE_GOLDEN=1 and review the diff"
    )


def test_money_filter() -> None:
    assert money(Decimal("1234567.5")) == "$1,234,567.50"
    assert money(Decimal("-3.00")) == "-$3.00"
    assert money(Decimal("0.00")) == "$0.00"
    assert percent(Decimal("0.8244")) == "82.4 %"
    with pytest.raises(ValueError, match="not rounded"):
        money(Decimal("0.001"))


def test_top_rows_fold_the_tail_into_other_keeping_the_sum(summary: Summary) -> None:
    breakdown = summary.breakdowns["model"]
    rows = top_rows(breakdown, 1)
    assert rows[1].label.startswith("Other (")
    assert sum((row.cost for row in rows), Decimal(0)) == breakdown.total


def test_xlsx_reads_back_and_ties_out(summary: Summary) -> None:
    from openpyxl import load_workbook

    data = render_xlsx(summary, CONTEXT, records(), moment=MOMENT)
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Summary", *SHEETS.values(), "Events"]
    values = {row[0].value: row[1].value for row in book["Summary"].iter_rows(min_row=2)}
    assert Decimal(str(values["Total spend (USD)"])) == summary.total
    assert values["Events"] == summary.events
    for title in SHEETS.values():
        sheet = book[title]
        body = list(sheet.iter_rows(min_row=2, values_only=True))
        *rows, total = body
        assert total[0] == "Total"
        assert sum(Decimal(str(r[4])) for r in rows) == Decimal(str(total[4])) == summary.total
        assert sheet.freeze_panes == "A2"
    events = list(book["Events"].iter_rows(min_row=2, values_only=True))
    assert len(events) == summary.events
    first = next(book["Events"].iter_rows(min_row=2, max_row=2))
    assert isinstance(first[1].value, datetime) and first[1].number_format == "yyyy-mm-dd hh:mm:ss"
    assert first[12].number_format == "0.000000000000"
    exact = sum(to_units(Decimal(str(r[12]))) for r in events if r[12] is not None)
    assert exact == summary.cost_units


def test_xlsx_is_deterministic(summary: Summary) -> None:
    first = render_xlsx(summary, CONTEXT, records(), moment=MOMENT)
    assert render_xlsx(summary, CONTEXT, records(), moment=MOMENT) == first


def test_pdf_text_carries_the_key_figures(summary: Summary) -> None:
    from pypdf import PdfReader

    pdf = render_pdf(render_html(summary, CONTEXT))
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert money(summary.total) in text
    assert money(summary.breakdowns["department"].rows[0].cost) in text
    assert "Unattributed" in text
    assert f"Page 2 of {len(reader.pages)}" in text
    assert render_pdf(render_html(summary, CONTEXT)) == pdf  # same HTML, same bytes


def test_xlsx_read_by_libreoffice_ties_out(summary: Summary, tmp_path: Path) -> None:
    """A second, independent reader: LibreOffice converts every sheet to CSV; the totals tie."""
    import csv
    import shutil
    import subprocess

    soffice = shutil.which("soffice")
    if soffice is None:
        if os.environ.get("P402_REQUIRE_LIBREOFFICE") == "1":
            pytest.fail("P402_REQUIRE_LIBREOFFICE=1 but soffice is not installed")
        pytest.skip("LibreOffice (soffice) is not installed")
    book = tmp_path / "report.xlsx"
    book.write_bytes(render_xlsx(summary, CONTEXT, records(), moment=MOMENT))
    # 44,34,76,1: comma, quote, UTF-8, from line 1; the trailing -1 exports every sheet.
    filters = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
    subprocess.run(
        [soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile", "--convert-to", filters,
         "--outdir", str(tmp_path), str(book)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    def sheet(title: str) -> list[list[str]]:
        with (tmp_path / f"report-{title}.csv").open(encoding="utf-8") as handle:
            return list(csv.reader(handle))

    assert {row[0]: row[1] for row in sheet("Summary")}["Total spend (USD)"] == str(summary.total)
    for title in SHEETS.values():
        *rows, total = sheet(title)[1:]
        assert Decimal(total[4]) == summary.total
        assert sum(Decimal(row[4]) for row in rows) == summary.total
    events = sheet("Events")[1:]
    assert len(events) == summary.events
    assert sum(to_units(Decimal(row[12])) for row in events if row[12]) == summary.cost_units
