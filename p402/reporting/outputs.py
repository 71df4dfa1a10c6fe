"""Render a period's report as its two documents: the PDF and the workbook.

The workbook comes first because the PDF carries it (PDF/A-3 associated files), together with
a small JSON summary of the figures, so the PDF a controller files is complete on its own.
Used alike by ``p402 audit`` (which also signs a bundle) and ``p402 report``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from markupsafe import Markup

from p402.reporting.document import ReportContext, render_html
from p402.reporting.pdf import render_pdf
from p402.reporting.report import Report
from p402.reporting.xlsx import render_xlsx

__all__ = ["render_reports", "summary_json"]


def summary_json(report: Report, context: ReportContext) -> bytes:
    """The period's headline figures as JSON (amounts as decimal strings, in cents)."""
    summary = report.summary
    value: dict[str, Any] = {
        "tenant": context.tenant,
        "period": context.period,
        "window": {"start": context.window_start, "end": context.window_end},
        "events": summary.events,
        "total": str(summary.total),
        "attributed": str(summary.attributed),
        "unattributed": str(summary.unattributed),
        "unpriced_events": summary.unpriced_events,
        "tier_unpriced_events": summary.tier_unpriced_events,
        "tool_cost": str(summary.tool_cost),
        "quality": {code: events for code, events, _ in summary.quality},
        "by_department": {row.label: str(row.cost) for row in summary.breakdowns["department"].rows},
        "by_provider": {row.label: str(row.cost) for row in summary.breakdowns["provider"].rows},
        "reconciliation": [row.as_json() for row in report.reconciliation],
        "bundle_id": context.bundle_id,
        "merkle_root": context.merkle_root,
    }  # fmt: skip
    if report.completeness is not None:
        value["completeness"] = report.completeness.as_json()
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def _charts(report: Report) -> dict[str, Markup]:
    from p402.reporting import charts

    summary = report.summary
    department = summary.breakdowns["department"]
    model = summary.breakdowns["model"]
    daily = summary.daily
    department_items = [(r.label, r.cost) for r in department.rows]
    model_items = [(r.label, r.cost) for r in model.rows]
    svgs = {
        "coverage": charts.coverage_chart(
            summary.attributed, summary.unattributed, title="Attribution coverage"
        ),
        "department": charts.bar_chart(
            department_items, title="Spend by department", highlight="Unattributed"
        ),
        "model": charts.share_chart(model_items, title="Model mix"),
        "daily": charts.daily_chart(daily.days, daily.series(), title="Daily spend by provider"),
    }
    # Our own SVG, its text escaped by the charts module: safe to place in the page as markup.
    return {name: Markup(svg) for name, svg in svgs.items()}  # noqa: S704


def render_reports(
    report: Report,
    context: ReportContext,
    records: Iterable[Mapping[str, Any]],
    *,
    moment: datetime,
    step: Callable[[str, int, int], None] | None = None,
) -> tuple[bytes, bytes]:
    """The PDF and the workbook of the report; *records* are the period's events (canonical
    objects, ledger order) for the workbook's Events sheet; *moment* fixes every date; *step*
    hears of progress (stage, done, total)."""

    def say(stage: str, done: int, total: int) -> None:
        if step is not None:
            step(stage, done, total)

    say("Writing the workbook", 0, report.summary.events)
    xlsx = render_xlsx(
        report, context, records, moment=moment,
        progress=lambda done, total: say("Writing the workbook", done, total),
    )  # fmt: skip
    say("Printing the PDF", 0, 0)
    html = render_html(report, context, _charts(report))
    attachments = [
        ("report.xlsx", xlsx, "The close workbook of the same period"),
        ("summary.json", summary_json(report, context), "The period's figures, for machines"),
    ]
    identifier = hashlib.sha256(
        f"{context.tenant}/{context.period}/{context.bundle_id}".encode()
    ).digest()[:16]
    pdf = render_pdf(html, attachments=attachments, moment=moment, identifier=identifier)
    return pdf, xlsx
