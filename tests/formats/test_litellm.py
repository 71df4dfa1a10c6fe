"""LiteLLM spend logs: CSV with JSON in its cells and JSON exports read column by column; the
recorded spend kept, an unknown price priced from the table; content columns never read."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p402.ingest.formats import SourceRow, get_format, litellm
from p402.ingest.importer import ImportRejected, import_files
from p402.ledger.events import Event
from p402.ledger.store import Ledger
from p402.period import parse_period

DATA = Path(__file__).parent.parent / "data" / "formats" / "litellm"
PERIOD = parse_period("2026-10")
TENANT = "acme"
SECRET = "SECRET-PROMPT-7f3a"  # planted in messages, response, proxy_server_request and metadata
MILLION = Decimal(1_000_000)
CONTENT = ("messages", "response", "proxy_server_request")


def read(path: Path) -> list[SourceRow]:
    return list(get_format("litellm").read(path, None))


def records(path: Path) -> list[dict[str, Any]]:
    rows = read(path)
    assert [row.problems for row in rows if row.problems] == []
    return [row.record for row in rows if row.record is not None]


def csv_rows() -> list[dict[str, str]]:
    with (DATA / "spend_logs.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def stored(ledger: Ledger) -> dict[str, Event]:
    return {event.event_id: event for event in ledger.stream(TENANT, PERIOD)}


def test_csv_export_with_json_in_its_cells() -> None:
    rows = read(DATA / "spend_logs.csv")
    assert [row.line for row in rows] == [2, 3, 4, 5]
    anthropic, failed, gemini, cache_hit = (row.record for row in rows if row.record)
    assert {key: value for key, value in anthropic.items() if key != "event_id"} == {
        "occurred_at": "2026-10-05T14:03:11.123000Z",  # Prisma's timestamp(3) is UTC
        "provider": "anthropic",
        "model": "claude-sonnet-4-5-20250929",
        "operation": "chat",
        "requests": 1,
        # prompt_tokens 10,000 includes 5,000 cache reads and 3,000 cache writes (1,000 5-minute,
        # 2,000 1-hour), from metadata.usage_object.
        "input_tokens": 2000,
        "cache_read_tokens": 5000,
        "cache_write_tokens": 1000,
        "cache_write_1h_tokens": 2000,
        "output_tokens": 800,
        "reasoning_tokens": 300,
        "cost": Decimal("0.03525"),
        "cost_source": "provider",
        "api_key_id": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
        "user_id": "alice@acme.example",
        "outcome": "success",
        "tags": {
            "feature": "ticket-summary",  # spend_logs_metadata; its "prompt" key is content, dropped
            "request_tag.team": "support",
            "request_tag.prod": "true",  # the User-Agent request tag is left out
            "team_id": "team-support",
            "team_alias": "Support",
            "key_alias": "support-bot",
            "end_user": "cust_42",
            "model_group": "claude-sonnet",
        },
    }
    assert anthropic["event_id"] != failed["event_id"]
    assert (failed["outcome"], failed["cost"], failed["output_tokens"]) == ("error", Decimal(0), 0)
    # spend 0.0 with tokens and no cache hit: LiteLLM did not know the price, so no cost is taken.
    assert (
        "cost" not in gemini
        and gemini["model"] == "gemini-2.5-flash"
        and gemini["provider"] == "google"
    )
    assert gemini["tags"]["department"] == "R&D" and gemini["tags"]["organization_id"] == "org-acme"
    # A LiteLLM cache hit: no provider call, really free.
    assert cache_hit["cost"] == Decimal(0) and cache_hit["tags"]["cache_hit"] == "true"


@pytest.mark.parametrize("name", ["spend_logs.csv", "spend_logs.json"])
def test_progress_counts_every_byte(name: str) -> None:
    seen: list[int] = []
    list(get_format("litellm").read(DATA / name, seen.append))
    assert sum(seen) == (DATA / name).stat().st_size


def test_json_array_lines_and_api_pages(tmp_path: Path) -> None:
    bedrock, azure = records(DATA / "spend_logs.json")
    assert (bedrock["provider"], bedrock["model"], bedrock["cost"]) == (
        "bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", Decimal("0.0024"),
    )  # fmt: skip
    assert bedrock["tags"]["workflow"] == "incident-triage"
    # metadata and request_tags given as JSON text inside JSON are read the same.
    assert (azure["provider"], azure["model"], azure["operation"]) == (
        "azure",
        "text-embedding-3-small",
        "embeddings",
    )
    assert azure["tags"]["request_tag.team"] == "ops" and azure["cost"] == Decimal("0.0000026")
    rows = json.loads((DATA / "spend_logs.json").read_text(encoding="utf-8"))
    lines = tmp_path / "logs.jsonl"
    lines.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert records(lines) == [bedrock, azure]
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"data": rows, "total": 2, "page": 1}), encoding="utf-8")
    assert [row.path for row in read(page)] == ["data[0]", "data[1]"]
    assert records(page) == [bedrock, azure]


def test_import_prices_by_hand_and_reimport_is_a_no_op(ledger: Ledger) -> None:
    paths = [DATA / "spend_logs.csv", DATA / "spend_logs.json"]
    first = import_files(ledger, paths, tenant=TENANT, fmt="litellm")
    assert (first.rows, first.new, first.skipped) == (6, 6, 0)
    events = stored(ledger)
    anthropic = next(e for e in events.values() if e.reasoning_tokens == 300)
    # The recorded spend is kept, and is claude-sonnet-4-5's list price: $3/M input, $0.30/M
    # cache read, $3.75/M 5-minute write, $6/M 1-hour write, $15/M output.
    by_hand = (2000 * Decimal(3) + 5000 * Decimal("0.30") + 1000 * Decimal("3.75") + 2000 * Decimal(6)
               + 800 * Decimal(15)) / MILLION  # fmt: skip
    assert anthropic.cost == by_hand == Decimal("0.03525") and anthropic.cost_source == "provider"
    gemini = next(e for e in events.values() if e.model == "gemini-2.5-flash")
    # No usable spend: priced from the table, gemini-2.5-flash at $0.30/M input and $2.50/M
    # output (thinking included in output).
    assert (
        gemini.cost
        == (200_000 * Decimal("0.30") + 4000 * Decimal("2.50")) / MILLION
        == Decimal("0.07")
    )
    assert gemini.cost_source == "price_table"
    failed = next(e for e in events.values() if e.outcome == "error")
    assert failed.model == "gpt-4o-mini" and failed.cost == 0
    again = import_files(ledger, paths, tenant=TENANT, fmt="litellm")
    assert (again.new, again.duplicates) == (0, 6)
    assert ledger.count(TENANT) == 6


def test_content_is_never_read_nor_stored(tmp_path: Path, ledger: Ledger) -> None:
    assert SECRET in (DATA / "spend_logs.csv").read_text(encoding="utf-8")
    for path in (DATA / "spend_logs.csv", DATA / "spend_logs.json"):
        assert SECRET not in repr(read(path))
    import_files(
        ledger, [DATA / "spend_logs.csv", DATA / "spend_logs.json"], tenant=TENANT, fmt="litellm"
    )
    ledger.close()
    files = list(tmp_path.glob("ledger.db*"))
    assert files  # the scan below must have something to scan
    for found in files:
        assert SECRET.encode() not in found.read_bytes()


class Guarded(dict[str, Any]):
    """A row that fails the test if a content column is looked at."""

    def __getitem__(self, key: str) -> Any:
        assert key not in CONTENT, f"{key} was read"
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        assert key not in CONTENT, f"{key} was read"
        return super().get(key, default)


def test_content_columns_are_not_even_looked_at() -> None:
    for row in json.loads((DATA / "spend_logs.json").read_text(encoding="utf-8")):
        guarded = Guarded(row)
        guarded["metadata"] = (
            Guarded(row["metadata"]) if isinstance(row["metadata"], dict) else row["metadata"]
        )
        source = litellm._row(1, None, guarded)
        assert source.record is not None and source.problems == []


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"prompt_tokens": "4000"},
            "prompt_tokens",
            "less than the cache reads 5000 and writes 3000",
        ),
        ({"completion_tokens": "200"}, "completion_tokens", "less than its reasoning tokens 300"),
        ({"spend": "-0.01"}, "spend", "between 0 and"),
        ({"spend": "n/a"}, "spend", "must be a number"),
        ({"startTime": "yesterday"}, "startTime", "is not a time"),
        ({"startTime": ""}, "startTime", "is required"),
        ({"request_id": ""}, "request_id", "is required"),
        (
            {"custom_llm_provider": "", "api_base": "", "model": "my-model"},
            "custom_llm_provider",
            "names a provider",
        ),
        ({"model": "", "spend": ""}, "model", "is required"),
        ({"request_tags": "{}"}, "request_tags", "must be a JSON list"),
        ({"prompt_tokens": "1e999999999"}, "prompt_tokens", "whole number"),
    ],
)
def test_bad_cells_are_named(
    tmp_path: Path, change: dict[str, str], field: str, message: str
) -> None:
    rows = csv_rows()[:1]
    rows.append({**rows[0], "request_id": "chatcmpl-second", **change})
    found = read(write_csv(tmp_path / "logs.csv", rows))
    assert found[0].record is not None
    ((name, text),) = found[1].problems
    assert (found[1].line, name) == (3, field)
    assert message in text


def test_float_noise_in_spend_is_rounded_once_to_the_ledger_unit(
    tmp_path: Path, ledger: Ledger
) -> None:
    rows = csv_rows()[:2]
    rows[0]["spend"] = "0.018000000000000002"  # LiteLLM adds prices in binary floating point
    rows[1] = {**rows[0], "request_id": "chatcmpl-second", "spend": "1.2345678901234567e-05"}
    path = write_csv(tmp_path / "logs.csv", rows)
    assert [row.record["cost"] for row in read(path) if row.record] == [
        Decimal("0.018"),
        Decimal("0.000012345679"),  # 10^-12 USD, half up (p402.money.ROUNDING)
    ]
    assert import_files(ledger, [path], tenant=TENANT, fmt="litellm").new == 2


def test_broken_metadata_is_named_without_quoting_it(tmp_path: Path) -> None:
    rows = csv_rows()[:1]
    rows[0]["metadata"] = rows[0]["metadata"][:-40]  # cut: the proxied request is in there
    ((name, text),) = read(write_csv(tmp_path / "logs.csv", rows))[0].problems
    assert (name, text) == ("metadata", "is not valid JSON")


def test_a_huge_messages_cell_is_skipped_not_fatal(tmp_path: Path) -> None:
    limit = csv.field_size_limit()
    rows = csv_rows()[:1]
    rows[0]["messages"] = json.dumps([{"role": "user", "content": SECRET * 20_000}])  # 360 kB
    (row,) = read(write_csv(tmp_path / "logs.csv", rows))
    assert row.record is not None and SECRET not in repr(row)
    assert csv.field_size_limit() == limit  # raised only while reading


def test_more_cells_than_the_header_and_missing_columns(tmp_path: Path) -> None:
    rows = csv_rows()[:1]
    path = write_csv(tmp_path / "logs.csv", rows)
    path.write_text(
        path.read_text(encoding="utf-8").rstrip("\r\n") + ",extra\r\n", encoding="utf-8"
    )
    ((row),) = read(path)
    assert (row.line, row.problems) == (2, [(None, "has more cells than the header")])
    path.write_text("request_id,spend,model\nr1,0.1,gpt-4o\n", encoding="utf-8")
    ((row),) = read(path)
    assert (row.line, [name for name, _ in row.problems]) == (
        1,
        ["startTime", "prompt_tokens", "completion_tokens"],
    )


def test_a_failed_rows_problems_reject_the_whole_import(tmp_path: Path, ledger: Ledger) -> None:
    rows = csv_rows()
    rows[2] = {**rows[2], "spend": "-1"}
    with pytest.raises(ImportRejected) as caught:
        import_files(ledger, [write_csv(tmp_path / "logs.csv", rows)], tenant=TENANT, fmt="litellm")
    ((problem),) = caught.value.problems
    assert (problem.line, problem.field) == (4, "spend")
    assert ledger.count(TENANT) == 0


# --- hostile input -------------------------------------------------------------------------------

COLUMNS = sorted(csv_rows()[0])
cells = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["", "-1", "1e400", "NaN", "{", "[]", '{"usage_object": 5}', "2026-10-05", "True"]
    ),
)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from(["x.csv", "x.json"]))
def test_random_bytes_never_raise(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        assert all(row.record is not None or row.problems for row in read(path))


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(COLUMNS), inner, max_size=6)
        ),
        max_leaves=20,
    )
)
def test_random_json_shapes_never_raise(document: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        assert all(row.record is not None or row.problems for row in read(path))


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(COLUMNS), cells, max_size=4))
def test_mutated_rows_import_or_are_rejected_whole(changes: dict[str, str]) -> None:
    rows = csv_rows()
    rows[1] = {**rows[1], **changes}
    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(Path(folder) / "logs.csv", rows)
        assert all(row.record is not None or row.problems for row in read(path))
        store = Ledger.open(str(Path(folder) / "l.db"))
        try:
            import_files(store, [path], tenant=TENANT, fmt="litellm")
        except ImportRejected:
            assert store.count(TENANT) == 0
        finally:
            store.close()


def test_a_spend_row_without_a_model_is_odd_and_kept_with_its_money(
    tmp_path: Path, ledger: Ledger
) -> None:
    """LiteLLM really writes spend rows with no model: kept with their spend, marked."""
    rows = csv_rows()[:1]
    rows[0] = {**rows[0], "model": "", "model_group": "", "custom_llm_provider": "", "api_base": ""}
    path = write_csv(tmp_path / "logs.csv", rows)
    summary = import_files(ledger, [path], tenant="acme", fmt="litellm")
    assert (summary.new, summary.skipped, summary.records[0].odd) == (1, 0, 1)
    (event,) = ledger.stream("acme", parse_period("2026-10"))
    assert (event.model, event.provider, event.quality) == ("unknown", "unknown", "model_missing")
    assert event.cost == Decimal(rows[0]["spend"]) and event.cost_source == "provider"


def test_the_early_proxies_dotted_call_type_is_still_an_operation(tmp_path: Path) -> None:
    """Proxies of early 2024 wrote ``litellm.completion`` (genuine: BerriAI/litellm#1806)."""
    rows = csv_rows()[:2]
    rows[0] = {**rows[0], "call_type": "litellm.completion"}
    rows[1] = {**rows[1], "call_type": "litellm.embedding"}
    got = [record["operation"] for record in records(write_csv(tmp_path / "logs.csv", rows))]
    assert got == ["chat", "embeddings"]


def test_early_2025_rows_give_their_cache_split_as_additional_usage_values(
    tmp_path: Path,
) -> None:
    """No usage_object then: the same details sat in metadata.additional_usage_values."""
    rows = csv_rows()[:1]
    extra = {"cache_read_input_tokens": 40, "cache_creation_input_tokens": 10}
    rows[0] = {
        **rows[0],
        "prompt_tokens": "100",
        "metadata": json.dumps({"additional_usage_values": extra}),
    }
    (record,) = records(write_csv(tmp_path / "logs.csv", rows))
    got = [record[name] for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens")]
    assert got == [50, 40, 10]
