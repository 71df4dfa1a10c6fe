"""Invoice lines: what a provider *billed*, kept beside the events for reconciliation.

The providers' cost exports (OpenAI Costs API and dashboard "Cost" CSV, Anthropic cost report)
are not usage: they are amounts per day and line item. They are stored as invoice lines, never
as events, so nothing is counted twice; reports compare them with the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from p402.ledger.problems import FieldProblems
from p402.money import CURRENCY, MAX_EVENT_COST, parse_amount

__all__ = ["INVOICE_FIELDS", "INVOICE_TEXT_FIELDS", "InvoiceLine", "validate_invoice_line"]

INVOICE_FIELDS = (
    "line_id", "provider", "start", "end", "amount", "currency", "description", "project_id",
    "workspace_id", "api_key_id", "model", "token_type", "service_tier",
)  # fmt: skip
INVOICE_TEXT_FIELDS = (
    "description",
    "project_id",
    "workspace_id",
    "api_key_id",
    "model",
    "token_type",
    "service_tier",
)


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One billed amount: a provider, a time range, an amount in USD (credits are negative)."""

    line_id: str
    tenant: str
    provider: str
    start: datetime
    end: datetime
    amount: Decimal
    currency: str = CURRENCY
    description: str | None = None
    project_id: str | None = None
    workspace_id: str | None = None
    api_key_id: str | None = None
    model: str | None = None
    token_type: str | None = None
    service_tier: str | None = None
    source: str = "import"


def _time(value: Any, name: str, problems: FieldProblems) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        problems.append((name, f"{value!r} is not an RFC 3339 time"))
        return None
    if moment.tzinfo is None:
        problems.append((name, f"{value!r} has no UTC offset"))
        return None
    return moment.astimezone(UTC)


def validate_invoice_line(
    raw: Mapping[str, Any], *, tenant: str, source: str
) -> tuple[InvoiceLine | None, FieldProblems]:
    """Check one raw invoice line (fields :data:`INVOICE_FIELDS`) and build it. Amounts go
    through :func:`p402.money.parse_amount` like every other amount."""
    problems: FieldProblems = []
    unknown = set(raw) - set(INVOICE_FIELDS)
    problems.extend((name, "is not a field of an invoice line") for name in sorted(unknown))
    start, end = _time(raw.get("start"), "start", problems), _time(raw.get("end"), "end", problems)
    if start and end and end <= start:
        problems.append(("end", "must be after start"))
    try:
        amount = parse_amount(raw.get("amount"))
    except ValueError as exc:
        problems.append(("amount", str(exc)))
        amount = Decimal(0)
    if abs(amount) > MAX_EVENT_COST:
        problems.append(
            ("amount", f"{amount} is beyond the {MAX_EVENT_COST} a single line may hold")
        )
    currency = str(raw.get("currency") or CURRENCY).upper()
    if currency != CURRENCY:
        problems.append(("currency", f"only {CURRENCY} is supported, got {currency!r}"))
    for name in ("line_id", "provider"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            problems.append((name, "is required"))
    if problems or start is None or end is None:
        return None, problems
    texts = {
        name: (str(raw[name])[:200] if raw.get(name) not in (None, "") else None)
        for name in INVOICE_TEXT_FIELDS
    }
    line = InvoiceLine(
        raw["line_id"], tenant, raw["provider"], start, end, amount, currency,
        description=texts["description"], project_id=texts["project_id"], workspace_id=texts["workspace_id"],
        api_key_id=texts["api_key_id"], model=texts["model"], token_type=texts["token_type"],
        service_tier=texts["service_tier"], source=source,
    )  # fmt: skip
    return line, []
