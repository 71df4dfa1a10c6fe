"""The audit: the one place the stages meet. It reads the ledger, has reporting render the
period, has bundles seal and sign it; and it runs the lifecycle steps that must leave signed
evidence (retention purges, tenant deletion).

Usage::

    from p402.audit import run_audit
    from p402.bundles.signing import load_signing_key
    from p402.ledger import Ledger
    from p402.period import parse_period

    result = run_audit(Ledger.open("p402-ledger.db"), tenant="acme",
                       period=parse_period("2026-10"), key=load_signing_key(path), out_dir=out)
    print(result.bundle)        # out/p402-audit-acme-2026-10.zip

Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p402 import lazy_names

if TYPE_CHECKING:  # the names as mypy sees them; at run time __getattr__ loads them
    from p402.audit.draft import ReportFiles, write_reports
    from p402.audit.lifecycle import delete_tenant, enforce_retention
    from p402.audit.run import AuditResult, bundle_name, run_audit

__all__ = [
    "AuditResult",
    "ReportFiles",
    "bundle_name",
    "delete_tenant",
    "enforce_retention",
    "run_audit",
    "write_reports",
]

_HOMES = {
    "AuditResult": "run",
    "bundle_name": "run",
    "run_audit": "run",
    "ReportFiles": "draft",
    "write_reports": "draft",
    "delete_tenant": "lifecycle",
    "enforce_retention": "lifecycle",
}

__getattr__ = lazy_names(__name__, _HOMES)
