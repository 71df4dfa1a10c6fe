"""Reporting: aggregate a period of events and render the PDF and XLSX reports.

Usage, as the audit does it (:mod:`p402.audit.run`; the draft of ``p402 report`` sums the
period with :func:`p402.ledger.rollup.rollup` and :meth:`Aggregator.add_group` instead)::

    from p402.reporting import Aggregator, build_report, render_reports

    aggregator = Aggregator()
    for record, units, at in ledger.stream_records(tenant, period):
        aggregator.add_record(record, units, at)     # exact integer sums, one pass
    summary = aggregator.summary(start=period.start.date())   # cents allocated once
    report = build_report(summary, period=period, config=config, billed=billed)
    pdf, xlsx = render_reports(report, context, records, moment=summary.last)

Reporting reads the ledger's records only (:mod:`p402.ledger.events`), never the store.
"""

from __future__ import annotations

from p402.reporting.aggregate import DIMENSIONS, UNATTRIBUTED, Aggregator, Breakdown, Row, Summary
from p402.reporting.document import ReportContext, render_html
from p402.reporting.outputs import render_reports
from p402.reporting.pdf import render_pdf
from p402.reporting.report import Report, build_report
from p402.reporting.xlsx import render_xlsx

__all__ = [
    "DIMENSIONS",
    "UNATTRIBUTED",
    "Aggregator",
    "Breakdown",
    "Report",
    "ReportContext",
    "Row",
    "Summary",
    "build_report",
    "render_html",
    "render_pdf",
    "render_reports",
    "render_xlsx",
]
