"""The report document: the figures of a period plus what the reader needs to trust them.

:class:`ReportContext` says which audit the report belongs to (tenant, period, bundle and key
ids, price table); :func:`render_html` turns a :class:`~p402.reporting.aggregate.Summary` and a
context into the HTML that the PDF is printed from. Templates are package data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from markupsafe import Markup

from p402.reporting.actions import actions
from p402.reporting.aggregate import TAG_PREFIX, UNATTRIBUTED, Breakdown, Row, Summary
from p402.reporting.reconciliation import TOLERANCE
from p402.reporting.report import Report
from p402.reporting.templates import environment, stylesheet

__all__ = ["ReportContext", "render_html", "top_rows"]


@dataclass(frozen=True, slots=True)
class ReportContext:
    """Who and what a report is about, beyond its figures."""

    tenant: str
    period: str
    window_start: str
    window_end: str
    as_of: str
    """The time the ledger data runs to (the last event): the report's date, fixed by the data."""
    bundle_id: str
    key_id: str
    merkle_root: str
    generator: str
    price_table: str
    page_size: str = "A4"
    top_n: int = 15
    log: dict[str, Any] | None = None
    """The manifest's ``log`` section: where this audit sits in the tenant's append-only log."""
    purges: tuple[dict[str, Any], ...] = ()
    """Signed retention purges that removed events of the period (see p402.audit.lifecycle)."""
    tenant_name: str | None = None
    """The organisation's name (``[tenant] name``), which the report leads with."""

    @property
    def organisation(self) -> str:
        """The name a reader knows the tenant by: its configured name, else its id."""
        return self.tenant_name or self.tenant


def _facing(summary: Summary) -> tuple[Decimal, Decimal] | None:
    """The percentages of the spend that served customers and that was internal use, one
    decimal each, summing to 100."""
    if not summary.cost_units:
        return None
    units = sum(c.units for m in summary.provider_months for c in m.charges if c.customer_facing)
    facing = (Decimal(units) * 100 / summary.cost_units).quantize(Decimal("0.1"))
    return facing, Decimal(100) - facing


def top_rows(breakdown: Breakdown, limit: int) -> list[Row]:
    """The largest *limit* attributed rows, one "Other" row for the rest, and the unattributed
    row last. The rows still sum to the breakdown's total: only whole rows are folded."""
    named = [row for row in breakdown.rows if row.attributed]
    unattributed = [row for row in breakdown.rows if not row.attributed]
    shown, rest = named[:limit], named[limit:]
    if rest:
        shown.append(
            Row(
                label=f"Other ({len(rest)} more, in the XLSX)",
                attributed=True,
                events=sum(row.events for row in rest),
                requests=sum(row.requests for row in rest),
                tokens=sum(row.tokens for row in rest),
                cost_units=sum(row.cost_units for row in rest),
                cost=sum((row.cost for row in rest), Decimal(0)),
            )
        )
    return shown + unattributed


def render_html(
    report: Report, context: ReportContext, charts: dict[str, Markup] | None = None
) -> str:
    """The report as one HTML document (CSS inlined), ready for WeasyPrint."""
    summary = report.summary
    template = environment().get_template("report.html.j2")
    sections = [
        ("department", "Spend by department", "Department"),
        ("customer", "Spend by customer", "Customer"),
        ("workflow", "Spend by workflow", "Workflow"),
        ("owner", "Spend by owner", "Owner"),
        ("employee", "Spend by employee", "Employee"),
        ("model", "Spend by model", "Provider / model"),
    ]
    sections += [
        (name, f"Spend by tag {name[len(TAG_PREFIX) :]}", name[len(TAG_PREFIX) :])
        for name in summary.breakdowns
        if name.startswith(TAG_PREFIX)
    ]
    tables = [(title, column, summary.breakdowns[name]) for name, title, column in sections]
    return template.render(
        summary=summary,
        report=report,
        context=context,
        tables=tables,
        top=lambda breakdown: top_rows(breakdown, context.top_n),
        tolerance=TOLERANCE,
        heading={f.horizon: f for f in report.forecasts if f.dimension == "total"},
        actions=actions(report),
        month_cells={(m.month, m.provider): m.cost for m in summary.provider_months},
        zero=Decimal("0.00"),
        facing=_facing(summary),
        provider_forecasts=[f for f in report.forecasts if f.dimension == "provider"],
        bridge_ledger=sum((b.ledger for b in report.bridge), Decimal("0.00")),
        bridge_items=sum((i.amount for b in report.bridge for i in b.items), Decimal("0.00")),
        bridge_accrued=sum((b.accrued for b in report.bridge), Decimal("0.00")),
        charts=charts or {},
        unattributed_label=UNATTRIBUTED,
        # Our own stylesheet, from package data: trusted, and escaping it would break its quotes.
        css=Markup(stylesheet()),  # noqa: S704
    )
