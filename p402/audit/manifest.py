"""What an audit says about itself, built once: its id, the manifest it signs, and the context
its reports print. The signed audit (:mod:`p402.audit.run`) and the draft reports
(:mod:`p402.audit.draft`) both take them from here, so a draft and a signed report of the same
period name themselves the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from p402 import __version__
from p402.bundles.canonical import dumps
from p402.bundles.manifest import Manifest
from p402.bundles.seal import Sealed
from p402.ingest.pricing import table_version
from p402.period import Period, format_time
from p402.reporting.document import ReportContext
from p402.reporting.report import Report

__all__ = [
    "GENERATOR",
    "audit_id",
    "data_through",
    "draft_id",
    "manifest_of",
    "origin_of",
    "report_context",
]

GENERATOR = f"p402 {__version__}"
_UNSIGNED = "(not signed: p402 report; run p402 audit for the signed bundle)"


def audit_id(tenant: str, period: Period, root: str) -> str:
    """The id of the audit of *tenant*'s *period* whose events have the Merkle *root* (hex):
    the same ledger and period give the same id, whoever runs it."""
    return hashlib.sha256(dumps([tenant, period.label, root])).hexdigest()[:16]


def draft_id(tenant: str, period: Period) -> str:
    """The id of a draft (unsigned, unsealed) report of the period: ``draft-<hex>``."""
    return "draft-" + hashlib.sha256(dumps([tenant, period.label, "draft"])).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AuditManifest(Manifest):
    """The manifest with the completeness totals signed in its ``imports`` section.

    TODO(merge): fold ``completeness`` into :class:`p402.bundles.manifest.Manifest` itself."""

    completeness: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The manifest's fields, the imports section carrying the completeness totals."""
        manifest = Manifest.to_json(self)
        if "imports" in manifest and self.completeness:
            manifest["imports"].update(self.completeness)
        return manifest


def manifest_of(
    report: Report,
    sealed: Sealed,
    *,
    tenant: str,
    period: Period,
    key_id: str,
    rules_version: str,
    log: Mapping[str, Any],
    entries: int,
    imports: int = 0,
) -> Manifest:
    """The manifest of the audit of *report*'s period, whose ledger is *sealed*."""
    section = {} if report.completeness is None else report.completeness.manifest_section()
    return AuditManifest(
        generator=GENERATOR,
        bundle_id=audit_id(tenant, period, sealed.root.hex()),
        tenant=tenant,
        period=period,
        data_through=data_through(report, period),
        events=sealed.count,
        cost_units=sealed.cost_units,
        unpriced_events=sealed.unpriced,
        origin=origin_of(tenant, period),
        root=sealed.root.hex(),
        tree_from_level=sealed.tree_from_level,
        key_id=key_id,
        price_table=table_version(),
        rules_version=rules_version,
        log=log,
        reconciliation=tuple(row.as_json() for row in report.reconciliation),
        ledger_entries=entries,
        imports=imports,
        completeness=section,
    )


def origin_of(tenant: str, period: Period) -> str:
    """The origin line of the period's Merkle tree and checkpoint: ``p402/<tenant>/<period>``."""
    return f"p402/{tenant}/{period.label}"


def report_context(
    report: Report,
    *,
    tenant: str,
    period: Period,
    manifest: Manifest | None = None,
    purges: tuple[dict[str, Any], ...] = (),
    page_size: str = "A4",
    tenant_name: str | None = None,
) -> ReportContext:
    """Who and what the reports are about: the signed audit's *manifest*, or (``None``) a
    draft of the period."""
    as_of = format_time(data_through(report, period))
    start, end = format_time(period.start), format_time(period.end)
    if manifest is None:
        return ReportContext(
            tenant=tenant, period=period.label, window_start=start, window_end=end, as_of=as_of,
            bundle_id=draft_id(tenant, period), key_id=_UNSIGNED, merkle_root="(not sealed)",
            generator=GENERATOR, price_table=table_version(), page_size=page_size,
            tenant_name=tenant_name,
        )  # fmt: skip
    return ReportContext(
        tenant=tenant, period=period.label, window_start=start, window_end=end, as_of=as_of,
        bundle_id=manifest.bundle_id, key_id=manifest.key_id, merkle_root=manifest.root,
        generator=manifest.generator, price_table=manifest.price_table, page_size=page_size,
        log=dict(manifest.log), purges=purges, tenant_name=tenant_name,
    )  # fmt: skip


def data_through(report: Report, period: Period) -> datetime:
    """The time the period's data runs to (its last event, else its start): every date in the
    reports and the bundle is this one, never the clock's."""
    return report.summary.last or period.start
