"""Importing canonical files: every problem named, nothing half-imported, re-import a no-op,
content never stored."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p402.ingest.importer import ImportRejected, import_files
from p402.ledger.store import Ledger
from tests.conftest import PERIOD

SECRET = "PLEASE-NEVER-STORE-THIS-PROMPT"


def row(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"r-{n}",
        "occurred_at": f"2026-10-{1 + n % 28:02d}T10:00:00Z",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 1000 + n,
        "output_tokens": 200,
        "department": "Support",
        **extra,
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_imports_and_reimport_changes_nothing(ledger: Ledger, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "e.jsonl", [row(n) for n in range(30)])
    first = import_files(ledger, [path], tenant="acme")
    assert (first.rows, first.new, first.duplicates) == (30, 30, 0)
    again = import_files(ledger, [path], tenant="acme")
    assert (again.rows, again.new, again.duplicates) == (30, 0, 30)
    assert ledger.count("acme") == 30


def test_priced_from_the_table_with_the_unit_prices_named(
    sqlite_ledger: Ledger, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "e.jsonl", [row(0, input_tokens=1_000_000, output_tokens=1_000_000)]
    )
    import_files(sqlite_ledger, [path], tenant="acme")
    (event,) = sqlite_ledger.stream("acme", PERIOD)
    # gpt-4o-mini list price: $0.15 per million input tokens, $0.60 per million output tokens
    assert event.cost == Decimal("0.75")
    assert event.cost_source == "price_table"
    assert event.price_ref is not None
    assert "openai/gpt-4o-mini 2026-10-01" in event.price_ref
    assert "in=0.15" in event.price_ref and "out=0.6" in event.price_ref


def test_a_json_number_cost_is_read_exactly(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(row(0))[:-1] + ', "cost": 0.1000000000010}\n', encoding="utf-8")
    import_files(sqlite_ledger, [path], tenant="acme")
    (event,) = sqlite_ledger.stream("acme", PERIOD)
    assert event.cost == Decimal("0.100000000001")


def test_unknown_model_is_unpriced_not_zero(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "e.jsonl", [row(0, model="our-own-finetune")])
    summary = import_files(sqlite_ledger, [path], tenant="acme")
    (event,) = sqlite_ledger.stream("acme", PERIOD)
    assert summary.unpriced == 1
    assert event.cost is None and event.cost_source == "unpriced"


def test_problems_name_file_line_and_field_and_nothing_is_imported(
    ledger: Ledger, tmp_path: Path
) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [row(n) for n in range(5)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(row(10)) + "\n"
        + json.dumps(row(11, input_tokens=-5)) + "\n"
        + "\n"
        + '{"event_id": "r-12", "occurred_at": \n'
        + json.dumps(row(13, occurred_at="not a time")) + "\n"
        + "[1, 2]\n",
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(ImportRejected) as caught:
        import_files(ledger, [good, bad], tenant="acme")
    found = {(p.source.rsplit("/", 1)[-1], p.line, p.field) for p in caught.value.problems}
    assert found == {
        ("bad.jsonl", 2, "input_tokens"),
        ("bad.jsonl", 4, None),
        ("bad.jsonl", 5, "occurred_at"),
        ("bad.jsonl", 6, None),
    }
    assert ledger.count("acme") == 0  # not even the good file, nor the good rows already sent


def test_skip_invalid_imports_the_good_rows_and_counts_the_rest(
    ledger: Ledger, tmp_path: Path
) -> None:
    rows = [row(n) for n in range(6)] + [row(99, output_tokens="many")]
    path = write_jsonl(tmp_path / "e.jsonl", rows)
    summary = import_files(ledger, [path], tenant="acme", skip_invalid=True)
    assert (summary.new, summary.skipped, len(summary.problems)) == (6, 1, 1)
    assert ledger.count("acme") == 6


def test_csv_in_canonical_columns(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    fields = ["event_id", "occurred_at", "provider", "model", "input_tokens", "output_tokens", "cost",
              "department", "tag.team", "tags"]  # fmt: skip
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerow({**row(1), "cost": "0.0042", "tag.team": "core", "tags": '{"env": "prod"}',
                         "department": "Multi\nline"})  # fmt: skip
        writer.writerow({**row(2), "cost": "", "tag.team": "", "tags": "", "department": ""})
        writer.writerow({**row(3), "cost": "", "tag.team": "", "tags": "", "input_tokens": "x"})
    with pytest.raises(ImportRejected) as caught:
        import_files(sqlite_ledger, [path], tenant="acme")
    # the multi-line cell moves later rows down: line numbers are those of the file
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (2, "department"),
        (5, "input_tokens"),
    ]


def test_content_never_reaches_the_database(tmp_path: Path) -> None:
    ledger = Ledger.open(str(tmp_path / "ledger.db"))
    rows = [row(n, messages=[{"role": "user", "content": SECRET}], completion=SECRET, tags={"prompt": SECRET})
            for n in range(3)]  # fmt: skip
    summary = import_files(ledger, [write_jsonl(tmp_path / "e.jsonl", rows)], tenant="acme")
    ledger.close()
    assert summary.new == 3 and summary.content_fields_dropped == 6
    for stored in tmp_path.glob("ledger.db*"):
        assert SECRET.encode() not in stored.read_bytes()


@settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    st.lists(
        st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode)),
        min_size=1,
        max_size=8,
    )
)
def test_garbage_gives_problems_never_a_crash_or_partial_import(
    tmp_path: Path, lines: list[bytes]
) -> None:
    ledger = Ledger.open(str(tmp_path / "fuzz.db"))
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(json.dumps(row(0)).encode() + b"\n" + b"\n".join(lines))
    before = ledger.count("fuzz")
    rejected: ImportRejected | None = None
    try:
        import_files(ledger, [path], tenant="fuzz")
    except ImportRejected as caught:
        rejected = caught
    after = ledger.count("fuzz")
    ledger.close()
    if rejected is not None:
        assert rejected.problems
        assert after == before


def test_missing_file_is_a_clear_error(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no such file"):
        import_files(sqlite_ledger, [tmp_path / "nope.jsonl"], tenant="acme")
