"""The reports' figures are verified, not only their hashes: a PDF or workbook of another
period, or with one figure changed, listed and re-signed by someone holding the key, is
refused with the figure named."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from p402.audit import AuditResult, run_audit
from p402.bundles.figures import FigureError, pdf_attachments, sheet_rows
from p402.bundles.layout import PDF, XLSX
from p402.bundles.signing import SigningKey
from p402.bundles.verify import verify_bundle
from p402.ledger.store import Ledger
from p402.period import parse_period
from tests.conftest import TENANT, small_events
from tests.test_bundle_tamper import read_members, resign, write_zip


def _tampered(tmp_path: Path, result: AuditResult, key: SigningKey, **members: bytes) -> Path:
    good = read_members(result.bundle.read_bytes())
    names = {"pdf": PDF, "xlsx": XLSX}
    changed = resign({**good, **{names[name]: data for name, data in members.items()}}, key)
    return write_zip(tmp_path / "tampered.zip", list(changed.items()))


def _problems(path: Path, key: SigningKey) -> list[str]:
    outcome = verify_bundle(path, key.public)
    assert not outcome.valid
    return outcome.problems


def _sheet_xml(xlsx: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as book:
        return book.read(name)


def _with_sheet_xml(xlsx: bytes, name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, data if info.filename == name else source.read(info))
    return out.getvalue()


def test_the_good_bundle_s_reports_state_its_ledger_s_figures(
    small_bundle: AuditResult, signing_key: SigningKey
) -> None:
    assert verify_bundle(small_bundle.bundle, signing_key.public).problems == []
    members = read_members(small_bundle.bundle.read_bytes())
    files = pdf_attachments(members[PDF])
    assert (
        files["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"] == members[XLSX]
    )
    assert b'"events": 24' in files["application/json"]
    summary = {row[0]: row[1] for row in sheet_rows(members[XLSX], "Summary")[1:]}
    assert summary["Tenant"] == TENANT and summary["Period"] == "2026-10"


def test_a_pdf_and_workbook_of_another_period_are_refused(
    tmp_path: Path, sqlite_ledger: Ledger, signing_key: SigningKey
) -> None:
    october = small_events()
    september = [
        event.evolve(
            event_id=f"sep-{event.event_id}", occurred_at=event.occurred_at - timedelta(days=31)
        )
        for event in october[:10]
    ]
    sqlite_ledger.add([*october, *september])
    result = run_audit(
        sqlite_ledger, tenant=TENANT, period=parse_period("2026-10"), key=signing_key,
        out_dir=tmp_path / "october",
    )  # fmt: skip
    other = run_audit(
        sqlite_ledger, tenant=TENANT, period=parse_period("2026-09"), key=signing_key,
        out_dir=tmp_path / "september",
    )  # fmt: skip
    assert verify_bundle(result.bundle, signing_key.public).valid
    theirs = read_members(other.bundle.read_bytes())
    problems = _problems(
        _tampered(tmp_path, result, signing_key, pdf=theirs[PDF], xlsx=theirs[XLSX]), signing_key
    )
    assert f"{PDF}: embedded summary period 2026-09 != manifest 2026-10" in problems
    assert any(p.startswith(f"{PDF}: embedded summary events ") for p in problems)
    assert f"{PDF}: embedded summary events 24 != ledger 24" not in problems
    assert f"{XLSX}: Summary period 2026-09 != manifest 2026-10" in problems
    assert any(p.startswith(f"{XLSX}: Summary total ") for p in problems)
    # Only the PDF swapped: it no longer carries the bundle's workbook either.
    problems = _problems(_tampered(tmp_path, result, signing_key, pdf=theirs[PDF]), signing_key)
    assert f"{PDF}: the workbook it embeds is not {XLSX}" in problems


def test_a_changed_total_in_the_workbook_is_refused(
    tmp_path: Path, small_bundle: AuditResult, signing_key: SigningKey
) -> None:
    xlsx = read_members(small_bundle.bundle.read_bytes())[XLSX]
    sheet = _sheet_xml(xlsx, "xl/worksheets/sheet1.xml")
    stated = re.search(
        rb"Total spend, stored figure \(USD\)</t></is></c><c [^>]*><v>([^<]+)</v>", sheet
    )
    assert stated is not None
    changed = sheet[: stated.start(1)] + b"11999.99" + sheet[stated.end(1) :]
    problems = _problems(
        _tampered(tmp_path, small_bundle, signing_key,
                  xlsx=_with_sheet_xml(xlsx, "xl/worksheets/sheet1.xml", changed)),
        signing_key,
    )  # fmt: skip
    total = Decimal(stated.group(1).decode())
    assert f"{XLSX}: Summary total 11999.99 != ledger {total}" in problems
    assert f"{PDF}: the workbook it embeds is not {XLSX}" in problems


def test_a_changed_provider_row_is_refused(
    tmp_path: Path, small_bundle: AuditResult, signing_key: SigningKey
) -> None:
    xlsx = read_members(small_bundle.bundle.read_bytes())[XLSX]
    with zipfile.ZipFile(io.BytesIO(xlsx)) as book:
        names = [n for n in book.namelist() if n.startswith("xl/worksheets/sheet")]
        target = next(n for n in names if b"<t>Provider</t>" in book.read(n))
        sheet = book.read(target)
    changed = re.sub(rb'(<c r="E2"[^>]*><v>)[^<]+', rb"\g<1>0.01", sheet, count=1)
    assert changed != sheet
    problems = _problems(
        _tampered(tmp_path, small_bundle, signing_key, xlsx=_with_sheet_xml(xlsx, target, changed)),
        signing_key,
    )
    assert any(p.startswith(f"{XLSX}: By Provider (events, cost) ") for p in problems), problems


def test_a_pdf_without_its_summary_is_refused(
    tmp_path: Path, small_bundle: AuditResult, signing_key: SigningKey
) -> None:
    pdf = read_members(small_bundle.bundle.read_bytes())[PDF]
    hidden = pdf.replace(b"/Subtype /application#2fjson", b"/Subtype /application#2fjsox")
    assert hidden != pdf
    problems = _problems(_tampered(tmp_path, small_bundle, signing_key, pdf=hidden), signing_key)
    assert f"{PDF}: no embedded summary of its figures" in problems


def test_an_embedded_file_must_match_its_stated_size_and_checksum(
    small_bundle: AuditResult,
) -> None:
    pdf = read_members(small_bundle.bundle.read_bytes())[PDF]
    wrong = re.sub(rb"(/Subtype /application#2fjson/Params <</CheckSum <)[0-9a-f]", rb"\g<1>0", pdf)
    wrong = (
        wrong
        if wrong != pdf
        else re.sub(
            rb"(/Subtype /application#2fjson/Params <</CheckSum <)[0-9a-f]", rb"\g<1>1", pdf
        )
    )
    with pytest.raises(FigureError, match="checksum"):
        pdf_attachments(wrong)


def test_a_workbook_part_that_declares_entities_is_not_parsed(small_bundle: AuditResult) -> None:
    xlsx = read_members(small_bundle.bundle.read_bytes())[XLSX]
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><workbook>&a;</workbook>'
    with pytest.raises(FigureError, match="document type"):
        sheet_rows(_with_sheet_xml(xlsx, "xl/workbook.xml", bomb), "Summary")


def test_exact_costs_are_written_with_their_own_digits(small_bundle: AuditResult) -> None:
    # openpyxl alone writes $0.07 as 0.07000000000000001: the workbook must hold the ledger's.
    xlsx = read_members(small_bundle.bundle.read_bytes())[XLSX]
    with zipfile.ZipFile(io.BytesIO(xlsx)) as book:
        text = b"".join(book.read(n) for n in book.namelist() if n.startswith("xl/worksheets/"))
    values = re.findall(rb"<v>(-?\d+\.\d+)</v>", text)
    assert values and all(len(value.split(b".")[1]) <= 12 for value in values)
    assert b"<v>0.07000000000000001</v>" not in text
