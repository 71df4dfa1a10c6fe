"""The tenant's append-only audit log: each audit appends its events to one RFC 9162 tree per
tenant, the manifest carries the previous head, its frontier and a consistency proof, and
``p402 verify NEW --previous OLD`` proves the old log is a prefix of the new one."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p402.audit import AuditResult, run_audit
from p402.bundles.canonical import loads
from p402.bundles.layout import MANIFEST
from p402.bundles.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    append_leaves,
    frontier_root,
    leaf_hash,
    root,
    subtree_consistency_proof,
    verify_consistency,
)
from p402.bundles.signing import SigningKey, generate
from p402.bundles.verify import verify_bundle
from p402.ledger.events import Event
from p402.ledger.store import Ledger
from p402.period import parse_period
from tests.conftest import PERIOD, TENANT, small_events
from tests.test_bundle_tamper import read_members, resign, write_zip
from tests.test_cli import run

NOVEMBER = parse_period("2026-11")


@given(st.integers(0, 80), st.data())
def test_appending_to_a_frontier_is_the_whole_tree(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(0, n))
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    old = append_leaves([], 0, leaves[:m])
    assert frontier_root(old) == root(leaves[:m])
    assert len(old) == m.bit_count()
    assert frontier_root(append_leaves(old, m, leaves[m:])) == root(leaves)
    if m:
        proof = subtree_consistency_proof(old, m, leaves[m:])
        assert proof == MerkleTree(leaves).consistency_proof(m)
        assert verify_consistency(m, n, root(leaves[:m]), root(leaves), proof)


def test_a_malformed_frontier_is_refused() -> None:
    leaf = leaf_hash(b"x")
    with pytest.raises(ValueError, match="frontier"):
        append_leaves([leaf], 3, [leaf])
    with pytest.raises(ValueError, match="consistency proof"):
        subtree_consistency_proof([], 0, [leaf])
    assert frontier_root([]) == EMPTY_ROOT


def _november(n: int) -> list[Event]:
    base = datetime(2026, 11, 2, tzinfo=UTC)
    return [
        Event(
            event_id=f"nov-{i}",
            tenant=TENANT,
            occurred_at=base + timedelta(hours=i),
            provider="openai",
            model="gpt-4o",
            input_tokens=100,
            cost=Decimal("0.5"),
            cost_source="provider",
        )
        for i in range(n)
    ]


def _audit(ledger: Ledger, key: SigningKey, out: Path, period: Any = PERIOD) -> AuditResult:
    return run_audit(ledger, tenant=TENANT, period=period, key=key, out_dir=out)


def _log(result: AuditResult) -> dict[str, Any]:
    with zipfile.ZipFile(result.bundle) as archive:
        manifest: dict[str, Any] = loads(archive.read(MANIFEST))
    return dict(manifest["log"])


@pytest.mark.slow
def test_audits_append_to_the_tenant_log(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    key = generate()
    sqlite_ledger.add(small_events())
    october = _audit(sqlite_ledger, key, tmp_path / "oct")
    first = _log(october)
    assert first["previous"] is None and first["frontier"] == [] == first["consistency_proof"]
    merkle: Any = october.manifest["merkle"]
    assert (first["size"], first["root"]) == (24, merkle["root"])

    sqlite_ledger.add(_november(5))
    november = _audit(sqlite_ledger, key, tmp_path / "nov", NOVEMBER)
    second = _log(november)
    assert second["previous"] == {"size": 24, "root": first["root"]}
    assert second["size"] == 29
    outcome = verify_bundle(november.bundle, key.public, previous=october.bundle)
    assert outcome.valid, outcome.problems

    # Re-issuing an audit reuses its place in the log: the same bytes.
    again = _audit(sqlite_ledger, key, tmp_path / "oct-again")
    assert again.bundle.read_bytes() == october.bundle.read_bytes()

    # A late October event: the re-audit appends the new October after November.
    late = small_events()[0].evolve(
        event_id="late-oct", occurred_at=datetime(2026, 10, 30, tzinfo=UTC)
    )
    sqlite_ledger.add([late])
    reissued = _audit(sqlite_ledger, key, tmp_path / "oct-late")
    third = _log(reissued)
    assert third["previous"] == {"size": 29, "root": second["root"]} and third["size"] == 54
    assert verify_bundle(reissued.bundle, key.public, previous=november.bundle).valid
    skipped = verify_bundle(reissued.bundle, key.public, previous=october.bundle)
    assert skipped.problems == [
        "the previous bundle's log (24 leaves) is not the one the new bundle appended to "
        "(29 leaves); verify each step of the chain, bundle by bundle"
    ]
    backwards = verify_bundle(october.bundle, key.public, previous=november.bundle)
    assert not backwards.valid


@pytest.mark.slow
def test_a_forked_history_is_caught(tmp_path: Path) -> None:
    key = generate()
    honest, forged = (Ledger.open(str(tmp_path / f"{name}.db")) for name in ("honest", "forged"))
    try:
        honest.add(small_events())
        october = _audit(honest, key, tmp_path / "honest")
        # Another history of October (one cost changed), then November on top of it.
        changed = small_events()
        changed[0] = changed[0].evolve(cost=Decimal("0.000000000001"))
        forged.add(changed)
        _audit(forged, key, tmp_path / "forged")
        forged.add(_november(3))
        november = _audit(forged, key, tmp_path / "forged-nov", NOVEMBER)
    finally:
        honest.close()
        forged.close()
    assert verify_bundle(november.bundle, key.public).valid
    outcome = verify_bundle(november.bundle, key.public, previous=october.bundle)
    assert len(outcome.problems) == 1 and outcome.problems[0].startswith("the log forked")


@pytest.mark.slow
def test_verify_previous_on_the_command_line(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    from p402.bundles.signing import create_keys

    _, public, key = create_keys(key_dir)
    sqlite_ledger.add(small_events())
    october = _audit(sqlite_ledger, key, tmp_path / "oct")
    sqlite_ledger.add(_november(2))
    november = _audit(sqlite_ledger, key, tmp_path / "nov", NOVEMBER)
    done = run(
        "verify", str(november.bundle), "--key", str(public), "--previous", str(october.bundle)
    )
    assert done.returncode == 0, done.stderr
    assert "append-only: the log of" in done.stdout and "24 → 26 leaves" in done.stdout
    refused = run(
        "verify", str(october.bundle), "--key", str(public), "--previous", str(november.bundle)
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], SigningKey]:
    """The members of a second audit (November after October) and its key: built once for the
    module, since every test only reads them."""
    folder = tmp_path_factory.mktemp("second")
    key = generate()
    ledger = Ledger.open(str(folder / "ledger.db"))
    try:
        ledger.add(small_events())
        _audit(ledger, key, folder / "oct")
        ledger.add(_november(6))
        november = _audit(ledger, key, folder / "nov", NOVEMBER)
        return read_members(november.bundle.read_bytes()), key
    finally:
        ledger.close()


def _flip(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda log: log["frontier"].append(log["root"]), "the frontier is not that of the previous log"),
        (lambda log: log["frontier"].__setitem__(0, _flip(log["frontier"][0])), "the frontier is not"),
        (lambda log: log["previous"].__setitem__("root", _flip(log["previous"]["root"])), "the frontier is not"),
        (lambda log: log.__setitem__("size", log["size"] + 1), "grows from 24 to 31 leaves"),
        (lambda log: log.__setitem__("root", _flip(log["root"])), "does not give the log's root"),
        (lambda log: log["consistency_proof"].pop(), "the consistency proof does not hold"),
        (lambda log: log["consistency_proof"].__setitem__(0, _flip(log["consistency_proof"][0])),
         "the consistency proof does not hold"),
        (lambda log: log.__setitem__("previous", None), "the frontier is not"),
        (lambda log: log.__setitem__("previous", {"size": -1, "root": "x"}), "log.previous must be"),
        (lambda log: log.__setitem__("frontier", "nope"), "log.frontier must be"),
    ],
)  # fmt: skip
def test_a_tampered_log_section_is_caught(
    second: tuple[dict[str, bytes], SigningKey], tmp_path: Path, edit: Any, problem: str
) -> None:
    members, key = second
    forged = resign(members, key, lambda manifest: edit(manifest["log"]))
    outcome = verify_bundle(write_zip(tmp_path / "forged.zip", forged.items()), key.public)
    assert problem in outcome.problems[0], outcome.problems
    assert all(found.startswith(f"{MANIFEST}: log") for found in outcome.problems)


def test_an_empty_first_audit_is_a_prefix_of_the_next(
    sqlite_ledger: Ledger, tmp_path: Path
) -> None:
    key = generate()
    empty = _audit(sqlite_ledger, key, tmp_path / "sep", parse_period("2026-09"))
    assert _log(empty)["size"] == 0
    sqlite_ledger.add(small_events())
    october = _audit(sqlite_ledger, key, tmp_path / "oct")
    outcome = verify_bundle(october.bundle, key.public, previous=empty.bundle)
    assert outcome.valid, outcome.problems
