"""OpenRouter generation records: native token counts split into non-overlapping buckets, the
charged cost kept exactly, BYOK and cancelled generations, bad records named."""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p402.ingest.formats import SourceRow, get_format
from p402.ingest.importer import ImportRejected, import_files
from p402.ledger.events import Event
from p402.ledger.store import Ledger
from p402.period import parse_period

DATA = Path(__file__).parent.parent / "data" / "formats" / "openrouter"
PERIOD = parse_period("2026-10")
TENANT = "acme"
MILLION = Decimal(1_000_000)


def read(path: Path) -> list[SourceRow]:
    return list(get_format("openrouter").read(path, None))


def records(path: Path) -> list[dict[str, Any]]:
    rows = read(path)
    assert [row.problems for row in rows if row.problems] == []
    return [row.record for row in rows if row.record is not None]


def generation(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "gen-test", "total_cost": 0.001, "created_at": "2026-10-05T10:00:00Z",
        "model": "openai/gpt-4o-mini", "native_tokens_prompt": 100, "native_tokens_completion": 10,
        "native_tokens_reasoning": 0, "native_tokens_cached": 0, "is_byok": False, "cancelled": False,
    }  # fmt: skip
    data.update(fields)
    return {"data": data}


def write_lines(path: Path, *documents: Any) -> Path:
    path.write_text(
        "".join(json.dumps(document) + "\n" for document in documents), encoding="utf-8"
    )
    return path


def stored(ledger: Ledger) -> dict[str, Event]:
    return {event.event_id: event for event in ledger.stream(TENANT, PERIOD)}


def test_generation_records_as_json_lines() -> None:
    rows = [row for row in read(DATA / "generations.jsonl") if row.record]
    assert [(row.line, row.path) for row in rows] == [(1, "data"), (3, "data"), (4, "data")]
    plain, byok, cancelled = (row.record for row in rows if row.record)
    assert {key: value for key, value in plain.items() if key != "event_id"} == {
        "occurred_at": "2026-10-05T14:03:11.433273Z",
        "provider": "openrouter",
        "model": "anthropic/claude-sonnet-4.5",
        "requests": 1,
        "input_tokens": 4000,  # native_tokens_prompt 12,000 includes the 8,000 cached
        "cache_read_tokens": 8000,
        "output_tokens": 1500,  # native_tokens_completion, reasoning included
        "reasoning_tokens": 600,
        "cost": Decimal("0.0369"),  # total_cost, read from the JSON digits exactly
        "cost_source": "provider",
        "user_id": "user-123",  # external_user: the caller's end user
        "outcome": "success",
        "tags": {
            "upstream_provider": "Anthropic",
            "external_user": "user-123",
            "app_id": "12345",
            "api_type": "completions",
            "finish_reason": "stop",
            "cache_discount": "0.0216",
        },
    }
    # BYOK: total_cost is OpenRouter's fee; the provider's own charge stays a tag.
    assert byok["cost"] == Decimal("0.000625")
    assert byok["tags"]["byok"] == "true" and byok["tags"]["byok_upstream_cost"] == "0.0125"
    assert byok["service_tier"] == "default" and "user_id" not in byok
    # Cancelled: still billed for what was generated, counted with the errors.
    assert cancelled["outcome"] == "error" and cancelled["tags"]["cancelled"] == "true"
    assert cancelled["cost"] == Decimal("0.0009")
    assert plain["event_id"] == "openrouter:" + plain["event_id"].split(":")[1]
    assert len({plain["event_id"], byok["event_id"], cancelled["event_id"]}) == 3


def test_progress_counts_every_byte() -> None:
    seen: list[int] = []
    path = DATA / "generations.jsonl"
    list(get_format("openrouter").read(path, seen.append))
    assert sum(seen) == path.stat().st_size


def test_an_array_of_bare_and_wrapped_records() -> None:
    bare, wrapped = read(DATA / "generations_array.json")
    assert (bare.path, wrapped.path) == ("[0]", "[1].data")
    assert (
        bare.record == records(DATA / "generations.jsonl")[0]
    )  # the same generation, the same row
    assert wrapped.record is not None
    assert "cost" not in wrapped.record  # total_cost null: left to the pricing stage
    # No native counts: the normalized ones are used, and said.
    assert (wrapped.record["input_tokens"], wrapped.record["output_tokens"]) == (1_000_000, 20_000)
    assert wrapped.record["tags"]["tokens"] == "normalized"


def test_import_keeps_charged_costs_and_prices_the_rest(ledger: Ledger) -> None:
    paths = [DATA / "generations.jsonl", DATA / "generations_array.json"]
    first = import_files(ledger, paths, tenant=TENANT, fmt="openrouter")
    # The array repeats the first generation: one id, stored once.
    assert (first.rows, first.new, first.duplicates, first.skipped) == (5, 4, 1, 0)
    events = stored(ledger)
    plain = next(e for e in events.values() if e.reasoning_tokens == 600)
    # OpenRouter charges Anthropic's list price for claude-sonnet-4.5: $3/M uncached input,
    # $0.30/M cache read, $15/M output. The charged cost equals it to the digit.
    assert plain.cost == (4000 * Decimal(3) + 8000 * Decimal("0.30") + 1500 * Decimal(15)) / MILLION
    assert plain.cost_source == "provider"
    unpriced = next(e for e in events.values() if e.input_tokens == 1_000_000)
    # No total_cost: priced from the table. One request of 1M prompt tokens is past 200k, so the
    # long-context rates apply: $6/M input, $22.50/M output.
    assert (
        unpriced.cost
        == (1_000_000 * Decimal(6) + 20_000 * Decimal("22.5")) / MILLION
        == Decimal("6.45")
    )
    assert unpriced.cost_source == "price_table"
    assert (
        unpriced.price_ref is not None
        and "openrouter/anthropic/claude-sonnet-4.5" in unpriced.price_ref
    )
    again = import_files(ledger, paths, tenant=TENANT, fmt="openrouter")
    assert (again.new, again.duplicates) == (0, 5)
    assert ledger.count(TENANT) == 4


def test_float_noise_in_total_cost_is_rounded_once(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "g.jsonl", generation(total_cost=1.2345678901234567e-05))
    (row,) = read(path)
    assert row.record is not None
    assert row.record["cost"] == Decimal("0.000012345679")  # 10^-12 USD, half up (p402.money)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"native_tokens_cached": 500}, "native_tokens_cached", "exceeds native_tokens_prompt"),
        ({"id": None}, "id", "is required"),
        ({"model": ""}, "model", "is required"),
        ({"created_at": "2026-10-05 10:00"}, "created_at", "no UTC offset"),
        ({"total_cost": -0.5}, "total_cost", "negative"),
        ({"total_cost": "free"}, "total_cost", "must be a number"),
        ({"total_cost": 1e20}, "total_cost", "more than one generation can cost"),
        ({"native_tokens_prompt": -1}, "native_tokens_prompt", "at least 0"),
        ({"native_tokens_prompt": "1e99999999"}, "native_tokens_prompt", "whole number"),
        ({"is_byok": "yes"}, "is_byok", "true, false or null"),
        ({"app_id": {"id": 1}}, "app_id", "must be a number"),
    ],
)
def test_bad_records_are_named(
    tmp_path: Path, fields: dict[str, Any], field: str, message: str
) -> None:
    path = write_lines(
        tmp_path / "g.jsonl", generation(), generation(**{"id": "gen-bad", **fields})
    )
    rows = read(path)
    assert rows[0].record is not None
    ((name, text),) = rows[1].problems
    assert (rows[1].line, rows[1].path, name) == (2, "data", field)
    assert message in text


def test_wrong_shapes_are_named(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "g.jsonl", {"data": [1]}, [1, generation()], "text")
    path.write_text(path.read_text(encoding="utf-8") + '{"data": {"id": "gen-\n', encoding="utf-8")
    found = [(row.line, row.path, row.problems[0][1][:24]) for row in read(path) if row.problems]
    assert found == [
        (1, None, 'must be a generation: {"'),
        (2, "[0]", 'must be a generation: {"'),
        (3, None, 'must be a generation: {"'),
        (4, None, "not valid JSON: Invalid "),
    ]


# --- hostile input -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    *sorted(generation()["data"]),
    "upstream_inference_cost",
    "cache_discount",
    "tokens_prompt",
]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "g.jsonl"
        path.write_bytes(data)
        assert all(row.record is not None or row.problems for row in read(path))


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json_shapes_never_raise(document: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = write_lines(Path(folder) / "g.jsonl", document)
        assert all(row.record is not None or row.problems for row in read(path))


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4))
def test_mutated_records_import_or_are_rejected_whole(changes: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = write_lines(
            Path(folder) / "g.jsonl", generation(), generation(**{"id": "gen-2", **changes})
        )
        assert all(row.record is not None or row.problems for row in read(path))
        store = Ledger.open(str(Path(folder) / "l.db"))
        try:
            import_files(store, [path], tenant=TENANT, fmt="openrouter")
        except ImportRejected:
            assert store.count(TENANT) == 0
        finally:
            store.close()


def test_more_reasoning_than_completion_is_odd_and_kept_with_its_charge(
    tmp_path: Path, ledger: Ledger
) -> None:
    """OpenRouter really reports generations with more reasoning than completion tokens: the
    record is kept, with its charge, and marked; the reported count stays as a tag."""
    path = write_lines(tmp_path / "g.jsonl", generation(native_tokens_reasoning=11))
    summary = import_files(ledger, [path], tenant=TENANT, fmt="openrouter")
    assert (summary.new, summary.skipped, summary.records[0].odd) == (1, 0, 1)
    (event,) = stored(ledger).values()
    assert event.quality == "reasoning_exceeds_output" and event.cost == Decimal("0.001")
    assert (event.output_tokens, event.reasoning_tokens) == (10, 10)
    assert dict(event.tags)["native_tokens_reasoning"] == "11"
