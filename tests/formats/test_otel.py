"""OTel GenAI spans (OTLP/JSON): usage spans only, cache taken out of input, deprecated names,
intValue as text, agent roll-ups counted once, and no message attribute ever stored."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p402.ingest.formats import SourceRow
from p402.ingest.formats.otel import read
from p402.ingest.importer import ImportRejected, import_files
from p402.ledger.store import Ledger
from p402.period import parse_period
from tests.formats.hostile import HOSTILE, check_import, check_read, json_values, mutated, paths_in

DATA = Path(__file__).parent.parent / "data" / "formats" / "otel"
FORMAT = "otel"
PERIOD = parse_period("2026-10")
TENANT = "acme"
SECRETS = ("SECRET-PROMPT", "SECRET-COMPLETION", "SECRET-SYSTEM", "SECRET-TOOL")
MILLION = Decimal(1_000_000)
GOOD = ("traces.jsonl", "export.json")
TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def rows(path: Path) -> list[SourceRow]:
    return list(read(path, None))


def tokens(record: dict[str, Any] | None) -> tuple[int, ...]:
    assert record is not None
    return tuple(record[name] for name in TOKENS)


def test_only_usage_spans_become_events_and_agent_rollups_count_once() -> None:
    found = rows(DATA / "traces.jsonl")
    assert all(not row.problems for row in found)
    # Line 1: the HTTP span is skipped. Line 3: the agent span whose trace has model-call spans
    # is skipped (its usage is theirs); the agent alone in its trace comes last, at file end.
    assert [(row.line, row.path) for row in found] == [
        (1, "resourceSpans[0].scopeSpans[0].spans[0]"),
        (2, "resourceSpans[0].scopeSpans[0].spans[0]"),
        (3, "resourceSpans[0].scopeSpans[0].spans[1]"),
        (3, "resourceSpans[0].scopeSpans[0].spans[2]"),
        (3, "resourceSpans[0].scopeSpans[0].spans[3]"),
    ]
    openai, anthropic, bedrock, vertex, agent = (row.record for row in found)
    assert openai is not None and anthropic is not None and agent is not None
    assert bedrock is not None and vertex is not None
    # input_tokens 1200 includes 1000 cache reads.
    assert tokens(openai) == (200, 1000, 0, 300, 0)
    assert {
        key: openai.get(key)
        for key in ("provider", "model", "operation", "service_tier", "outcome")
    } == {
        "provider": "openai",
        "model": "gpt-4o-mini-2024-07-18",
        "operation": "chat",
        "service_tier": "default",
        "outcome": "success",
    }
    assert openai["occurred_at"] == "2026-10-02T10:00:00.123456Z"
    assert (openai["department"], openai["customer"], openai["user_id"]) == (
        "Support",
        "Globex",
        "u-1842",
    )
    assert openai["tags"] == {
        "resource.service.name": "support-bot",
        "resource.service.version": "2.4.1",
        "resource.deployment.environment.name": "prod",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.id": "chatcmpl-AbC123",
        "server.address": "api.openai.com",
        "p402.department": "Support",
        "p402.ticket": "T-4821",
    }
    # Deprecated gen_ai.system and prompt/completion token names; input 50 < cache 4500, so the
    # instrumentation counted input without cache: 50 stays uncached input, and says so.
    assert tokens(anthropic) == (50, 4000, 500, 700, 0)
    assert (anthropic["provider"], anthropic["outcome"], anthropic["workflow"]) == (
        "anthropic",
        "error",
        "literature-review",
    )
    assert anthropic["tags"]["p402.input_excludes_cache"] == "true"
    assert anthropic["tags"]["gen_ai.provider.name"] == "anthropic"
    assert (
        "app.settings" not in anthropic["tags"]
        and "resource.process.command_args" not in anthropic["tags"]
    )
    assert (bedrock["provider"], bedrock["model"]) == (
        "bedrock",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    )
    assert (vertex["provider"], vertex["operation"]) == ("google", "generate_content")
    assert tokens(vertex) == (800, 0, 0, 900, 600)
    assert (agent["provider"], agent["operation"], agent["model"]) == (
        "azure",
        "invoke_agent",
        "gpt-4o-mini",
    )
    assert len({row.record["event_id"] for row in found if row.record}) == 5


def test_one_export_request_per_file() -> None:
    (row,) = rows(DATA / "export.json")
    assert (row.line, row.path, row.problems) == (
        None,
        "resourceSpans[0].scopeSpans[0].spans[0]",
        [],
    )
    assert row.record is not None
    assert tokens(row.record) == (1_000_000, 0, 0, 1_000_000, 0)
    assert (row.record["project"], row.record["outcome"]) == ("invoice-ocr", "success")


def test_json_lines_with_a_long_first_export(tmp_path: Path) -> None:
    first, _, third = (DATA / "traces.jsonl").read_text().splitlines()
    batch = json.loads(first)
    spans = batch["resourceSpans"][0]["scopeSpans"][1]["spans"]
    spans.extend({**spans[0], "spanId": f"{n:016x}"} for n in range(2000))  # HTTP spans: no usage
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(batch) + "\n" + third + "\n", encoding="utf-8")
    assert path.stat().st_size > 1 << 17
    seen: list[int] = []
    found = list(read(path, seen.append))
    assert [(row.line, row.problems) for row in found] == [(1, []), (2, []), (2, []), (2, [])]
    assert sum(seen) == path.stat().st_size


def test_problems_name_the_attribute_and_span() -> None:
    found = rows(DATA / "problems.jsonl")
    assert all(row.record is None for row in found)
    assert [(row.line, row.path, row.problems) for row in found] == [
        (
            1,
            "resourceSpans[0].scopeSpans[0].spans[0]",
            [
                ("traceId", "is required (it identifies the call)"),
                ("startTimeUnixNano", "'yesterday' is not a time in nanoseconds since 1970"),
                ("gen_ai.response.model", "is required (or gen_ai.request.model)"),
            ],
        ),
        (
            1,
            "resourceSpans[0].scopeSpans[0].spans[1]",
            [
                ("gen_ai.usage.input_tokens", "must be a whole number, got 'ten'"),
                (
                    "gen_ai.usage.reasoning.output_tokens",
                    "is part of output_tokens, so cannot exceed it",
                ),
            ],
        ),
        (1, "resourceSpans[0].scopeSpans[0].spans[2]", [(None, "a span must be an object")]),
        (2, None, [(None, 'must be an OTLP/JSON traces export {"resourceSpans": [...]}')]),
        (
            3,
            None,
            [(None, "not valid JSON: Invalid control character at: line 1 column 58 (char 57)")],
        ),
    ]


def test_import_prices_by_hand_is_idempotent_and_stores_no_content(
    ledger: Ledger, tmp_path: Path
) -> None:
    paths = [DATA / name for name in GOOD]
    first = import_files(ledger, paths, tenant=TENANT, fmt=FORMAT)
    assert (first.rows, first.new, first.unpriced, first.problems) == (6, 6, 0, [])
    stored = {event.event_id: event for event in ledger.stream(TENANT, PERIOD)}
    cached = next(e for e in stored.values() if e.provider == "openai" and e.cache_read_tokens)
    # gpt-4o-mini list price (genai-prices openai): $0.15/M input, $0.075/M cached input,
    # $0.60/M output.
    expected = (200 * Decimal("0.15") + 1000 * Decimal("0.075") + 300 * Decimal("0.60")) / MILLION
    assert cached.cost == expected == Decimal("0.000285")
    million = next(e for e in stored.values() if e.input_tokens == 1_000_000)
    assert million.cost == Decimal("0.15") + Decimal("0.60")
    again = import_files(ledger, paths, tenant=TENANT, fmt=FORMAT)
    assert (again.new, again.duplicates) == (0, 6)
    assert ledger.count(TENANT) == 6
    ledger.close()
    database = b"".join(path.read_bytes() for path in tmp_path.glob("ledger.db*"))
    assert database  # the scan below must have something to scan
    assert not any(secret.encode() in database for secret in SECRETS)
    assert b"gen_ai.input.messages" not in database


def test_a_bad_span_rejects_the_whole_import(ledger: Ledger) -> None:
    with pytest.raises(ImportRejected) as caught:
        import_files(
            ledger, [DATA / "traces.jsonl", DATA / "problems.jsonl"], tenant=TENANT, fmt=FORMAT
        )
    assert ("startTimeUnixNano", "resourceSpans[0].scopeSpans[0].spans[0]") in {
        (problem.field, problem.path) for problem in caught.value.problems
    }
    assert ledger.count(TENANT) == 0


# Hostile input: random bytes, random OTLP-like JSON, mutated fixtures.

FIELDS = [
    "resourceSpans", "resource", "attributes", "scopeSpans", "spans", "key", "value",
    "stringValue", "intValue", "doubleValue", "boolValue", "arrayValue", "kvlistValue", "values",
    "traceId", "spanId", "startTimeUnixNano", "status", "code",
]  # fmt: skip
KEYS = [
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.provider.name",
    "gen_ai.request.model", "gen_ai.operation.name", "gen_ai.usage.cache_read.input_tokens",
]  # fmt: skip
JSON = json_values(
    FIELDS,
    [*KEYS, "invoke_agent", "1791000000000000000", "99999999999999999999999", "1e999999999"],
    max_leaves=25,
)
DOCUMENTS = [json.loads(line) for line in (DATA / "traces.jsonl").read_text().splitlines()]


@HOSTILE
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    check_read(read, path)


@HOSTILE
@given(st.lists(JSON, min_size=1, max_size=3))
def test_random_json_shapes_never_raise(tmp_path: Path, documents: list[Any]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(doc) for doc in documents), encoding="utf-8")
    check_read(read, path)
    check_import(tmp_path, path, tenant=TENANT, fmt=FORMAT)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mutated_exports_give_rows_or_problems(tmp_path: Path, data: st.DataObject) -> None:
    document = data.draw(st.sampled_from(DOCUMENTS))
    where = data.draw(st.sampled_from(list(paths_in(document))))
    path = tmp_path / "fuzz.jsonl"
    path.write_text(json.dumps(mutated(document, where, data.draw(JSON))) + "\n", encoding="utf-8")
    check_read(read, path)
    check_import(tmp_path, path, tenant=TENANT, fmt=FORMAT)
