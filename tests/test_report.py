"""Reports: the HTML matches its golden file, and the XLSX and PDF tie out to the ledger."""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from p402.config import Config, Invoice
from p402.money import to_units
from p402.reporting.aggregate import Aggregator, Summary
from p402.reporting.document import ReportContext, render_html, top_rows
from p402.reporting.filters import money, percent
from p402.reporting.pdf import render_pdf
from p402.reporting.report import Report, build_report
from p402.reporting.xlsx import SHEETS, render_xlsx
from tests.conftest import PERIOD, small_events

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
    return aggregator.summary(start=PERIOD.start.date())


@pytest.fixture(scope="module")
def report(summary: Summary) -> Report:
    invoices = (
        Invoice("openai", "2026-10", Decimal("0.12")),
        Invoice("google", "2026-10", Decimal("5.00")),
    )
    return build_report(summary, period=PERIOD, config=Config(invoices=invoices), billed={})


def records() -> Iterator[dict[str, Any]]:
    for event in sorted(small_events(), key=lambda e: (e.occurred_at, e.event_id)):
        yield event.to_json()


def test_html_matches_golden_file(report: Report) -> None:
    # The stylesheet is its own package file; the snapshot is of the markup and the figures.
    html = re.sub(
        r"<style>.*?</style>",
        "<style>(report.css)</style>",
        render_html(report, CONTEXT),
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


def test_xlsx_reads_back_and_ties_out(report: Report, summary: Summary) -> None:
    from openpyxl import load_workbook

    data = render_xlsx(report, CONTEXT, records(), moment=MOMENT)
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == [
        "Summary", *SHEETS.values(), "By Month", "Daily", "Budgets", "Forecast", "Anomalies", "Savings", "Unit Costs",
        "Policy Findings",
        "Reconciliation", "Bridge", "Journal", "Events",
    ]  # fmt: skip
    values = {row[0].value: row[1].value for row in book["Summary"].iter_rows(min_row=2)}
    assert (
        values["Total spend (USD)"]
        == f"='By Department'!E{len(summary.breakdowns['department'].rows) + 2}"
    )
    assert Decimal(str(values["Total spend, stored figure (USD)"])) == summary.total
    for title in SHEETS.values():
        sheet = book[title]
        *rows, total = sheet.iter_rows(min_row=2, values_only=True)
        assert total[0] == "Total" and total[4] == f"=SUM(E2:E{len(rows) + 1})"
        assert sum(Decimal(str(r[4])) for r in rows) == summary.total  # the rows the formula sums
        assert sheet.freeze_panes == "A2" and len(sheet.tables) == 1
    events = list(book["Events"].iter_rows(min_row=2, values_only=True))
    assert len(events) == summary.events
    first = next(book["Events"].iter_rows(min_row=2, max_row=2))
    assert isinstance(first[1].value, datetime) and first[1].number_format == "yyyy-mm-dd hh:mm:ss"
    assert first[12].number_format == "0.000000000000"
    exact = sum(to_units(Decimal(str(r[12]))) for r in events if r[12] is not None)
    assert exact == summary.cost_units


def test_xlsx_is_deterministic(report: Report) -> None:
    first = render_xlsx(report, CONTEXT, records(), moment=MOMENT)
    assert render_xlsx(report, CONTEXT, records(), moment=MOMENT) == first


@pytest.mark.slow
def test_pdf_text_carries_the_key_figures(report: Report, summary: Summary) -> None:
    from pypdf import PdfReader

    pdf = render_pdf(render_html(report, CONTEXT))
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert money(summary.total) in text
    assert money(summary.breakdowns["department"].rows[0].cost) in text
    assert "Unattributed" in text
    assert f"Page 2 of {len(reader.pages)}" in text
    assert render_pdf(render_html(report, CONTEXT)) == pdf  # same HTML, same bytes


@pytest.mark.slow
def test_xlsx_read_by_libreoffice_ties_out(
    report: Report, summary: Summary, tmp_path: Path
) -> None:
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
    book.write_bytes(render_xlsx(report, CONTEXT, records(), moment=MOMENT))
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

    stated = {row[0]: row[1] for row in sheet("Summary")}
    # the formulas, computed by LibreOffice, equal the stored figures
    assert (
        Decimal(stated["Total spend (USD)"])
        == Decimal(stated["Total spend, stored figure (USD)"])
        == summary.total
    )
    assert int(stated["Events"]) == summary.events
    for title in [*SHEETS.values(), "Daily"]:
        header, *_, total = sheet(title)
        assert (
            Decimal(total[header.index("Total (USD)" if title == "Daily" else "Cost (USD)")])
            == summary.total
        )
    header, *journal = sheet("Journal")
    debit, credit = header.index("Debit"), header.index("Credit")
    assert journal[-1][debit] == journal[-1][credit]  # debits = credits
    assert sum(Decimal(row[debit]) for row in journal[:-1]) == Decimal(journal[-1][debit])
    events = sheet("Events")[1:]
    assert len(events) == summary.events
    assert sum(to_units(Decimal(row[12])) for row in events if row[12]) == summary.cost_units


def test_above_the_limit_events_become_a_rollup_that_ties_out(
    report: Report, summary: Summary, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    import p402.reporting.xlsx as workbook

    monkeypatch.setattr(workbook, "EVENTS_SHEET_LIMIT", 10)
    book = load_workbook(io.BytesIO(render_xlsx(report, CONTEXT, records(), moment=MOMENT)))
    sheet = book["Events"]
    header = next(sheet.iter_rows(max_row=1, values_only=True))
    assert header[:5] == ("Date", "Department", "Customer", "Workflow", "Provider / model")
    assert str(header[-1]).startswith(f"This period has {summary.events:,} events")
    *rows, total = sheet.iter_rows(min_row=2, values_only=True)
    assert sum(int(str(row[5])) for row in rows) == summary.events
    assert sum(Decimal(str(row[8])) for row in rows) == summary.total
    assert total[8] == f"=SUM(I2:I{len(rows) + 1})"
    assert list(sheet.tables) == ["EventsRollup"]


def test_a_quarter_states_each_month_and_its_change() -> None:
    import dataclasses
    from datetime import timedelta

    from p402.period import parse_period

    quarter = parse_period("2026-Q4")
    october = small_events()
    november = [dataclasses.replace(e, event_id=f"nov-{e.event_id}", occurred_at=e.occurred_at + timedelta(days=31))
                for e in october if e.cost is not None][:12]  # fmt: skip
    aggregator = Aggregator()
    aggregator.extend([*october, *november])
    summary = aggregator.summary(start=quarter.start.date())
    built = build_report(summary, period=quarter, config=Config(), billed={})
    assert [month for month, _ in built.months] == ["2026-10", "2026-11", "2026-12"]
    assert sum((amount for _, amount in built.months), Decimal(0)) == summary.total
    (_, _, first), (_, _, second), (_, _, third) = built.month_changes()
    assert first is None and second is not None and second < 0 and third == Decimal("-100.0")
    html = render_html(built, CONTEXT)
    assert "By month:" in html and f"({second} % on the month before)" in html
    from openpyxl import load_workbook

    book = load_workbook(
        io.BytesIO(render_xlsx(built, CONTEXT, iter(()), moment=MOMENT)), data_only=True
    )
    header, *rows, total = book["By Month"].iter_rows(values_only=True)
    providers = [row.label for row in summary.breakdowns["provider"].rows]
    assert list(header[1 : len(providers) + 1]) == providers and [r[0] for r in rows] == [
        "2026-10",
        "2026-11",
        "2026-12",
    ]
    for column, row in enumerate(
        summary.breakdowns["provider"].rows, start=1
    ):  # columns tie to By Provider
        assert sum(Decimal(str(r[column])) for r in rows) == row.cost == Decimal(str(total[column]))
    for r, (_, amount) in zip(rows, built.months, strict=True):  # rows to the months
        assert (
            sum(Decimal(str(c)) for c in r[1 : len(providers) + 1])
            == Decimal(str(r[len(providers) + 1]))
            == amount
        )


def test_tool_charges_tier_unpriced_and_data_quality_are_shown_apart() -> None:
    from openpyxl import load_workbook

    base = small_events()
    odd = [
        base[0].evolve(event_id="tools", cost=Decimal("1.25"), tool_cost=Decimal("0.07"),
                       web_search_calls=7, cost_source="price_table"),
        base[1].evolve(event_id="tier", cost=None, cost_source="tier_unpriced", list_cost=None),
        base[2].evolve(event_id="odd", quality="model_missing,reasoning_exceeds_output"),
    ]  # fmt: skip
    aggregator = Aggregator()
    aggregator.extend([*base[3:], *odd])
    summary = aggregator.summary(start=PERIOD.start.date())
    assert summary.tool_cost == Decimal("0.07") and summary.tier_unpriced_events == 1
    assert [code for code, _, _ in summary.quality] == ["model_missing", "reasoning_exceeds_output"]
    report = build_report(summary, period=PERIOD, config=Config(), billed={})
    html = render_html(report, CONTEXT)
    assert "web and file search) account for $0.07 of the total" in html
    assert "1 use a priced model at a service tier" in html
    assert "model_missing on 1 event" in html
    book = load_workbook(io.BytesIO(render_xlsx(report, CONTEXT, iter(()), moment=MOMENT)))
    values = {row[0].value: row[1].value for row in book["Summary"].iter_rows(min_row=2)}
    assert str(values["Tool calls, part of total spend (USD)"]) == "0.07"  # a number cell
    assert values["Of the unpriced, tier-unpriced events"] == 1
    assert values["Data quality: model_missing (events)"] == 1


def _formula_cells(data: bytes) -> dict[tuple[str, str], tuple[str, Any]]:
    """Every formula cell of the workbook: (sheet, cell) -> (formula, cached value)."""
    from openpyxl import load_workbook

    formulas = load_workbook(io.BytesIO(data))
    cached = load_workbook(io.BytesIO(data), data_only=True)
    found = {}
    for sheet in formulas.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    value = cached[sheet.title][cell.coordinate].value
                    found[(sheet.title, cell.coordinate)] = (str(cell.value), value)
    return found


def test_every_formula_carries_its_value_for_readers_that_do_not_calculate(
    report: Report, summary: Summary
) -> None:
    import pandas as pd
    from openpyxl import load_workbook

    data = render_xlsx(report, CONTEXT, records(), moment=MOMENT)
    formulas = _formula_cells(data)
    assert len(formulas) > 40
    assert [cell for cell, (_, value) in formulas.items() if value is None] == []
    # A reader that does not calculate finds every total: openpyxl data_only, and pandas.
    book = load_workbook(io.BytesIO(data), data_only=True)
    stated = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert Decimal(str(stated["Total spend (USD)"])) == summary.total
    assert Decimal(str(stated["Attributed to a department (USD)"])) == summary.attributed
    assert Decimal(str(stated["Unattributed (USD)"])) == summary.unattributed
    assert stated["Events"] == summary.events
    sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, dtype=object)
    for title in [*SHEETS.values(), "Daily"]:
        frame = sheets[title]
        total = frame[frame.iloc[:, 0] == "Total"]
        column = "Total (USD)" if title == "Daily" else "Cost (USD)"
        assert Decimal(str(total[column].iloc[0])) == summary.total, title
    journal = sheets["Journal"]
    totals = journal[journal["Journal"] == "Total"]
    assert Decimal(str(totals["Debit"].iloc[0])) == Decimal(str(totals["Credit"].iloc[0]))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
    assert 'fullCalcOnLoad="1"' in workbook  # and a spreadsheet recomputes on opening


def test_every_sheet_prints_fitted_with_its_header_repeated(report: Report) -> None:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(render_xlsx(report, CONTEXT, records(), moment=MOMENT)))
    for sheet in book.worksheets:
        fit = sheet.sheet_properties.pageSetUpPr
        assert fit is not None and fit.fitToPage, sheet.title
        assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0), sheet.title
        assert sheet.print_title_rows == "$1:$1", sheet.title
    # The table is printed, not the note beside its header (which would shrink it to nothing).
    journal = book["Journal"]
    assert journal.print_area == f"'Journal'!$A$1:$N${len(report.journal) + 2}"
    footer = journal.oddFooter
    assert footer is not None and footer.center.text == "&A, page &P of &N"
    wide = {s.title for s in book.worksheets if s.page_setup.orientation == "landscape"}
    assert {"Reconciliation", "Bridge", "Journal", "Events"} <= wide
    assert "Summary" not in wide


def test_each_table_states_its_rounding_and_gives_the_exact_figure(report: Report) -> None:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(render_xlsx(report, CONTEXT, records(), moment=MOMENT)))
    for title in [*SHEETS.values(), "Policy Findings"]:
        header = next(book[title].iter_rows(max_row=1, values_only=True))
        assert "Exact cost (USD)" in header, title
        assert any(
            str(cell).startswith("Cost (USD) is each row's share") for cell in header if cell
        ), title
    findings = list(book["Policy Findings"].iter_rows(min_row=2, values_only=True))
    assert findings[-1][4] == f"=SUM(E2:E{len(findings)})"  # cost, summed
    events = next(book["Events"].iter_rows(max_row=1, values_only=True))
    assert {"tags", "attribution_rule", "list_cost"} <= set(events)


def test_the_rollup_names_unattributed_rows(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openpyxl import load_workbook

    import p402.reporting.xlsx as workbook

    monkeypatch.setattr(workbook, "EVENTS_SHEET_LIMIT", 10)
    book = load_workbook(io.BytesIO(render_xlsx(report, CONTEXT, records(), moment=MOMENT)))
    *rows, _ = book["Events"].iter_rows(min_row=2, values_only=True)
    assert all(row[1] and row[2] and row[3] for row in rows)
    assert "Unattributed" in {row[1] for row in rows}
    assert sum(Decimal(str(row[9])) for row in rows) == report.summary.cost_units * Decimal("1e-12")


@pytest.mark.slow
def test_libreoffice_recomputes_every_formula_to_its_cached_value(
    report: Report, tmp_path: Path
) -> None:
    """Every formula, recomputed by LibreOffice (which reads the cache but, asked to, computes
    afresh), equals the value written beside it."""
    import shutil
    import subprocess

    from openpyxl import load_workbook

    soffice = shutil.which("soffice")
    if soffice is None:
        if os.environ.get("P402_REQUIRE_LIBREOFFICE") == "1":
            pytest.fail("P402_REQUIRE_LIBREOFFICE=1 but soffice is not installed")
        pytest.skip("LibreOffice (soffice) is not installed")
    data = render_xlsx(report, CONTEXT, records(), moment=MOMENT)
    # The cache emptied: whatever LibreOffice shows it computed itself.
    (tmp_path / "in.xlsx").write_bytes(_without_cache(data))
    subprocess.run(
        [soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile", "--convert-to", "xlsx",
         "--outdir", str(tmp_path / "out"), str(tmp_path / "in.xlsx")],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    computed = load_workbook(tmp_path / "out" / "in.xlsx", data_only=True)
    differ = []
    for (title, cell), (formula, value) in _formula_cells(data).items():
        theirs = computed[title][cell].value
        if Decimal(str(theirs)) != Decimal(str(value)):
            differ.append((title, cell, formula, value, theirs))
    assert differ == []


def _without_cache(data: bytes) -> bytes:
    """The workbook with every formula's cached value taken out."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            member = source.read(entry)
            if entry.filename.startswith("xl/worksheets/"):
                member = re.sub(rb"(</f>)<v>[^<]*</v>", rb"\1", member)
            target.writestr(entry, member)
    return out.getvalue()


def test_tag_breakdowns_are_sheets_and_tables_that_tie_out() -> None:
    from openpyxl import load_workbook

    tags = ["prod", "staging", None]
    events = [
        e.evolve(tags=((("a:b", t), ("a/b", t), ("env", t)) if t else ()))
        for e, t in zip(small_events(), tags * 8, strict=False)
    ]
    aggregator = Aggregator(tag_breakdowns=("env", "a:b", "a/b"))
    aggregator.extend(events)
    summary = aggregator.summary(start=PERIOD.start.date())
    report = build_report(summary, period=PERIOD, config=Config(), billed={})
    records = [e.to_json() for e in sorted(events, key=lambda e: (e.occurred_at, e.event_id))]
    book = load_workbook(
        io.BytesIO(render_xlsx(report, CONTEXT, records, moment=MOMENT)), data_only=True
    )
    assert {"By tag env", "By tag a-b", "By tag a-b (2)"} <= set(book.sheetnames)
    *rows, total = book["By tag env"].iter_rows(min_row=2, values_only=True)
    assert [row[0] for row in rows] == sorted(
        (r[0] for r in rows), key=lambda label: label == "No env tag"
    )
    assert Decimal(str(total[4])) == summary.total == sum(Decimal(str(row[4])) for row in rows)
    assert "Spend by tag env" in render_html(report, CONTEXT)


def test_unit_costs_count_requests_and_successes_per_workflow_and_customer(report: Report) -> None:
    from collections import Counter

    served, internal = report.uses()
    assert served + internal == report.summary.total
    facing = sum(
        to_units(e.cost) for e in small_events() if e.cost is not None and e.customer is not None
    )
    assert abs(served - Decimal(facing).scaleb(-12)) < Decimal("0.01")
    succeeded = Counter(e.workflow for e in small_events() if e.outcome == "success" and e.workflow)
    for unit in report.unit_costs("workflow"):
        assert unit.successes == succeeded[unit.value]
        row = next(r for r in report.summary.breakdowns["workflow"].rows if r.label == unit.value)
        expected = (Decimal(row.cost_units).scaleb(-12) / row.requests).quantize(
            Decimal("0.0001"), ROUND_HALF_UP
        )
        assert unit.per_request == expected and unit.cost == row.cost
    assert all(u.value != "No customer (internal use)" for u in report.unit_costs("customer"))


def test_every_breakdown_is_compared_with_the_period_before(tmp_path: Path) -> None:
    from datetime import timedelta

    from openpyxl import load_workbook

    from p402.audit.draft import write_reports
    from p402.ledger.store import Ledger

    october = small_events()
    september = [e.evolve(event_id=f"sep-{e.event_id}", occurred_at=e.occurred_at - timedelta(days=30))
                 for e in october[:15]]  # fmt: skip
    september.append(
        october[0].evolve(
            event_id="sep-gone", department="Gone", occurred_at=september[0].occurred_at
        )
    )
    ledger = Ledger.open(str(tmp_path / "l.db"))
    try:
        ledger.add([*october, *september])
        made = write_reports(ledger, tenant=october[0].tenant, period=PERIOD, config=Config(),
                             out_dir=tmp_path / "out", formats={"pdf", "xlsx"}, page_size="A4")  # fmt: skip
    finally:
        ledger.close()
    report = made.report
    assert report.previous is not None and report.previous_label == "2026-09"
    book = load_workbook(next(p for p in made.files if p.suffix == ".xlsx"), data_only=True)
    header, *rows = book["Previous Period"].iter_rows(values_only=True)
    assert header[:4] == ("Dimension", "Value", "This period (USD)", "2026-09 (USD)")
    for dimension in ("department", "provider", "customer"):
        mine = [r for r in rows if r[0] == dimension]
        assert sum(Decimal(str(r[2])) for r in mine) == report.summary.total  # both columns tie
        assert sum(Decimal(str(r[3])) for r in mine) == report.previous.total
    assert ("department", "Gone", 0) in {(r[0], r[1], r[2]) for r in rows}  # only September had it
    assert [s.title for s in book.worksheets][:8] == [
        "Summary",
        *SHEETS.values(),
    ]  # breakdowns unchanged
    html = render_html(report, CONTEXT)
    assert f"{report.change()} % on 2026-09" in html.replace("+", "")


def test_the_period_before_is_of_the_same_kind() -> None:
    from datetime import date

    from p402.period import parse_period, previous_period

    def before(label: str | None = None, **dates: date) -> str | None:
        found = previous_period(parse_period(label, **dates))
        return None if found is None else found.label

    assert [before("2026-10"), before("2026-01"), before("2026-Q1"), before("2026-Q3")] == [
        "2026-09", "2025-12", "2025-Q4", "2026-Q2",
    ]  # fmt: skip
    assert before(start=date(2026, 10, 10), end=date(2026, 10, 19)) == "2026-09-30..2026-10-09"
    assert before(start=date(1, 1, 1), end=date(1, 1, 31)) is None  # nothing before the calendar
