"""Bedrock invocation logs: records read as S3 and CloudWatch deliver them (gzip, CloudWatch
events, export lines), model ids that the price table can price, bodies never stored."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p402.ingest.formats import SourceRow
from p402.ingest.formats.bedrock import model_name, read
from p402.ingest.importer import ImportRejected, import_files
from p402.ledger.store import Ledger
from p402.period import parse_period
from tests.formats.hostile import HOSTILE, check_import, check_read, json_values, mutated, paths_in

DATA = Path(__file__).parent.parent / "data" / "formats" / "bedrock"
FORMAT = "bedrock-logs"
PERIOD = parse_period("2026-10")
TENANT = "acme"
SECRETS = ("SECRET-PROMPT", "SECRET-SYSTEM", "SECRET-COMPLETION", "SECRET-EMBED")
MILLION = Decimal(1_000_000)
TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
GOOD = (
    "invocations.jsonl",
    "invocations.json.gz",
    "cloudwatch-events.jsonl",
    "filter-log-events.json",
)


def rows(path: Path) -> list[SourceRow]:
    return list(read(path, None))


def records(path: Path) -> list[dict[str, Any]]:
    found = rows(path)
    assert [row.problems for row in found if row.problems] == []
    return [row.record for row in found if row.record is not None]


def pick(record: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: record.get(name) for name in names}


def test_s3_records_map_to_uncached_cache_and_output_buckets() -> None:
    first, sonnet, embed, error, opaque = records(DATA / "invocations.jsonl")
    # inputTokenCount excludes cache reads and writes: the buckets are the log's own numbers.
    assert pick(first, "provider", "model", "operation", "requests", *TOKENS) == {
        "provider": "bedrock",
        "model": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "operation": "chat",
        "requests": 1,
        "input_tokens": 1500,
        "cache_read_tokens": 20000,
        "cache_write_tokens": 3000,
        "output_tokens": 500,
    }
    assert pick(
        first, "occurred_at", "outcome", "provider_project_id", "user_id", "department"
    ) == {
        "occurred_at": "2026-10-05T14:30:00Z",
        "outcome": "success",
        "provider_project_id": "123456789012",
        "user_id": "arn:aws:sts::123456789012:assumed-role/BedrockAnalysts/jane.doe@acme.example",
        "department": "Finance",
    }
    assert first["tags"] == {
        "bedrock.model_id": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "bedrock.operation": "Converse",
        "aws.region": "us-east-1",
        "aws.inference_region": "us-west-2",
        "aws.principal": "arn:aws:sts::123456789012:assumed-role/BedrockAnalysts/jane.doe@acme.example",
        "aws.role": "BedrockAnalysts",
        "aws.session": "jane.doe@acme.example",
        "team": "payments",
        "department": "Finance",
        "costCentre": "CC-1234",
    }
    assert first["event_id"].startswith("bedrock-logs:")
    # An inference-profile ARN is priced as the profile it names; the ARN stays in a tag.
    assert sonnet["model"] == "us.anthropic.claude-sonnet-4-20250514-v1:0"
    assert sonnet["tags"]["bedrock.model_id"].startswith("arn:aws:bedrock:us-east-1:123456789012:")
    assert sonnet["tags"]["aws.user"] == "build-bot"
    assert pick(sonnet, *TOKENS) == dict(zip(TOKENS, (48210, 0, 0, 2048), strict=True))
    assert pick(embed, "model", "operation", "input_tokens", "output_tokens") == {
        "model": "amazon.titan-embed-text-v2:0",
        "operation": "embeddings",
        "input_tokens": 812,
        "output_tokens": 0,
    }
    assert pick(error, "outcome", *TOKENS) == {"outcome": "error", **dict.fromkeys(TOKENS, 0)}
    assert error["tags"]["bedrock.error_code"] == "ThrottlingException"
    # An application inference profile hides its model: kept whole, so it shows as unpriced.
    assert opaque["model"].endswith(":application-inference-profile/k2v8xq7m1abc")
    assert len({row["event_id"] for row in (first, sonnet, embed, error, opaque)}) == 5


@pytest.mark.parametrize(
    ("model_id", "model"),
    [
        ("anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0"),
        (
            "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-20250514-v1:0",
            "global.anthropic.claude-sonnet-4-20250514-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123",
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123",
        ),
        ("arn:broken", "arn:broken"),
    ],
)
def test_model_ids_are_normalised_to_what_the_table_prices(model_id: str, model: str) -> None:
    assert model_name(model_id) == model


def test_gzip_cloudwatch_events_export_lines_and_cli_output() -> None:
    gz = records(DATA / "invocations.json.gz")
    assert [pick(r, "occurred_at", *TOKENS) for r in gz] == [
        {
            "occurred_at": "2026-10-20T10:00:00Z",
            **dict(zip(TOKENS, (1_000_000, 0, 0, 1_000_000), strict=True)),
        },
        {
            "occurred_at": "2026-10-20T10:05:00Z",
            **dict(zip(TOKENS, (10, 5000, 0, 20), strict=True)),
        },
    ]
    # A CloudWatch event, an export-to-S3 line, a subscription payload; the health check is
    # skipped.
    event, export_line, subscription = rows(DATA / "cloudwatch-events.jsonl")
    assert (event.line, event.path, export_line.line, export_line.path) == (1, "message", 2, None)
    assert (subscription.line, subscription.path) == (3, "logEvents[0].message")
    assert subscription.record is not None and subscription.record["input_tokens"] == 200
    assert event.record is not None and export_line.record is not None
    assert pick(event.record, "model", "customer", "input_tokens", "output_tokens") == {
        "model": "global.anthropic.claude-sonnet-4-20250514-v1:0",
        "customer": "Globex",
        "input_tokens": 2000,
        "output_tokens": 250,
    }
    assert pick(export_line.record, "model", "occurred_at") == {
        "model": "amazon.nova-pro-v1:0",
        "occurred_at": "2026-10-12T09:31:00Z",
    }
    (cli,) = rows(DATA / "filter-log-events.json")
    assert (cli.line, cli.path) == (None, "events[0].message")
    assert (
        cli.record is not None and cli.record["model"] == "anthropic.claude-3-5-haiku-20241022-v1:0"
    )


def test_progress_counts_the_bytes_on_disk(tmp_path: Path) -> None:
    for name in ("invocations.jsonl", "invocations.json.gz", "filter-log-events.json"):
        seen: list[int] = []
        list(read(DATA / name, seen.append))
        assert sum(seen) == (DATA / name).stat().st_size


def test_problems_name_the_provider_field_and_line() -> None:
    found = [(row.line, row.path, row.problems) for row in rows(DATA / "problems.jsonl")]
    assert all(row.record is None for row in rows(DATA / "problems.jsonl"))
    assert found[0] == (
        1,
        None,
        [
            ("timestamp", "'yesterday' is not a time (unix seconds or RFC 3339)"),
            ("input.inputTokenCount", "must be a whole number of at least 0, got -5"),
            ("output.outputTokenCount", "must be a whole number, got 'many'"),
        ],
    )
    assert found[1] == (
        2,
        None,
        [("schemaType", "must be 'ModelInvocationLog', got 'GuardrailLog'")],
    )
    assert found[2] == (
        3,
        None,
        [("requestId", "is required (it identifies the call)"), ("input", "must be an object")],
    )
    assert found[3][:2] == (4, "message") and "CloudWatch message" in str(found[3][2])
    assert found[4][0] == 5 and "not valid JSON" in str(found[4][2])


def test_a_truncated_or_false_gzip_is_a_problem(tmp_path: Path) -> None:
    whole = (DATA / "invocations.json.gz").read_bytes()
    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    found = rows(truncated)
    assert found and found[-1].record is None and "cannot be read" in found[-1].problems[0][1]
    fake = tmp_path / "fake.json.gz"
    fake.write_bytes(b'{"schemaType": "ModelInvocationLog"}\n')
    assert [row.problems[0][1].startswith("cannot be read") for row in rows(fake)] == [True]


def test_deep_nesting_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    record = (DATA / "invocations.jsonl").read_bytes().splitlines()[0]
    path.write_bytes(b"\xef\xbb\xbf" + record + b"\n" + b"[" * 100_000 + b"\n")
    good, deep = rows(path)
    assert good.record is not None and good.record["input_tokens"] == 1500
    assert (deep.line, deep.problems) == (2, [(None, "not valid JSON: nested too deeply")])


def test_import_prices_by_hand_is_idempotent_and_stores_no_body(
    ledger: Ledger, tmp_path: Path
) -> None:
    paths = [DATA / name for name in GOOD]
    first = import_files(ledger, paths, tenant=TENANT, fmt=FORMAT)
    assert (first.rows, first.new, first.unpriced, first.problems) == (11, 11, 1, [])
    stored = {event.event_id: event for event in ledger.stream(TENANT, PERIOD)}
    haiku = next(e for e in stored.values() if e.cache_write_tokens == 3000)
    # anthropic.claude-3-5-haiku-20241022-v1:0 on Bedrock (genai-prices aws "regional" entry):
    # $0.80/M input, $0.08/M cache read, $1/M cache write, $4/M output.
    expected = (
        1500 * Decimal("0.80") + 20000 * Decimal("0.08") + 3000 * Decimal(1) + 500 * Decimal(4)
    ) / MILLION
    assert haiku.cost == expected == Decimal("0.0078")
    assert haiku.cost_source == "price_table" and haiku.department == "Finance"
    million = next(e for e in stored.values() if e.input_tokens == 1_000_000)
    assert million.cost == Decimal("0.80") + Decimal(4)
    opaque = next(e for e in stored.values() if e.model.startswith("arn:"))
    assert (opaque.cost, opaque.cost_source) == (None, "unpriced")
    again = import_files(ledger, paths, tenant=TENANT, fmt=FORMAT)
    assert (again.new, again.duplicates) == (0, 11)
    assert ledger.count(TENANT) == 11
    ledger.close()
    database = b"".join(path.read_bytes() for path in tmp_path.glob("ledger.db*"))
    assert database  # the scan below must have something to scan
    assert not any(secret.encode() in database for secret in SECRETS)
    assert (
        b"inputBodyJson" not in database and b"amazon-bedrock-logs-permission-check" not in database
    )


def test_a_file_with_problems_imports_nothing(ledger: Ledger) -> None:
    with pytest.raises(ImportRejected) as caught:
        import_files(
            ledger, [DATA / "invocations.jsonl", DATA / "problems.jsonl"], tenant=TENANT, fmt=FORMAT
        )
    assert {problem.field for problem in caught.value.problems} >= {
        "timestamp",
        "schemaType",
        "requestId",
    }
    assert ledger.count(TENANT) == 0


# Hostile input: random bytes, random JSON made of the provider's own field names, mutated fixtures.

FIELDS = [
    "schemaType", "timestamp", "requestId", "modelId", "operation", "accountId", "region",
    "identity", "arn", "input", "output", "inputTokenCount", "cacheReadInputTokenCount",
    "cacheWriteInputTokenCount", "outputTokenCount", "requestMetadata", "errorCode", "message",
    "events", "logEvents", "performanceConfig", "latency", "inferenceRegion",
]  # fmt: skip
JSON = json_values(
    FIELDS,
    [
        "ModelInvocationLog",
        "2026-10-05T14:30:00Z",
        "Converse",
        "arn:aws:sts::1:assumed-role/a/b",
        "1e999999999",
        "",
    ],
    max_leaves=20,
)
RECORD = json.loads((DATA / "invocations.jsonl").read_text().splitlines()[0])


@HOSTILE
@given(st.binary(max_size=300), st.sampled_from(["plain", "gzip", "cut-gzip", "false-gzip"]))
def test_random_bytes_never_raise(tmp_path: Path, data: bytes, how: str) -> None:
    path = tmp_path / ("fuzz.jsonl" if how == "plain" else "fuzz.jsonl.gz")
    packed = gzip.compress(data)
    body = {
        "plain": data,
        "gzip": packed,
        "cut-gzip": packed[: len(packed) // 2],
        "false-gzip": data,
    }
    path.write_bytes(body[how])
    check_read(read, path)


@HOSTILE
@given(st.lists(JSON, min_size=1, max_size=4))
def test_random_json_shapes_never_raise(tmp_path: Path, documents: list[Any]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(doc, default=str) for doc in documents), encoding="utf-8")
    check_read(read, path)
    check_import(tmp_path, path, tenant=TENANT, fmt=FORMAT)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mutated_records_give_rows_or_problems(tmp_path: Path, data: st.DataObject) -> None:
    where = data.draw(st.sampled_from(list(paths_in(RECORD))))
    value = data.draw(JSON)
    path = tmp_path / "fuzz.jsonl"
    path.write_text(json.dumps(mutated(RECORD, where, value)) + "\n", encoding="utf-8")
    check_read(read, path)
    check_import(tmp_path, path, tenant=TENANT, fmt=FORMAT)


GUARDRAIL_BODIES = [
    ({"stopReason": "guardrail_intervened", "usage": {"inputTokens": 70}}, "blocked"),
    ({"amazon-bedrock-guardrailAction": "INTERVENED", "content": []}, "blocked"),
    ([{"type": "message_start"}, {"amazon-bedrock-guardrailAction": "INTERVENED"}], "blocked"),
    ({"amazon-bedrock-guardrailAction": "NONE", "stop_reason": "end_turn"}, "success"),
    ({"stopReason": "end_turn"}, "success"),
    ("not logged as JSON", "success"),
]


@pytest.mark.parametrize(("body", "outcome"), GUARDRAIL_BODIES)
def test_a_guardrail_intervention_is_blocked_not_success(
    tmp_path: Path, body: Any, outcome: str
) -> None:
    # Shapes of the genuine records in tests/data/genuine/bedrock-logs/elastic-invocations.jsonl:
    # Converse's stopReason, InvokeModel's body field, and a logged stream's events.
    record = {
        "schemaType": "ModelInvocationLog",
        "timestamp": "2024-11-21T11:48:13Z",
        "accountId": "891377031307",
        "requestId": "787423d4",
        "modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "input": {"inputTokenCount": 70},
        "output": {"outputBodyJson": body, "outputTokenCount": 209},
    }
    path = tmp_path / "guardrail.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    (row,) = rows(path)
    assert row.problems == []
    assert row.record is not None
    assert (row.record["outcome"], row.record["output_tokens"]) == (outcome, 209)


def test_an_error_code_wins_over_a_guardrail(tmp_path: Path) -> None:
    record = {
        "schemaType": "ModelInvocationLog",
        "timestamp": "2024-11-21T11:48:13Z",
        "requestId": "r-1",
        "modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "errorCode": "ThrottlingException",
        "output": {"outputBodyJson": {"stopReason": "guardrail_intervened"}},
    }
    path = tmp_path / "error.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    (row,) = rows(path)
    assert row.record is not None and row.record["outcome"] == "error"
