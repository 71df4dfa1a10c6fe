"""The gate for billed amounts: a raw invoice line from a provider's cost export becomes an
:class:`~p402.ledger.invoices.InvoiceLine`, or the problems with it, field by field. Amounts go
through :func:`p402.money.parse_amount` like every other amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from p402.errors import FieldProblems
from p402.ledger.invoices import INVOICE_FIELDS, INVOICE_TEXT_FIELDS, InvoiceLine
from p402.money import CURRENCY, MAX_EVENT_COST, parse_amount

__all__ = ["validate_invoice_line"]


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
        api_key_id=texts["api_key_id"], user_id=texts["user_id"], model=texts["model"], token_type=texts["token_type"],
        service_tier=texts["service_tier"], source=source,
    )  # fmt: skip
    return line, []
