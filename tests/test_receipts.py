"""Receipts and checkpoints: one event proven alone, offline; every forgery refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p402.audit import AuditResult, run_audit
from p402.bundles.canonical import dumps
from p402.bundles.checkpoint import (
    Checkpoint,
    CheckpointError,
    key_name,
    open_checkpoint,
    sign_checkpoint,
)
from p402.bundles.receipt import ReceiptInvalid, receipt_from_bundle, verify_receipt
from p402.bundles.signing import SigningKey, generate
from p402.errors import P402Error
from p402.ledger.store import Ledger
from tests.conftest import PERIOD, TENANT, small_events

KEY = generate()
HEAD = Checkpoint("p402/acme/2026-10", 24, bytes(range(32)))


def receipts(result: AuditResult) -> dict[str, dict[str, Any]]:
    return {
        event.event_id: json.loads(receipt_from_bundle(result.bundle, event.event_id))
        for event in small_events()
    }


def test_every_event_has_a_receipt_that_verifies_alone(
    small_bundle: AuditResult, signing_key: SigningKey
) -> None:
    found = receipts(small_bundle)
    assert len(found) == small_bundle.summary.events
    for event_id, receipt in found.items():
        checkpoint, event = verify_receipt(dumps(receipt), [signing_key.public])
        assert event["event_id"] == event_id
        assert checkpoint.root.hex() == small_bundle.manifest["merkle"]["root"]  # type: ignore[index]


Built = tuple[SigningKey, dict[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A key and the receipts of every event of the small ledger's bundle, built once."""
    key, scratch = generate(), tmp_path_factory.mktemp("receipts")
    ledger = Ledger.open(str(scratch / "l.db"))
    ledger.add(small_events())
    result = run_audit(ledger, tenant=TENANT, period=PERIOD, key=key, out_dir=scratch / "out")
    ledger.close()
    return key, receipts(result)


def mutations() -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["cost", "index", "size", "proof-bit", "proof-drop", "proof-extra", "note-size"]
    )


@given(kind=mutations(), pick=st.integers(min_value=0, max_value=23))
def test_any_forgery_of_a_receipt_is_refused(built: Built, kind: str, pick: int) -> None:
    key, found = built
    receipt = dict(found[sorted(found)[pick]])
    proof = list(receipt["inclusion_proof"])
    if kind == "cost":
        receipt["event"] = {**receipt["event"], "cost": "999"}
    elif kind == "index":
        receipt["leaf_index"] = (receipt["leaf_index"] + 1) % receipt["tree_size"]
    elif kind == "size":
        receipt["tree_size"] += 1
    elif kind == "proof-bit":
        first = bytes.fromhex(proof[0])
        proof[0] = (bytes([first[0] ^ 1]) + first[1:]).hex()
    elif kind == "proof-drop":
        proof = proof[:-1]
    elif kind == "proof-extra":
        proof = [*proof, "00" * 32]
    elif kind == "note-size":
        receipt["checkpoint"] = receipt["checkpoint"].replace("\n24\n", "\n25\n", 1)
    receipt["inclusion_proof"] = proof
    with pytest.raises(ReceiptInvalid):
        verify_receipt(dumps(receipt), [key.public])


def test_a_receipt_replayed_with_another_bundles_checkpoint_is_refused(
    built: Built, tmp_path: Path
) -> None:
    key, found = built
    ledger = Ledger.open(str(tmp_path / "other.db"))
    ledger.add(dataclasses.replace(e, event_id=f"other-{e.event_id}") for e in small_events())
    other = run_audit(ledger, tenant=TENANT, period=PERIOD, key=key, out_dir=tmp_path / "other")
    ledger.close()
    note = json.loads(receipt_from_bundle(other.bundle, "other-evt-001"))["checkpoint"]
    replayed = {**found["evt-001"], "checkpoint": note}
    with pytest.raises(ReceiptInvalid, match="not leaf"):
        verify_receipt(dumps(replayed), [key.public])


def test_wrong_key_and_garbage(built: Built) -> None:
    key, found = built
    with pytest.raises(ReceiptInvalid, match="no trusted key signed"):
        verify_receipt(dumps(found["evt-001"]), [generate().public])
    for garbage in (b"", b"{}", b"[1]", b'{"format": "p402-receipt"}', b"\xff"):
        with pytest.raises(ReceiptInvalid):
            verify_receipt(garbage, [key.public])


def test_a_missing_event_is_a_clear_error(small_bundle: AuditResult) -> None:
    with pytest.raises(P402Error, match="no event 'nope'"):
        receipt_from_bundle(small_bundle.bundle, "nope")


def test_checkpoint_is_a_c2sp_signed_note() -> None:
    note = sign_checkpoint(HEAD, [KEY])
    text, signatures = note.split("\n\n")
    assert text == "p402/acme/2026-10\n24\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    assert signatures.startswith(f"\u2014 {key_name(KEY.public)} ") and signatures.endswith("\n")
    assert open_checkpoint(note, [KEY.public]) == HEAD


def test_two_keys_sign_one_checkpoint_and_either_is_trusted() -> None:
    second = generate()
    note = sign_checkpoint(HEAD, [KEY, second])
    assert open_checkpoint(note, [second.public]) == HEAD
    assert open_checkpoint(note, [KEY.public, second.public]) == HEAD


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda n: n.replace("\n24\n", "\n25\n"), "does not verify"),
        (lambda n: n.replace("p402/acme", "p402/evil"), "does not verify"),
        (lambda n: n.replace("\n\n", "\n"), "blank line"),
        (lambda n: n.replace("\u2014 ", "- "), "not a signature line"),
        (lambda n: n.replace("\n24\n", "\n\x0724\n"), "control characters"),
    ],
)
def test_checkpoint_forgeries_are_refused(change: Any, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        open_checkpoint(change(sign_checkpoint(HEAD, [KEY])), [KEY.public])


def test_unknown_signers_are_ignored_but_one_trusted_is_needed() -> None:
    stranger = generate()
    with pytest.raises(CheckpointError, match="no trusted key"):
        open_checkpoint(sign_checkpoint(HEAD, [stranger]), [KEY.public])
