"""The importers' first tests: genuine samples nobody on the team wrote, with figures computed by hand.

Each directory of ``tests/data/genuine/`` is one format's corpus: the files as their source
published them (personal data replaced, as its ``SOURCES.md`` says), a ``SOURCES.md`` naming
the source of each file, and for each case a ``NAME.expected.json``:

``format``
    the ``p402 import`` format;
``files``
    the files imported together, relative to the directory;
``events`` / ``invoice_lines``
    how many the ledger stores;
``cost``
    the exact total cost of the stored events (priced ones), or the amount of the invoice lines,
    as a decimal string, computed by hand from the provider's published prices (``hand`` shows
    the arithmetic);
``unpriced``, ``tier_unpriced``, ``tool_cost``, ``tokens``, ``outcomes``, ``quality``,
``tool_calls``, ``models``
    optional: counts and sums a reader can check against the file by eye;
``events_detail``
    optional: ``[{"match": {FIELD: VALUE}, FIELD: EXPECTED, ...}]``, one stored event found by
    ``match`` and compared field by field (money as decimal strings).

Every import must also tie: its control record has no finding, and a second import of the same
files stores nothing new and changes no money.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from p402.ingest.formats import MODULES
from p402.ingest.importer import import_files
from p402.ledger.events import TOKEN_FIELDS, TOOL_FIELDS
from p402.ledger.schema import invoice_lines_table
from p402.ledger.store import Ledger
from p402.money import from_units

GENUINE = Path(__file__).parent / "data" / "genuine"
TENANT = "genuine"
KNOWN_KEYS = {
    "format",
    "files",
    "events",
    "invoice_lines",
    "cost",
    "unpriced",
    "tier_unpriced",
    "tool_cost",
    "tokens",
    "outcomes",
    "quality",
    "tool_calls",
    "models",
    "events_detail",
    "hand",
    "note",
}


def _cases() -> list[Path]:
    return sorted(GENUINE.glob("*/*.expected.json"))


def _load(path: Path) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return expected


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name.removesuffix('.expected.json')}"


def _value(value: Any) -> Any:
    """A stored field as the expected files write it: money and times as strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return dict(value)
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return value


@pytest.mark.parametrize("case", _cases(), ids=_id)
def test_genuine_sample_gives_the_hand_computed_figures(ledger: Ledger, case: Path) -> None:
    expected = _load(case)
    assert set(expected) <= KNOWN_KEYS, f"unknown keys {set(expected) - KNOWN_KEYS}"
    paths = [case.parent / name for name in expected["files"]]
    summary = import_files(ledger, paths, tenant=TENANT, fmt=expected["format"], jobs=1)
    assert summary.problems == []
    assert summary.findings == []
    assert all(record.ties for record in summary.records)

    events = list(ledger.stream(TENANT))
    assert len(events) == expected.get("events", 0)
    with ledger.engine.connect() as connection:
        amounts = [
            row.amount_units
            for row in connection.execute(
                select(invoice_lines_table).where(invoice_lines_table.c.tenant == TENANT)
            )
        ]
    assert len(amounts) == expected.get("invoice_lines", 0)

    if amounts:
        total = from_units(sum(amounts))
    else:
        total = sum((event.cost for event in events if event.cost is not None), Decimal(0))
    assert total == Decimal(expected["cost"]), "the hand-computed total"

    unpriced = Counter(event.cost_source for event in events)
    assert unpriced["unpriced"] == expected.get("unpriced", 0)
    assert unpriced["tier_unpriced"] == expected.get("tier_unpriced", 0)
    if "tool_cost" in expected:
        tools = sum((event.tool_cost or Decimal(0) for event in events), Decimal(0))
        assert tools == Decimal(expected["tool_cost"])
    if "tokens" in expected:
        tokens = {name: sum(getattr(event, name) for event in events) for name in TOKEN_FIELDS}
        assert {name: tokens[name] for name in expected["tokens"]} == expected["tokens"]
    if "tool_calls" in expected:
        calls = {name: sum(getattr(event, name) for event in events) for name in TOOL_FIELDS}
        assert {name: calls[name] for name in expected["tool_calls"]} == expected["tool_calls"]
    if "outcomes" in expected:
        assert dict(Counter(event.outcome for event in events)) == expected["outcomes"]
    if "quality" in expected:
        codes = Counter(
            code for event in events for code in (event.quality or "").split(",") if code
        )
        assert dict(codes) == expected["quality"]
    if "models" in expected:
        assert sorted({event.model for event in events}) == sorted(expected["models"])
    for detail in expected.get("events_detail", []):
        match = detail["match"]
        found = [
            event
            for event in events
            if all(_value(getattr(event, key)) == value for key, value in match.items())
        ]
        assert len(found) == 1, f"{match} matches {len(found)} events"
        got = {key: _value(getattr(found[0], key)) for key in detail if key != "match"}
        assert got == {key: value for key, value in detail.items() if key != "match"}

    again = import_files(ledger, paths, tenant=TENANT, fmt=expected["format"], jobs=1)
    assert all(record.stored == 0 and record.ties for record in again.records)
    assert sum(record.ledger_cost_change for record in again.records) == 0
    assert len(list(ledger.stream(TENANT))) == len(events)


def test_every_sample_has_its_source_and_every_format_a_corpus() -> None:
    for folder in sorted(path for path in GENUINE.iterdir() if path.is_dir()):
        sources = (folder / "SOURCES.md").read_text(encoding="utf-8")
        for path in sorted(folder.iterdir()):
            if path.name == "SOURCES.md" or path.name.endswith(".expected.json"):
                continue
            assert f"`{path.name}`" in sources, (
                f"{folder.name}/SOURCES.md does not name {path.name}"
            )
        for case in folder.glob("*.expected.json"):
            expected = _load(case)
            assert expected["format"] in MODULES
            assert expected.get("hand"), f"{_id(case)}: no hand computation"
            for name in expected["files"]:
                assert (folder / name).is_file(), f"{_id(case)}: no file {name}"
    covered = {_load(case)["format"] for case in _cases()}
    # A format may lack genuine samples only when its SOURCES.md says so and what was searched.
    searched = {
        folder.name
        for folder in GENUINE.iterdir()
        if (folder / "SOURCES.md").is_file()
        and "No genuine sample found" in (folder / "SOURCES.md").read_text(encoding="utf-8")
        and not list(folder.glob("*.expected.json"))
    }
    missing = set(MODULES) - covered - searched - {"events"}
    assert not missing, (
        f"formats with no genuine sample and no record of the search: {sorted(missing)}"
    )
