"""The audit: one pass over a period of the ledger into reports and a signed bundle.

ledger → (aggregate + seal, in the same pass) → PDF and XLSX → manifest → signed zip.
The bundle depends only on the ledger, the period and the key: times written into it come
from the data (the last event), never from the clock, so a re-run gives the same bytes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from p402.audit.draft import with_history
from p402.audit.lifecycle import ledger_entries
from p402.audit.manifest import data_through, manifest_of, origin_of, report_context
from p402.audit.optimize import RightSizing
from p402.bundles.canonical import dumps
from p402.bundles.checkpoint import Checkpoint, sign_checkpoint
from p402.bundles.layout import (
    CHECKPOINT,
    ENTRIES,
    IMPORTS,
    PDF,
    XLSX,
)
from p402.bundles.merkle import append_leaves, frontier_root, subtree_consistency_proof
from p402.bundles.seal import Sealed, Sealer
from p402.bundles.signing import SigningKey
from p402.bundles.writer import write_bundle
from p402.config import Config
from p402.errors import P402Error
from p402.ingest.pricing import Pricer
from p402.ledger.captures import captures_touching
from p402.ledger.imports import imports_touching
from p402.ledger.log import LogHead, place_in_log, record_head
from p402.ledger.store import Ledger
from p402.money import parse_amount, to_units
from p402.period import Period, format_time
from p402.reporting.aggregate import Aggregator, Summary, event_tokens
from p402.reporting.completeness import completeness
from p402.reporting.outputs import render_reports
from p402.reporting.report import build_report

__all__ = ["AuditResult", "bundle_name", "control_records", "run_audit"]

Step = Callable[[str, int, int], None]
"""Progress: called with a stage name, the work done so far and the total (0 if unknown)."""


@dataclass(frozen=True, slots=True)
class AuditResult:
    """What an audit produced."""

    bundle: Path
    summary: Summary
    manifest: dict[str, object]


def bundle_name(tenant: str, period: Period) -> str:
    """The bundle's file name: ``p402-audit-<tenant>-<period>.zip``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{tenant}-{period.label}")
    return f"p402-audit-{safe}.zip"


def _noop(_stage: str, _done: int, _total: int) -> None:
    return


def run_audit(
    ledger: Ledger,
    *,
    tenant: str,
    period: Period,
    key: SigningKey,
    out_dir: Path,
    step: Step = _noop,
    config: Config | None = None,
) -> AuditResult:
    """Audit the tenant's period and write the bundle into *out_dir*.

    *config* gives the invoices to reconcile with, the journal's accounts, and the rules whose
    version the manifest records (none, by default).
    """
    config = config or Config()
    with tempfile.TemporaryDirectory(prefix="p402-audit-") as scratch:
        sizing = RightSizing(Pricer(config.prices))
        sealed, summary, tally = _read(
            ledger, tenant, period, Path(scratch), step, aggregator=Aggregator.of(config),
            sizing=sizing,
        )  # fmt: skip
        report = build_report(
            summary,
            period=period,
            config=config,
            billed=ledger.billed_days(tenant, period),
            tenant=tenant,
        )
        entries = ledger_entries(ledger, tenant, since=period.start, until=period.end)
        controls = control_records(ledger, tenant, period)
        purges = tuple(_purge_lines(entries, period))
        report = replace(
            with_history(report, ledger, tenant, period, config),
            savings=sizing.savings(),
            completeness=completeness(
                controls, tally, tenant=tenant, start=format_time(period.start),
                end=format_time(period.end), purges=purges,
            ),
        )  # fmt: skip
        moment = data_through(report, period)
        origin = origin_of(tenant, period)
        note = sign_checkpoint(Checkpoint(origin, sealed.count, sealed.root), [key])
        log, new_head = _log_position(ledger, tenant, origin, sealed)
        manifest = manifest_of(
            report, sealed, tenant=tenant, period=period, key_id=key.public.key_id,
            rules_version=config.rules_version, log=log, entries=len(entries),
            imports=len(controls),
        )  # fmt: skip
        extra = {ENTRIES: b"".join(dumps(item) + b"\n" for item in entries)} if entries else {}
        if controls:
            extra[IMPORTS] = b"".join(dumps(item) + b"\n" for item in controls)
        context = report_context(
            report, tenant=tenant, period=period, manifest=manifest,
            purges=purges, tenant_name=config.tenant.name if config.tenant else None,
        )  # fmt: skip
        pdf, xlsx = render_reports(report, context, sealed.records(), moment=moment, step=step)
        step("Signing the bundle", 0, 0)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / bundle_name(tenant, period)
        signed = write_bundle(
            path,
            sealed=sealed,
            members={PDF: pdf, XLSX: xlsx, CHECKPOINT: note.encode(), **extra},
            manifest=manifest,
            key=key,
            moment=moment,
        )
    if new_head is not None:
        try:
            record_head(ledger, tenant, new_head)
        except P402Error:
            path.unlink(missing_ok=True)  # its log position was taken: it must not circulate
            raise
    return AuditResult(path, summary, signed)


def control_records(ledger: Ledger, tenant: str, period: Period) -> list[dict[str, Any]]:
    """THE SEAM for control records: every record (of imports, then of the meter's and the
    proxy's capture days) whose events fall in the period, as canonical JSON objects. The
    bundle carries them and the completeness section ties to them."""
    return [
        *imports_touching(ledger, tenant, period.start, period.end),
        *captures_touching(ledger, tenant, period.start, period.end),
    ]


def _read(
    ledger: Ledger,
    tenant: str,
    period: Period,
    scratch: Path,
    step: Step,
    *,
    aggregator: Aggregator,
    sizing: RightSizing,
) -> tuple[Sealed, Summary, dict[tuple[str, str], list[int]]]:
    """One pass over the period's events: sealed (into *scratch*), aggregated, and tallied per
    (source, provider) for the completeness section."""
    total = ledger.count(tenant, period)
    sealer = Sealer(scratch)
    tally: dict[tuple[str, str], list[int]] = {}
    for done, (record, units, at) in enumerate(ledger.stream_records(tenant, period), start=1):
        aggregator.add_record(record, units, at)
        sealer.add(record, units)
        sizing.add(record, units)
        cell = tally.setdefault((record["source"] or "", record["provider"]), [0, 0, 0])
        cell[0] += 1
        cell[1] += units or 0
        cell[2] += event_tokens(record)
        if done % 2_000 == 0 or done == total:
            step("Reading the ledger", done, total)
    step("Sealing the ledger", 0, 0)
    return sealer.finish(), aggregator.summary(start=period.start.date()), tally


def _purge_lines(entries: list[dict[str, Any]], period: Period) -> list[dict[str, Any]]:
    """What each purge removed of this period, for the report: by month where the period is
    whole months, else the purge's totals (which may reach outside the period)."""
    months = {
        f"{year:04d}-{month:02d}"
        for year in range(period.start.year, period.end.year + 1)
        for month in range(1, 13)
        if period.start <= datetime(year, month, 1, tzinfo=UTC) < period.end
    }
    lines = []
    for item in entries:
        entry = item["entry"]
        inside = [m for m in entry["by_month"] if m["month"] in months]
        whole = bool(inside) and period.start.day == 1 and period.end.day == 1
        count = sum(m["count"] for m in inside) if whole else entry["events"]["count"]
        cost = sum((parse_amount(m["cost"]) for m in inside), Decimal(0)) if whole else None
        lines.append({
            "entry_id": entry["entry_id"], "recorded_at": entry["recorded_at"][:10],
            "retention_days": entry.get("retention_days"), "count": count,
            "cost_units": to_units(parse_amount(entry["events"]["cost"]) if cost is None else cost),
            "within_period": whole,
        })  # fmt: skip
    return lines


def _log_position(
    ledger: Ledger, tenant: str, origin: str, sealed: Sealed
) -> tuple[dict[str, object], LogHead | None]:
    """The manifest's ``log`` section, placing this audit's events in the tenant's append-only
    log; and the head to record once the bundle is written (``None`` when the audit re-issues
    one already in the log, or appends nothing)."""
    period_root = sealed.root.hex()
    found, previous = place_in_log(
        ledger, tenant, origin=origin, period_root=period_root, count=sealed.count
    )
    old_size = 0 if previous is None else previous.size
    frontier = [] if previous is None else [bytes.fromhex(node) for node in previous.frontier]
    grown = append_leaves(frontier, old_size, sealed.leaves)
    size, root = old_size + sealed.count, frontier_root(grown)
    proof = subtree_consistency_proof(frontier, old_size, sealed.leaves) if old_size else []
    section: dict[str, object] = {
        "origin": f"p402/{tenant}/log",
        "size": size,
        "root": root.hex(),
        "previous": None if previous is None else {"size": old_size, "root": previous.root},
        "frontier": [node.hex() for node in frontier],
        "consistency_proof": [node.hex() for node in proof],
    }
    if found is not None or not sealed.count:
        return section, None
    head = LogHead(
        old_size, size, root.hex(), tuple(node.hex() for node in grown), origin, period_root
    )
    return section, head
