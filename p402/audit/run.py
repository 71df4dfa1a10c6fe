"""The audit: one pass over a period of the ledger into reports and a signed bundle.

ledger → (aggregate + seal, in the same pass) → PDF and XLSX → manifest → signed zip.
The bundle depends only on the ledger, the period and the key: times written into it come
from the data (the last event), never from the clock, so a re-run gives the same bytes.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from p402 import __version__
from p402.audit.lifecycle import ledger_entries
from p402.bundles.canonical import dumps
from p402.bundles.checkpoint import Checkpoint, sign_checkpoint
from p402.bundles.instructions import verify_text
from p402.bundles.layout import (
    BLOCKS,
    CHECKPOINT,
    ENTRIES,
    EVENTS,
    FORMAT,
    FORMAT_VERSION,
    INDEX,
    PDF,
    RECEIPTS,
    TREE,
    VERIFY_TEXT,
    XLSX,
)
from p402.bundles.merkle import append_leaves, frontier_root, subtree_consistency_proof
from p402.bundles.seal import Sealed, Sealer
from p402.bundles.signing import SigningKey
from p402.bundles.writer import write_bundle
from p402.config import Config
from p402.errors import P402Error
from p402.ingest.pricing import table_version
from p402.ledger.log import LogHead, place_in_log, record_head
from p402.ledger.store import Ledger
from p402.money import format_amount, from_units, parse_amount, round_cents, to_units
from p402.period import Period, format_time
from p402.reporting.aggregate import Aggregator, Summary
from p402.reporting.document import ReportContext
from p402.reporting.outputs import render_reports
from p402.reporting.report import build_report

__all__ = ["AuditResult", "bundle_name", "run_audit"]

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
    total = ledger.count(tenant, period)
    aggregator = Aggregator()
    with tempfile.TemporaryDirectory(prefix="p402-audit-") as scratch:
        sealer = Sealer(Path(scratch))
        for done, (record, units, at) in enumerate(ledger.stream_records(tenant, period), start=1):
            aggregator.add_record(record, units, at)
            sealer.add(record, units)
            if done % 2_000 == 0 or done == total:
                step("Reading the ledger", done, total)
        step("Sealing the ledger", 0, 0)
        sealed = sealer.finish()
        summary = aggregator.summary(start=period.start.date())
        report = build_report(
            summary, period=period, config=config, billed=ledger.billed_days(tenant, period)
        )
        moment = summary.last or period.start
        origin = f"p402/{tenant}/{period.label}"
        note = sign_checkpoint(Checkpoint(origin, sealed.count, sealed.root), [key])
        log, new_head = _log_position(ledger, tenant, origin, sealed)
        bundle_id = hashlib.sha256(dumps([tenant, period.label, sealed.root.hex()])).hexdigest()[
            :16
        ]
        manifest: dict[str, object] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generator": f"p402 {__version__}",
            "bundle_id": bundle_id,
            "tenant": tenant,
            "period": {
                "label": period.label,
                "start": format_time(period.start),
                "end": format_time(period.end),
            },
            "data_through": format_time(moment),
            "query": {
                "tenant": tenant,
                "occurred_at": {
                    "from": format_time(period.start),
                    "before": format_time(period.end),
                },
                "order": "occurred_at, then event_id bytewise",
            },
            "events": {"count": sealed.count, "file": EVENTS},
            "totals": {
                "currency": "USD",
                "cost": format_amount(from_units(sealed.cost_units)),
                "cost_rounded": str(round_cents(sealed.cost_units)),
                "unpriced_events": sealed.unpriced,
            },
            "merkle": {
                "tree": "RFC 9162",
                "hash": "SHA-256",
                "origin": origin,
                "size": sealed.count,
                "root": sealed.root.hex(),
                "checkpoint": CHECKPOINT,
            },
            "receipts": {
                "blocks": BLOCKS,
                "file": RECEIPTS,
                "index": INDEX,
                "tree": TREE,
                "tree_from_level": sealed.tree_from_level,
            },
            "log": log,
            "price_table": table_version(),
            "rules_version": config.rules_version,
            "reconciliation": [
                {
                    "provider": r.provider,
                    "month": r.month,
                    "status": r.status,
                    "billed": None if r.billed is None else str(r.billed),
                    "ledger": str(r.ledger),
                }
                for r in report.reconciliation
            ],
            "key_id": key.public.key_id,
        }
        entries = ledger_entries(ledger, tenant, since=period.start, until=period.end)
        extra: dict[str, bytes] = {}
        if entries:
            extra[ENTRIES] = b"".join(dumps(item) + b"\n" for item in entries)
            manifest["ledger_entries"] = {"file": ENTRIES, "count": len(entries)}
        context = ReportContext(
            tenant=tenant,
            period=period.label,
            window_start=format_time(period.start),
            window_end=format_time(period.end),
            as_of=format_time(moment),
            bundle_id=bundle_id,
            key_id=key.public.key_id,
            merkle_root=sealed.root.hex(),
            generator=f"p402 {__version__}",
            price_table=table_version(),
            log=log,
            purges=tuple(_purge_lines(entries, period)),
        )
        pdf, xlsx = render_reports(report, context, sealed.records(), moment=moment, step=step)
        step("Signing the bundle", 0, 0)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / bundle_name(tenant, period)
        signed = write_bundle(
            path,
            sealed=sealed,
            members={
                PDF: pdf,
                XLSX: xlsx,
                VERIFY_TEXT: verify_text(manifest),
                CHECKPOINT: note.encode(),
                **extra,
            },
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
