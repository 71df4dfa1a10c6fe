"""The manifest is built in one place and checked by the verifier's own rules before it is
signed: whatever an audit can put in it passes, and a manifest the verifier would refuse is
never written."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p402.audit import AuditResult
from p402.audit.manifest import audit_id, draft_id
from p402.bundles.layout import MANIFEST
from p402.bundles.manifest import Manifest, manifest_problems
from p402.bundles.seal import Sealer
from p402.bundles.signing import SigningKey
from p402.bundles.writer import write_bundle
from p402.period import Period, parse_period
from tests.conftest import PERIOD, TENANT

_HEX = st.text("0123456789abcdef", min_size=64, max_size=64)
_PERIODS = st.sampled_from(["2026-10", "2026-Q3", "2024-02", "1999-12"]).map(parse_period)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    """Any manifest an audit can build: real periods, counts, exact costs, hex hashes."""
    period: Period = draw(_PERIODS)
    last = draw(st.integers(min_value=0, max_value=10**6))
    events = draw(st.integers(min_value=0, max_value=10**9))
    return Manifest(
        generator="p402 0.1.0",
        bundle_id=draw(st.text("0123456789abcdef", min_size=16, max_size=16)),
        tenant=draw(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)),
        period=period,
        data_through=period.start + timedelta(microseconds=last),
        events=events,
        cost_units=draw(st.integers(min_value=-(10**24), max_value=10**24)),
        unpriced_events=draw(st.integers(min_value=0, max_value=events)),
        origin=f"p402/acme/{period.label}",
        root=draw(_HEX),
        tree_from_level=draw(st.integers(min_value=0, max_value=10)),
        key_id=draw(_HEX),
        price_table="genai-prices 0.0.x",
        rules_version="0" * 16,
        log={
            "origin": "p402/acme/log",
            "size": events,
            "root": draw(_HEX),
            "previous": None,
            "frontier": [],
            "consistency_proof": [],
        },
        ledger_entries=draw(st.integers(min_value=0, max_value=3)),
    )


def _files(manifest: Manifest) -> list[dict[str, object]]:
    names = ["ledger/events.jsonl", "receipts/receipts.jsonl", "receipts/index.bin",
             "merkle/tree.bin", "ledger/blocks.bin"]  # fmt: skip
    if manifest.ledger_entries:
        names.append("ledger/entries.jsonl")
    return [{"path": name, "size": 0, "sha256": "0" * 64} for name in names]


@given(manifests())
def test_every_manifest_the_audit_can_build_passes_the_verifier(manifest: Manifest) -> None:
    assert manifest_problems({**manifest.to_json(), "files": _files(manifest)}) == []


def test_the_signed_manifest_is_the_built_one(small_bundle: AuditResult) -> None:
    signed = small_bundle.manifest
    assert signed["bundle_id"] == audit_id(TENANT, PERIOD, str(signed["merkle"]["root"]))  # type: ignore[index]
    assert manifest_problems(signed) == []


def test_a_draft_is_named_apart_from_any_audit() -> None:
    assert draft_id(TENANT, PERIOD).startswith("draft-")
    assert draft_id(TENANT, PERIOD) != draft_id(TENANT, parse_period("2026-11"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"key_id": "not hex"}, "key_id must be 64 hex digits"),
        ({"root": "ABC"}, "merkle.root must be 64 hex digits"),
        ({"tenant": ""}, "tenant must be a tenant id"),
        ({"origin": "two\nlines"}, "merkle.origin must be one line of text"),
        ({"log": {"origin": "p402/acme/log"}}, "log.size must be a count"),
    ],
)
def test_the_writer_refuses_a_manifest_the_verifier_would_refuse(
    change: dict[str, object], problem: str, tmp_path: Path, signing_key: SigningKey
) -> None:
    (tmp_path / "scratch").mkdir()
    sealed = Sealer(tmp_path / "scratch").finish()
    good = Manifest(
        generator="p402 0.1.0", bundle_id="0" * 16, tenant=TENANT, period=PERIOD,
        data_through=PERIOD.start, events=0, cost_units=0, unpriced_events=0,
        origin=f"p402/{TENANT}/{PERIOD.label}", root=sealed.root.hex(),
        tree_from_level=sealed.tree_from_level, key_id=signing_key.public.key_id,
        price_table="x", rules_version="y",
        log={"origin": "p402/acme/log", "size": 0, "root": "0" * 64, "previous": None,
             "frontier": [], "consistency_proof": []},
    )  # fmt: skip
    path = tmp_path / "bundle.zip"
    write_bundle(
        path, sealed=sealed, members={}, manifest=good, key=signing_key, moment=PERIOD.start
    )
    assert path.exists()
    path.unlink()
    bad = dataclasses.replace(good, **change)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refusing to sign") as caught:
        write_bundle(
            path, sealed=sealed, members={}, manifest=bad, key=signing_key, moment=PERIOD.start
        )
    assert f"{MANIFEST}: {problem}" in str(caught.value)
    assert not path.exists() and not path.with_name(path.name + ".partial").exists()
