"""Aggregate a period of events into exact totals, by every dimension, in one streaming pass.

Sums are kept in integer storage units, so they are exact whatever the event count. Rounding
to cents happens here once per breakdown, with :func:`p402.money.allocate_cents`, so each
breakdown's rows sum to the same rounded grand total: every view of the report ties out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from p402.ledger.events import Event
from p402.money import allocate_cents, round_cents, to_units

__all__ = ["DIMENSIONS", "NO_CUSTOMER", "UNATTRIBUTED", "Aggregator", "Breakdown", "Row", "Summary"]

UNATTRIBUTED = "Unattributed"
"""The label of the bucket for events a dimension has no value for. Never hidden."""
NO_CUSTOMER = "No customer (internal use)"
"""Most AI spend serves no customer: for that dimension an empty value is not a gap."""
_EMPTY_LABELS = {"customer": NO_CUSTOMER}

DIMENSIONS: dict[str, Callable[[Event], str | None]] = {
    "department": lambda e: e.department,
    "customer": lambda e: e.customer,
    "workflow": lambda e: e.workflow,
    "owner": lambda e: e.owner,
    "model": lambda e: f"{e.provider}/{e.model}",
    "provider": lambda e: e.provider,
}


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a breakdown: its exact cost and its share of the rounded total."""

    label: str
    attributed: bool
    events: int
    requests: int
    tokens: int
    cost_units: int
    cost: Decimal
    """Rounded to cents by allocation: the rows of a breakdown sum to its total."""


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The period's spend split by one dimension, largest first, unattributed last."""

    dimension: str
    rows: tuple[Row, ...]
    total: Decimal

    @property
    def empty_is_gap(self) -> bool:
        """Whether events without a value here are missing attribution (not, say, internal use)."""
        return self.dimension not in _EMPTY_LABELS


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything a report needs about a period, exact and already rounded once."""

    events: int
    requests: int
    tokens: int
    cost_units: int
    total: Decimal
    attributed: Decimal
    unattributed: Decimal
    unpriced_events: int
    unpriced_tokens: int
    flagged: int
    denied: int
    errors: int
    first: datetime | None
    last: datetime | None
    breakdowns: dict[str, Breakdown]

    @property
    def attributed_share(self) -> Decimal:
        """The attributed share of the rounded total, 0 to 1 (0 for an empty period)."""
        return self.attributed / self.total if self.total else Decimal(0)


def _tokens(event: Event) -> int:
    return (
        event.input_tokens + event.cache_read_tokens + event.cache_write_tokens
        + event.cache_write_1h_tokens + event.output_tokens
    )  # fmt: skip


class Aggregator:
    """Feed it events one at a time (:meth:`add`), then read the :class:`Summary`."""

    def __init__(self) -> None:
        # per dimension, per value: [events, requests, tokens, cost units]
        self._cells: dict[str, defaultdict[str | None, list[int]]] = {
            name: defaultdict(lambda: [0, 0, 0, 0]) for name in DIMENSIONS
        }
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._first: datetime | None = None
        self._last: datetime | None = None

    def add(self, event: Event) -> None:
        """Count one event into every dimension."""
        units = 0 if event.cost is None else to_units(event.cost)
        tokens = _tokens(event)
        for name, key in DIMENSIONS.items():
            cell = self._cells[name][key(event)]
            cell[0] += 1
            cell[1] += event.requests
            cell[2] += tokens
            cell[3] += units
        counts = self._counts
        counts["unpriced"] += event.cost is None
        counts["unpriced_tokens"] += tokens if event.cost is None else 0
        counts["flag"] += event.policy_decision == "flag"
        counts["deny"] += event.policy_decision == "deny"
        counts["error"] += event.outcome == "error"
        if self._first is None or event.occurred_at < self._first:
            self._first = event.occurred_at
        if self._last is None or event.occurred_at > self._last:
            self._last = event.occurred_at

    def extend(self, events: Iterable[Event]) -> None:
        """Count many events."""
        for event in events:
            self.add(event)

    def _breakdown(self, name: str) -> Breakdown:
        cells = self._cells[name]
        order = sorted(cells, key=lambda key: (key is None, -cells[key][3], key or ""))
        total, cents = allocate_cents([cells[key][3] for key in order])
        rows = []
        for key, amount in zip(order, cents, strict=True):
            events, requests, tokens, units = cells[key]
            rows.append(
                Row(
                    key or _EMPTY_LABELS.get(name, UNATTRIBUTED),
                    key is not None,
                    events,
                    requests,
                    tokens,
                    units,
                    amount,
                )
            )
        return Breakdown(name, tuple(rows), total)

    def summary(self) -> Summary:
        """The totals so far."""
        breakdowns = {name: self._breakdown(name) for name in DIMENSIONS}
        by_provider = self._cells["provider"].values()
        units = sum(cell[3] for cell in by_provider)
        departments = self._cells["department"]
        _, (attributed, unattributed) = allocate_cents(
            [
                sum(cell[3] for key, cell in departments.items() if key is not None),
                departments[None][3] if None in departments else 0,
            ]
        )
        return Summary(
            events=sum(cell[0] for cell in by_provider),
            requests=sum(cell[1] for cell in by_provider),
            tokens=sum(cell[2] for cell in by_provider),
            cost_units=units,
            total=round_cents(units),
            attributed=attributed,
            unattributed=unattributed,
            unpriced_events=self._counts["unpriced"],
            unpriced_tokens=self._counts["unpriced_tokens"],
            flagged=self._counts["flag"],
            denied=self._counts["deny"],
            errors=self._counts["error"],
            first=self._first,
            last=self._last,
            breakdowns=breakdowns,
        )
