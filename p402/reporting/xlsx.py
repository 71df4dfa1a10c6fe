"""The workbook a controller closes the period with. The only module that imports openpyxl.

Numbers are numbers, written exactly (a Decimal's own digits go into the sheet XML: see
:func:`_exact_numbers`), dates
are dates, money has a currency format, headers are frozen, each sheet's data is an Excel
table, and totals rows are ``=SUM()`` formulas over the rows (which tie to the stored
figures: the tests recompute them with LibreOffice), each written with its computed value
beside it, so a reader that does not calculate sees the figure too. The Summary's figures
reference the breakdown sheets, so a controller can trace them. Each sheet states how its
cents are rounded beside its header, and prints fitted to the page width. Data is never code: a text from the ledger
(a department called ``=HYPERLINK(...)``, a customer called ``#N/A``) is written as a string
cell, and only the formulas p402 writes itself (:class:`Formula`) are formulas (see
:func:`_text_is_text`). The Events sheet lists every event up to a
limit; beyond it, a roll-up, and the ledger in the bundle is the full record.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from p402.archive import repack
from p402.reporting.aggregate import UNATTRIBUTED
from p402.reporting.document import ReportContext
from p402.reporting.report import Report
from p402.reporting.sheets import BREAKDOWNS, Sheet, breakdown_sheet, detail_sheets

__all__ = ["EVENTS_SHEET_LIMIT", "SHEETS", "Formula", "render_xlsx"]

EVENTS_SHEET_LIMIT = 100_000
_MAX_ROWS = 1_048_576  # a sheet's rows in Excel
MONEY_FORMAT = '"$"#,##0.00;-"$"#,##0.00;"$"0.00'
EXACT_FORMAT = "0.000000000000"
FORMATS = {
    "money": MONEY_FORMAT,
    "exact": EXACT_FORMAT,
    "unit": '"$"#,##0.0000',
    "count": "#,##0",
    "date": "yyyy-mm-dd",
    "percent": "0.00%",
}
SHEETS = BREAKDOWNS


class Formula(str):
    """A formula p402 writes (a total, a reference): the only text that becomes a formula.

    *cached* is the value it computes, written beside it: a reader that does not calculate
    (openpyxl's ``data_only``, pandas, previewers, upload tools) sees the figure, not a blank.
    """

    cached: Decimal | int | None

    def __new__(cls, text: str, cached: Decimal | int | None = None) -> Formula:
        formula = super().__new__(cls, text)
        formula.cached = cached
        return formula


def _styled(sheet: Any, value: Any, *, number_format: str | None = None, bold: bool = False) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    cell = WriteOnlyCell(sheet, value=value)
    if number_format:
        cell.number_format = number_format
    if bold:
        cell.font = Font(bold=True)
    return cell


def _header(sheet: Any, names: list[str], widths: list[int]) -> None:
    from openpyxl.utils import get_column_letter

    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.append([_styled(sheet, name, bold=True) for name in names])


def _print_setup(sheet: Any, *, landscape: bool) -> None:
    """Printed as a controller files it: fit to the page's width, the header row repeated on
    every page, across the page when the sheet is wide."""
    sheet.page_setup.orientation = "landscape" if landscape else "portrait"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = "1:1"
    sheet.oddFooter.center.text = "&A, page &P of &N"  # the sheet's name, the page, of how many


def _write_sheet(book: Any, spec: Sheet) -> None:
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.filters import AutoFilter
    from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

    sheet = book.create_sheet(spec.title)
    _print_setup(sheet, landscape=spec.landscape)
    note = spec.note
    names, widths = [c.header for c in spec.columns], [c.width for c in spec.columns]
    if note:  # beside the table, in the header row: the table still starts at A1
        names, widths = [*names, "", note], [*widths, 2, 100]
    _header(sheet, names, widths)
    for row in spec.rows:
        sheet.append([
            _styled(sheet, value, number_format=FORMATS.get(column.kind)) if value is not None else None
            for column, value in zip(spec.columns, row, strict=True)
        ])  # fmt: skip
    last = get_column_letter(len(spec.columns))
    if not spec.rows:
        sheet.append(["None in this period."])
        return
    # The table and its totals, not the note beside the header (the sheet shows it; fitted to
    # the page's width it would shrink the table to nothing).
    sheet.print_area = f"A1:{last}{len(spec.rows) + 1 + (spec.totals_row is not None)}"
    table = Table(displayName=spec.table, ref=f"A1:{last}{len(spec.rows) + 1}")
    # A write-only sheet keeps no cells to read the header from: the columns are named here.
    table.tableColumns = [
        TableColumn(id=i, name=c.header) for i, c in enumerate(spec.columns, start=1)
    ]
    table.autoFilter = AutoFilter(ref=table.ref)
    table.tableStyleInfo = TableStyleInfo(name="TableStyleLight9", showRowStripes=True)
    with warnings.catch_warnings():
        # openpyxl warns on every write-only table to add its columns by hand, as done above.
        warnings.filterwarnings("ignore", "In write-only mode you must add table columns manually")
        sheet.add_table(table)
    if spec.totals_row is None:
        return
    totals: list[Any] = [_styled(sheet, "Total", bold=True)]
    for index, column in enumerate(spec.columns[1:], start=2):
        letter = get_column_letter(index)
        formula = (
            Formula(f"=SUM({letter}2:{letter}{len(spec.rows) + 1})", spec.total(column.header))
            if column.total
            else None
        )
        totals.append(
            _styled(sheet, formula, number_format=FORMATS.get(column.kind), bold=True)
            if formula
            else None
        )
    sheet.append(totals)


def _summary_sheet(
    book: Any, report: Report, context: ReportContext, by: Mapping[str, Sheet], bridge: Sheet
) -> None:
    from openpyxl.utils import get_column_letter

    summary = report.summary
    sheet = book.create_sheet("Summary")
    _print_setup(sheet, landscape=False)
    _header(sheet, ["Item", "Value"], [40, 70])
    department = by["department"]

    def total(header: str) -> Formula:
        return Formula(f"={department.cell(header)}", department.total(header))

    # Attributed and unattributed are the By Department sheet's own cells: its Unattributed row
    # (last, when there is one) and the total less it.
    cost = department.index("Cost (USD)")
    where = next((i for i, row in enumerate(department.rows) if row[0] == UNATTRIBUTED), None)
    if where is None:
        outside = Formula("=0", Decimal("0.00"))
    else:
        cell = f"'{department.title}'!{get_column_letter(cost + 1)}{where + 2}"
        outside = Formula(f"={cell}", department.rows[where][cost])
    inside = Formula(
        f"={department.cell('Cost (USD)')}-{outside[1:]}",
        department.total("Cost (USD)") - (outside.cached or 0),
    )
    rows: list[tuple[str, Any, str | None]] = [
        ("Tenant", context.tenant, None),
        ("Period", context.period, None),
        ("Window start (UTC)", context.window_start, None),
        ("Window end (UTC, excluded)", context.window_end, None),
        ("Events", total("Events"), "#,##0"),
        ("Requests", total("Requests"), "#,##0"),
        ("Tokens", total("Tokens"), "#,##0"),
        ("Total spend (USD)", total("Cost (USD)"), MONEY_FORMAT),
        ("Total spend, stored figure (USD)", summary.total, MONEY_FORMAT),
        ("Attributed to a department (USD)", inside, MONEY_FORMAT),
        ("Unattributed (USD)", outside, MONEY_FORMAT),
        ("Unpriced events", summary.unpriced_events, "#,##0"),
        ("Unpriced tokens", summary.unpriced_tokens, "#,##0"),
        ("Of the unpriced, tier-unpriced events", summary.tier_unpriced_events, "#,##0"),
        ("Tool calls, part of total spend (USD)", summary.tool_cost, MONEY_FORMAT),
        *(
            (f"Data quality: {code} (events)", events, "#,##0")
            for code, events, _ in summary.quality
        ),
        ("Flagged by policy", summary.flagged, "#,##0"),
        ("Refused by policy", summary.denied, "#,##0"),
        ("Errors", summary.errors, "#,##0"),
        ("Provider-months not reconciled", len(report.findings), "#,##0"),
        *(
            [
                (
                    "Accrued in the journal (USD)",
                    Formula(f"={bridge.cell('Amount (USD)')}", bridge.total("Amount (USD)")),
                    MONEY_FORMAT,
                )
            ]
            if bridge.rows
            else []
        ),
        ("Bundle id", context.bundle_id, None),
        ("Merkle root", context.merkle_root, None),
        ("Signing key id", context.key_id, None),
        ("Price table", context.price_table, None),
        ("Generated by", context.generator, None),
    ]
    for label, value, number_format in rows:
        sheet.append([label, _styled(sheet, value, number_format=number_format)])


_EVENT_COLUMNS: tuple[tuple[str, int], ...] = (
    ("event_id", 38), ("occurred_at", 20), ("provider", 11), ("model", 28), ("operation", 11),
    ("requests", 9), ("input_tokens", 12), ("cache_read_tokens", 12), ("cache_write_tokens", 12),
    ("cache_write_1h_tokens", 12), ("output_tokens", 12), ("reasoning_tokens", 12), ("cost", 16),
    ("cost_source", 12), ("department", 18), ("customer", 22), ("workflow", 20), ("owner", 26),
    ("employee", 26), ("project", 16), ("feature", 16), ("api_key_id", 22), ("policy_decision", 10),
    ("outcome", 10), ("source", 12), ("attribution_rule", 24), ("list_cost", 16), ("tags", 40),
    ("price_ref", 60),
)  # fmt: skip


def _rollup_sheet(book: Any, report: Report, total: int) -> None:
    """Above the sheet limit, Events holds the day x department x customer x workflow x model
    roll-up; every event is in the bundle's ledger."""
    from p402.reporting.aggregate import NO_CUSTOMER
    from p402.reporting.sheets import Column, Sheet

    note = (
        f"This period has {total:,} events, more than the {EVENTS_SHEET_LIMIT:,} a sheet holds here: this is their "
        "roll-up by day, department, customer, workflow and model. Every event is in the bundle: ledger/events.jsonl. "
        "Cost (USD) is each provider-day of the Daily sheet split across its rows by largest remainder; "
        "Exact cost (USD) is the row's unrounded cost."
    )
    columns = (
        Column("Date", 12, "date"), Column("Department", 24), Column("Customer", 24), Column("Workflow", 24),
        Column("Provider / model", 36), Column("Events", 10, "count", total=True),
        Column("Requests", 12, "count", total=True), Column("Tokens", 16, "count", total=True),
        Column("Cost (USD)", 16, "money", total=True), Column("Exact cost (USD)", 22, "exact"),
    )  # fmt: skip
    rows = tuple(
        (
            r.day,
            r.department or UNATTRIBUTED,
            r.customer or NO_CUSTOMER,
            r.workflow or UNATTRIBUTED,
            r.model,
            r.events,
            r.requests,
            r.tokens,
            r.cost,
            Decimal(r.cost_units).scaleb(-12),
        )
        for r in report.summary.detail[: _MAX_ROWS - 3]
    )
    _write_sheet(book, Sheet("Events", "EventsRollup", columns, rows, note, landscape=True))


def _events_sheet(
    book: Any,
    records: Iterable[Mapping[str, Any]],
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    sheet = book.create_sheet("Events")
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    _print_setup(sheet, landscape=True)
    _header(sheet, [name for name, _ in _EVENT_COLUMNS], [width for _, width in _EVENT_COLUMNS])
    # One style object per formatted column, shared by its cells: setting number_format cell by
    # cell costs a style-table lookup each time.
    time_style = _styled(sheet, None, number_format="yyyy-mm-dd hh:mm:ss")._style
    cost_style = _styled(sheet, None, number_format=EXACT_FORMAT)._style
    names = [name for name, _ in _EVENT_COLUMNS]
    at_time, at_tags = names.index("occurred_at"), names.index("tags")
    exact = [names.index("cost"), names.index("list_cost")]
    for done, record in enumerate(records, start=1):
        values: list[Any] = [record[name] for name in names]
        # Typed Any: openpyxl's stubs know neither _style nor Decimal values (which it writes exactly).
        moment: Any = WriteOnlyCell(
            sheet, datetime.fromisoformat(values[at_time]).replace(tzinfo=None)
        )
        moment._style = time_style
        values[at_time] = moment
        for at in exact:
            if values[at] is not None:
                cost: Any = WriteOnlyCell(sheet, Decimal(values[at]))  # type: ignore[arg-type]
                cost._style = cost_style
                values[at] = cost
        tags = values[at_tags]
        values[at_tags] = ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) if tags else None
        sheet.append(values)
        if progress is not None and done % 2_000 == 0:
            progress(done, total)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(names))}{total + 1}"


@functools.cache
def _text_is_text() -> None:
    """Make openpyxl write every text as a string cell, whatever it starts with. openpyxl takes
    a string beginning ``=`` for a formula and one of Excel's error names (``#N/A``, ...) for an
    error, and so would turn an attribution value sent by any holder of a tenant key into a live
    formula in the controller's workbook (OWASP: formula injection). Only :class:`Formula`
    values p402 writes itself stay formulas. Its cells decide their type in one method, which is
    the one place to fix."""
    from openpyxl.cell.cell import Cell

    infer = Cell._bind_value  # type: ignore[attr-defined]

    def bind(cell: Any, value: Any) -> None:
        infer(cell, value)
        if cell.data_type in ("f", "e") and value.__class__ is not Formula:
            cell.data_type = "s"
        elif cell.data_type == "f":
            cell._value = value  # openpyxl keeps a plain str: keep the Formula, and its cache

    Cell._bind_value = bind  # type: ignore[attr-defined]


@functools.cache
def _cached_formulas() -> None:
    """Make openpyxl write a :class:`Formula`'s cached value beside it (``<f>`` then ``<v>``),
    as Excel and LibreOffice do when they save. openpyxl writes every formula with an empty
    value, which a reader that does not calculate reads as a blank total. The workbook still
    asks to be recalculated on load (``calcPr fullCalcOnLoad``), so a spreadsheet computes it
    afresh. Sheets write their cells through one function, which is the one place to fix."""
    from openpyxl.cell import _writer as cells
    from openpyxl.worksheet import _writer as sheets
    from openpyxl.xml.functions import Element, SubElement

    # Typed Any: openpyxl's stubs leave out these private modules' functions.
    _writer: Any = cells
    sheet_writer: Any = sheets

    plain = sheet_writer.write_cell

    def write(xf: Any, worksheet: Any, cell: Any, styled: Any = None) -> None:
        value = cell._value
        if cell.data_type != "f" or not isinstance(value, Formula) or value.cached is None:
            plain(xf, worksheet, cell, styled)
            return
        _, attributes = _writer._set_attributes(cell, styled)
        element = Element("c", attributes)
        SubElement(element, "f").text = value[1:]
        SubElement(element, "v").text = _writer.safe_string(value.cached)
        xf.write(element)

    sheet_writer.write_cell = write


@functools.cache
def _exact_numbers() -> None:
    """Make openpyxl write a Decimal's own digits. openpyxl 3.1 formats every number with
    ``"%.16g"``, through a binary float, so $0.07 is written ``0.07000000000000001`` and an
    exact cost loses its last digits: every reader then sees a figure that is not the ledger's.
    Its cell writer looks the formatter up in its own module, which is the one place to fix."""
    from openpyxl.cell import _writer
    from openpyxl.compat import safe_string

    def exact(value: object) -> str:
        if isinstance(value, Decimal) and value.is_finite():
            return format(value, "f")
        text: str = safe_string(value)
        return text

    _writer.safe_string = exact  # type: ignore[attr-defined]


def _breakdown_sheets(report: Report) -> dict[str, Sheet]:
    """One sheet per breakdown, the standard ones first, then each tag's, titles and table
    names unique (two tag names may read alike once made valid)."""
    sheets: dict[str, Sheet] = {}
    titles: set[str] = set()
    for name, breakdown in report.summary.breakdowns.items():
        spec = breakdown_sheet(name, breakdown)
        title, table, n = spec.title, spec.table, 1
        while title.lower() in titles:
            n += 1
            title, table = f"{spec.title[:27]} ({n})", f"{spec.table}_{n}"
        titles.add(title.lower())
        sheets[name] = replace(spec, title=title, table=table)
    return sheets


def render_xlsx(
    report: Report,
    context: ReportContext,
    records: Iterable[Mapping[str, Any]],
    *,
    moment: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """The workbook's bytes. *records* are the period's canonical event objects in ledger order;
    *moment* fixes the document dates so the same input gives the same bytes; *progress* hears
    of the Events sheet's rows as they are written (done, total)."""
    import zipfile

    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    _exact_numbers()
    _text_is_text()
    _cached_formulas()
    book = Workbook(write_only=True)
    by = _breakdown_sheets(report)
    details = detail_sheets(report)
    _summary_sheet(book, report, context, by, next(s for s in details if s.title == "Bridge"))
    for spec in [*by.values(), *details]:
        _write_sheet(book, spec)
    if report.summary.events > EVENTS_SHEET_LIMIT:
        _rollup_sheet(book, report, report.summary.events)
    else:
        _events_sheet(book, records, report.summary.events, progress)
    book.calculation.fullCalcOnLoad = True  # a spreadsheet recomputes what the cache holds
    stamp = moment.replace(tzinfo=None)
    book.properties.creator = context.generator
    book.properties.title = f"AI spend audit {context.tenant} {context.period}"
    book.properties.created = stamp
    book.properties.modified = stamp
    buffer = io.BytesIO()
    # Stored: repack() compresses every member once, with fixed times; deflating here as well
    # cost a second full compression of the sheets (about 4% of a 100,000-event workbook).
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        ExcelWriter(book, archive).save()
    return repack(buffer.getvalue(), moment)
