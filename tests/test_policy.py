"""Policy at the moment of the call: the model allow-list, hard and soft budgets, their windows,
and the spend they are checked against: hard budgets in windows shared through the database,
with what the calls in flight hold; soft ones seeded from the ledger, then kept in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from p402.config import Budget, Config
from p402.ledger.budgets import HOLD_SECONDS, RESEED_SECONDS, settle
from p402.ledger.events import Event
from p402.ledger.schema import budget_holds_table
from p402.ledger.store import Ledger
from p402.serve.policy import Policy, hard_spend

NOW = datetime(2026, 10, 15, 12, tzinfo=UTC)


def spend(event_id: str, cost: str, *, when: datetime = NOW, **fields: Any) -> Event:
    return Event(
        event_id=event_id, tenant=fields.pop("tenant", "acme"), occurred_at=when,
        provider="openai", model="gpt-4o", cost=Decimal(cost), cost_source="provider", **fields,
    )  # fmt: skip


def test_nothing_configured_allows_everything() -> None:
    policy = Policy(Config())
    assert not policy.active
    assert policy.decide("acme", model="anything").decision == "allow"


def test_the_allow_list_refuses_other_models_with_403() -> None:
    policy = Policy(Config(allowed_models=("gpt-4o*", "claude-*-4-5")))
    assert policy.decide("acme", model="gpt-4o-mini").decision == "allow"
    assert policy.decide("acme", model="claude-haiku-4-5").decision == "allow"
    refused = policy.decide("acme", model="o1-pro")
    assert (refused.decision, refused.http_status, refused.policy, refused.code) == (
        "deny", 403, "models.allow", "model_not_allowed",
    )  # fmt: skip
    assert refused.message is not None and "o1-pro" in refused.message


def test_hard_and_soft_limits_from_the_ledger(ledger: Ledger) -> None:
    ledger.add([
        spend("a", "6.00", department="Support"),
        spend("b", "4.00", department="Support"),
        spend("c", "50.00", department="Sales"),
        spend("d", "99.00", department="Support", when=NOW - timedelta(days=1)),  # yesterday
        spend("e", "99.00", department="Support", tenant="globex"),  # another tenant
    ])  # fmt: skip
    budgets = (
        Budget("support day", "department", "Support", "day", Decimal(10), "hard"),
        Budget("anyone day", "department", "*", "day", Decimal(20), "soft"),
    )
    policy = Policy(Config(budgets=budgets), ledger)
    refused = policy.decide("acme", model="gpt-4o", department="Support", now=NOW)
    assert (refused.decision, refused.http_status, refused.policy) == ("deny", 429, "support day")
    assert refused.message is not None and "10 USD today" in refused.message
    # Sales has no hard limit, but has passed everyone's soft one: flagged, let through.
    flagged = policy.decide("acme", model="gpt-4o", department="Sales", now=NOW)
    assert (flagged.decision, flagged.policy, flagged.http_status) == ("flag", "anyone day", 200)
    assert policy.decide("acme", model="gpt-4o", department="Legal", now=NOW).decision == "allow"
    assert policy.decide("acme", model="gpt-4o", now=NOW).decision == "allow"  # unattributed
    # The next day starts from nothing.
    tomorrow = NOW + timedelta(days=1)
    assert (
        policy.decide("acme", model="gpt-4o", department="Support", now=tomorrow).decision
        == "allow"
    )


def store(ledger: Ledger, policy: Policy, *events: Event, holds: tuple[str, ...] = ()) -> None:
    """What the service's writer does: store events and settle them in one transaction."""
    with ledger.transaction() as connection:
        ledger.insert(connection, list(events))
        settle(connection, holds, hard_spend(policy, events))


def held(ledger: Ledger) -> list[tuple[str, int]]:
    table = budget_holds_table
    with ledger.engine.connect() as connection:
        rows = connection.execute(select(table.c.budget, table.c.units).order_by(table.c.id))
        return [(row[0], int(row[1])) for row in rows]


def test_hard_spend_follows_recorded_events(ledger: Ledger) -> None:
    budget = Budget("ops month", "workflow", "ops-*", "month", Decimal("1.00"), "hard")
    policy = Policy(Config(budgets=(budget,)), ledger)
    assert policy.decide("acme", model="m", workflow="ops-nightly", now=NOW).decision == "allow"
    # Stored by the writer: the window's shared spend learns of it in the same transaction.
    store(ledger, policy, spend("x", "0.60", workflow="ops-nightly"))
    assert policy.decide("acme", model="m", workflow="ops-nightly", now=NOW).decision == "allow"
    store(ledger, policy, spend("y", "0.40", workflow="ops-nightly"))
    assert policy.decide("acme", model="m", workflow="ops-nightly", now=NOW).decision == "deny"
    # Each value of a glob has a budget of its own.
    assert policy.decide("acme", model="m", workflow="ops-weekly", now=NOW).decision == "allow"
    # A fresh engine sees the same window, and its total from the ledger alone.
    fresh = Policy(Config(budgets=(budget,)), ledger)
    assert fresh.decide("acme", model="m", workflow="ops-nightly", now=NOW).decision == "deny"
    assert fresh.total("acme", "workflow", "ops-nightly", "month", NOW) == 10**12


def test_calls_in_flight_hold_their_estimate_until_their_event_is_stored(ledger: Ledger) -> None:
    budget = Budget("ops day", "workflow", "ops", "day", Decimal("1.00"), "hard", 100)
    policy = Policy(Config(budgets=(budget,)), ledger)
    asked: list[int] = []

    def estimate(ceiling: int) -> int:
        asked.append(ceiling)
        return 60 * 10**10  # $0.60

    first = policy.decide("acme", model="m", workflow="ops", now=NOW, estimate=estimate)
    second = policy.decide("acme", model="m", workflow="ops", now=NOW, estimate=estimate)
    assert (first.decision, second.decision) == ("allow", "allow")  # 0 + 0.60 < 1.00
    assert first.hold and second.hold and first.hold != second.hold
    assert asked == [100, 100]  # the budget's ceiling, for calls that name no maximum
    # $1.20 held: a third call is refused before anything was spent, and holds nothing.
    third = policy.decide("acme", model="m", workflow="ops", now=NOW, estimate=estimate)
    assert (third.decision, third.http_status, third.hold) == ("deny", 429, None)
    assert third.message is not None and "1.20 USD held by calls in flight" in third.message
    assert len(held(ledger)) == 2
    # The first call ends costing $0.10: its hold goes, its cost counts; room for one more.
    store(ledger, policy, spend("a", "0.10", workflow="ops"), holds=(first.hold,))
    assert held(ledger) == [("ops day", 60 * 10**10)]
    assert policy.decide("acme", model="m", workflow="ops", now=NOW,
                         estimate=estimate).decision == "allow"  # 0.10 + 0.60 < 1  # fmt: skip
    assert policy.decide("acme", model="m", workflow="ops", now=NOW,
                         estimate=estimate).decision == "deny"  # fmt: skip


def test_a_hold_of_a_process_that_died_expires(ledger: Ledger, monkeypatch: Any) -> None:
    import p402.serve.policy as policy_module

    budget = Budget("ops day", "workflow", "ops", "day", Decimal("1.00"), "hard")
    policy = Policy(Config(budgets=(budget,)), ledger)
    clock = [policy_module.now_us()]
    monkeypatch.setattr(policy_module, "now_us", lambda: clock[0])
    whole = policy.decide("acme", model="m", workflow="ops", now=NOW, estimate=lambda _: 10**12)
    assert whole.decision == "allow"
    assert policy.decide("acme", model="m", workflow="ops", now=NOW).decision == "deny"
    clock[0] += int(HOLD_SECONDS * 1_000_000) + 1  # its event never came
    assert policy.decide("acme", model="m", workflow="ops", now=NOW).decision == "allow"


def test_customer_and_api_key_scopes(ledger: Ledger) -> None:
    ledger.add([spend("k", "3", customer="Globex", api_key_id="abc123")])
    budgets = (
        Budget("globex", "customer", "Globex", "month", Decimal(5), "hard"),
        Budget("key", "api_key", "abc*", "month", Decimal(2), "hard"),
    )
    policy = Policy(Config(budgets=budgets), ledger)
    assert policy.decide("acme", model="m", customer="Globex", now=NOW).decision == "allow"
    refused = policy.decide("acme", model="m", customer="Globex", api_key_id="abc123", now=NOW)
    assert (refused.decision, refused.policy) == ("deny", "key")
    assert refused.message is not None and "API key 'abc123'" in refused.message


def test_spend_outside_the_window_or_unseeded_is_not_double_counted(ledger: Ledger) -> None:
    budget = Budget("d", "department", "Ops", "day", Decimal(1), "hard")
    policy = Policy(Config(budgets=(budget,)), ledger)
    # Not read yet: the event is left to the first read, which finds it in the ledger.
    event = spend("z", "0.75", department="Ops")
    ledger.add([event])
    policy.spent(event)
    assert policy.total("acme", "department", "Ops", "day", NOW) == 75 * 10**10
    # Yesterday's spend never lands in today's total.
    policy.spent(spend("old", "5", department="Ops", when=NOW - timedelta(days=1)))
    assert policy.total("acme", "department", "Ops", "day", NOW) == 75 * 10**10


def test_hard_spend_stored_by_another_worker_counts_at_once(ledger: Ledger) -> None:
    budget = Budget("ops day", "workflow", "ops", "day", Decimal("1.00"), "hard")
    mine, other = (Policy(Config(budgets=(budget,)), ledger) for _ in range(2))
    assert mine.decide("acme", model="m", workflow="ops", now=NOW).decision == "allow"
    store(ledger, other, spend("w2", "1.00", workflow="ops"))  # the other worker's writer
    assert mine.decide("acme", model="m", workflow="ops", now=NOW).decision == "deny"


def test_spend_that_bypasses_the_writer_counts_once_the_window_is_read_again(
    ledger: Ledger, monkeypatch: Any
) -> None:
    """An import stores events no writer settles: a hard window learns of them when it sums the
    ledger again, RESEED_SECONDS after its last read; a soft total after REFRESH_SECONDS."""
    import p402.serve.policy as policy_module

    hard = Budget("ops day", "workflow", "ops", "day", Decimal("1.00"), "hard")
    soft = Budget("ops soft", "workflow", "ops", "day", Decimal("1.00"), "soft")
    policy = Policy(Config(budgets=(hard, soft)), ledger)
    clock, wall = [1_000.0], [policy_module.now_us()]
    monkeypatch.setattr("p402.serve.policy.time.monotonic", lambda: clock[0])
    monkeypatch.setattr(policy_module, "now_us", lambda: wall[0])
    assert policy.decide("acme", model="m", workflow="ops", now=NOW).decision == "allow"
    ledger.add([spend("w2", "1.00", workflow="ops")])  # an import: no writer saw it
    clock[0] += policy_module.REFRESH_SECONDS - 0.1
    wall[0] += int((RESEED_SECONDS - 0.1) * 1_000_000)
    assert policy.decide("acme", model="m", workflow="ops", now=NOW).decision == "allow"
    clock[0] += 0.2
    wall[0] += 200_000
    refused = policy.decide("acme", model="m", workflow="ops", now=NOW)
    assert (refused.decision, refused.policy) == ("deny", "ops day")
    assert policy.total("acme", "workflow", "ops", "day", NOW) == 10**12  # the soft total too


def test_spend_dated_after_the_window_does_not_count_in_it(ledger: Ledger) -> None:
    budget = Budget("ops day", "workflow", "ops", "day", Decimal("1.00"), "hard")
    ledger.add([spend("future", "5.00", when=NOW + timedelta(days=3), workflow="ops")])
    policy = Policy(Config(budgets=(budget,)), ledger)
    assert policy.decide("acme", model="m", workflow="ops", now=NOW).decision == "allow"
    later = Policy(Config(budgets=(budget,)), ledger)
    assert (
        later.decide("acme", model="m", workflow="ops", now=NOW + timedelta(days=3)).decision
        == "deny"
    )


def test_concurrent_admissions_never_share_the_figures_they_decide_on(ledger: Ledger) -> None:
    """40 threads admit calls to one window at once: exactly as many are admitted as the holds
    fit below the limit ($0.25 each under $1.00: four), on either store."""
    from concurrent.futures import ThreadPoolExecutor

    budget = Budget("ops day", "workflow", "ops", "day", Decimal("1.00"), "hard")
    policy = Policy(Config(budgets=(budget,)), ledger)

    def admit(_: int) -> str:
        return policy.decide(
            "acme", model="m", workflow="ops", now=NOW, estimate=lambda _: 25 * 10**10
        ).decision

    with ThreadPoolExecutor(8) as pool:
        decisions = list(pool.map(admit, range(40)))
    assert decisions.count("allow") == 4 and decisions.count("deny") == 36
    assert sum(units for _, units in held(ledger)) == 10**12


def test_a_hard_budget_that_cannot_be_checked_refuses_the_call(
    ledger: Ledger, monkeypatch: Any
) -> None:
    """A lock wait past SQLite's timeout (or a database gone away) must not let a call past a
    hard limit, nor answer 500: the call is refused, 503, and may be tried again."""
    import p402.serve.policy as policy_module
    from p402.ledger.store import StoreError

    def unavailable(*_args: Any, **_kwargs: Any) -> None:
        raise StoreError("the ledger could not be written: OperationalError: database is locked")

    monkeypatch.setattr(policy_module, "reserve", unavailable)
    budget = Budget("ops day", "workflow", "ops", "day", Decimal("1.00"), "hard")
    refused = Policy(Config(budgets=(budget,)), ledger).decide(
        "acme", model="m", workflow="ops", now=NOW
    )
    assert (refused.decision, refused.http_status, refused.code, refused.hold) == (
        "deny", 503, "budget_unavailable", None,
    )  # fmt: skip
    assert refused.message is not None and "could not be checked" in refused.message
