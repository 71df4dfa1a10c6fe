"""The control records a bundle carries (``ledger/imports.jsonl``), checked from the bundle
alone: each is canonical JSON, of the bundle's tenant, touches the audited period, and says
truly whether it ties by its own figures (every row read has one outcome, count and money; the
store gained exactly the rows stored). A record that claims to tie when its figures do not, or
that hides its findings, is a problem. A record that honestly does not tie is not: it is a
finding the reports show, and the bundle carries it as evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from p402.bundles.canonical import canonical_lines
from p402.bundles.layout import IMPORTS

__all__ = ["import_problems", "record_ties"]

_COUNTS = (
    "rows_read", "skipped", "duplicates", "already_stored", "stored", "ledger_added", "odd",
    "unpriced", "tier_unpriced", "content_fields_dropped", "valid", "size",
)  # fmt: skip
_AMOUNTS = (
    "read_cost", "duplicate_cost", "already_stored_cost", "stored_cost", "ledger_cost_change",
)  # fmt: skip


def _amount(record: Mapping[str, Any], name: str) -> Decimal:
    value = record.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a decimal string")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal string") from None


_CAPTURE_COUNTS = (
    "requests_refused", "received", "accepted", "duplicates", "rejected",
    "content_fields_dropped", "odd", "unpriced", "tier_unpriced",
)  # fmt: skip


def record_ties(record: Mapping[str, Any]) -> bool:
    """Whether a record's own figures tie. An import's: ``rows_read = skipped + duplicates +
    already_stored + stored``, the money read is the money of those outcomes, and the store
    gained exactly the stored rows and their cost; it must also have been stored, not refused.
    A capture day's: ``received = accepted + duplicates + rejected``.

    Raises:
        ValueError: a figure is missing or not of its type.
    """
    if record.get("kind") == "capture":
        for name in _CAPTURE_COUNTS:
            if not _is_count(record.get(name)):
                raise ValueError(f"{name} must be a count")
        for name in ("stored_cost", "duplicate_cost"):
            _amount(record, name)
        return bool(
            record["received"] == record["accepted"] + record["duplicates"] + record["rejected"]
        )
    if record.get("status") != "stored":
        return False
    for name in _COUNTS:
        value = record.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a count")
    money = {name: _amount(record, name) for name in _AMOUNTS}
    outcomes = (
        record["skipped"] + record["duplicates"] + record["already_stored"] + record["stored"]
    )
    return (
        outcomes == record["rows_read"]
        and money["read_cost"]
        == money["duplicate_cost"] + money["already_stored_cost"] + money["stored_cost"]
        and record["ledger_added"] == record["stored"]
        and money["ledger_cost_change"] == money["stored_cost"]
    )


def _touches(first: Any, last: Any, period: Mapping[str, Any]) -> bool:
    """Whether events from *first* to *last* meet the half-open period. Compared as times, not
    text: ``...00:00:00.5Z`` sorts before ``...00:00:00Z`` as text but is later."""
    try:
        start, end = (datetime.fromisoformat(period[key]) for key in ("start", "end"))
        return bool(datetime.fromisoformat(first) < end and datetime.fromisoformat(last) >= start)
    except (TypeError, ValueError):
        return False


def import_problems(lines: Iterable[tuple[int, bytes]], manifest: Mapping[str, Any]) -> list[str]:
    """Every problem of the bundle's control records (numbered lines of :data:`IMPORTS`)."""
    problems: list[str] = []
    period = manifest["period"]
    count = 0
    in_period: list[Any] = [0, Decimal(0)]
    for where, record in canonical_lines(lines, IMPORTS, problems):
        count += 1
        if record is None:
            continue
        if isinstance(record, dict):
            _add_days(where, record, period, in_period, problems)
        if not isinstance(record, dict):
            problems.append(f"{where}: not a control record")
            continue
        if record.get("tenant") != manifest["tenant"]:
            problems.append(f"{where}: a record of tenant {record.get('tenant')!r}")
            continue
        if not _touches(record.get("first_event"), record.get("last_event"), period):
            problems.append(f"{where}: its events do not fall in the period")
        try:
            ties = record_ties(record)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        findings = record.get("findings")
        if record.get("ties") is not ties or not isinstance(findings, list) or (ties and findings):
            problems.append(
                f"{where}: says it ties ({record.get('ties')}) but its figures say {ties}"
            )
    if count != manifest["imports"]["count"]:
        problems.append(
            f"{IMPORTS}: {count} records, the manifest says {manifest['imports']['count']}"
        )
    if "in_period" in manifest["imports"]:
        problems.extend(_tie_problems(manifest, in_period[0], in_period[1]))
    return problems


def _add_days(
    where: str,
    record: Mapping[str, Any],
    period: Mapping[str, str],
    in_period: list[Any],
    problems: list[str],
) -> None:
    """Add the events a record's days put in the period, and check the days add up to what the
    record stored (an import) or accepted (a capture day)."""
    low, high = period["start"][:10], period["end"][:10]
    stored = "accepted" if record.get("kind") == "capture" else "stored"
    days = record.get("days")
    if days is None:
        return  # an older record: not broken down, shown so, not a failure
    events, cost = 0, Decimal(0)
    try:
        if not isinstance(days, dict):
            raise ValueError("days must be an object")
        for day, cell in days.items():
            if not isinstance(cell, dict) or not _is_count(cell.get("events")):
                raise ValueError(f"days.{day}.events must be a count")
            amount = _amount(cell, "cost")
            events, cost = events + cell["events"], cost + amount
            if low <= day < high:
                in_period[0] += cell["events"]
                in_period[1] += amount
        if events != record.get(stored) or cost != _amount(record, "stored_cost"):
            problems.append(
                f"{where}: its days hold {events} events (${cost}), it stored "
                f"{record.get(stored)} (${record.get('stored_cost')})"
            )
    except ValueError as exc:
        problems.append(f"{where}: {exc}")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tie_problems(manifest: Mapping[str, Any], events: int, cost: Decimal) -> list[str]:
    """The records' events of the period, the ledger member's events (the manifest's totals,
    which the verifier ties to the member), and the declared difference must tie exactly."""
    section, problems = manifest["imports"], []
    try:
        stated = section["in_period"]
        if stated["events"] != events or _amount(stated, "cost") != cost:
            problems.append(
                f"{IMPORTS}: the records' days put {events} events (${cost}) in the period, "
                f"the manifest says {stated['events']} (${stated['cost']})"
            )
        read, diff = section["read"], section["difference"]
        if read["events"] != manifest["events"]["count"] or _amount(read, "cost") != Decimal(
            manifest["totals"]["cost"]
        ):
            problems.append(f"{IMPORTS}: the tie's events read are not the ledger member's")
        if diff["events"] != read["events"] - stated["events"] or _amount(diff, "cost") != _amount(
            read, "cost"
        ) - _amount(stated, "cost"):
            problems.append(f"{IMPORTS}: the declared difference is not events read less recorded")
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"{IMPORTS}: the manifest's completeness totals are malformed ({exc})")
    return problems
