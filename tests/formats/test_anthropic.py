"""Anthropic Admin API reports: usage pages as events priced by hand from list prices, cost pages
as invoice lines converted exactly from cents; overlapping pages counted once; bad input named."""

from __future__ import annotations

import json
import sqlite3
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
from p402.money import from_units
from p402.period import parse_period

DATA = Path(__file__).parent.parent / "data" / "formats" / "anthropic"
PERIOD = parse_period("2026-10")
TENANT = "acme"
MILLION = Decimal(1_000_000)
# Anthropic list prices, USD per million tokens (claude.com/pricing), in force in October 2026.
SONNET_4_5 = {"in": Decimal(3), "cache_read": Decimal("0.30"), "write_5m": Decimal("3.75"),
              "write_1h": Decimal(6), "out": Decimal(15)}  # fmt: skip
HAIKU_4_5 = {"in": Decimal(1), "cache_read": Decimal("0.10"), "write_5m": Decimal("1.25"),
             "write_1h": Decimal(2), "out": Decimal(5)}  # fmt: skip


def read(fmt: str, path: Path) -> list[SourceRow]:
    return list(get_format(fmt).read(path, None))


def records(fmt: str, path: Path) -> list[dict[str, Any]]:
    rows = read(fmt, path)
    assert [row.problems for row in rows if row.problems] == []
    return [row.record for row in rows if row.record is not None]


def problems_of(fmt: str, path: Path) -> list[tuple[int | None, str | None, str | None, str]]:
    return [
        (row.line, row.path, name, message)
        for row in read(fmt, path)
        for name, message in row.problems
    ]


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def page(*results: dict[str, Any], start: str = "2026-10-05T00:00:00Z") -> dict[str, Any]:
    end = start.replace("T00", "T23").replace(":00:00Z", ":59:59Z")
    return {"data": [{"starting_at": start, "ending_at": end, "results": list(results)}],
            "has_more": False, "next_page": None}  # fmt: skip


def usage_result(**fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "uncached_input_tokens": 1000,
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "cache_read_input_tokens": 0,
        "output_tokens": 100,
        "server_tool_use": {"web_search_requests": 0},
        "api_key_id": None, "workspace_id": None, "model": "claude-sonnet-4-5",
        "service_tier": "standard", "context_window": None, "inference_geo": None, "speed": None,
    }  # fmt: skip
    result.update(fields)
    return result


def price(tokens: dict[str, int], prices: dict[str, Decimal]) -> Decimal:
    return (
        sum((Decimal(count) * prices[name] for name, count in tokens.items()), Decimal(0)) / MILLION
    )


def stored(ledger: Ledger) -> dict[str, Event]:
    return {event.event_id: event for event in ledger.stream(TENANT, PERIOD)}


# --- anthropic-usage -----------------------------------------------------------------------------


def test_usage_pages_as_json_lines() -> None:
    rows = [row for row in read("anthropic-usage", DATA / "usage_pages.jsonl") if row.record]
    # The all-zero result and the empty bucket of 2026-10-06 yield nothing.
    assert [(row.line, row.path) for row in rows] == [
        (1, "data[0].results[0]"),
        (1, "data[0].results[1]"),
        (2, "data[0].results[0]"),
    ]
    standard, batch, haiku = (row.record for row in rows if row.record)
    assert {key: value for key, value in standard.items() if key != "event_id"} == {
        "occurred_at": "2026-10-05T00:00:00Z",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "operation": "chat",
        "requests": 1,  # the usage report has no request count
        "input_tokens": 100_000,  # uncached_input_tokens already excludes the cache
        "cache_read_tokens": 60_000,
        "cache_write_tokens": 20_000,  # ephemeral_5m
        "cache_write_1h_tokens": 10_000,  # ephemeral_1h, in the same result
        "output_tokens": 50_000,  # thinking included, as billed
        "service_tier": "standard",
        "batch": False,
        "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT",
        "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
        "web_search_calls": 3,
    }
    assert batch["service_tier"] == "batch" and batch["batch"] is True
    assert "workspace_id" not in batch  # the default workspace: null when grouped
    assert haiku["user_id"] == "user_01WCz1FkmYMm4gnmykNKUu3Q"  # account_id
    assert haiku["tags"] == {"context_window": "0-200k", "inference_geo": "us", "speed": "standard"}
    assert len({standard["event_id"], batch["event_id"], haiku["event_id"]}) == 3


def test_usage_priced_by_hand_and_reimport_is_a_no_op(ledger: Ledger) -> None:
    pages = DATA / "usage_pages.jsonl"
    first = import_files(ledger, [pages], tenant=TENANT, fmt="anthropic-usage")
    assert (first.rows, first.new, first.skipped) == (3, 3, 0)
    events = stored(ledger)
    standard = next(
        e
        for e in events.values()
        if e.service_tier == "standard" and e.model == "claude-sonnet-4-5"
    )
    # claude-sonnet-4-5 on 2026-10-05: $3/M uncached input, $0.30/M cache read, $3.75/M
    # 5-minute cache write, $6/M 1-hour cache write, $15/M output.
    expected = price(
        {
            "in": 100_000,
            "cache_read": 60_000,
            "write_5m": 20_000,
            "write_1h": 10_000,
            "out": 50_000,
        },
        SONNET_4_5,
    )
    assert expected == Decimal("1.203")
    # and 3 web searches at $10 per 1,000, billed apart from tokens: $0.03.
    assert standard.web_search_calls == 3 and standard.tool_cost == Decimal("0.03")
    assert standard.cost == expected + Decimal("0.03") and standard.cost_source == "price_table"
    assert (
        standard.price_ref is not None
        and "web_search_calls=3 at 10 USD/1k calls" in standard.price_ref
    )
    assert (
        standard.price_ref is not None
        and "anthropic/claude-sonnet-4-5 2026-10-05" in standard.price_ref
    )
    haiku = next(e for e in events.values() if e.model == "claude-haiku-4-5")
    # claude-haiku-4-5: $1/M input, $0.10/M cache read, $1.25/M 5-minute write, $5/M output.
    assert haiku.cost == price(
        {"in": 8000, "cache_read": 12_000, "write_5m": 1500, "out": 2500}, HAIKU_4_5
    )
    assert haiku.evidence_status == "imported" and haiku.source == "import:anthropic-usage"
    again = import_files(
        ledger, [pages, DATA / "usage_overlap.json"], tenant=TENANT, fmt="anthropic-usage"
    )
    # The overlapping page repeats the 2026-10-07 bucket: the same id, so nothing new.
    assert (again.rows, again.new, again.duplicates) == (4, 0, 4)
    assert ledger.count(TENANT) == 3


def test_enterprise_analytics_usage_report(ledger: Ledger) -> None:
    path = DATA / "analytics_usage_report.json"
    (record,) = records(
        "anthropic-usage", path
    )  # the code-execution row (no model, no tokens) is not token spend
    assert record["requests"] == 42
    assert record["tags"] == {"context_window": "0-200k", "inference_geo": "global", "speed": "standard",
                              "product": "claude_code"}  # fmt: skip
    import_files(ledger, [path], tenant=TENANT, fmt="anthropic-usage")
    (event,) = stored(ledger).values()
    # 42 requests average 25,000 prompt tokens each: the base (under 200k) rates apply.
    assert event.cost == price({"in": 150_000, "cache_read": 900_000, "out": 30_000}, SONNET_4_5)


def test_results_not_grouped_by_model_are_kept_unpriced(tmp_path: Path, ledger: Ledger) -> None:
    path = write(tmp_path / "u.json", page(usage_result(model=None)))
    (record,) = records("anthropic-usage", path)
    assert record["model"] == "unknown" and record["tags"] == {"ungrouped_model": "true"}
    summary = import_files(ledger, [path], tenant=TENANT, fmt="anthropic-usage")
    assert summary.unpriced == 1


def test_a_large_short_context_bucket_is_priced_at_base_rates(
    tmp_path: Path, ledger: Ledger
) -> None:
    path = write(tmp_path / "u.json", page(usage_result(uncached_input_tokens=1_000_000, output_tokens=0,
                                                        context_window="0-200k")))  # fmt: skip
    import_files(ledger, [path], tenant=TENANT, fmt="anthropic-usage")
    (event,) = stored(ledger).values()
    assert event.cost == Decimal(3)


def test_batch_usage_is_priced_at_batch_rates(ledger: Ledger) -> None:
    import_files(ledger, [DATA / "usage_pages.jsonl"], tenant=TENANT, fmt="anthropic-usage")
    batch = next(e for e in stored(ledger).values() if e.batch)
    # Message Batches are billed at 50% of list: ($3/M x 50,000 + $15/M x 10,000) / 2.
    assert batch.cost == price({"in": 50_000, "out": 10_000}, SONNET_4_5) / 2 == Decimal("0.15")
    assert batch.service_tier == "batch"


# Long-context rates (claude.com/pricing, "Long context pricing", Sonnet 4 and Sonnet 4.5 with
# the 1M context window): a request over 200K input tokens is billed at $6/M input and $22.50/M
# output, all of its tokens, with the prompt-caching multipliers on top: $0.60/M cache read,
# $7.50/M 5-minute write, $12/M 1-hour write. The usage report says which window a bucket was
# billed in (context_window "200k-1M"), whatever its average prompt.
LONG_CONTEXT = {"in": Decimal(6), "cache_read": Decimal("0.60"), "write_5m": Decimal("7.50"),
                "write_1h": Decimal(12), "out": Decimal("22.50")}  # fmt: skip
LONG_TOKENS = {"in": 1_000_000, "cache_read": 100_000, "write_5m": 10_000, "write_1h": 10_000,
               "out": 100_000}  # fmt: skip


def long_context_page(model: str) -> dict[str, Any]:
    return page(usage_result(
        model=model, context_window="200k-1M", uncached_input_tokens=1_000_000,
        cache_read_input_tokens=100_000, output_tokens=100_000,
        cache_creation={"ephemeral_1h_input_tokens": 10_000, "ephemeral_5m_input_tokens": 10_000},
    ))  # fmt: skip


def test_a_long_context_bucket_is_priced_at_long_context_rates(
    tmp_path: Path, ledger: Ledger
) -> None:
    path = write(tmp_path / "u.json", long_context_page("claude-sonnet-4-5-20250929"))
    import_files(ledger, [path], tenant=TENANT, fmt="anthropic-usage")
    (event,) = stored(ledger).values()
    # 1,000,000 x $6 + 100,000 x $0.60 + 10,000 x $7.50 + 10,000 x $12 + 100,000 x $22.50, per M
    # = 6 + 0.06 + 0.075 + 0.12 + 2.25 = $8.505 (at base rates it would be $4.2525).
    assert event.cost == price(LONG_TOKENS, LONG_CONTEXT) == Decimal("8.505")
    assert event.cost_source == "price_table"
    assert "in=6 " in (event.price_ref or "") and "out=22.5 " in (event.price_ref or "")


def test_a_long_context_bucket_of_sonnet_4_is_priced_at_long_context_rates(
    tmp_path: Path, ledger: Ledger
) -> None:
    path = write(tmp_path / "u.json", long_context_page("claude-sonnet-4-20250514"))
    import_files(ledger, [path], tenant=TENANT, fmt="anthropic-usage")
    (event,) = stored(ledger).values()
    assert (event.cost, event.cost_source) == (Decimal("8.505"), "price_table")
    assert "p402 supplement" in (event.price_ref or "") and "prompt > 200,000" in (
        event.price_ref or ""
    )


def test_a_fast_mode_bucket_is_left_tier_unpriced(tmp_path: Path, ledger: Ledger) -> None:
    # Fast mode is billed at premium rates (the pricing page of 2026-02-08: Claude Opus 4.6
    # research preview, $30/M input and $150/M output, six times standard) that the price table
    # does not carry: no figure at the standard rate under a basis that was not billed.
    path = write(tmp_path / "u.json", page(usage_result(model="claude-opus-4-6", speed="fast"),
                                           usage_result(model="claude-opus-4-6", speed="standard")))  # fmt: skip
    summary = import_files(ledger, [path], tenant=TENANT, fmt="anthropic-usage")
    assert summary.problems == []
    by_speed = {dict(event.tags)["speed"]: event for event in stored(ledger).values()}
    assert (by_speed["fast"].cost, by_speed["fast"].cost_source) == (None, "tier_unpriced")
    assert "no 'fast' speed rate" in (by_speed["fast"].price_ref or "")
    # 1,000 x $5/M + 100 x $25/M = $0.0075 at standard speed.
    assert by_speed["standard"].cost == Decimal("0.0075")


def test_us_only_inference_is_priced_at_the_data_residency_multiplier(
    tmp_path: Path, ledger: Ledger
) -> None:
    path = write(
        tmp_path / "u.json", page(usage_result(model="claude-opus-4-6", inference_geo="us"))
    )
    import_files(ledger, [path], tenant=TENANT, fmt="anthropic-usage")
    (event,) = stored(ledger).values()
    # (1,000 x $5/M + 100 x $25/M) x 1.1 = $0.00825 (not the global $0.0075).
    assert (event.cost, event.cost_source) == (Decimal("0.00825"), "price_table")
    assert "x1.1 for inference_geo=us" in (event.price_ref or "")


@pytest.mark.parametrize(
    ("result", "field", "message"),
    [
        ({"uncached_input_tokens": -5}, "uncached_input_tokens", "at least 0"),
        ({"output_tokens": "many"}, "output_tokens", "whole number"),
        ({"cache_creation": 12}, "cache_creation", "must be an object"),
        (
            {"cache_creation": {"ephemeral_1h_input_tokens": 1.5}},
            "cache_creation.ephemeral_1h_input_tokens",
            "whole",
        ),
        ({"model": 7}, "model", "must be a string"),
        ({"output_tokens": "1e999999999"}, "output_tokens", "whole number of at least 0"),
        ({"rbac_group_id": "rbac_group_01"}, "rbac_group_id", "overlap"),
    ],
)
def test_bad_results_are_named(
    tmp_path: Path, result: dict[str, Any], field: str, message: str
) -> None:
    path = write(tmp_path / "u.json", page(usage_result(), usage_result(**result)))
    ((line, where, name, text),) = problems_of("anthropic-usage", path)
    # a page written on one line is read as JSON Lines: its problems carry line 1 too
    assert (line, where, name) == (1, "data[0].results[1]", field)
    assert message in text


@pytest.mark.parametrize(
    ("document", "where", "field", "message"),
    [
        ({"results": []}, None, "data", "is required"),
        ({"data": [{"starting_at": "yesterday", "ending_at": "2026-10-06T00:00:00Z", "results": []}]},
         "data[0]", "starting_at", "not a time"),
        ({"data": [{"starting_at": "2026-10-06T00:00:00Z", "ending_at": "2026-10-05T00:00:00Z", "results": []}]},
         "data[0]", "ending_at", "after"),
        ({"data": [{"starting_at": "2026-10-05T00:00:00Z", "ending_at": "2026-10-06T00:00:00Z"}]},
         "data[0]", "results", "is required"),
        ({"data": [{"starting_at": "2026-10-05T00:00:00Z", "ending_at": "2026-10-06T00:00:00Z", "results": [3]}]},
         "data[0].results[0]", None, "result object"),
        ({"data": [{"starting_at": "2026-10-05T00:00:00Z", "ending_at": "2026-10-06T00:00:00Z",
                    "group": {"model": "claude-sonnet-4-5"}, "usage": {"total_tokens": 10}}]},
         "data[0]", "usage", "not read yet"),
        # /analytics/user_usage_report: one flat row per seat user, as Anthropic's reference
        # example (list_by_user.md) shows it.
        ({"data": [{"actor": {"deleted": False, "email": "jane@example.com", "name": "Jane Smith",
                              "type": "user_actor", "user_id": "user_01AbCdEfGhIjKlMnOpQrSt"},
                    "starting_at": "2026-10-05T00:00:00Z", "ending_at": "2026-10-06T00:00:00Z",
                    "model": "claude-opus-4-6", "uncached_input_tokens": 1284500, "requests": 128}]},
         "data[0]", "actor", "per-user analytics row"),
    ],
)  # fmt: skip
def test_bad_pages_are_named(
    tmp_path: Path, document: Any, where: str | None, field: str | None, message: str
) -> None:
    ((_, found, name, text),) = problems_of("anthropic-usage", write(tmp_path / "u.json", document))
    assert (found, name) == (where, field)
    assert message in text


def test_a_truncated_page_and_a_bad_line_are_named(tmp_path: Path) -> None:
    lines = (DATA / "usage_pages.jsonl").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "u.jsonl"
    path.write_text(lines[0] + "\n" + lines[1][:90] + "\n[1, 2]\n", encoding="utf-8")
    rows = read("anthropic-usage", path)
    assert [row.line for row in rows if row.record] == [1, 1]
    assert [(row.line, row.path, row.problems[0][0]) for row in rows if row.problems] == [
        (2, None, None),
        (3, "[0]", "data"),
        (3, "[1]", "data"),
    ]
    assert "not valid JSON" in rows[2].problems[0][1]


def test_progress_counts_every_byte() -> None:
    seen: list[int] = []
    path = DATA / "usage_pages.jsonl"
    list(get_format("anthropic-usage").read(path, seen.append))
    assert sum(seen) == path.stat().st_size


def test_json_lines_with_a_long_first_page(tmp_path: Path) -> None:
    first, second = (DATA / "usage_pages.jsonl").read_text(encoding="utf-8").splitlines()
    big = json.loads(first)
    big["data"] = [{**bucket, "results": [*bucket["results"], *[usage_result(api_key_id=f"k{n}") for n in range(300)]]}
                   for bucket in big["data"][:1]]  # fmt: skip
    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps(big) + "\n" + second + "\n", encoding="utf-8")
    assert len(json.dumps(big)) > 1 << 16
    assert [row.problems for row in read("anthropic-usage", path) if row.problems] == []


def test_an_unknown_grouping_field_cannot_merge_two_results(tmp_path: Path) -> None:
    path = write(tmp_path / "u.json", page(usage_result(region="eu"), usage_result(region="us")))
    ((_, where, name, text),) = problems_of("anthropic-usage", path)
    assert (where, name) == ("data[0].results[1]", None)
    assert "data[0].results[0]" in text and "unknown grouping field" in text


# --- anthropic-costs -----------------------------------------------------------------------------


def invoice_lines(path: Path) -> dict[str, tuple[Decimal, str | None]]:
    with sqlite3.connect(path) as connection:
        found = connection.execute(
            "SELECT line_id, amount_units, description FROM invoice_lines"
        ).fetchall()
    return {line: (from_units(units), text) for line, units, text in found}


def test_cost_pages_in_cents_become_exact_dollars() -> None:
    lines = records("anthropic-costs", DATA / "cost_pages.json")
    assert [line["amount"] for line in lines] == [
        Decimal("1.2345"),  # "123.45" cents
        Decimal("0.005"),  # "0.5" cents: half a cent, kept exactly
        Decimal("0.375"),
        Decimal("0.03"),
        Decimal("25.00125"),  # "2500.125" cents
    ]
    first = lines[0]
    assert {key: value for key, value in first.items() if key != "line_id"} == {
        "provider": "anthropic",
        "start": "2026-10-05T00:00:00Z",
        "end": "2026-10-06T00:00:00Z",
        "amount": Decimal("1.2345"),
        "currency": "USD",
        "description": "Claude Sonnet 4.5 Usage - Input Tokens",
        "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
        "model": "claude-sonnet-4-5",
        "token_type": "uncached_input_tokens",
        "service_tier": "standard",
    }
    assert lines[1]["token_type"] == "cache_creation.ephemeral_1h_input_tokens"
    assert lines[2]["service_tier"] == "batch"
    assert lines[3]["description"] == "Web Search" and "model" not in lines[3]
    assert set(lines[4]) == {
        "line_id",
        "provider",
        "start",
        "end",
        "amount",
        "currency",
    }  # ungrouped
    assert len({line["line_id"] for line in lines}) == 5


def test_cost_import_and_reimport(tmp_path: Path, ledger: Ledger) -> None:
    paths = [DATA / "cost_pages.json", DATA / "analytics_cost_rows.json"]
    first = import_files(ledger, paths, tenant=TENANT, fmt="anthropic-costs")
    assert (first.rows, first.invoice_lines, first.skipped) == (7, 7, 0)
    assert ledger.count(TENANT) == 0  # invoice lines are never events
    again = import_files(ledger, paths, tenant=TENANT, fmt="anthropic-costs")
    assert (again.new, again.duplicates) == (0, 7)
    amounts = sorted(
        amount for amount, _ in invoice_lines(Path(str(ledger.engine.url.database))).values()
    )
    expected = ["0.005", "0.03", "0.045", "0.375", "0.450075", "1.2345", "25.00125"]
    assert amounts == [Decimal(amount) for amount in expected]  # stored exactly, to the 1/1000 cent


def test_analytics_cost_rows() -> None:
    output, uncached = records("anthropic-costs", DATA / "analytics_cost_rows.json")
    assert output["amount"] == Decimal("0.450075")  # "45.0075" fractional cents
    assert (output["model"], output["token_type"], output["description"]) == (
        "claude-sonnet-4-5", "output_tokens", "tokens",
    )  # fmt: skip
    assert uncached["amount"] == Decimal("0.045") and uncached["line_id"] != output["line_id"]


@pytest.mark.parametrize(
    ("result", "field", "message"),
    [
        ({"amount": "12,50"}, "amount", "must be a number"),
        ({"amount": None}, "amount", "is required"),
        ({"currency": "EUR"}, "currency", "only USD"),
        ({"amount": "1e400"}, "amount", "too large"),
        ({"workspace_id": ["w"]}, "workspace_id", "must be a string"),
    ],
)
def test_bad_cost_results_are_named(
    tmp_path: Path, result: dict[str, Any], field: str, message: str
) -> None:
    good = {"currency": "USD", "amount": "1", "description": None, "workspace_id": None}
    path = write(tmp_path / "c.json", page(good, {**good, **result}))
    ((_, where, name, text),) = problems_of("anthropic-costs", path)
    assert (where, name) == ("data[0].results[1]", field)
    assert message in text


def test_a_per_user_cost_row_is_refused(tmp_path: Path) -> None:
    # /analytics/user_cost_report, as Anthropic's reference example (list_by_user.md) shows it.
    row = {"actor": {"type": "user_actor", "user_id": "user_01AbCdEfGhIjKlMnOpQrSt"},
           "amount": "41280.000000", "list_amount": "51600.000000", "currency": "USD",
           "starting_at": "2026-10-05T00:00:00Z", "ending_at": "2026-10-06T00:00:00Z"}  # fmt: skip
    path = write(tmp_path / "c.json", {"data": [row], "has_more": False})
    ((_, where, name, text),) = problems_of("anthropic-costs", path)
    assert (where, name) == ("data[0]", "actor") and "user_cost_report" in text


def test_a_report_read_with_the_wrong_format_says_which(tmp_path: Path) -> None:
    usage = write(tmp_path / "u.json", page(usage_result()))
    costs = write(
        tmp_path / "c.json", page({"currency": "USD", "amount": "1", "description": None})
    )
    ((_, _, name, text),) = problems_of("anthropic-costs", usage)
    assert name == "amount" and "anthropic-usage" in text
    ((_, _, name, text),) = problems_of("anthropic-usage", costs)
    assert name == "amount" and "anthropic-costs" in text


# --- hostile input -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIXTURES = [
    "usage_pages.jsonl",
    "analytics_usage_report.json",
    "cost_pages.json",
    "analytics_cost_rows.json",
]


def mutate(document: Any, choices: list[int], value: Any) -> Any:
    """The document with one leaf (picked by *choices*) replaced by *value*."""
    if isinstance(document, dict) and document:
        keys = sorted(document)
        key = keys[choices[0] % len(keys)] if choices else keys[0]
        return {**document, key: mutate(document[key], choices[1:], value)}
    if isinstance(document, list) and document:
        index = choices[0] % len(document) if choices else 0
        return [
            *document[:index],
            mutate(document[index], choices[1:], value),
            *document[index + 1 :],
        ]
    return value


def import_or_reject(path: Path, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Ledger.open(str(Path(folder) / "l.db"))
        try:
            try:
                import_files(store, [path], tenant=TENANT, fmt=fmt)
            except ImportRejected:
                assert store.count(TENANT) == 0 and store.count_invoice_lines(TENANT) == 0
        finally:
            store.close()


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from(["anthropic-usage", "anthropic-costs"]))
def test_random_bytes_never_raise(data: bytes, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.json"
        path.write_bytes(data)
        for row in read(fmt, path):
            assert row.record is not None or row.problems


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from(["anthropic-usage", "anthropic-costs"]))
def test_random_json_shapes_never_raise(document: Any, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "x.json", document)
        for row in read(fmt, path):
            assert row.record is not None or row.problems


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(FIXTURES),
    st.lists(st.integers(min_value=0, max_value=50), max_size=6),
    json_values,
)
def test_mutated_fixtures_import_or_are_rejected_whole(
    name: str, choices: list[int], value: Any
) -> None:
    fmt = "anthropic-costs" if "cost" in name else "anthropic-usage"
    text = (DATA / name).read_text(encoding="utf-8")
    documents = (
        [json.loads(line) for line in text.splitlines()]
        if name.endswith(".jsonl")
        else [json.loads(text)]
    )
    documents[0] = mutate(documents[0], choices, value)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(
            "\n".join(json.dumps(document) for document in documents) + "\n", encoding="utf-8"
        )
        rows = read(fmt, path)
        assert all(row.record is not None or row.problems for row in rows)
        import_or_reject(path, fmt)
