"""The canonical event: every entry point's gate. Bad values are named; content never passes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from p402.ingest.validation import validate
from p402.ledger.events import FIELDS, is_content_field

GOOD: dict[str, Any] = {
    "event_id": "e-1",
    "occurred_at": "2026-10-01T12:00:00+02:00",
    "provider": "OpenAI",
    "model": "gpt-4o",
    "input_tokens": 100,
    "output_tokens": 20,
}


def problems(**changes: Any) -> dict[str | None, str]:
    checked = validate({**GOOD, **changes}, tenant="acme", source="import:events")
    assert checked.event is None
    return dict(checked.problems)


def test_a_good_row_becomes_an_event_in_utc() -> None:
    checked = validate(GOOD, tenant="acme", source="import:events")
    assert checked.problems == []
    event = checked.event
    assert event is not None
    assert event.provider == "openai"
    assert event.to_json()["occurred_at"] == "2026-10-01T10:00:00Z"
    assert event.cost_source == "unpriced"
    assert list(event.to_json()) == list(FIELDS)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"occurred_at": "yesterday"}, "occurred_at", "not an RFC 3339"),
        ({"occurred_at": "2026-10-01T12:00:00"}, "occurred_at", "no UTC offset"),
        ({"occurred_at": "1999-12-31T00:00:00Z"}, "occurred_at", "outside"),
        ({"input_tokens": -1}, "input_tokens", "at least 0"),
        ({"input_tokens": 2**63 - 1}, "input_tokens", "less than 2**53"),
        ({"output_tokens": 2**53}, "output_tokens", "less than 2**53"),
        ({"input_tokens": 1.5}, "input_tokens", "whole number"),
        ({"input_tokens": "ten"}, "input_tokens", "whole number"),
        ({"requests": 0}, "requests", "at least 1"),
        ({"model": ""}, "model", "required"),
        ({"provider": "Open AI!"}, "provider", "lower-case name"),
        ({"cost": 0.25}, "cost", "binary float"),
        ({"cost": "-1"}, "cost", "between 0"),
        ({"cost": "1e20"}, "cost", "too large"),
        ({"currency": "EUR"}, "currency", "only USD"),
        ({"cost_source": "guess"}, "cost_source", "must be one of"),
        ({"cost_source": "provider"}, "cost", "disagree"),
        ({"policy_decision": "maybe"}, "policy_decision", "allow, deny, flag"),
        ({"reasoning_tokens": 21}, "reasoning_tokens", "cannot exceed"),
        ({"tenant": "globex"}, "tenant", "importing into 'acme'"),
        ({"departmnet": "Sales"}, "departmnet", "not a field"),
        ({"department": "x" * 201}, "department", "1 to 200"),
        ({"department": "line\nbreak"}, "department", "printable"),
        ({"batch": "perhaps"}, "batch", "true or false"),
        ({"tags": {"team": ["a"]}}, "tags.team", "string"),
    ],
)
def test_bad_values_are_named_with_a_reason(
    changes: dict[str, Any], field: str, message: str
) -> None:
    found = problems(**changes)
    assert field in found, found
    assert message in found[field]


def test_every_problem_of_a_row_is_reported_not_just_the_first() -> None:
    found = problems(input_tokens=-1, output_tokens=-2, model="", occurred_at="soon")
    assert {"input_tokens", "output_tokens", "model", "occurred_at"} <= set(found)


@pytest.mark.parametrize(
    "name", ["prompt", "messages", "completion", "response", "content", "input", "output", "system_prompt",
             "request_body", "inputBodyJson", "choices"],
)  # fmt: skip
def test_content_is_dropped_not_stored(name: str) -> None:
    secret = "TOP-SECRET-PROMPT-TEXT"
    checked = validate(
        {**GOOD, name: [{"role": "user", "content": secret}]}, tenant="acme", source="meter"
    )
    assert checked.event is not None
    assert name in checked.dropped_content
    assert secret not in repr(checked.event)
    assert is_content_field(name)


def test_content_hidden_in_tags_is_dropped() -> None:
    checked = validate({**GOOD, "tags": {"prompt": "secret", "team": "a"}, "tag.messages": "x"}, tenant="acme",
                       source="meter")  # fmt: skip
    assert checked.event is not None
    assert checked.event.tags == (("team", "a"),)


def test_csv_strings_are_read_as_typed_values() -> None:
    row = {
        **{key: str(value) for key, value in GOOD.items()},
        "cost": "0.0125",
        "batch": "TRUE",
        "department": "",
    }
    checked = validate(row, tenant="acme", source="import:events")
    assert checked.event is not None
    assert checked.event.cost == Decimal("0.0125")
    assert checked.event.cost_source == "provider"
    assert checked.event.batch is True
    assert checked.event.department is None


def test_a_row_without_an_id_gets_a_stable_one() -> None:
    row = {key: value for key, value in GOOD.items() if key != "event_id"}
    first = validate(row, tenant="acme", source="import:events").event
    again = validate(dict(row), tenant="acme", source="import:events").event
    other = validate({**row, "input_tokens": 101}, tenant="acme", source="import:events").event
    assert first is not None and again is not None and other is not None
    assert first.event_id == again.event_id != other.event_id
    assert first.event_id.startswith("sha256:")
