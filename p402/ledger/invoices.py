"""Invoice lines: what a provider *billed*, kept beside the events for reconciliation.

The providers' cost exports (OpenAI Costs API and dashboard "Cost" CSV, Anthropic cost report)
are not usage: they are amounts per day and line item. They are stored as invoice lines, never
as events, so nothing is counted twice; reports compare them with the ledger. A raw line is
checked by :func:`p402.ingest.invoice_lines.validate_invoice_line` before it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from p402.money import CURRENCY

__all__ = ["INVOICE_FIELDS", "INVOICE_TEXT_FIELDS", "InvoiceLine"]

INVOICE_FIELDS = (
    "line_id", "provider", "start", "end", "amount", "currency", "description", "project_id",
    "workspace_id", "api_key_id", "user_id", "model", "token_type", "service_tier",
)  # fmt: skip
INVOICE_TEXT_FIELDS = (
    "description",
    "project_id",
    "workspace_id",
    "api_key_id",
    "user_id",
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
    user_id: str | None = None
    model: str | None = None
    token_type: str | None = None
    service_tier: str | None = None
    source: str = "import"
