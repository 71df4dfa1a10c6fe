"""Price the period's savings by re-pricing its own events (the audit's part of Optimize).

Model right-sizing: a workflow's events on a provider's top model (see :data:`SIBLINGS`) are
priced again, token bucket by bucket, at the price of the same provider's smaller model on each
event's day, with the pricer an import uses (negotiated prices first, then the pinned table).
Only events that are priced, both now and under the alternative, count. p402 sees no content,
so every such saving is marked as needing a quality check; it is listed when it is at least
:data:`MIN_SAVING`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any, Final

from p402.ingest.pricing import Pricer
from p402.ledger.events import TOKEN_FIELDS
from p402.money import parse_amount, round_cents, to_units
from p402.reporting.savings import Saving

__all__ = ["MIN_SAVING", "SIBLINGS", "RightSizing"]

SIBLINGS: Final = (
    ("anthropic", "claude-opus-*", "claude-sonnet-4-5"),
    ("openai", "gpt-4.1", "gpt-4.1-mini"),
    ("openai", "gpt-4o", "gpt-4o-mini"),
    ("openai", "o3", "o4-mini"),
    ("google", "gemini-2.5-pro", "gemini-2.5-flash"),
)
"""(provider, model glob, the smaller model of the same family): the right-sizing candidates."""
MIN_SAVING: Final = Decimal("10.00")
_ASSUMPTION = (
    "the same calls, with the same tokens, on {alternative} at its price on each call's day"
)
_RISK = (
    "needs a quality check: p402 sees no content, so whether {alternative} does the job is unknown"
)


@functools.cache
def _sibling(provider: str, model: str) -> str | None:
    # Cached: a period has a few dozen models and every event asks.
    for owner, pattern, smaller in SIBLINGS:
        if owner == provider and fnmatchcase(model, pattern) and model != smaller:
            return smaller
    return None


class RightSizing:
    """Feed it the period's events (canonical JSON objects) one by one, then read the savings."""

    def __init__(self, pricer: Pricer) -> None:
        self._pricer = pricer
        # per (workflow, provider, model, alternative): events, requests, cost units, alternative units
        self._cells: dict[tuple[str, str, str, str], list[int]] = {}
        self._departments: dict[tuple[str, str, str, str], dict[str, int]] = {}

    def add(self, record: Mapping[str, Any], units: int | None) -> None:
        """Count one event (*units*: its exact cost, ``None`` when unpriced)."""
        workflow, provider, model = record["workflow"], record["provider"], record["model"]
        if workflow is None or units is None:
            return
        alternative = _sibling(provider, model)
        if alternative is None:
            return
        values = {
            "provider": provider, "model": alternative, "requests": record["requests"],
            "occurred_at": datetime.fromisoformat(record["occurred_at"]), "batch": record["batch"],
            "service_tier": record["service_tier"], "tags": tuple(sorted((record["tags"] or {}).items())),
            **{bucket: record[bucket] for bucket in TOKEN_FIELDS},
        }  # fmt: skip
        changes = self._pricer.basis(values)
        cost = None if changes is None else changes.get("cost")
        if cost is None:
            return  # the alternative has no price for these tokens: no what-if
        key = (workflow, provider, model, alternative)
        cell = self._cells.setdefault(key, [0, 0, 0, 0])
        cell[0] += 1
        cell[1] += record["requests"]
        cell[2] += units
        cell[3] += to_units(parse_amount(cost))
        department = record["department"] or "Unattributed"
        counts = self._departments.setdefault(key, {})
        counts[department] = counts.get(department, 0) + units

    def savings(self) -> tuple[Saving, ...]:
        """The savings of at least :data:`MIN_SAVING`, largest first."""
        found = []
        for key, (events, requests, units, alternative_units) in self._cells.items():
            workflow, provider, model, alternative = key
            cost, alternative_cost = round_cents(units), round_cents(alternative_units)
            saving = round_cents(units - alternative_units)
            if saving < MIN_SAVING:
                continue
            counts = self._departments[key]
            department = max(sorted(counts), key=lambda name: counts[name])
            found.append(Saving(
                "right-size", workflow, department, provider, model, alternative, events, requests, cost,
                alternative_cost, saving, _ASSUMPTION.format(alternative=alternative),
                _RISK.format(alternative=alternative),
            ))  # fmt: skip
        return tuple(sorted(found, key=lambda s: (-s.saving, s.workflow, s.model)))
