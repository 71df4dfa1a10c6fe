"""The journal as files an ERP imports: golden files, a round trip through a second reader
(the csv module, as an importer reads them), and the command that writes them."""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from p402.cells import restored
from p402.config import Invoice, JournalSettings
from p402.ledger.store import Ledger
from p402.money import to_units
from p402.reporting.aggregate import Charge
from p402.reporting.journal import JournalLine
from p402.reporting.journal_files import INTACCT_DESCRIPTION, JOURNAL_FORMATS, journal_csv
from tests.conftest import small_events
from tests.test_cli import assert_one_line_error, run
from tests.test_reconciliation import entries, month

GOLDEN = Path(__file__).parent / "data" / "journal"
HOSTILE = '=HYPERLINK("http://x","y")'
SETTINGS = JournalSettings(
    cost_centers={"Support": "CC-52"}, reverse_accruals=True, entity="US01", cost_center_tag="cc"
)


def _lines() -> list[JournalLine]:
    """Two entries: a month within tolerance (spread), one with an unexplained difference
    (suspense), customer-facing and internal use, a tag's cost centre, a hostile department."""

    def units(dollars: str) -> int:
        return to_units(Decimal(dollars))

    openai = month("openai", "100.004", charges=(
        Charge("Support", "5200", True, units("60.001")), Charge("Support", None, False, units("30.002")),
        Charge(HOSTILE, None, False, units("6.001")), Charge(None, None, False, units("4")),
    ))  # fmt: skip
    anthropic = month("anthropic", "50.00", charges=(Charge("-Sales", None, False, units("50")),))
    invoices = [
        Invoice("openai", "2026-10", Decimal("100.05")),
        Invoice("anthropic", "2026-10", Decimal("54.00")),
    ]
    return entries([anthropic, openai], invoices, SETTINGS)


@pytest.mark.parametrize("layout", JOURNAL_FORMATS)
def test_each_layout_matches_its_golden_file(layout: str) -> None:
    text = journal_csv(_lines(), layout, SETTINGS)
    golden = GOLDEN / f"{layout}.csv"
    if os.environ.get("P402_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(text.encode())
    assert text.encode() == golden.read_bytes(), "run with P402_UPDATE_GOLDEN=1 and review the diff"


def _read(layout: str) -> list[dict[str, str]]:
    data = (GOLDEN / f"{layout}.csv").read_bytes()
    assert data.endswith(b"\r\n") and b"\r\n" in data.split(b"\n", 1)[0] + b"\n"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_the_generic_file_reads_back_as_the_journal() -> None:
    lines = _lines()
    rows = _read("journal")
    assert [(r["journal_id"], int(r["line"])) for r in rows] == [
        (j.journal_id, j.line) for j in lines
    ]
    assert [(Decimal(r["debit"]), Decimal(r["credit"])) for r in rows] == [
        (j.debit, j.credit) for j in lines
    ]
    assert {(r["date"], r["reversal_date"], r["entity"], r["currency"]) for r in rows} == {
        ("2026-10-31", "2026-11-01", "US01", "USD")
    }
    balance: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        balance[r["journal_id"]] += Decimal(r["debit"]) - Decimal(r["credit"])
    assert set(balance.values()) == {Decimal(0)}
    accounts = {(r["account"], r["account_name"]) for r in rows}
    assert {("5150", "AI services, cost of revenue"), ("6150", "AI and machine learning services"),
            ("2199", "AI invoice differences, suspense"), ("2150", "Accrued AI services")} == accounts  # fmt: skip
    assert {restored(r["cost_center"]) for r in rows if r["account"] in {"5150", "6150"}} == {
        "5200", "CC-52", "SHARED", HOSTILE, "-Sales",
    }  # fmt: skip
    departments = {r["department"] for r in rows}
    # Data is never code: the hostile names are neutralised for a spreadsheet, and restorable.
    assert "'" + HOSTILE in departments and "'-Sales" in departments


def test_the_intacct_file_groups_lines_under_their_entry_header() -> None:
    lines = _lines()
    rows = _read("journal-intacct")
    entries_seen = []
    for row, line in zip(rows, lines, strict=True):
        assert int(row["LINE_NO"]) == line.line
        header = (
            row["JOURNAL"],
            row["DATE"],
            row["REVERSEDATE"],
            row["DESCRIPTION"],
            row["REFERENCE_NO"],
        )
        if line.line == 1:
            assert header == ("GJ", "10/31/2026", "11/01/2026", f"AI accrual {line.provider} 2026-10",
                              line.journal_id)  # fmt: skip
            entries_seen.append(line.journal_id)
        else:
            assert header == ("", "", "", "", "")
        assert len(row["DESCRIPTION"]) <= INTACCT_DESCRIPTION
        assert "," not in row["MEMO"] and "," not in row["DESCRIPTION"]
        assert (Decimal(row["DEBIT"] or 0), Decimal(row["CREDIT"] or 0)) == (
            line.debit,
            line.credit,
        )
        assert not (row["DEBIT"] and row["CREDIT"])
        assert (row["ACCT_NO"], row["LOCATION_ID"], row["CURRENCY"]) == (
            line.account,
            "US01",
            "USD",
        )
    assert (
        entries_seen == sorted(set(entries_seen), key=entries_seen.index) and len(entries_seen) == 2
    )


def test_the_xero_file_balances_per_narration_with_signed_amounts() -> None:
    lines = _lines()
    text = (GOLDEN / "journal-xero.csv").read_bytes().decode("utf-8")
    assert text.split("\r\n", 1)[0] == (
        "*Narration,*Date,Description,*AccountCode,*TaxRate,*Amount,TrackingName1,TrackingOption1,"
        "TrackingName2,TrackingOption2"
    )
    rows = _read("journal-xero")
    journals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row, line in zip(rows, lines, strict=True):
        assert row["*Narration"].startswith(line.journal_id) and row["*Date"] == "31/10/2026"
        assert Decimal(row["*Amount"]) == line.debit - line.credit
        assert row["*TaxRate"] == "Tax Exempt" and row["*AccountCode"] == line.account
        assert (row["TrackingName1"], restored(row["TrackingOption1"])) == (
            ("Cost centre", line.cost_center) if line.cost_center else ("", "")
        )
        journals[(row["*Narration"], row["*Date"])] += Decimal(row["*Amount"])
    assert len(journals) == 2 and set(journals.values()) == {Decimal(0)}


def test_the_command_writes_the_journal_of_a_period(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    ledger = Ledger.open(str(db))
    try:
        ledger.add(small_events("acme"))
    finally:
        ledger.close()
    config = tmp_path / "p402.toml"
    config.write_text(
        '[tenant]\nid = "acme"\n\n[journal]\nentity = "ACME-US"\n\n'
        '[[invoices]]\nprovider = "openai"\nperiod = "2026-10"\namount = "5.00"\n',
        encoding="utf-8",
    )
    out = tmp_path / "journal.csv"
    args = [
        "export",
        "--db",
        str(db),
        "--config",
        str(config),
        "--period",
        "2026-10",
        "--out",
        str(out),
    ]
    result = run(*args, "--format", "journal")
    assert result.returncode == 0, result.stderr
    assert "journal:" in result.stdout and "debits = $" in result.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert {r["entity"] for r in rows} == {"ACME-US"}
    assert any(
        r["account"] == "2150" and r["credit"] == "5.00" and r["provider"] == "openai" for r in rows
    )
    assert date(2026, 10, 31).isoformat() in out.read_text(encoding="utf-8")
    assert_one_line_error(run(*args, "--format", "journal-xero"), "exists", "--force")
    whole = [*args[:5], "--out", str(tmp_path / "x.csv"), "--format", "journal"]
    assert_one_line_error(run(*whole), "a journal is of a period")
