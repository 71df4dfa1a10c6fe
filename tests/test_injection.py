"""Data is never code: attribution values that look like spreadsheet formulas, sent by any holder
of a tenant key, stay text in the close workbook and in every CSV p402 writes, and come back
from p402's own CSV export exactly as they went in."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p402.audit import run_audit
from p402.bundles.layout import XLSX
from p402.bundles.signing import SigningKey
from p402.cells import FORMULA_STARTS, neutralised, restored
from p402.ingest.importer import import_files
from p402.ledger.events import Event
from p402.ledger.export import export_ledger
from p402.ledger.store import Ledger
from tests.conftest import PERIOD, TENANT, small_events
from tests.test_bundle_tamper import read_members

HOSTILE = (
    '=HYPERLINK("http://evil.example","x")',
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,1)",
    "\tTAB=1",
    "#N/A",
    "'=already quoted",
)


def _hostile_events() -> list[Event]:
    events = small_events()
    for n, value in enumerate(HOSTILE):
        events[n] = replace(
            events[n], department=value, customer=value, workflow=value, owner=value,
            tags=(("team", value),) if value.isprintable() else (),
        )  # fmt: skip
    return events


def _formulas(xlsx: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as book:
        return [
            formula.decode()
            for name in book.namelist()
            if name.startswith("xl/worksheets/")
            for formula in re.findall(rb"<f>([^<]*)</f>", book.read(name))
        ]


@pytest.fixture
def hostile_xlsx(tmp_path: Path, sqlite_ledger: Ledger, signing_key: SigningKey) -> bytes:
    sqlite_ledger.add(_hostile_events())
    result = run_audit(
        sqlite_ledger, tenant=TENANT, period=PERIOD, key=signing_key, out_dir=tmp_path / "out"
    )
    return read_members(result.bundle.read_bytes())[XLSX]


def test_no_value_from_the_ledger_becomes_a_formula_or_an_error_cell(hostile_xlsx: bytes) -> None:
    formulas = _formulas(hostile_xlsx)
    assert formulas, "the workbook's own totals are formulas"
    # Only p402's own: sums over a column, and the Summary's references to the breakdowns.
    ref = r"'?[A-Za-z ]+'?!\$?[A-Z]+\$?\d+"
    ours = re.compile(rf"^(SUM\([A-Z]+\d+:[A-Z]+\d+\)|{ref}(-{ref})?|0)$")
    assert [f for f in formulas if not ours.match(f)] == []
    with zipfile.ZipFile(io.BytesIO(hostile_xlsx)) as archive:
        sheets = b"".join(
            archive.read(n) for n in archive.namelist() if n.startswith("xl/worksheets/")
        )
    assert b't="e"' not in sheets
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(hostile_xlsx))
    for title in ("By Department", "Events", "Journal"):
        seen = {cell.value for row in book[title].iter_rows() for cell in row}
        assert set(HOSTILE) & seen, f"{title} does not show the values as text"
        typed = [cell for row in book[title].iter_rows() for cell in row if cell.value in HOSTILE]
        assert {cell.data_type for cell in typed} == {"s"}, title


@pytest.mark.slow
def test_libreoffice_shows_the_values_and_evaluates_none(
    hostile_xlsx: bytes, tmp_path: Path
) -> None:
    soffice = shutil.which("soffice")
    if soffice is None:
        if os.environ.get("P402_REQUIRE_LIBREOFFICE") == "1":
            pytest.fail("P402_REQUIRE_LIBREOFFICE=1 but soffice is not installed")
        pytest.skip("LibreOffice (soffice) is not installed")
    book = tmp_path / "hostile.xlsx"
    book.write_bytes(hostile_xlsx)
    filters = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
    subprocess.run(
        [soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile",
         "--convert-to", filters, "--outdir", str(tmp_path), str(book)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    with (tmp_path / "hostile-By Department.csv").open(encoding="utf-8") as handle:
        cells = {cell for row in csv.reader(handle) for cell in row}
    # Shown as typed: a formula would show its result ("x", 2, an error) instead.
    assert {'=HYPERLINK("http://evil.example","x")', "-2+3", "#N/A"} <= cells


@pytest.mark.parametrize("fmt", ["csv", "focus"])
def test_csv_exports_neutralise_a_leading_formula_character(
    sqlite_ledger: Ledger, tmp_path: Path, fmt: str
) -> None:
    sqlite_ledger.add(_hostile_events())
    out = tmp_path / f"events.{fmt}.csv"
    export_ledger(sqlite_ledger, tenant=TENANT, period=PERIOD, fmt=fmt, out=out)
    with out.open(encoding="utf-8", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))]
    assert "'=cmd|' /C calc'!A0" in cells or fmt == "focus"


def test_p402s_csv_export_reads_back_exactly(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    sqlite_ledger.add(_hostile_events())
    out = tmp_path / "events.csv"
    export_ledger(sqlite_ledger, tenant=TENANT, period=PERIOD, fmt="csv", out=out)
    again = Ledger.open(str(tmp_path / "again.db"))
    try:
        import_files(again, [out], tenant=TENANT)
        back = {event.event_id: event for event in again.stream(TENANT)}
    finally:
        again.close()

    def texts(event: Event) -> tuple[object, ...]:
        # An import trims surrounding white space from texts, whatever the file: "\tTAB=1"
        # was stored here without the pipeline, so it comes back trimmed.
        values = (event.department, event.customer, event.workflow, event.owner)
        return (*(v.strip() if v else v for v in values), event.tags)

    for event in sqlite_ledger.stream(TENANT):
        assert texts(back[event.event_id]) == texts(event)


@given(st.text(alphabet=st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'", "a", "1"])))
def test_neutralising_is_undone_exactly_and_never_leaves_a_formula_start(text: str) -> None:
    written = neutralised(text)
    assert restored(written) == text
    assert not written.startswith(FORMULA_STARTS)
