"""What to do: the report's findings as actions, each with the dollars at stake and an owner.

Drawn from what the report already holds, ranked by their dollars:

- unattributed spend: the API keys, projects and workspaces it came from, by dollars, named (when
  the events were read one by one, as an audit reads them), for FinOps to give an owner;
- an unexplained invoice difference the journal posted to suspense, for the controller to clear;
- the largest anomaly of each day, for the department (or FinOps) to explain;
- a budget the period went over, or is heading over at its run rate, for its department (or
  FinOps);
- unpriced events, which carry no cost until a price is given (no dollar figure: that is the
  point);
- a saving the events' re-pricing found (a cheaper model of the family for a workflow), for the
  workflow's department to try, marked as needing a quality check.

The dollars are the findings' own (cents, as every table shows them). They are not to be added:
an anomaly's excess or a saving is part of a department's spend, which may be in more than one
finding; two anomalies of one day would overlap, so a day gives one action.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from p402.money import round_cents
from p402.reporting.aggregate import Unowned
from p402.reporting.bridge import SUSPENSE
from p402.reporting.filters import dimension
from p402.reporting.report import Report

__all__ = ["SAVINGS", "Action", "actions"]

SAVINGS = 3
"""How many savings become actions (the largest); the workbook lists them all."""


@dataclass(frozen=True, slots=True)
class Action:
    """One thing to do: what, why, the dollars at stake, and who."""

    title: str
    detail: str
    impact: Decimal
    owner: str


def _source(item: Unowned) -> str:
    parts = [f"key {item.api_key_id}" if item.api_key_id else "no key id"]
    parts += [f"project {item.project}"] if item.project else []
    parts += [f"workspace {item.workspace}"] if item.workspace else []
    return f"{item.provider} {', '.join(parts)}: ${round_cents(item.cost_units):,} ({item.events:,} events)"


def _unattributed(report: Report) -> list[Action]:
    summary = report.summary
    if not summary.unattributed:
        return []
    share = (summary.unattributed / summary.total * 100).quantize(Decimal("0.1"))
    sources = summary.unowned[:3]
    where = (
        "It comes from " + "; ".join(_source(s) for s in sources) + "."
        if sources
        else "The events carry no department; their API keys, projects and workspaces are in the Events sheet."
    )
    return [Action(
        f"Give ${summary.unattributed:,} of unattributed spend an owner ({share} % of the total)",
        f"{where} Assign each key a department (p402 apikey create --attribution, or a rule in "
        "p402.toml), and re-run p402 attribute: the history moves with it.",
        summary.unattributed, "FinOps",
    )]  # fmt: skip


def _suspense(report: Report) -> list[Action]:
    found = []
    causes = {(r.provider, r.month): "; ".join(r.causes) for r in report.reconciliation}
    for bridge in report.bridge:
        amount = bridge.amount(SUSPENSE)
        if amount:
            found.append(Action(
                f"Clear {bridge.provider}'s ${abs(amount):,} invoice difference of {bridge.month}",
                f"The invoice is ${bridge.accrued:,} and the ledger ${bridge.ledger:,}; the journal posts the "
                f"difference to suspense. Cause: {causes.get((bridge.provider, bridge.month), 'unknown')}.",
                abs(amount), "Controller",
            ))  # fmt: skip
    return found


def _anomalies(report: Report) -> list[Action]:
    found = []
    seen: set[object] = set()
    for anomaly in report.anomalies:  # largest excess first: one action a day
        if anomaly.day in seen:
            continue
        seen.add(anomaly.day)
        owner = anomaly.value if anomaly.dimension == "department" else "FinOps"
        found.append(Action(
            f"Explain {anomaly.value}'s {anomaly.day}: ${anomaly.actual:,} against a usual ${anomaly.expected:,}",
            f"The {dimension(anomaly.dimension)} spent ${anomaly.excess:,} over its baseline "
            f"in {anomaly.events:,} events; "
            f"the first: {', '.join(anomaly.event_ids[:3]) or 'see the Anomalies sheet'} "
            "(p402 receipt BUNDLE EVENT_ID).",
            anomaly.excess, owner,
        ))  # fmt: skip
    return found


def _per_request(amount: Decimal) -> str:
    return f"${amount:,}" if amount >= Decimal("0.01") else "under $0.01"


def _savings(report: Report) -> list[Action]:
    found = []
    for saving in report.savings[:SAVINGS]:  # the rest are in the workbook's Savings sheet
        now, then = (_per_request(value) for value in saving.per_request)
        found.append(Action(
            f"Try {saving.alternative} for {saving.workflow}'s {saving.model} calls (needs a quality check)",
            f"{saving.events:,} calls ({saving.requests:,} requests) cost ${saving.cost:,} on {saving.model}, "
            f"{now} a request; {saving.assumption}: ${saving.alternative_cost:,}, {then} a request. "
            f"The saving {saving.risk}.",
            saving.saving, saving.department,
        ))  # fmt: skip
    return found


def _budgets(report: Report) -> list[Action]:
    found = []
    for line in report.budgets:
        if line.status == "within":
            continue
        over = (line.actual if line.status == "over" else line.forecast) - line.limit
        when = f"in {line.month}" if line.month else f"on {line.days_over:,} days"
        verb = "went" if line.status == "over" else "is heading"
        owner = line.value if line.scope == "department" else "FinOps"
        found.append(Action(
            f"{line.value} {verb} ${over:,} over its {line.window}ly budget {line.name} {when}",
            f"Spent ${line.actual:,}{' on its largest day' if not line.month else ''} against a limit of "
            f"${line.limit:,} ({line.mode}){f', since {line.crossed}' if line.crossed else ''}; "
            "raise the limit or hold the spend.",
            over, owner,
        ))  # fmt: skip
    return found


def _credits(report: Report) -> list[Action]:
    found = []
    for credit in report.credits:
        if credit.kind == "commitment" and credit.at_expiry:
            found.append(Action(
                f"{credit.provider}'s {credit.name} falls ${credit.at_expiry:,} short at {credit.expiry}",
                f"${credit.used:,} of ${credit.amount:,} spent since {credit.start}; the run rate reaches "
                f"${credit.amount - credit.at_expiry:,} by the expiry. Move work to {credit.provider} or renegotiate.",
                credit.at_expiry, "Procurement",
            ))  # fmt: skip
        elif credit.kind != "commitment" and credit.at_expiry:
            found.append(Action(
                f"Use or reclaim {credit.name}: ${credit.at_expiry:,} expires unused on {credit.expiry}",
                f"${credit.remaining:,} is left of ${credit.amount:,}; at the run rate ${credit.at_expiry:,} expires.",
                credit.at_expiry, "FinOps",
            ))  # fmt: skip
        elif credit.runs_out is not None and credit.kind != "commitment":
            found.append(Action(
                f"Top up {credit.name} before {credit.runs_out}",
                f"${credit.remaining:,} is left of ${credit.amount:,}; at the run rate it runs out on "
                f"{credit.runs_out}, and {credit.provider}'s calls stop with it.",
                credit.remaining, "FinOps",
            ))  # fmt: skip
    return found


def _unpriced(report: Report) -> list[Action]:
    summary = report.summary
    if not summary.unpriced_events:
        return []
    models = ", ".join(model for model, _, _ in summary.unpriced_models[:3])
    return [Action(
        f"Price {summary.unpriced_events:,} unpriced events",
        f"They carry no cost ({summary.unpriced_tokens:,} tokens, models: {models}): add their negotiated prices "
        "([[prices]] in p402.toml) so the total is complete.",
        Decimal("0.00"), "FinOps",
    )]  # fmt: skip


def actions(report: Report) -> tuple[Action, ...]:
    """Every action the report supports, the largest dollars first."""
    found = [
        *_savings(report), *_unattributed(report), *_suspense(report), *_budgets(report),
        *_credits(report), *_anomalies(report), *_unpriced(report),
    ]  # fmt: skip
    return tuple(sorted(found, key=lambda a: -a.impact))
