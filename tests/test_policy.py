"""Policy at the moment of the call: the model allow-list, hard and soft budgets, their windows,
and the spend they are checked against (seeded from the ledger, then kept in memory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from p402.config import Budget, Config
from p402.ledger.events import Event
from p402.ledger.store import Ledger
from p402.serve.policy import Policy

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


def test_running_totals_follow_recorded_events(ledger: Ledger) -> None:
    budget = Budget("ops month", "workflow", "ops-*", "month", Decimal("1.00"), "hard")
    policy = Policy(Config(budgets=(budget,)), ledger)
    assert policy.decide("acme", model="m", workflow="ops-nightly", now=NOW).decision == "allow"
    # Recorded through the proxy: the ledger and the running total both learn of it.
    event = spend("x", "0.60", workflow="ops-nightly")
    ledger.add([event])
    policy.spent(event)
    assert policy.decide("acme", model="m", workflow="ops-nightly", now=NOW).decision == "allow"
    second = spend("y", "0.40", workflow="ops-nightly")
    ledger.add([second])
    policy.spent(second)
    assert policy.decide("acme", model="m", workflow="ops-nightly", now=NOW).decision == "deny"
    # Each value of a glob has a budget of its own.
    assert policy.decide("acme", model="m", workflow="ops-weekly", now=NOW).decision == "allow"
    # A fresh engine seeds the same total from the ledger alone.
    fresh = Policy(Config(budgets=(budget,)), ledger)
    assert fresh.total("acme", "workflow", "ops-nightly", "month", NOW) == 10**12


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


def test_spend_recorded_elsewhere_counts_once_the_total_is_read_again(
    ledger: Ledger, monkeypatch: Any
) -> None:
    """Another worker (or host) stores events this process never sees: its running total
    learns of them when it reads the ledger's sum again, REFRESH_SECONDS after the last read."""
    import p402.serve.policy as policy_module

    budget = Budget("ops day", "workflow", "ops", "day", Decimal("1.00"), "hard")
    mine, other = (Policy(Config(budgets=(budget,)), ledger) for _ in range(2))
    clock = [1_000.0]
    monkeypatch.setattr("p402.serve.policy.time.monotonic", lambda: clock[0])
    assert mine.decide("acme", model="m", workflow="ops", now=NOW).decision == "allow"
    elsewhere = spend("w2", "1.00", workflow="ops")
    ledger.add([elsewhere])
    other.spent(elsewhere)  # the other worker's own total, not this one's
    clock[0] += policy_module.REFRESH_SECONDS - 0.1
    assert mine.decide("acme", model="m", workflow="ops", now=NOW).decision == "allow"
    clock[0] += 0.2
    assert mine.decide("acme", model="m", workflow="ops", now=NOW).decision == "deny"


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
