"""Reporting: aggregate a period of events and render the PDF and XLSX reports.

Usage::

    from p402.reporting import Aggregator, ReportContext, render_html, render_pdf, render_xlsx

    aggregator = Aggregator()
    aggregator.extend(ledger.stream(tenant, period))
    summary = aggregator.summary()          # exact sums, rounded to cents once
    pdf = render_pdf(render_html(summary, context))
"""

from __future__ import annotations

from p402.reporting.aggregate import DIMENSIONS, UNATTRIBUTED, Aggregator, Breakdown, Row, Summary
from p402.reporting.document import ReportContext, render_html
from p402.reporting.pdf import render_pdf
from p402.reporting.xlsx import render_xlsx

__all__ = [
    "DIMENSIONS",
    "UNATTRIBUTED",
    "Aggregator",
    "Breakdown",
    "ReportContext",
    "Row",
    "Summary",
    "render_html",
    "render_pdf",
    "render_xlsx",
]
