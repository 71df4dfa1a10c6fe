"""The close journal as a file an ERP imports: p402's own layout and two vendors' templates.

- ``journal``: p402's generic journal-import CSV, one row per line with every field (entry and
  line ids, ISO dates, entity, currency, account number and name apart, cost centre, debit and
  credit), for an ERP whose import maps columns (NetSuite's CSV Import Assistant, Dynamics).
- ``journal-intacct``: Sage Intacct's "Journal entries" import template (General Ledger,
  Import > Journal entries). Fields named as in the template, whose order the importer ignores;
  an entry's header fields (JOURNAL, DATE, REVERSEDATE, DESCRIPTION, REFERENCE_NO) on its first
  line only, LINE_NO from 1 in each entry, DEBIT and CREDIT positive, the other side blank.
  DESCRIPTION holds at most 30 characters, and Sage asks for no commas in text. Dates are
  MM/DD/YYYY: choose that format in the import dialog. Source: Sage Intacct help, "Import
  journal entries" (Uploading_Data/GL/import-GL-journal-entries.htm) and its line-numbers
  example (Examples/example-line-numbers.htm).
- ``journal-xero``: Xero's manual journal import template (Accounting > Manual journals >
  Import), header ``*Narration,*Date,Description,*AccountCode,*TaxRate,*Amount,TrackingName1,
  TrackingOption1,TrackingName2,TrackingOption2``. Rows with the same narration and date are one
  journal; Amount is positive for a debit and negative for a credit; the account is its code;
  TaxRate is a rate's name in the organisation's tax settings (``[journal] tax_rate``); dates
  are dd/mm/yyyy; at most 300 lines a file. The cost centre is tracking category 1. Xero's
  template has no reversal date. Source: Xero Central, "Import a manual journal"
  (help.xero.com ManualJournalsImport).

Every file is RFC 4180 CSV in UTF-8 with CRLF line ends, and a text that starts like a formula
is neutralised (OWASP CSV injection), as in every CSV p402 writes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Final

from p402.cells import neutralised
from p402.config import JournalSettings
from p402.reporting.journal import JournalLine

__all__ = ["JOURNAL_FORMATS", "XERO_MAX_LINES", "journal_csv"]

XERO_MAX_LINES: Final = 300
"""Xero imports at most this many lines from one file."""
INTACCT_DESCRIPTION: Final = 30

Cells = list[str | Decimal | int | None]


def _iso(day: date | None) -> str:
    return "" if day is None else day.isoformat()


def _us(day: date | None) -> str:
    return "" if day is None else f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def _dmy(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def _amount(value: Decimal) -> Decimal | None:
    return value if value else None


def _generic(lines: Sequence[JournalLine], _: JournalSettings) -> tuple[list[str], list[Cells]]:
    header = [
        "journal_id", "line", "date", "reversal_date", "entity", "currency", "account",
        "account_name", "cost_center", "department", "provider", "month", "description",
        "debit", "credit",
    ]  # fmt: skip
    rows: list[Cells] = [
        [j.journal_id, j.line, _iso(j.posting_date), _iso(j.reversal_date), j.entity, j.currency,
         j.account, j.account_name, j.cost_center, j.department, j.provider, j.month,
         j.description, j.debit, j.credit]
        for j in lines
    ]  # fmt: skip
    return header, rows


def _no_commas(text: str) -> str:
    return text.replace(", ", " - ").replace(",", " ")


def _intacct(
    lines: Sequence[JournalLine], settings: JournalSettings
) -> tuple[list[str], list[Cells]]:
    header = [
        "DONOTIMPORT", "JOURNAL", "DATE", "REVERSEDATE", "DESCRIPTION", "REFERENCE_NO", "LINE_NO",
        "ACCT_NO", "LOCATION_ID", "DEPT_ID", "DOCUMENT", "MEMO", "DEBIT", "CREDIT", "SOURCEENTITY",
        "CURRENCY",
    ]  # fmt: skip
    rows: list[Cells] = []
    for j in lines:
        first = j.line == 1
        title = _no_commas(f"AI accrual {j.provider} {j.month}")[:INTACCT_DESCRIPTION]
        rows.append([
            None, settings.journal_code if first else None, _us(j.posting_date) if first else None,
            _us(j.reversal_date) if first else None, title if first else None,
            j.journal_id if first else None, j.line, j.account, j.entity, j.cost_center or None, None,
            _no_commas(j.description), _amount(j.debit), _amount(j.credit), None, j.currency,
        ])  # fmt: skip
    return header, rows


def _xero(lines: Sequence[JournalLine], settings: JournalSettings) -> tuple[list[str], list[Cells]]:
    header = [
        "*Narration", "*Date", "Description", "*AccountCode", "*TaxRate", "*Amount",
        "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2",
    ]  # fmt: skip
    rows: list[Cells] = []
    for j in lines:
        narration = f"{j.journal_id} AI services accrual {j.provider} {j.month}"
        amount = j.debit - j.credit
        tracked = ("Cost centre", j.cost_center) if j.cost_center else (None, None)
        rows.append([
            narration, _dmy(j.posting_date), j.description, j.account, settings.tax_rate,
            amount, *tracked, None, None,
        ])  # fmt: skip
    return header, rows


_LAYOUTS: Final[
    dict[str, Callable[[Sequence[JournalLine], JournalSettings], tuple[list[str], list[Cells]]]]
] = {"journal": _generic, "journal-intacct": _intacct, "journal-xero": _xero}
JOURNAL_FORMATS: Final = tuple(_LAYOUTS)


def _texts(row: Iterable[str | Decimal | int | None]) -> list[str]:
    # Amounts are Decimals (never neutralised: a credit in Xero is negative); texts may be.
    return ["" if v is None else neutralised(v) if isinstance(v, str) else str(v) for v in row]


def journal_csv(lines: Sequence[JournalLine], layout: str, settings: JournalSettings) -> str:
    """The journal's lines as the CSV of *layout* (one of :data:`JOURNAL_FORMATS`).

    Raises:
        KeyError: *layout* is not one of :data:`JOURNAL_FORMATS`.
    """
    header, rows = _LAYOUTS[layout](lines, settings)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(_texts(row))
    return out.getvalue()
