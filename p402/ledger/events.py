"""The canonical economic event: one immutable record per AI call (or usage bucket).

The JSON field names in :data:`FIELDS` are the public contract, used alike by importers, the
meter API, ``events.jsonl`` in a bundle and receipts. :func:`p402.ingest.validation.validate`
is the one gate every entry point passes a raw mapping through: it returns an :class:`Event` or
the problems, field by field, and it drops content (prompts, messages, completions, ...) before
anything else sees it. There is no field for content, by design.

A :class:`Group` is the other record the ledger hands out: the events of one day that share
every field aggregation reads (:data:`ROLLUP_FIELDS`), summed by the database
(:func:`p402.ledger.rollup.rollup`). Neither imports the database layer, so reporting can
read both without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple

from p402.money import CURRENCY, format_amount
from p402.period import format_time

__all__ = [
    "ATTRIBUTION_FIELDS",
    "CONTENT_FIELDS",
    "COST_SOURCES",
    "DEFAULTS",
    "EVIDENCE_STATUSES",
    "FIELDS",
    "POLICY_DECISIONS",
    "ROLLUP_FIELDS",
    "TOKEN_FIELDS",
    "TOOL_FIELDS",
    "UNPRICED_SOURCES",
    "Event",
    "Group",
    "is_content_field",
]

TOKEN_FIELDS: Final = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
TOOL_FIELDS: Final = ("web_search_calls", "file_search_calls")
"""Calls of a provider-side tool billed per call, apart from tokens (Anthropic's
``server_tool_use.web_search_requests``, OpenAI's web search and file search tool calls)."""
ATTRIBUTION_FIELDS: Final = (
    "owner",
    "department",
    "employee",
    "customer",
    "workflow",
    "project",
    "feature",
)
SOURCE_ID_FIELDS: Final = ("api_key_id", "provider_project_id", "workspace_id", "user_id")
FIELDS: Final = (
    "event_id", "tenant", "occurred_at", "provider", "model", "operation", "requests",
    *TOKEN_FIELDS, *TOOL_FIELDS,
    "cost", "currency", "cost_source", "price_ref", "list_cost", "tool_cost",
    *ATTRIBUTION_FIELDS, "attribution_rule",
    *SOURCE_ID_FIELDS, "service_tier", "batch", "tags",
    "policy_decision", "policy", "outcome", "quality", "evidence_status", "source", "retention_until",
)  # fmt: skip
COST_SOURCES: Final = frozenset(
    {"provider", "price_table", "override", "unpriced", "tier_unpriced"}
)
"""tier_unpriced: the price table has the model but not the service tier the call was billed at,
for its date, and no supplement gives it; like ``unpriced``, the event has no cost."""
UNPRICED_SOURCES: Final = frozenset({"unpriced", "tier_unpriced"})
POLICY_DECISIONS: Final = frozenset({"allow", "flag", "deny"})
EVIDENCE_STATUSES: Final = frozenset({"captured", "reported", "imported", "reconciled"})
"""captured: seen by the routing proxy; reported: sent by the caller (meter, canonical import);
imported: rebuilt from a provider's usage export; reconciled: matched to a billed line."""

CONTENT_FIELDS: Final = frozenset({
    "prompt", "prompts", "messages", "message", "input", "inputs", "output", "outputs",
    "completion", "completions", "response", "responses", "content", "contents", "text",
    "body", "request", "request_body", "response_body", "choices", "system", "system_prompt",
    "instructions", "query", "documents", "tools", "tool_calls", "image", "images", "audio",
    "inputbodyjson", "outputbodyjson", "raw",
})  # fmt: skip
_CONTENT_SUFFIXES: Final = (
    "_prompt",
    "_messages",
    "_content",
    "_body",
    "_completion",
    "_response",
    "_text",
)


def is_content_field(name: str) -> bool:
    """Whether a field name carries (or may carry) prompt or completion content."""
    lowered = name.lower()
    return lowered in CONTENT_FIELDS or lowered.endswith(_CONTENT_SUFFIXES)


@dataclass(frozen=True, slots=True)
class Event:
    """One economic event, validated. Amounts are exact; times are aware and in UTC."""

    event_id: str
    tenant: str
    occurred_at: datetime
    provider: str
    model: str
    operation: str | None = None
    requests: int = 1
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    web_search_calls: int = 0
    file_search_calls: int = 0
    cost: Decimal | None = None
    currency: str = CURRENCY
    cost_source: str = "unpriced"
    price_ref: str | None = None
    list_cost: Decimal | None = None
    """The price table's cost of the same tokens, kept beside a reported or negotiated cost."""
    tool_cost: Decimal | None = None
    """The part of ``cost`` that is tool calls (:data:`TOOL_FIELDS`), priced apart from tokens."""
    owner: str | None = None
    department: str | None = None
    employee: str | None = None
    customer: str | None = None
    workflow: str | None = None
    project: str | None = None
    feature: str | None = None
    attribution_rule: str | None = None
    api_key_id: str | None = None
    provider_project_id: str | None = None
    workspace_id: str | None = None
    user_id: str | None = None
    service_tier: str | None = None
    batch: bool = False
    tags: tuple[tuple[str, str], ...] = field(default=())
    policy_decision: str = "allow"
    policy: str | None = None
    outcome: str = "success"
    quality: str | None = None
    """Oddities of a record its provider really emits, kept with its money: comma-separated codes
    in sorted order (``"reasoning_exceeds_output"``), each a data-quality finding in the reports."""
    evidence_status: str = "reported"
    source: str = "import:events"
    retention_until: datetime | None = None
    source_attribution: tuple[tuple[str, str], ...] | None = None
    """Internal: the attribution values the source itself gave, before any rule; ``None`` when
    no rule has touched the event (its fields are the source's). Not part of the JSON contract:
    it is what lets rules be re-applied to history."""

    def with_cost(
        self,
        cost: Decimal | None,
        cost_source: str,
        price_ref: str | None,
        list_cost: Decimal | None = None,
    ) -> Event:
        """A copy with another cost basis (see :meth:`evolve`)."""
        return self.evolve(
            cost=cost, cost_source=cost_source, price_ref=price_ref, list_cost=list_cost
        )

    @classmethod
    def assemble(cls, values: Mapping[str, Any]) -> Event:
        """The event of these field values, the others at their defaults: ``Event(**values)``
        for values already checked, at a quarter of the cost (the frozen ``__init__`` sets 40
        fields through ``object.__setattr__``). Names that are not fields are ignored."""
        draft = object.__new__(_Draft)
        full = {**DEFAULTS, **values}
        for name in _NAMES:
            setattr(draft, name, full[name])
        draft.__class__ = Event  # type: ignore[assignment]  # same slots: a plain retype
        return draft  # type: ignore[return-value]  # ditto

    def evolve(self, **changes: Any) -> Event:
        """A copy with some fields changed, unchecked. What ``dataclasses.replace`` does at a
        fraction of the cost: the pipeline calls it per event, and ``replace`` re-runs
        ``__init__`` on 40 fields."""
        twin = object.__new__(Event)
        for name, slot in _SLOTS:
            slot.__set__(twin, changes[name] if name in changes else slot.__get__(self))
        return twin

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object in the public field names (decimals as strings)."""
        record: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        record["occurred_at"] = format_time(self.occurred_at)
        record["cost"] = None if self.cost is None else format_amount(self.cost)
        record["list_cost"] = None if self.list_cost is None else format_amount(self.list_cost)
        record["tool_cost"] = None if self.tool_cost is None else format_amount(self.tool_cost)
        record["tags"] = dict(self.tags)
        if self.retention_until is not None:
            record["retention_until"] = format_time(self.retention_until)
        return record


# Slot descriptors of Event, for evolve(): setting through them skips the frozen __setattr__.
_SLOTS = tuple((name, getattr(Event, name)) for name in Event.__slots__)
_NAMES: Final = Event.__slots__
DEFAULTS: Final = {
    item.name: None if item.default is MISSING else item.default for item in fields(Event)
}
"""Every field of :class:`Event` and its default (``None`` for the required ones)."""


class _Draft:
    """An Event under construction: the same slots without the frozen ``__setattr__``, so
    :meth:`Event.assemble` fills it at the speed of a plain object, then retypes it."""

    __slots__ = _NAMES


ROLLUP_FIELDS = (
    "provider",
    "model",
    "department",
    "customer",
    "workflow",
    "owner",
    "employee",
    "policy_decision",
    "policy",
    "outcome",
    "cost_source",
    "quality",
)
"""The event fields a group's events all share (besides the day and whether they are priced):
every field of an event that aggregation reads."""


class Group(NamedTuple):
    """The events of one day that agree on every field in :data:`ROLLUP_FIELDS` and on whether
    they are priced, with their exact sums."""

    day: date
    fields: tuple[str | None, ...]
    """The shared values, in :data:`ROLLUP_FIELDS` order."""
    unpriced: bool
    events: int
    requests: int
    tokens: int
    cost_units: int
    """Exact, in storage units (0 for unpriced events)."""
    first_us: int
    last_us: int
    """The earliest and latest event times, microseconds since the epoch."""
    tool_cost_units: int = 0
    """The part of ``cost_units`` that is tool calls, exact."""
    tags: tuple[str | None, ...] = ()
    """The values the events share of the tags the roll-up was asked to group by, in order."""

    def record(self) -> dict[str, Any]:
        """The shared fields as a canonical event object holds them (``Event.to_json()`` keys)."""
        return dict(zip(ROLLUP_FIELDS, self.fields, strict=True))
