"""Optimize and the actions: savings priced by re-pricing the period's own events, and the
report's first page leading with what to do."""

from __future__ import annotations

import io
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from p402.audit.optimize import MIN_SAVING, RightSizing
from p402.config import Config
from p402.ingest.pricing import Pricer
from p402.ledger.events import Event
from p402.money import round_cents, to_units
from p402.period import parse_period
from p402.reporting.actions import SAVINGS, actions
from p402.reporting.aggregate import Aggregator
from p402.reporting.report import build_report
from tests.conftest import small_events
from tests.test_cli import run

OCTOBER = parse_period("2026-10")


def _calls(model: str, count: int, **fields: object) -> list[Event]:
    pricer = Pricer()
    base = small_events("acme")[0].evolve(
        provider="anthropic", model=model, cost=None, list_cost=None, cost_source=None, price_ref=None,
        input_tokens=20_000, cache_read_tokens=0, output_tokens=1_500, workflow="coding", department="Engineering",
    )  # fmt: skip
    start = datetime(2026, 10, 1, 9, tzinfo=UTC)
    return [
        pricer.apply(
            base.evolve(event_id=f"{model}-{n}", occurred_at=start + timedelta(hours=n), **fields)
        )
        for n in range(count)
    ]


def _sized(events: list[Event]) -> RightSizing:
    sizing = RightSizing(Pricer())
    for event in events:
        sizing.add(event.to_json(), None if event.cost is None else to_units(event.cost))
    return sizing


def test_a_top_model_is_repriced_at_its_sibling_s_price_on_each_day() -> None:
    opus = _calls("claude-opus-4-1", 40)
    (saving,) = _sized([*opus, *_calls("claude-sonnet-4-5", 10)]).savings()
    # The same tokens priced as an import prices them, on the alternative.
    repriced = [
        Pricer().apply(e.evolve(model="claude-sonnet-4-5", cost=None, list_cost=None)) for e in opus
    ]
    units = sum(to_units(e.cost) for e in opus if e.cost is not None)
    alternative = sum(to_units(e.cost) for e in repriced if e.cost is not None)
    assert (saving.model, saving.alternative, saving.events, saving.department) == (
        "claude-opus-4-1", "claude-sonnet-4-5", 40, "Engineering",
    )  # fmt: skip
    assert saving.cost == round_cents(units) and saving.alternative_cost == round_cents(alternative)
    assert saving.saving == round_cents(units - alternative) > MIN_SAVING
    assert "quality check" in saving.risk
    now, then = saving.per_request
    assert now > then > 0


def test_what_cannot_be_repriced_or_saves_little_is_left_out() -> None:
    assert (
        _sized(_calls("claude-opus-4-1", 40, workflow=None)).savings() == ()
    )  # no workflow to act on
    unpriced = [e.evolve(cost=None) for e in _calls("claude-opus-4-1", 40)]
    assert _sized(unpriced).savings() == ()
    assert _sized(_calls("claude-sonnet-4-5", 40)).savings() == ()  # already the smaller model
    assert _sized(_calls("claude-opus-4-1", 1)).savings() == ()  # under $10


def test_actions_lead_with_the_largest_dollars_and_name_their_owner() -> None:
    events = [*_calls("claude-opus-4-1", 60), *small_events("acme")]
    aggregator = Aggregator()
    aggregator.extend(events)
    summary = aggregator.summary(start=OCTOBER.start.date())
    report = build_report(summary, period=OCTOBER, config=Config(), billed={}, tenant="acme")
    report = replace(report, savings=_sized(events).savings())
    found = actions(report)
    assert [a.impact for a in found] == sorted((a.impact for a in found), reverse=True)
    first = found[0]
    assert (
        first.owner == "Engineering"
        and "claude-sonnet-4-5" in first.title
        and "quality check" in first.title
    )
    unattributed = next(a for a in found if "unattributed" in a.title)
    assert unattributed.impact == summary.unattributed and unattributed.owner == "FinOps"
    assert "key " in unattributed.detail  # the keys behind it, named
    assert sum(1 for a in found if "Try " in a.title) <= SAVINGS


@pytest.mark.slow
def test_the_demo_s_first_page_answers_the_cfo(tmp_path: Path) -> None:
    from pypdf import PdfReader

    made = run("audit", "--demo", "--out", "out", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    (bundle,) = (tmp_path / "out").glob("*.zip")
    pdf = subprocess.run(
        ["unzip", "-p", str(bundle), "report.pdf"], capture_output=True, check=True
    ).stdout
    first = " ".join(PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())  # cells wrap lines
    for needle in (
        "Northwind Traders", "$11,924.46", "92.3 %", "What to do first", "claude-sonnet-4-5 for coding-assistant",
        "$1,463.47", "$922.13", "Quarter forecast", "served customers", "133.0 %",
        "since 2026-10-23",
    ):  # fmt: skip
        assert needle.lower() in first.lower(), needle  # labels are upper-cased by the stylesheet
    assert "Bundle id" not in first and "Signing key" not in first  # the ids are on the method page
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Signing key id" in text and "What to do" in text
