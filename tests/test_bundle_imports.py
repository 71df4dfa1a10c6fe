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
    assert manifest["imports"] == {"file": IMPORTS, "count": 1}
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
