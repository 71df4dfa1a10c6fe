"""Every import leaves a control record, and a loss anywhere between reading a row and storing
it shows as a finding, never as a success."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from p402.ingest import importer
from p402.ingest.demo import generate
from p402.ingest.importer import ImportRejected, import_files
from p402.ledger.imports import list_imports
from p402.ledger.store import Ledger
from p402.money import format_amount, from_units, to_units
from p402.period import format_time, moment
from tests.test_cli import run

DATA = Path(__file__).parent / "data" / "formats"


def _events_file(path: Path, count: int, *, repeat: int = 0) -> Path:
    """*count* demo events as JSON Lines, the first *repeat* of them written twice."""
    events = [event.to_json() for event in generate(count=count, tenant="acme")]
    lines = [json.dumps(event) for event in events + events[:repeat]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cost(path: Path) -> int:
    """The exact cost of the distinct events of a JSON Lines file, in storage units."""
    seen: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        seen.setdefault(event["event_id"], to_units(Decimal(event["cost"] or "0")))
    return sum(seen.values())


def test_a_record_counts_every_row_and_ties(ledger: Ledger, tmp_path: Path) -> None:
    path = _events_file(tmp_path / "events.jsonl", 300, repeat=7)
    summary = import_files(ledger, [path], tenant="acme", jobs=1)
    (record,) = summary.records
    assert (record.rows_read, record.stored, record.duplicates, record.already_stored) == (
        307,
        300,
        7,
        0,
    )
    assert record.stored_cost == record.ledger_cost_change == _cost(path)
    assert record.ties and summary.findings == []
    assert record.size == path.stat().st_size and len(record.sha256) == 64
    # Again: every row is already stored, nothing is new, and it still ties.
    again = import_files(ledger, [path], tenant="acme", jobs=1).records[0]
    assert (again.stored, again.already_stored, again.duplicates) == (0, 300, 7)
    assert again.already_stored_cost == _cost(path) and again.ledger_cost_change == 0
    assert again.ties
    kept = list_imports(ledger, "acme")
    assert [item["import_id"] for item in kept] == [record.import_id, again.import_id]
    assert kept[0]["stored_cost"] == format_amount(from_units(record.stored_cost))
    assert list_imports(ledger, "umbrella") == []  # tenants are apart


def test_a_store_that_drops_rows_is_a_finding(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug planted in the store (every fifth row silently lost) cannot pass as a success."""
    insert = Ledger.insert_rows

    def lossy(self: Ledger, connection: Any, rows: list[tuple[Any, ...]]) -> None:
        insert(self, connection, [row for at, row in enumerate(rows) if at % 5])

    monkeypatch.setattr(Ledger, "insert_rows", lossy)
    path = _events_file(tmp_path / "events.jsonl", 100)
    summary = import_files(ledger, [path], tenant="acme", jobs=1)
    (record,) = summary.records
    assert record.stored == 100 and record.ledger_added == 80
    assert not record.ties
    assert any("the ledger gained 80" in finding for finding in summary.findings)
    assert any("cost changed" in finding for finding in summary.findings)
    assert list_imports(ledger, "acme")[0]["ties"] is False


def test_rows_lost_before_the_store_are_a_finding(
    sqlite_ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug planted between reading and storing (rows dropped from a batch) shows too."""
    store = importer._Run.store

    def lossy(self: Any, connection: Any, rows: list[tuple[Any, ...]]) -> None:
        store(self, connection, rows[: len(rows) - 3])

    monkeypatch.setattr(importer._Run, "store", lossy)
    path = _events_file(tmp_path / "events.jsonl", 50)
    summary = import_files(sqlite_ledger, [path], tenant="acme", jobs=1)
    assert any("50 rows read but 47 accounted for" in finding for finding in summary.findings)
    assert any("read but $" in finding for finding in summary.findings)


def test_ids_that_collide_are_a_finding_not_a_quiet_duplicate(
    sqlite_ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An identity that collides (the OpenAI-costs-by-user bug: distinct rows, one id) is
    counted as repeated rows with their money, so the control record shows what was dropped."""
    events = [event.to_json() for event in generate(count=20, tenant="acme")]
    for event in events[10:]:
        event["event_id"] = events[0]["event_id"]  # ten distinct rows given one id
    path = tmp_path / "collide.jsonl"
    path.write_text("\n".join(json.dumps(event) for event in events) + "\n", encoding="utf-8")
    record = import_files(sqlite_ledger, [path], tenant="acme", jobs=1).records[0]
    dropped = sum(to_units(Decimal(event["cost"])) for event in events[10:])
    assert record.duplicates == 10 and record.duplicate_cost == dropped > 0


def test_a_refused_import_leaves_a_refused_record(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    path = _events_file(tmp_path / "events.jsonl", 10)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"event_id": "x"}\n')
    with pytest.raises(ImportRejected) as refused:
        import_files(sqlite_ledger, [path], tenant="acme", jobs=1)
    (record,) = refused.value.records
    assert (record.status, record.rows_read, record.skipped, record.stored) == ("refused", 11, 1, 0)
    assert sqlite_ledger.count("acme") == 0
    assert [item["status"] for item in list_imports(sqlite_ledger, "acme")] == ["refused"]


def test_invoice_lines_get_records_that_tie(sqlite_ledger: Ledger) -> None:
    path = DATA / "openai" / "costs_by_user.json"
    summary = import_files(sqlite_ledger, [path], tenant="acme", fmt="openai-costs", jobs=1)
    (record,) = summary.records
    assert record.stored == summary.invoice_lines > 0
    assert record.ledger_cost_change == record.stored_cost == record.read_cost
    assert record.ties


def test_the_cli_prints_the_record_and_fails_on_a_finding(tmp_path: Path) -> None:
    path = _events_file(tmp_path / "events.jsonl", 30, repeat=2)
    db = str(tmp_path / "ledger.db")
    done = run("import", "events", str(path), "--db", db, "--tenant", "acme")
    assert done.returncode == 0, done.stderr
    assert "32 read = 30 stored + 0 already stored + 2 repeated + 0 skipped" in done.stdout
    assert "ties." in done.stdout
    listed = run("imports", "--db", db, "--tenant", "acme", "--json")
    (record,) = json.loads(listed.stdout)
    assert record["stored"] == 30 and record["ties"] is True
    assert "30 stored" in run("imports", "--db", db, "--tenant", "acme").stdout


def test_a_record_breaks_its_stored_rows_down_by_day(ledger: Ledger, tmp_path: Path) -> None:
    """The per-day counts are the stored events, counted from the events: what an audit period
    takes of the file. Repeats and re-imports add nothing to them."""
    path = _events_file(tmp_path / "events.jsonl", 200, repeat=5)
    (record,) = import_files(ledger, [path], tenant="acme", jobs=1).records
    days: dict[str, list[int]] = {}
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        cell = days.setdefault(event["occurred_at"][:10], [0, 0, 0])
        cell[0] += 1
        cell[1] += to_units(Decimal(event["cost"] or "0"))
        cell[2] += sum(
            event[name]
            for name in (
                "input_tokens", "cache_read_tokens", "cache_write_tokens",
                "cache_write_1h_tokens", "output_tokens",
            )
        )  # fmt: skip
    as_dates = {
        format_time(moment(day * 86_400_000_000))[:10]: cell for day, cell in record.days.items()
    }
    assert as_dates == days
    assert sum(cell[0] for cell in days.values()) == record.stored
    assert sum(cell[1] for cell in days.values()) == record.stored_cost
    kept = list_imports(ledger, "acme")[0]["days"]
    assert kept == {
        day: {"events": n, "cost": format_amount(from_units(u)), "tokens": t}
        for day, (n, u, t) in sorted(days.items())
    }
    again = import_files(ledger, [path], tenant="acme", jobs=1).records[0]
    assert again.days == {}


def test_the_demo_leaves_a_control_record_that_ties(ledger: Ledger) -> None:
    """The demo's events reach the ledger through a record too (format ``demo``)."""
    from p402.ingest.demo import store_demo

    events = list(generate(count=500, tenant="acme"))
    record = store_demo(ledger, events, tenant="acme", label="demo:2026-10")
    assert record.ties and record.stored == record.ledger_added == 500
    assert sum(cell[0] for cell in record.days.values()) == 500
    assert record.stored_cost == sum(to_units(event.cost or Decimal(0)) for event in events)
    (kept,) = list_imports(ledger, "acme")
    assert kept["format"] == "demo" and kept["file"] == "demo:2026-10" and kept["ties"]
