"""Reports without a bundle: the PDF and the workbook of a period, for a quick look or a
draft at close (``p402 report``). The figures are those an audit of the same period signs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from p402.audit.manifest import data_through, report_context
from p402.audit.optimize import RightSizing
from p402.config import Config, Credit
from p402.ingest.pricing import Pricer
from p402.ledger.rollup import rollup
from p402.ledger.store import Ledger
from p402.period import Period, previous_period
from p402.reporting.aggregate import Aggregator, Summary
from p402.reporting.credits import credit_lines
from p402.reporting.outputs import render_reports
from p402.reporting.report import Report, build_report
from p402.reporting.xlsx import EVENTS_SHEET_LIMIT

__all__ = [
    "ReportFiles",
    "credits_used",
    "period_report",
    "previous_summary",
    "with_history",
    "write_reports",
]


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """What ``p402 report`` wrote."""

    report: Report
    files: tuple[Path, ...]


def _summarise(
    ledger: Ledger, tenant: str, period: Period, *, events_sheet: bool, config: Config | None = None,
    by_event: bool = False, sizing: RightSizing | None = None,
) -> tuple[Summary, list[dict[str, Any]]]:  # fmt: skip
    """The period's summary, and the events the workbook lists: all of them if *events_sheet*
    and the period has no more than :data:`EVENTS_SHEET_LIMIT`, else none.

    A period the Events sheet lists is read event by event, and its summary counted from that
    same read, so the sheet and the figures are one snapshot even while the ledger is written
    to. Any other period is summed by the database (:func:`p402.ledger.rollup.rollup`, one
    grouped query), whatever its size; the summary is the same either way.
    """
    aggregator = Aggregator.of(config or Config())
    records: list[dict[str, Any]] = []
    if by_event:  # the findings name their events: only a read event by event knows them
        for record, units, at in ledger.stream_records(tenant, period):
            aggregator.add_record(record, units, at)
            if sizing is not None:
                sizing.add(record, units)
    elif events_sheet and ledger.count(tenant, period) <= EVENTS_SHEET_LIMIT:
        for record, units, at in ledger.stream_records(tenant, period):
            aggregator.add_record(record, units, at)
            if sizing is not None:
                sizing.add(record, units)
            if len(records) <= EVENTS_SHEET_LIMIT:
                records.append(record)
        if len(records) > EVENTS_SHEET_LIMIT:  # written to since the count: the roll-up sheet
            records = []
    else:
        for group in rollup(ledger, tenant, period, tags=aggregator.tag_names):
            aggregator.add_group(group)
    return aggregator.summary(start=period.start.date()), records


def previous_summary(
    ledger: Ledger, tenant: str, period: Period, config: Config
) -> tuple[Summary | None, str]:
    """The summary of the period before *period* (summed by the database; ``None`` when the
    ledger holds none of its events), and its label: what the reports compare with."""
    before = previous_period(period)
    if before is None:
        return None, ""
    if ledger.count(tenant, before) == 0:
        return None, before.label
    aggregator = Aggregator.of(config)
    for group in rollup(ledger, tenant, before, tags=aggregator.tag_names):
        aggregator.add_group(group)
    return aggregator.summary(start=before.start.date()), before.label


def credits_used(
    ledger: Ledger, tenant: str, period: Period, credits: Sequence[Credit]
) -> dict[str, int]:
    """Per credit, its provider's exact spend from the credit's start to the period's end (or
    the credit's expiry, if sooner): the ledger's, which reaches before the period."""
    used = {}
    for credit in credits:
        start = datetime(credit.start.year, credit.start.month, credit.start.day, tzinfo=UTC)
        end = period.end
        if credit.expiry is not None:
            expiry = datetime(
                credit.expiry.year, credit.expiry.month, credit.expiry.day, tzinfo=UTC
            )
            end = min(end, expiry + timedelta(days=1))
        totals = (
            ledger.provider_totals(tenant, Period(credit.name, start, end)) if end > start else {}
        )
        used[credit.name] = totals.get(credit.provider, 0)
    return used


def with_history(
    report: Report, ledger: Ledger, tenant: str, period: Period, config: Config
) -> Report:
    """*report* with what the ledger holds beyond the period: the period before, for the
    comparison, and each credit's use since its start."""
    previous, label = previous_summary(ledger, tenant, period, config)
    used = credits_used(ledger, tenant, period, config.credits)
    return replace(
        report, previous=previous, previous_label=label,
        credits=credit_lines(config.credits, used, report.summary.daily.units),
    )  # fmt: skip


def period_report(
    ledger: Ledger, *, tenant: str, period: Period, config: Config, by_event: bool = False
) -> Report:
    """The period's report without its documents: its reconciliation, bridge, journal and
    findings are those the PDF and the workbook of the same period show. Summed by the
    database, or with *by_event* read event by event, so the anomalies name their events."""
    sizing = RightSizing(Pricer(config.prices)) if by_event else None
    summary, _ = _summarise(
        ledger, tenant, period, events_sheet=False, config=config, by_event=by_event, sizing=sizing,
    )  # fmt: skip
    report = build_report(
        summary, period=period, config=config, billed=ledger.billed_days(tenant, period),
        tenant=tenant,
    )  # fmt: skip
    report = with_history(report, ledger, tenant, period, config)
    return report if sizing is None else replace(report, savings=sizing.savings())


def write_reports(
    ledger: Ledger,
    *,
    tenant: str,
    period: Period,
    config: Config,
    out_dir: Path,
    formats: set[str],
    page_size: str,
) -> ReportFiles:
    """Write the period's PDF and/or XLSX into *out_dir*."""
    sizing = RightSizing(Pricer(config.prices))
    summary, records = _summarise(
        ledger, tenant, period, events_sheet="xlsx" in formats, config=config, sizing=sizing,
    )  # fmt: skip
    report = build_report(
        summary,
        period=period,
        config=config,
        billed=ledger.billed_days(tenant, period),
        tenant=tenant,
    )
    report = with_history(replace(report, savings=sizing.savings()), ledger, tenant, period, config)
    context = report_context(
        report, tenant=tenant, period=period, page_size=page_size,
        tenant_name=config.tenant.name if config.tenant else None,
    )  # fmt: skip
    pdf, xlsx = render_reports(report, context, records, moment=data_through(report, period))
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"p402-report-{tenant}-{period.label}".replace("/", "_")
    written = []
    for kind, data in (("pdf", pdf), ("xlsx", xlsx)):
        if kind in formats:
            path = out_dir / f"{stem}.{kind}"
            path.write_bytes(data)
            written.append(path)
    return ReportFiles(report, tuple(written))
