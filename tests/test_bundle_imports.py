"""A bundle carries the control records of the imports whose events it holds, and the verifier
checks them from the bundle alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p402.audit import run_audit
from p402.bundles import standalone
from p402.bundles.canonical import dumps, loads
from p402.bundles.layout import IMPORTS, MANIFEST
from p402.bundles.signing import create_keys
from p402.bundles.verify import verify_bundle
from p402.ingest.importer import import_files
from p402.ledger.store import Ledger
from tests.conftest import PERIOD, TENANT, small_events
from tests.test_bundle_tamper import (
    Good,
    bundle,
    invalid,
    joined,
    lines_of,
    read_members,
    resign,
    without,
)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Good:
    """The small ledger, imported from a file (so it has a control record), audited."""
    base = tmp_path_factory.mktemp("imported")
    _, public_path, key = create_keys(base / "keys")
    path = base / "events.jsonl"
    events = [event.to_json() for event in small_events()]
    path.write_text("".join(json.dumps(event) + "\n" for event in events + events[:2]))
    ledger = Ledger.open(str(base / "ledger.db"))
    try:
        import_files(ledger, [path], tenant=TENANT, jobs=1)
        result = run_audit(ledger, tenant=TENANT, period=PERIOD, key=key, out_dir=base / "out")
    finally:
        ledger.close()
    data = result.bundle.read_bytes()
    return Good(result.bundle, data, read_members(data), key, public_path)


def _record(good: Good) -> dict[str, Any]:
    (line,) = lines_of(good.members[IMPORTS])
    record: dict[str, Any] = loads(line)
    return record


def _with_record(good: Good, record: dict[str, Any]) -> dict[str, bytes]:
    return resign({**good.members, IMPORTS: joined([dumps(record)])}, good.key)


def test_the_bundle_carries_the_import_record_and_verifies(imported: Good) -> None:
    record = _record(imported)
    assert (record["rows_read"], record["stored"], record["duplicates"]) == (26, 24, 2)
    assert record["ties"] is True and record["tenant"] == TENANT
    manifest = loads(imported.members[MANIFEST])
    assert manifest["imports"] == {
        "file": IMPORTS, "count": 1,
        "in_period": {"events": 24, "cost": manifest["totals"]["cost"], "tokens": 73294},
        "read": {"events": 24, "cost": manifest["totals"]["cost"]},
        "difference": {"events": 0, "cost": "0"},
        "not_broken_down": 0,
    }  # fmt: skip
    assert IMPORTS in [entry["path"] for entry in manifest["files"]]
    assert verify_bundle(imported.path, imported.key.public).valid


def test_a_record_that_claims_to_tie_but_does_not_is_invalid(
    imported: Good, tmp_path: Path
) -> None:
    record = {**_record(imported), "stored": 20}  # four rows gone, still "ties"
    problems = invalid(bundle(tmp_path, _with_record(imported, record)), imported)
    assert any(p.startswith(IMPORTS) and "says it ties (True)" in p for p in problems), problems


def test_money_that_does_not_tie_is_invalid(imported: Good, tmp_path: Path) -> None:
    record = {**_record(imported), "stored_cost": "0.01"}
    problems = invalid(bundle(tmp_path, _with_record(imported, record)), imported)
    assert any(p.startswith(IMPORTS) and "says it ties" in p for p in problems), problems


def test_a_dropped_record_is_caught_by_the_manifest_count(imported: Good, tmp_path: Path) -> None:
    members = resign({**imported.members, IMPORTS: b""}, imported.key)
    problems = invalid(bundle(tmp_path, members), imported)
    assert any("0 records, the manifest says 1" in p for p in problems), problems


def test_a_record_of_another_tenant_or_period_is_invalid(imported: Good, tmp_path: Path) -> None:
    other = {**_record(imported), "tenant": "umbrella"}
    problems = invalid(bundle(tmp_path, _with_record(imported, other)), imported)
    assert any("a record of tenant 'umbrella'" in p for p in problems), problems
    later = {
        **_record(imported),
        "first_event": "2027-01-01T00:00:00Z",
        "last_event": "2027-01-02T00:00:00Z",
    }
    problems = invalid(bundle(tmp_path, _with_record(imported, later)), imported)
    assert any("do not fall in the period" in p for p in problems), problems


def test_the_manifest_must_list_the_records_member(imported: Good, tmp_path: Path) -> None:
    members = resign(without(imported.members, IMPORTS), imported.key)
    problems = invalid(bundle(tmp_path, members), imported)
    assert any("imports must name" in p for p in problems), problems


def test_a_record_ending_within_the_first_second_of_the_period_falls_in_it(
    imported: Good, tmp_path: Path
) -> None:
    # As text, "2026-10-01T00:00:00.500000Z" sorts before the period's start "...00:00:00Z".
    edge = {**_record(imported), "last_event": "2026-10-01T00:00:00.500000Z"}
    edge["first_event"] = "2026-09-30T23:00:00Z"
    path = bundle(tmp_path, _with_record(imported, edge))
    assert verify_bundle(path, imported.key.public).problems == []
    assert standalone.verify(str(path), imported.key.public.raw()) == []


def _inflate(record: dict[str, Any], extra: int, cost: str | None = None) -> dict[str, Any]:
    """The record with its first day claiming *extra* more events (or another cost), and its
    own figures restated to match, so only the ties to the ledger and the manifest remain."""
    days = {day: dict(cell) for day, cell in record["days"].items()}
    first = min(days)
    days[first]["events"] += extra
    if cost is not None:
        days[first]["cost"] = cost
    return {**record, "days": days}


def test_days_that_claim_more_events_than_the_ledger_holds_are_invalid(
    imported: Good, tmp_path: Path
) -> None:
    record = _inflate(_record(imported), 3)
    problems = invalid(bundle(tmp_path, _with_record(imported, record)), imported)
    assert any("its days hold 27 events" in p for p in problems), problems
    assert any("the records' days put 27 events" in p for p in problems), problems


def test_a_record_deleted_with_the_manifest_resealed_breaks_the_tie(
    imported: Good, tmp_path: Path
) -> None:
    def recount(manifest: dict[str, Any]) -> None:
        manifest["imports"]["count"] = 0

    members = resign({**imported.members, IMPORTS: b""}, imported.key, recount)
    problems = invalid(bundle(tmp_path, members), imported)
    assert not any("records, the manifest says" in p for p in problems), problems
    assert any("the records' days put 0 events ($0) in the period" in p for p in problems)


def test_a_changed_per_source_cost_is_invalid(imported: Good, tmp_path: Path) -> None:
    record = _inflate(_record(imported), 0, cost="9.99")
    problems = invalid(bundle(tmp_path, _with_record(imported, record)), imported)
    assert any("its days hold 24 events ($" in p for p in problems), problems
    assert any("the records' days put 24 events" in p for p in problems), problems


def test_a_declared_difference_that_is_not_the_difference_is_invalid(
    imported: Good, tmp_path: Path
) -> None:
    def lie(manifest: dict[str, Any]) -> None:
        manifest["imports"]["difference"] = {"events": 5, "cost": "1"}

    problems = invalid(bundle(tmp_path, resign(imported.members, imported.key, lie)), imported)
    assert any("declared difference" in p for p in problems), problems


def _capture_record(tmp_path: Path, channel: str, events: list[Any]) -> dict[str, Any]:
    """A capture day's record, as ``p402.ledger.captures`` keeps it, for *events* accepted."""
    from p402.ledger.captures import Tally, add_counts, list_captures

    ledger = Ledger.open(str(tmp_path / f"{channel}.db"))
    try:
        tally = Tally()
        key = (TENANT, channel, 20_364)  # 2025-10-03, a day of arrival before the period
        tally.received(key, len(events))
        for item in events:
            tally.accepted(key, item)
        with ledger.transaction() as connection:
            add_counts(connection, tally, 1)
        (record,) = list_captures(ledger, TENANT)
    finally:
        ledger.close()
    return record


def test_a_capture_record_counts_its_day(imported: Good, tmp_path: Path) -> None:
    """A capture day's record beside the import record: the events it accepted that fall in the
    period join the records' total of it."""
    capture = _capture_record(tmp_path, "meter", small_events()[:2])
    assert capture["ties"] is True and sum(c["events"] for c in capture["days"].values()) == 2

    def add(manifest: dict[str, Any]) -> None:
        manifest["imports"]["count"] = 2

    lines = joined([dumps(_record(imported)), dumps(capture)])
    members = resign({**imported.members, IMPORTS: lines}, imported.key, add)
    problems = invalid(bundle(tmp_path, members), imported)
    assert any("the records' days put 26 events" in p for p in problems), problems


def test_the_completeness_rows_take_import_and_capture_records() -> None:
    from p402.reporting.completeness import completeness

    record = {
        "import_id": "a", "format": "openai-usage", "file": "u.jsonl", "rows_read": 5,
        "stored": 3, "duplicates": 2, "skipped": 0, "odd": 0, "unpriced": 1,
        "tier_unpriced": 0, "ties": True,
        "days": {"2026-10-01": {"events": 2, "cost": "1.5", "tokens": 10},
                 "2026-11-01": {"events": 1, "cost": "2", "tokens": 5}},
    }  # fmt: skip
    capture = {
        "kind": "capture", "import_id": "capture-proxy-2026-10-03", "format": "proxy",
        "day": "2026-10-03", "received": 5, "accepted": 4, "duplicates": 0, "rejected": 1,
        "stored_cost": "0.25", "days": {"2026-10-03": {"events": 4, "cost": "0.25", "tokens": 7}},
    }  # fmt: skip
    tally = {("import:openai-usage", "openai"): [2, 1_500_000_000_000, 10],
             ("proxy", "openai"): [4, 250_000_000_000, 7]}  # fmt: skip
    section = completeness(
        [record, capture, {**record, "import_id": "b", "days": None}], tally,
        tenant=TENANT, start="2026-10-01T00:00:00Z", end="2026-11-01T00:00:00Z",
    )  # fmt: skip
    assert section.recorded == (6, 1_750_000_000_000, 17)
    assert section.difference == (0, 0) and section.not_broken_down == 1
    exceptions = section.exceptions()
    assert "openai-usage u.jsonl: 2 duplicates" in exceptions
    assert "openai-usage u.jsonl: not broken down by day" in exceptions


def test_the_events_by_source_table_sums_to_the_grand_total_to_the_cent() -> None:
    from decimal import Decimal

    from p402.money import round_cents
    from p402.reporting.completeness import Completeness, EventSource

    # Three sources of 0.5 cent each: rounded one by one they would show 3 cents for a total of 2.
    half = 5 * 10**9
    events = tuple(EventSource(f"source-{n}", "openai", 1, half, 10) for n in range(3))
    section = Completeness("acme", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", (), events)
    cents = section.event_cents()
    assert sum(cents, Decimal(0)) == round_cents(3 * half) == section.cents()[2]
