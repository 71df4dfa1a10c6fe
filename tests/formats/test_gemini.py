"""Gemini / Vertex responses: thinking billed as output, cached content out of input, streams
counted once, a time required, caller metadata kept, candidates never stored."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p402.ingest.formats import SourceRow
from p402.ingest.formats.gemini import read
from p402.ingest.importer import ImportRejected, import_files
from p402.ledger.store import Ledger
from p402.period import parse_period
from tests.formats.hostile import HOSTILE, check_import, check_read, json_values, mutated, paths_in

DATA = Path(__file__).parent.parent / "data" / "formats" / "gemini"
FORMAT = "gemini"
PERIOD = parse_period("2026-10")
TENANT = "acme"
SECRETS = ("SECRET-PROMPT", "SECRET-COMPLETION")
MILLION = Decimal(1_000_000)
GOOD = ("vertex.jsonl", "ai-studio-wrapped.jsonl", "stream.json")
TOKENS = ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens")


def rows(path: Path) -> list[SourceRow]:
    return list(read(path, None))


def records(path: Path) -> list[dict[str, Any]]:
    found = rows(path)
    assert [row.problems for row in found if row.problems] == []
    return [row.record for row in found if row.record is not None]


def tokens(record: dict[str, Any]) -> tuple[int, ...]:
    return tuple(record[name] for name in TOKENS)


def test_vertex_responses_thinking_cache_and_tool_use() -> None:
    thinking, tools, provisioned = records(DATA / "vertex.jsonl")
    # input = prompt 12000 - cached 8000; output = candidates 400 + thoughts 1200.
    assert tokens(thinking) == (4000, 8000, 1600, 1200)
    assert {key: thinking[key] for key in ("provider", "model", "operation", "requests")} == {
        "provider": "google",
        "model": "gemini-2.5-flash",
        "operation": "chat",
        "requests": 1,
    }
    assert thinking["occurred_at"] == "2026-10-08T13:45:09.008876Z"
    assert thinking["tags"] == {
        "gemini.response_id": "9dBSaKxFwKTr3g_RjJXICg",
        "gemini.traffic_type": "ON_DEMAND",
    }
    # Tool-use prompt tokens are fed back to the model: billed as input (prompt 90 + tool 250).
    assert tokens(tools) == (340, 0, 60, 0)
    # A nanosecond createTime keeps its microseconds.
    assert tools["occurred_at"] == "2026-10-09T07:00:00.123456Z"
    assert provisioned["tags"]["gemini.traffic_type"] == "PROVISIONED_THROUGHPUT"
    assert len({r["event_id"] for r in (thinking, tools, provisioned)}) == 3


def test_wrapped_ai_studio_records_metadata_streams_and_chunks() -> None:
    found = rows(DATA / "ai-studio-wrapped.jsonl")
    assert [(row.line, row.problems) for row in found] == [(1, []), (2, []), (3, []), (5, [])]
    tagged, streamed, chunked, blocked = (row.record for row in found)
    assert tagged is not None and streamed is not None and chunked is not None
    assert blocked is not None
    assert tagged["occurred_at"] == "2026-10-11T08:00:00Z"
    assert {key: tagged.get(key) for key in ("department", "customer", "workflow")} == {
        "department": "Support",
        "customer": "Globex",
        "workflow": "ticket-triage",
    }
    assert tagged["tags"]["ticket"] == "T-4821"
    # A wrapped stream: usage from its last chunk (thinking 150 on top of candidates 80).
    assert tokens(streamed) == (300, 0, 230, 150)
    assert (streamed["occurred_at"], streamed["project"]) == ("2026-10-12T08:00:00Z", "onboarding")
    assert streamed["tags"]["team"] == "growth"
    # Consecutive lines with one responseId are one stream: counted once, from the last line.
    assert tokens(chunked) == (40, 0, 35, 0)
    assert (chunked["occurred_at"], chunked["employee"]) == ("2026-10-12T09:00:00Z", "jane.doe")
    assert tokens(blocked) == (25, 0, 0, 0)
    assert blocked["tags"]["gemini.block_reason"] == "SAFETY"
    assert blocked["outcome"] == "blocked"  # billed for its prompt, but refused: not a success
    assert "outcome" not in chunked


def test_a_candidate_stopped_by_a_safety_filter_is_blocked(tmp_path: Path) -> None:
    response = {
        "candidates": [{"finishReason": "SAFETY", "index": 0}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 0, "totalTokenCount": 12},
        "modelVersion": "gemini-2.5-flash", "createTime": "2026-10-12T10:00:00Z", "responseId": "r-safety",
    }  # fmt: skip
    path = tmp_path / "safety.jsonl"
    path.write_text(json.dumps(response) + "\n", encoding="utf-8")
    ((row),) = rows(path)
    assert row.record is not None
    assert (
        row.record["outcome"] == "blocked"
        and row.record["tags"]["gemini.finish_reason"] == "SAFETY"
    )


def test_a_streamed_array_counts_usage_once() -> None:
    (stream,) = rows(DATA / "stream.json")
    assert (stream.line, stream.path, stream.problems) == (None, None, [])
    assert stream.record is not None
    # 5000 prompt - 4096 cached; 600 candidates + 2500 thoughts.
    assert tokens(stream.record) == (904, 4096, 3100, 2500)
    assert stream.record["occurred_at"] == "2026-10-14T16:20:00.500000Z"


def test_an_array_of_whole_responses_is_split_by_response_id(tmp_path: Path) -> None:
    first, second = (
        json.loads(line) for line in (DATA / "vertex.jsonl").read_text().splitlines()[:2]
    )
    path = tmp_path / "two.json"
    path.write_text(json.dumps([first, second]), encoding="utf-8")
    found = rows(path)
    assert [row.path for row in found] == ["[0]", "[1]"]
    assert [tokens(row.record) for row in found if row.record] == [
        (4000, 8000, 1600, 1200),
        (340, 0, 60, 0),
    ]


def test_a_stream_logged_chunk_by_chunk_is_one_event(tmp_path: Path) -> None:
    chunk: dict[str, Any] = {"modelVersion": "gemini-2.5-flash", "responseId": "long-stream"}
    lines = [
        {"timestamp": "2026-10-16T12:00:00Z", "metadata": {"team": "growth"}, "response": chunk}
    ]
    lines += [
        {
            "response": {
                **chunk,
                "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": n},
            }
        }
        for n in range(1, 3001)
    ]
    lines += [{"response": {**chunk, "candidates": [{"finishReason": "STOP"}]}}]
    path = tmp_path / "chunks.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    (row,) = rows(path)
    assert (row.line, row.problems) == (1, [])
    assert row.record is not None
    assert tokens(row.record) == (70, 0, 3000, 0)
    assert (row.record["occurred_at"], row.record["tags"]["team"]) == (
        "2026-10-16T12:00:00Z",
        "growth",
    )


def test_problems_name_the_provider_field() -> None:
    found = rows(DATA / "problems.jsonl")
    assert all(row.record is None for row in found)
    assert [(row.line, row.problems) for row in found] == [
        (1, [("createTime", "no time: the response has no createTime and no wrapper timestamp")]),
        (
            2,
            [
                ("modelVersion", "is required (or give the wrapper a model)"),
                (
                    "usageMetadata.candidatesTokenCount",
                    "must be a whole number of at least 0, got -1",
                ),
                (
                    "usageMetadata.cachedContentTokenCount",
                    "is part of promptTokenCount, so cannot exceed it",
                ),
            ],
        ),
        (
            3,
            [
                ("timestamp", "'last tuesday' is not a time (unix seconds or RFC 3339)"),
                ("usageMetadata.promptTokenCount", "must be a whole number, got 'ten'"),
            ],
        ),
        (4, [("response", "must be a response object or a non-empty array of response chunks")]),
        (5, [("usageMetadata", "is missing: the response reports no token counts")]),
        (
            6,
            [
                (
                    None,
                    "must be a response, a wrapper {timestamp, response, metadata} or an array of chunks",
                )
            ],
        ),
        (7, [(None, "not valid JSON: Expecting ',' delimiter: line 2 column 1 (char 76)")]),
    ]


def test_import_prices_by_hand_is_idempotent_and_stores_no_content(
    ledger: Ledger, tmp_path: Path
) -> None:
    paths = [DATA / name for name in GOOD]
    first = import_files(ledger, paths, tenant=TENANT, fmt=FORMAT)
    assert (first.rows, first.new, first.unpriced, first.problems) == (8, 8, 0, [])
    stored = {event.event_id: event for event in ledger.stream(TENANT, PERIOD)}
    thinking = next(e for e in stored.values() if e.reasoning_tokens == 1200)
    # gemini-2.5-flash list price (genai-prices google): $0.30/M input, $0.03/M cached input,
    # $2.50/M output (thinking included).
    expected = (4000 * Decimal("0.30") + 8000 * Decimal("0.03") + 1600 * Decimal("2.50")) / MILLION
    assert thinking.cost == expected == Decimal("0.00544")
    million = next(e for e in stored.values() if e.input_tokens == 1_000_000)
    assert million.cost == Decimal("0.30") + Decimal("2.50")
    assert (million.department, million.customer, million.workflow) == (
        "Support",
        "Globex",
        "ticket-triage",
    )
    again = import_files(ledger, paths, tenant=TENANT, fmt=FORMAT)
    assert (again.new, again.duplicates) == (0, 8)
    assert ledger.count(TENANT) == 8
    ledger.close()
    database = b"".join(path.read_bytes() for path in tmp_path.glob("ledger.db*"))
    assert database  # the scan below must have something to scan
    assert not any(secret.encode() in database for secret in SECRETS)


def test_a_response_without_time_rejects_the_import(ledger: Ledger) -> None:
    with pytest.raises(ImportRejected) as caught:
        import_files(
            ledger, [DATA / "vertex.jsonl", DATA / "problems.jsonl"], tenant=TENANT, fmt=FORMAT
        )
    assert ("createTime", 1) in {(problem.field, problem.line) for problem in caught.value.problems}
    assert ledger.count(TENANT) == 0


# Hostile input: random bytes, random JSON in Gemini's own field names, mutated fixtures.

FIELDS = [
    "candidates", "usageMetadata", "modelVersion", "responseId", "createTime", "timestamp",
    "response", "metadata", "labels", "model", "promptTokenCount", "cachedContentTokenCount",
    "candidatesTokenCount", "thoughtsTokenCount", "toolUsePromptTokenCount", "totalTokenCount",
    "trafficType", "promptFeedback", "blockReason", "department",
]  # fmt: skip
JSON = json_values(
    FIELDS,
    ["gemini-2.5-flash", "2026-10-05T14:30:00.123456789Z", "r-1", "1e999999999", ""],
    max_leaves=20,
)
RECORDS = [json.loads(line) for line in (DATA / "ai-studio-wrapped.jsonl").read_text().splitlines()]


@HOSTILE
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    check_read(read, path)


@HOSTILE
@given(st.lists(JSON, min_size=1, max_size=4), st.booleans())
def test_random_json_shapes_never_raise(tmp_path: Path, documents: list[Any], whole: bool) -> None:
    path = tmp_path / "fuzz.jsonl"
    text = json.dumps(documents) if whole else "\n".join(json.dumps(doc) for doc in documents)
    path.write_text(text, encoding="utf-8")
    check_read(read, path)
    check_import(tmp_path, path, tenant=TENANT, fmt=FORMAT)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mutated_records_give_rows_or_problems(tmp_path: Path, data: st.DataObject) -> None:
    record = data.draw(st.sampled_from(RECORDS))
    where = data.draw(st.sampled_from(list(paths_in(record))))
    path = tmp_path / "fuzz.jsonl"
    path.write_text(json.dumps(mutated(record, where, data.draw(JSON))) + "\n", encoding="utf-8")
    check_read(read, path)
    check_import(tmp_path, path, tenant=TENANT, fmt=FORMAT)


def test_deep_nesting_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    (row,) = rows(path)
    assert row.record is None and "nested too deeply" in row.problems[0][1]
