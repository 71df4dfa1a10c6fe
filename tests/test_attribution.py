"""Attribution rules: first match wins, source values win unless a rule overrides, and
re-applying the rules to history is exact and reported."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p402.config import Rule
from p402.ingest import reattribute as reattribute_module
from p402.ingest.attribution import Attributor
from p402.ingest.reattribute import reattribute
from p402.ledger.events import Event
from p402.ledger.schema import event_row, values_row
from p402.ledger.store import Ledger
from tests.conftest import PERIOD

BASE = Event(event_id="e", tenant="acme", occurred_at=datetime(2026, 10, 2, tzinfo=UTC), provider="openai",
             model="gpt-4o", cost=Decimal("1.5"), cost_source="provider")  # fmt: skip
SUPPORT = Rule(
    "support key",
    (("api_key_id", "key_support*"),),
    (("department", "Support"), ("workflow", "triage")),
)
CORE = Rule("core team", (("tag.team", "core"),), (("department", "Engineering"),), override=True)
FALLBACK = Rule("anthropic", (("provider", "anthropic"),), (("department", "Research"),))


def test_first_matching_rule_sets_empty_fields_and_is_recorded() -> None:
    event = Attributor([SUPPORT, FALLBACK]).apply(
        dataclasses.replace(BASE, api_key_id="key_support_7")
    )
    assert (event.department, event.workflow, event.attribution_rule) == (
        "Support",
        "triage",
        "support key",
    )


def test_the_source_wins_unless_the_rule_overrides() -> None:
    mine = dataclasses.replace(BASE, api_key_id="key_support_7", department="Sales")
    kept = Attributor([SUPPORT]).apply(mine)
    assert (kept.department, kept.workflow) == ("Sales", "triage")
    tagged = dataclasses.replace(BASE, department="Sales", tags=(("team", "core"),))
    assert Attributor([CORE]).apply(tagged).department == "Engineering"


def test_globs_exact_values_and_missing_fields() -> None:
    rules = Attributor([SUPPORT])
    assert rules.apply(dataclasses.replace(BASE, api_key_id="key_sales_1")).department is None
    assert rules.apply(BASE).department is None  # no api_key_id at all never matches
    exact = Attributor([Rule("x", (("model", "gpt-4o"),), (("feature", "chat"),))])
    assert exact.apply(BASE).feature == "chat"
    assert exact.apply(dataclasses.replace(BASE, model="gpt-4o-mini")).feature is None


def test_only_the_first_match_applies() -> None:
    both = dataclasses.replace(BASE, api_key_id="key_support_1", tags=(("team", "core"),))
    assert Attributor([SUPPORT, CORE]).apply(both).department == "Support"
    assert Attributor([CORE, SUPPORT]).apply(both).department == "Engineering"


_HELD = st.one_of(
    st.none(),
    st.sampled_from(
        [(("department", "Sales"),), (("attribution_rule", "old"), ("department", "Ops")), ()]
    ),
)


@given(
    rules=st.lists(st.sampled_from([SUPPORT, CORE, FALLBACK]), unique=True),
    api_key=st.sampled_from([None, "key_support_1", "key_sales_2"]),
    department=st.sampled_from([None, "Sales"]),
    team=st.sampled_from([None, "core", "other"]),
    provider=st.sampled_from(["openai", "anthropic"]),
    held=_HELD,
    retained=st.booleans(),
)
def test_attributing_field_values_gives_the_event_and_row_of_attributing_the_event(
    rules: list[Rule], api_key: str | None, department: str | None, team: str | None,
    provider: str, held: tuple[tuple[str, str], ...] | None, retained: bool,
) -> None:  # fmt: skip
    # The importer attributes an event still in pieces and writes its row straight from them.
    values = {
        "event_id": "e", "tenant": "acme", "occurred_at": BASE.occurred_at, "provider": provider,
        "model": "gpt-4o", "cost": Decimal("1.5"), "cost_source": "provider",
        "tags": () if team is None else (("team", team),),
    }  # fmt: skip
    for name, value in (("api_key_id", api_key), ("department", department)):
        if value is not None:
            values[name] = value
    if held is not None:
        values["source_attribution"] = held
    if retained:
        values["retention_until"] = datetime(2027, 10, 2, tzinfo=UTC)
    attributor = Attributor(rules)
    expected = attributor.apply(Event.assemble(values))
    attributor.attribute(values)
    assert Event.assemble(values) == expected
    assert values_row(values) == event_row(expected)


def test_reattributing_history_moves_spend_and_reports_it(ledger: Ledger) -> None:
    items = [
        dataclasses.replace(BASE, event_id=f"s{n}", api_key_id="key_support_1") for n in range(3)
    ] + [dataclasses.replace(BASE, event_id="own", api_key_id="key_support_2", department="Sales")]
    ledger.add(items)
    first = reattribute(ledger, tenant="acme", rules=(SUPPORT,))
    assert (first.events, first.changed) == (4, 4)  # 3 departments set, 1 workflow set
    assert first.moves == {(None, "Support"): [3, 3 * 1_500_000_000_000]}
    assert {e.event_id: e.department for e in ledger.stream("acme", PERIOD)} == {
        "s0": "Support", "s1": "Support", "s2": "Support", "own": "Sales",
    }  # fmt: skip
    again = reattribute(ledger, tenant="acme", rules=(SUPPORT,))
    assert again.changed == 0  # repeatable
    dry = reattribute(ledger, tenant="acme", rules=(), dry_run=True)
    assert dry.moves == {("Support", None): [3, 3 * 1_500_000_000_000]} and dry.changed == 4
    assert {e.department for e in ledger.stream("acme", PERIOD)} == {
        "Support",
        "Sales",
    }  # dry: unchanged
    back = reattribute(ledger, tenant="acme", rules=())
    assert back.changed == 4
    restored = {
        e.event_id: (e.department, e.workflow, e.attribution_rule)
        for e in ledger.stream("acme", PERIOD)
    }
    assert restored == {"s0": (None, None, None), "s1": (None, None, None), "s2": (None, None, None),
                        "own": ("Sales", None, None)}  # fmt: skip


def test_reattributing_many_alike_events_gives_each_what_the_rules_give_it(
    sqlite_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Re-attribution decides once per distinct set of columns: every event must still get what
    # Attributor.apply gives it alone, the counts must add up and progress must cover them all.
    monkeypatch.setattr(reattribute_module, "_BATCH", 7)
    keys = [None, "key_support_1", "key_support_2", "key_sales"]
    items = [
        dataclasses.replace(
            BASE, event_id=f"e{n}", api_key_id=keys[n % 4], department=[None, "Sales"][n % 3 == 0],
            tags=(("team", "core"),) if n % 5 == 0 else (), cost=Decimal(n),
        )
        for n in range(60)
    ]  # fmt: skip
    sqlite_ledger.add(items)
    rules = (SUPPORT, CORE)
    seen: list[int] = []
    outcome = reattribute(sqlite_ledger, tenant="acme", rules=rules, progress=seen.append)
    expected = {item.event_id: Attributor(rules).apply(item) for item in items}
    stored = {event.event_id: event for event in sqlite_ledger.stream("acme", PERIOD)}
    assert stored == expected
    assert outcome.changed == sum(expected[i.event_id] != i for i in items)
    moved = [i for i in items if expected[i.event_id].department != i.department]
    assert sum(count for count, _ in outcome.moves.values()) == len(moved)
    assert sum(units for _, units in outcome.moves.values()) == sum(
        int(i.cost * 10**12) for i in moved if i.cost is not None
    )
    assert sum(seen) == 60


def test_reattribution_stays_inside_its_tenant(ledger: Ledger) -> None:
    ledger.add([dataclasses.replace(BASE, api_key_id="key_support_1")])
    ledger.add([dataclasses.replace(BASE, tenant="globex", api_key_id="key_support_1")])
    reattribute(ledger, tenant="acme", rules=(SUPPORT,))
    assert [e.department for e in ledger.stream("globex", PERIOD)] == [None]
