"""A period's findings as JSON, for machines: what ``p402 findings --json`` prints and
``GET /v1/findings`` answers (the same object, so the command and the live ledger agree)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from p402.reporting.report import Report

__all__ = ["findings_json"]


def findings_json(report: Report, tenant: str, label: str) -> dict[str, Any]:
    """The findings of *report* (of *tenant*'s period *label*) as JSON: amounts as decimal
    strings, dates ISO 8601."""

    def text(value: Any) -> Any:
        return (
            f"{value:f}"
            if isinstance(value, Decimal)
            else str(value)
            if value is not None
            else None
        )

    return {
        "tenant": tenant, "period": label, "total": f"{report.summary.total:f}",
        "forecasts": [
            {"dimension": f.dimension, "value": f.value, "horizon": f.horizon, "end": str(f.end),
             "actual": text(f.actual), "expected": text(f.expected), "low": text(f.low), "high": text(f.high),
             "backtest_error_percent": text(f.backtest_error), "backtests": f.backtests}
            for f in report.forecasts
        ],
        "anomalies": [
            {"day": str(a.day), "dimension": a.dimension, "value": a.value, "actual": text(a.actual),
             "expected": text(a.expected), "excess": text(a.excess), "score": text(a.score),
             "events": a.events, "event_ids": list(a.event_ids)}
            for a in report.anomalies
        ],
        "budgets": [
            {"name": b.name, "scope": b.scope, "value": b.value, "window": b.window, "month": b.month,
             "mode": b.mode, "limit": text(b.limit), "actual": text(b.actual), "forecast": text(b.forecast),
             "status": b.status, "crossed": text(b.crossed), "days_over": b.days_over}
            for b in report.budgets
        ],
        "credits": [
            {"name": c.name, "provider": c.provider, "kind": c.kind, "amount": text(c.amount),
             "start": text(c.start), "expiry": text(c.expiry), "used": text(c.used),
             "remaining": text(c.remaining), "runs_out": text(c.runs_out), "at_expiry": text(c.at_expiry),
             "status": c.status}
            for c in report.credits
        ],
        "savings": [
            {"kind": v.kind, "workflow": v.workflow, "department": v.department, "provider": v.provider,
             "model": v.model, "alternative": v.alternative, "events": v.events, "requests": v.requests,
             "cost": text(v.cost), "alternative_cost": text(v.alternative_cost), "saving": text(v.saving),
             "assumption": v.assumption, "risk": v.risk}
            for v in report.savings
        ],
        "reconciliation": [
            {"provider": r.provider, "month": r.month, "status": r.status, "difference": text(r.difference),
             "causes": list(r.causes)}
            for r in report.findings
        ],
    }  # fmt: skip
