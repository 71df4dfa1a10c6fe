"""Benchmark the reports of a period: aggregation, the PDF, the workbook, and the Events sheet
at its 100,000-row limit against openpyxl write-only writing the same cells; then aggregation
alone at 1,000,000 events, event by event (the audit's path) against the roll-up (``p402
report``'s path: one grouped query), beside the 5 s target.

    .venv/bin/python benchmarks/bench_report.py [--count 100000] [--aggregate 1000000]
        [--ledger PATH_OR_URL] [--skip-reports]

``--ledger`` names the ledger for the aggregation run (a PostgreSQL URL, or a SQLite file kept
for the next run); the demo events are generated into it unless it already holds them.
Default: a fresh SQLite file. No figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import io
import resource
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _line(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:44} {seconds:8.2f} s {_peak_mb():8,.0f} MB {note}")


def _plain_openpyxl(records: list[dict[str, object]]) -> float:
    """The floor: openpyxl write-only, the same Events cells as plain values."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    from p402.reporting.xlsx import _EVENT_COLUMNS

    names = [name for name, _ in _EVENT_COLUMNS]
    start = time.perf_counter()
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Events")
    sheet.append(names)
    for record in records:
        row = [record[name] for name in names]
        row[names.index("occurred_at")] = datetime.fromisoformat(
            str(row[names.index("occurred_at")])
        ).replace(tzinfo=None)
        cost = row[names.index("cost")]
        row[names.index("cost")] = None if cost is None else Decimal(str(cost))
        sheet.append(row)
    with zipfile.ZipFile(io.BytesIO(), "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(book, archive).save()
    return time.perf_counter() - start


_TARGET = 5.0
"""Seconds: the aggregation target of a period of 1,000,000 events."""


def _aggregation(count: int, target: str | None) -> None:
    """Time the summary of *count* demo events both ways, on the ledger at *target*."""
    from p402.ingest import demo
    from p402.ledger.rollup import rollup
    from p402.ledger.store import Ledger
    from p402.period import parse_period
    from p402.reporting.aggregate import Aggregator

    period = parse_period(demo.DEMO_PERIOD)
    tenant = f"bench{count}"
    with tempfile.TemporaryDirectory() as scratch:
        ledger = Ledger.open(target or str(Path(scratch) / "bench.db"))
        if ledger.count(tenant, period) != count:
            start = time.perf_counter()
            ledger.add(demo.generate(count=count, tenant=tenant))
            print(f"\n(built {count:,} demo events in {time.perf_counter() - start:.0f} s)")
        print(f"\naggregation of {count:,} events on {ledger.dialect}, target {_TARGET:.2f} s")
        start = time.perf_counter()
        old = Aggregator()
        for record, units, at in ledger.stream_records(tenant, period):
            old.add_record(record, units, at)
        by_event = old.summary(start=period.start.date())
        seconds = time.perf_counter() - start
        _line("old: every event through Python", seconds, _verdict(seconds))
        start = time.perf_counter()
        groups = list(rollup(ledger, tenant, period))
        query = time.perf_counter() - start
        new = Aggregator()
        for group in groups:
            new.add_group(group)
        by_rollup = new.summary(start=period.start.date())
        seconds = time.perf_counter() - start
        _line("roll-up: one grouped query + add_group", seconds, _verdict(seconds))
        _line(f"  of which the query ({len(groups):,} groups)", query)
        print(f"  summaries identical: {by_rollup == by_event}")
        ledger.close()


def _verdict(seconds: float) -> str:
    return "within target" if seconds <= _TARGET else f"misses the {_TARGET:.0f} s target"


def main() -> None:
    """Build a ledger of the demo organisation, then time each report step and aggregation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--aggregate", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--ledger", default=None, help="ledger of the aggregation run")
    parser.add_argument("--skip-reports", action="store_true", help="time aggregation only")
    args = parser.parse_args()
    if not args.skip_reports:
        _reports(args.count)
    if args.aggregate:
        _aggregation(args.aggregate, args.ledger)


def _reports(count: int) -> None:
    """Time each step of the reports of *count* demo events."""
    from p402.config import Config
    from p402.ingest import demo
    from p402.ledger.store import Ledger
    from p402.period import parse_period
    from p402.reporting.aggregate import Aggregator
    from p402.reporting.document import ReportContext, render_html
    from p402.reporting.pdf import render_pdf
    from p402.reporting.report import build_report
    from p402.reporting.xlsx import render_xlsx

    period = parse_period(demo.DEMO_PERIOD)
    context = ReportContext(
        tenant=demo.DEMO_TENANT, period=period.label, window_start="2026-10-01T00:00:00Z",
        window_end="2026-11-01T00:00:00Z", as_of="2026-10-31T23:59:59Z", bundle_id="benchmark",
        key_id="benchmark", merkle_root="benchmark", generator="bench_report", price_table="genai-prices",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        ledger = Ledger.open(str(Path(scratch) / "bench.db"))
        ledger.add(demo.generate(count=count))
        print(f"\n{count:,} events")
        start = time.perf_counter()
        aggregator, records = Aggregator(), []
        for record, units, at in ledger.stream_records(demo.DEMO_TENANT, period):
            aggregator.add_record(record, units, at)
            records.append(record)
        summary = aggregator.summary(start=period.start.date())
        report = build_report(summary, period=period, config=Config(), billed={})
        _line("read and aggregate", time.perf_counter() - start)
        start = time.perf_counter()
        render_pdf(render_html(report, context))
        _line("PDF", time.perf_counter() - start)
        start = time.perf_counter()
        render_xlsx(report, context, records, moment=datetime(2026, 10, 31, tzinfo=UTC))
        ours = time.perf_counter() - start
        floor = _plain_openpyxl(records[:100_000])
        _line("XLSX, every sheet", ours)
        _line(
            "floor: openpyxl write-only, Events cells only", floor, f"(ours is {ours / floor:.2f}x)"
        )
        ledger.close()


if __name__ == "__main__":
    main()
