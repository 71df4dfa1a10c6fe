"""The one gate: a raw row (from any importer, the meter API or the proxy) becomes an
:class:`~p402.ledger.events.Event`, or a list of problems, field by field.

Content goes first: any field named like a prompt, message or completion is dropped before
anything else reads the row. Unknown fields are problems (a typo never vanishes silently).
Each field present is checked by the checker of its kind, looked up in one table, so a row
pays only for the fields it carries: the importer runs this a million times a file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Final

import orjson

from p402.errors import FieldProblems
from p402.ingest.tags import (
    CONTROL,
    MAX_OWN_TAGS,
    MAX_TAG_NAME,
    MAX_TAG_VALUE,
    MAX_TAGS,
    OWN_PREFIX,
    TAG_NAME,
)
from p402.ledger.events import (
    ATTRIBUTION_FIELDS,
    COST_SOURCES,
    EVIDENCE_STATUSES,
    FIELDS,
    POLICY_DECISIONS,
    SOURCE_ID_FIELDS,
    TOKEN_FIELDS,
    TOOL_FIELDS,
    UNPRICED_SOURCES,
    Event,
    is_content_field,
)
from p402.money import CURRENCY, MAX_EVENT_COST, parse_amount, plain_amount

__all__ = ["Validated", "check_row", "derive_event_id", "validate"]


_KNOWN: Final = frozenset(FIELDS)
_MAX_ID = 200
_PROVIDER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_WORD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_INVALID: Final = object()
"""What a checker returns after recording a problem."""


@dataclass(frozen=True, slots=True)
class Validated:
    """What :func:`validate` found: the event (``None`` if any problem), the problems as
    ``(field, message)`` pairs, and the names of content fields that were dropped."""

    event: Event | None
    problems: FieldProblems
    dropped_content: tuple[str, ...]


Checker = Callable[[str, Any, FieldProblems], Any]


_MEMO_LIMIT = 50_000
_TOO_MANY = 2**53
_ACCEPTED: dict[str, dict[str, Any]] = {}
"""Per text field, raw strings already accepted and what they were accepted as: a ledger repeats
its names endlessly, so :func:`_read` looks a name up here before running its checker (which is
a pure function of the value, so the remembered result is the one it would give)."""
_COUNT_MINIMUM: dict[str, int] = {}
"""Per count field, its minimum: :func:`_read` takes an in-range ``int`` without a call."""


def _text(limit: int) -> Checker:
    def check(name: str, value: Any, problems: FieldProblems) -> Any:
        if not isinstance(value, str):
            problems.append((name, f"must be a string, got {type(value).__name__}"))
            return _INVALID
        if value[0].isspace() or value[-1].isspace():
            value = value.strip()
        # isprintable() is the fast test; it also refuses separators such as U+00A0 that are
        # fine in a name, so only a real control character counts as a problem.
        if not value or len(value) > limit or (not value.isprintable() and CONTROL.search(value)):
            problems.append((name, f"must be 1 to {limit} printable characters"))
            return _INVALID
        return value

    return check


def _word(allowed: frozenset[str] | None) -> Checker:
    as_text = _text(32)

    def check(name: str, value: Any, problems: FieldProblems) -> Any:
        text = as_text(name, value, problems)
        if text is _INVALID:
            return _INVALID
        text = text.lower()
        if allowed is not None and text not in allowed:
            problems.append((name, f"must be one of {', '.join(sorted(allowed))}, got {text!r}"))
            return _INVALID
        if allowed is None and not _WORD.match(text):
            problems.append((name, f"must be a lower-case word, got {text!r}"))
            return _INVALID
        return text

    return check


_MOST_COUNT = 2**53
"""Counts stay below it: every JSON reader holds them exactly (a double's integer range)."""


def _count(minimum: int) -> Checker:
    def check(name: str, value: Any, problems: FieldProblems) -> Any:
        if type(value) is not int:
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append((name, f"must be a whole number, got {value!r}"))
                return _INVALID
        if value < minimum:
            problems.append((name, f"must be at least {minimum}, got {value}"))
            return _INVALID
        if value >= _MOST_COUNT:
            problems.append((name, f"must be less than 2**53 ({_MOST_COUNT:,}), got {value}"))
            return _INVALID
        return value

    return check


# Canonical UTC text in 2000-2099, as p402 writes it: parsed straight, with the same result.
_CANONICAL_TIME = re.compile(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z")


def _moment(name: str, value: Any, problems: FieldProblems) -> Any:
    if value.__class__ is str and _CANONICAL_TIME.fullmatch(value):
        try:
            return datetime.fromisoformat(value)  # "Z" gives UTC itself; the year is in range
        except ValueError:
            pass  # an impossible date: the full check words the problem
    text = _time_text(name, value, problems)
    if text is _INVALID:
        return _INVALID
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        problems.append((name, f"{text!r} is not an RFC 3339 timestamp"))
        return _INVALID
    if parsed.tzinfo is None:
        problems.append((name, f"{text!r} has no UTC offset (write ...Z)"))
        return _INVALID
    parsed = parsed.astimezone(UTC)
    if not _EARLIEST <= parsed < _LATEST:
        problems.append((name, f"{text!r} is outside 2000-2099"))
        return _INVALID
    return parsed


_time_text = _text(40)


def _amount(name: str, value: Any, problems: FieldProblems) -> Any:
    if value.__class__ is str:
        plain = plain_amount(value)
        if plain is not None and plain <= MAX_EVENT_COST:
            return plain
    try:
        amount = parse_amount(value)
    except ValueError as exc:
        problems.append((name, str(exc)))
        return _INVALID
    if not Decimal(0) <= amount <= MAX_EVENT_COST:
        problems.append((name, f"must be between 0 and {MAX_EVENT_COST}, got {value}"))
        return _INVALID
    return amount


def _flag(name: str, value: Any, problems: FieldProblems) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
        return value.strip().lower() in {"true", "1"}
    problems.append((name, f"must be true or false, got {value!r}"))
    return _INVALID


def _tag_map(name: str, value: Any, problems: FieldProblems) -> Any:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            problems.append((name, "must be a JSON object of strings"))
            return _INVALID
    if not isinstance(value, Mapping):
        problems.append((name, "must be an object of name: string"))
        return _INVALID
    return value


_QUALITY_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _quality(name: str, value: Any, problems: FieldProblems) -> Any:
    """Data-quality codes: a comma-separated string or a list of codes, kept sorted, unique."""
    codes = value.split(",") if isinstance(value, str) else value
    if not isinstance(codes, list | tuple) or not all(
        isinstance(code, str) and _QUALITY_CODE.fullmatch(code.strip()) for code in codes
    ):
        problems.append((name, "must be codes like reasoning_exceeds_output, comma-separated"))
        return _INVALID
    text = ",".join(sorted({code.strip() for code in codes}))
    if len(text) > 200:
        problems.append((name, "at most 200 characters of codes"))
        return _INVALID
    return text or _INVALID


_COUNT_FIELDS = ("requests", *TOKEN_FIELDS, *TOOL_FIELDS)
_CHECKS: dict[str, Checker] = {
    "event_id": _text(_MAX_ID),
    "tenant": _text(64),
    "occurred_at": _moment,  # unique values: nothing to remember
    "provider": _text(64),
    "model": _text(_MAX_ID),
    "operation": _word(None),
    "requests": _count(1),
    **{name: _count(0) for name in (*TOKEN_FIELDS, *TOOL_FIELDS)},
    "cost": _amount,
    "currency": _text(3),
    "cost_source": _word(COST_SOURCES),
    "price_ref": _text(500),
    "list_cost": _amount,
    "tool_cost": _amount,
    **{
        name: _text(_MAX_ID)
        for name in (*ATTRIBUTION_FIELDS, "attribution_rule", *SOURCE_ID_FIELDS)
    },
    "service_tier": _text(64),
    "batch": _flag,
    "tags": _tag_map,
    "policy_decision": _word(POLICY_DECISIONS),
    "policy": _text(_MAX_ID),
    "outcome": _word(None),
    "quality": _quality,
    "evidence_status": _word(EVIDENCE_STATUSES),
    "source": _text(64),
    "retention_until": _moment,
}
assert set(_CHECKS) == _KNOWN, "every field of an event has a checker"
# Unique per event (ids, times) or not plain text: nothing worth remembering.
_UNREMEMBERED = {
    "event_id", "occurred_at", "retention_until", "cost", "list_cost", "tool_cost", "tags", "batch",
}  # fmt: skip
_ACCEPTED.update(
    (name, {}) for name in _CHECKS if name not in _UNREMEMBERED and name not in _COUNT_FIELDS
)
_COUNT_MINIMUM.update((name, 0 if name != "requests" else 1) for name in _COUNT_FIELDS)


_TAG_SETS: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
"""Tag objects of plain strings already accepted (as their items), and the tags they became."""


def _tags(found: Mapping[Any, Any], problems: FieldProblems) -> tuple[tuple[str, str], ...]:
    # Only all-string items are remembered, so a hit (equal items) is all strings too: no
    # 1 == True confusion between a number and a flag.
    items = tuple(found.items())
    try:
        known = _TAG_SETS.get(items)
    except TypeError:  # an unhashable value: the checks below name it
        known, items = None, ()
    if known is not None:
        return known
    tags: dict[str, str] = {}
    for key, item in found.items():
        if item is None or item == "" or is_content_field(str(key)):
            continue
        if not isinstance(key, str) or not TAG_NAME.match(key):
            problems.append(
                ("tags", f"tag name {key!r} must be 1 to {MAX_TAG_NAME} of A-Z a-z 0-9 _ . : / -")
            )
        elif not isinstance(item, str | int) or isinstance(item, bool):
            problems.append((f"tags.{key}", "must be a string"))
        elif len(str(item)) > MAX_TAG_VALUE or CONTROL.search(str(item)):
            problems.append(
                (f"tags.{key}", f"must be at most {MAX_TAG_VALUE} printable characters")
            )
        else:
            tags[key] = str(item)
    own = sum(1 for key in tags if key.startswith(OWN_PREFIX))
    if len(tags) - own > MAX_TAGS:
        problems.append(("tags", f"at most {MAX_TAGS} tags, got {len(tags) - own}"))
    if own > MAX_OWN_TAGS:
        problems.append(("tags", f"at most {MAX_OWN_TAGS} {OWN_PREFIX}* tags, got {own}"))
    result = tuple(sorted(tags.items()))
    plain = all(key.__class__ is str and item.__class__ is str for key, item in items)
    if items and plain and not problems and len(_TAG_SETS) < _MEMO_LIMIT:
        _TAG_SETS[items] = result
    return result


def derive_event_id(record: Mapping[str, Any]) -> str:
    """A stable id for a row that has none: the hash of its validated content, so re-importing
    the same row finds the same event."""
    digest = hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"sha256:{digest[:32]}"


def _read(
    raw: Mapping[str, Any], problems: FieldProblems
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Each present field through its checker; tag columns and dropped content set aside.

    The common case pays no call: a name already accepted, or a count in range, is taken as is.
    """
    values: dict[str, Any] = {}
    tag_columns: dict[str, Any] = {}
    dropped: list[str] = []
    checks, accepted, minimum = _CHECKS, _ACCEPTED, _COUNT_MINIMUM
    for key, value in raw.items():
        kind = value.__class__
        if kind is str:
            known = accepted.get(key)
            if known is not None and (found := known.get(value)) is not None:
                values[key] = found
                continue
        elif kind is int and (least := minimum.get(key)) is not None and least <= value < _TOO_MANY:
            values[key] = value
            continue
        check = checks.get(key)
        if check is None:
            if isinstance(key, str) and key.startswith("tag.") and len(key) > 4:
                tag_columns[key[4:]] = value
            elif isinstance(key, str) and is_content_field(key):
                dropped.append(key)
            else:
                problems.append((str(key), "is not a field of an event (see FIELDS in the docs)"))
            continue
        if value is None or value == "":
            continue
        checked = check(key, value, problems)
        if checked is not _INVALID:
            values[key] = checked
            known = accepted.get(key)
            if kind is str and known is not None and len(known) < _MEMO_LIMIT:
                known[value] = checked
    return values, tag_columns, dropped


_WIDE = Context(prec=100)


def _whole_digits(raw: Mapping[str, Any], problems: FieldProblems) -> None:
    """A meter client's amounts are kept to the digit or refused: finer than 10^-12 USD is not
    rounded away silently, as an export's binary-float noise is (``money.parse_amount``)."""
    for name in ("cost", "list_cost", "tool_cost"):
        value = raw.get(name)
        if not isinstance(value, str | Decimal) or name in {p[0] for p in problems}:
            continue
        try:
            amount = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            continue
        if amount.is_finite() and amount != amount.quantize(Decimal("1E-12"), context=_WIDE):
            problems.append(
                (name, f"{value!s} has more than 12 decimal places: send it rounded to 10^-12 USD")
            )


def _cross_checks(
    values: dict[str, Any],
    raw: Mapping[str, Any],
    tenant: str,
    source: str,
    problems: FieldProblems,
) -> None:
    """What no single field can tell: required fields, the tenant, the cost basis, defaults."""
    for name in ("provider", "model", "occurred_at"):
        if raw.get(name) in (None, ""):
            problems.append((name, "is required"))
    if values.get("tenant", tenant) != tenant:
        problems.append(
            ("tenant", f"row is for tenant {values['tenant']!r}, importing into {tenant!r}")
        )
    provider = values.get("provider")
    if provider is not None:
        if not _PROVIDER.match(provider.lower()):
            problems.append(("provider", f"{provider!r} must be a lower-case name like openai"))
        values["provider"] = provider.lower()
    currency = values.pop("currency", CURRENCY).upper()
    if currency != CURRENCY:
        problems.append(("currency", f"only {CURRENCY} is supported, got {currency!r}"))
    # A row with a cost and no basis was reported by its source; a row with neither is left to
    # the pricing stage, which prices it from the table or keeps it visibly unpriced.
    cost = values.get("cost")
    basis = values.setdefault("cost_source", "unpriced" if cost is None else "provider")
    if (cost is None) != (basis in UNPRICED_SOURCES) and "cost" not in {p[0] for p in problems}:
        problems.append(("cost", f"cost and cost_source {basis!r} disagree"))
    tool_cost = values.get("tool_cost")
    if tool_cost is not None and (cost is None or not 0 <= tool_cost <= cost):
        problems.append(("tool_cost", "is the part of cost that is tool calls: from 0 to cost"))
    if values.get("reasoning_tokens", 0) > values.get("output_tokens", 0):
        problems.append(("reasoning_tokens", "is part of output_tokens, so cannot exceed it"))
    if source == "meter":
        _whole_digits(raw, problems)
    evidence = "captured" if source == "proxy" else "reported"
    if source.startswith("import:") and source != "import:events":
        evidence = "imported"
    values.setdefault("evidence_status", evidence)
    values.setdefault("source", source)
    values["tenant"] = tenant


def check_row(
    raw: Mapping[str, Any], *, tenant: str, source: str
) -> tuple[dict[str, Any] | None, FieldProblems, tuple[str, ...]]:
    """:func:`validate` up to, not including, building the event: the checked values in the
    field names of :class:`Event` (``event_id`` included) or ``None``, the problems and the
    dropped content fields. The importer adds the cost basis before building the event once."""
    problems: FieldProblems = []
    values, tag_columns, dropped = _read(raw, problems)
    dropped_content = tuple(sorted(dropped)) if dropped else ()
    tag_map = values.get("tags") or {}
    values["tags"] = _tags({**tag_map, **tag_columns}, problems) if tag_map or tag_columns else ()
    _cross_checks(values, raw, tenant, source, problems)
    if problems:
        return None, problems, dropped_content
    if values.get("event_id") is None:
        values.pop("event_id", None)
        values["event_id"] = derive_event_id(Event(event_id="", **values).to_json())
    return values, problems, dropped_content


def validate(raw: Mapping[str, Any], *, tenant: str, source: str) -> Validated:
    """Check one raw row and build the :class:`Event`, dropping content first.

    Args:
        raw: the row as parsed from JSON or CSV (CSV cells are strings; ``""`` means absent).
        tenant: the tenant the row is being recorded for; a row naming another is refused.
        source: how the row entered, e.g. ``import:events`` or ``meter``.
    """
    values, problems, dropped_content = check_row(raw, tenant=tenant, source=source)
    if values is None:
        return Validated(None, problems, dropped_content)
    return Validated(Event.assemble(values), problems, dropped_content)
