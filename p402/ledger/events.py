"""The canonical economic event: one immutable record per AI call (or usage bucket).

The JSON field names in :data:`FIELDS` are the public contract, used alike by importers, the
meter API, ``events.jsonl`` in a bundle and receipts. :func:`validate` is the one gate every
entry point passes a raw mapping through: it returns an :class:`Event` or the problems, field
by field, and it drops content (prompts, messages, completions, ...) before anything else sees
it. There is no field for content, by design.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import orjson

from p402.money import CURRENCY, MAX_EVENT_COST, format_amount, parse_amount
from p402.period import format_time

__all__ = [
    "ATTRIBUTION_FIELDS",
    "CONTENT_FIELDS",
    "COST_SOURCES",
    "EVIDENCE_STATUSES",
    "FIELDS",
    "POLICY_DECISIONS",
    "TOKEN_FIELDS",
    "Event",
    "Validated",
    "is_content_field",
    "validate",
]

TOKEN_FIELDS: Final = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
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
    *TOKEN_FIELDS,
    "cost", "currency", "cost_source", "price_ref", "list_cost",
    *ATTRIBUTION_FIELDS, "attribution_rule",
    *SOURCE_ID_FIELDS, "service_tier", "batch", "tags",
    "policy_decision", "policy", "outcome", "evidence_status", "source", "retention_until",
)  # fmt: skip
COST_SOURCES: Final = frozenset({"provider", "price_table", "override", "unpriced"})
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

_MAX_ID = 200
_MAX_TAGS = 32
_PROVIDER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_WORD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


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
    cost: Decimal | None = None
    currency: str = CURRENCY
    cost_source: str = "unpriced"
    price_ref: str | None = None
    list_cost: Decimal | None = None
    """The price table's cost of the same tokens, kept beside a reported or negotiated cost."""
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

    def evolve(self, **changes: Any) -> Event:
        """A copy with some fields changed, unchecked. What ``dataclasses.replace`` does at a
        third of the cost: the pipeline calls it per event, and ``replace`` re-runs ``__init__``
        on 40 fields."""
        twin = object.__new__(Event)
        for name in Event.__slots__:
            object.__setattr__(
                twin, name, changes[name] if name in changes else getattr(self, name)
            )
        return twin

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object in the public field names (decimals as strings)."""
        record: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        record["occurred_at"] = format_time(self.occurred_at)
        record["cost"] = None if self.cost is None else format_amount(self.cost)
        record["list_cost"] = None if self.list_cost is None else format_amount(self.list_cost)
        record["tags"] = dict(self.tags)
        if self.retention_until is not None:
            record["retention_until"] = format_time(self.retention_until)
        return record


@dataclass(frozen=True, slots=True)
class Validated:
    """What :func:`validate` found: the event (``None`` if any problem), the problems as
    ``(field, message)`` pairs, and the names of content fields that were dropped."""

    event: Event | None
    problems: list[tuple[str | None, str]]
    dropped_content: tuple[str, ...]


class _Reader:
    """Reads typed values out of one raw row, collecting a problem per bad field."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[tuple[str | None, str]] = []

    def _value(self, name: str) -> Any:
        value = self.raw.get(name)
        return None if value == "" else value

    def text(self, name: str, *, required: bool = False, limit: int = _MAX_ID) -> str | None:
        value = self._value(name)
        if value is None:
            if required:
                self.problems.append((name, "is required"))
            return None
        if not isinstance(value, str):
            self.problems.append((name, f"must be a string, got {type(value).__name__}"))
            return None
        value = value.strip()
        if not value or len(value) > limit or _CONTROL.search(value):
            self.problems.append((name, f"must be 1 to {limit} printable characters"))
            return None
        return value

    def word(self, name: str, *, default: str, allowed: frozenset[str] | None = None) -> str:
        value = self.text(name)
        if value is None:
            return default
        value = value.lower()
        if allowed is not None and value not in allowed:
            self.problems.append(
                (name, f"must be one of {', '.join(sorted(allowed))}, got {value!r}")
            )
        elif allowed is None and not _WORD.match(value):
            self.problems.append((name, f"must be a lower-case word, got {value!r}"))
        return value

    def count(self, name: str, *, default: int = 0, minimum: int = 0) -> int:
        value = self._value(name)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append((name, f"must be a whole number, got {value!r}"))
            return default
        if not minimum <= value < 2**53:
            self.problems.append((name, f"must be at least {minimum}, got {value}"))
            return default
        return value

    def moment(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.text(name, required=required, limit=40)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.problems.append((name, f"{value!r} is not an RFC 3339 timestamp"))
            return None
        if parsed.tzinfo is None:
            self.problems.append((name, f"{value!r} has no UTC offset (write ...Z)"))
            return None
        parsed = parsed.astimezone(UTC)
        if not _EARLIEST <= parsed < _LATEST:
            self.problems.append((name, f"{value!r} is outside 2000-2099"))
            return None
        return parsed

    def flag(self, name: str) -> bool:
        value = self._value(name)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
            return value.strip().lower() in {"true", "1"}
        self.problems.append((name, f"must be true or false, got {value!r}"))
        return False

    def amount(self, name: str) -> Decimal | None:
        value = self._value(name)
        if value is None:
            return None
        try:
            amount = parse_amount(value)
        except ValueError as exc:
            self.problems.append((name, str(exc)))
            return None
        if not Decimal(0) <= amount <= MAX_EVENT_COST:
            self.problems.append((name, f"must be between 0 and {MAX_EVENT_COST}, got {value}"))
            return None
        return amount

    def tags(self) -> tuple[tuple[str, str], ...]:
        found: dict[str, Any] = {}
        value = self._value("tags")
        if isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                self.problems.append(("tags", "must be a JSON object of strings"))
                value = None
        if isinstance(value, Mapping):
            found.update(value)
        elif value is not None:
            self.problems.append(("tags", "must be an object of name: string"))
        found.update({key[4:]: item for key, item in self.raw.items() if key.startswith("tag.")})
        tags: dict[str, str] = {}
        for key, item in found.items():
            if item is None or item == "" or is_content_field(str(key)):
                continue
            if not isinstance(key, str) or not _TAG_KEY.match(key):
                self.problems.append(
                    ("tags", f"tag name {key!r} must be 1 to 64 of A-Z a-z 0-9 _ . : / -")
                )
            elif not isinstance(item, str | int) or isinstance(item, bool):
                self.problems.append((f"tags.{key}", "must be a string"))
            elif len(str(item)) > 256 or _CONTROL.search(str(item)):
                self.problems.append((f"tags.{key}", "must be at most 256 printable characters"))
            else:
                tags[key] = str(item)
        if len(tags) > _MAX_TAGS:
            self.problems.append(("tags", f"at most {_MAX_TAGS} tags, got {len(tags)}"))
        return tuple(sorted(tags.items()))


def derive_event_id(record: Mapping[str, Any]) -> str:
    """A stable id for a row that has none: the hash of its validated content, so re-importing
    the same row finds the same event."""
    digest = hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"sha256:{digest[:32]}"


def validate(raw: Mapping[str, Any], *, tenant: str, source: str) -> Validated:
    """Check one raw row and build the :class:`Event`, dropping content first.

    Args:
        raw: the row as parsed from JSON or CSV (CSV cells are strings; ``""`` means absent).
        tenant: the tenant the row is being recorded for; a row naming another is refused.
        source: how the row entered, e.g. ``import:events`` or ``meter``.
    """
    dropped = tuple(sorted(key for key in raw if isinstance(key, str) and is_content_field(key)))
    known = set(FIELDS)
    r = _Reader({key: value for key, value in raw.items() if key not in dropped})
    for key in r.raw:
        if key not in known and not (isinstance(key, str) and key.startswith("tag.")):
            r.problems.append((str(key), "is not a field of an event (see FIELDS in the docs)"))
    row_tenant = r.text("tenant", limit=64)
    if row_tenant is not None and row_tenant != tenant:
        r.problems.append(
            ("tenant", f"row is for tenant {row_tenant!r}, importing into {tenant!r}")
        )
    provider = r.text("provider", required=True, limit=64)
    if provider is not None and not _PROVIDER.match(provider.lower()):
        r.problems.append(("provider", f"{provider!r} must be a lower-case name like openai"))
    occurred_at = r.moment("occurred_at", required=True)
    values: dict[str, Any] = {
        "tenant": tenant,
        "provider": (provider or "").lower(),
        "model": r.text("model", required=True),
        "operation": r.word("operation", default="") or None,
        "requests": r.count("requests", default=1, minimum=1),
        **{name: r.count(name) for name in TOKEN_FIELDS},
        "cost": r.amount("cost"),
        "price_ref": r.text("price_ref", limit=500),
        "list_cost": r.amount("list_cost"),
        **{
            name: r.text(name)
            for name in (*ATTRIBUTION_FIELDS, "attribution_rule", *SOURCE_ID_FIELDS)
        },
        "service_tier": r.text("service_tier", limit=64),
        "batch": r.flag("batch"),
        "tags": r.tags(),
        "policy_decision": r.word("policy_decision", default="allow", allowed=POLICY_DECISIONS),
        "policy": r.text("policy"),
        "outcome": r.word("outcome", default="success"),
        "source": r.text("source", limit=64) or source,
        "retention_until": r.moment("retention_until"),
    }
    currency = (r.text("currency", limit=3) or CURRENCY).upper()
    if currency != CURRENCY:
        r.problems.append(("currency", f"only {CURRENCY} is supported, got {currency!r}"))
    # A row with a cost and no basis was reported by its source; a row with neither is left to
    # the pricing stage, which prices it from the table or keeps it visibly unpriced.
    cost_source = r.word(
        "cost_source",
        default="unpriced" if values["cost"] is None else "provider",
        allowed=COST_SOURCES,
    )
    if (values["cost"] is None) != (cost_source == "unpriced"):
        r.problems.append(("cost", f"cost and cost_source {cost_source!r} disagree"))
    if values["reasoning_tokens"] > values["output_tokens"]:
        r.problems.append(("reasoning_tokens", "is part of output_tokens, so cannot exceed it"))
    default_evidence = (
        "imported" if source.startswith("import:") and source != "import:events" else "reported"
    )
    if source == "proxy":
        default_evidence = "captured"
    values["evidence_status"] = r.word(
        "evidence_status", default=default_evidence, allowed=EVIDENCE_STATUSES
    )
    if r.problems or occurred_at is None:
        return Validated(None, r.problems, dropped)
    values["occurred_at"] = occurred_at
    values["cost_source"] = cost_source
    event_id = r.text("event_id")
    if r.problems:
        return Validated(None, r.problems, dropped)
    if event_id is None:
        event_id = derive_event_id(Event(event_id="", **values).to_json())
    return Validated(Event(event_id=event_id, **values), [], dropped)
