"""Reconciliation with invoices, and the journal that accrues the spend: the cases a controller meets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from p402.config import Invoice, JournalSettings
from p402.money import from_units, round_cents, split_cents, to_units
from p402.reporting.aggregate import Charge, ProviderMonth
from p402.reporting.bridge import bridge
from p402.reporting.journal import JournalLine, journal
from p402.reporting.reconciliation import Reconciliation, reconcile

OCTOBER = frozenset(date(2026, 10, day) for day in range(1, 32))


def month(
    provider: str, dollars: str, *, days: frozenset[date] = OCTOBER, unpriced: int = 0,
    charges: tuple[Charge, ...] | None = None,
) -> ProviderMonth:  # fmt: skip
    units = to_units(Decimal(dollars))
    charges = charges or (
        Charge("Engineering", None, False, units - units // 4), Charge("Sales", None, False, units // 4),
    )  # fmt: skip
    departments = tuple((c.department, c.units) for c in charges)
    return ProviderMonth(provider, "2026-10", 10, units, unpriced, 5_000 * unpriced, days,
                         departments, round_cents(units), charges)  # fmt: skip


def entries(
    months: list[ProviderMonth],
    invoices: list[Invoice],
    settings: JournalSettings | None = None,
    billed: dict[tuple[str, str], int] | None = None,
) -> list[JournalLine]:
    settings = settings or JournalSettings()
    found = reconcile(months, invoices=invoices, billed=billed or {}, through=None,
                      period_months=["2026-10"])  # fmt: skip
    return journal(months, bridge(found, settings), settings, entity="acme")


def rows(
    months: list[ProviderMonth],
    invoices: list[Invoice],
    billed: dict[tuple[str, str], int] | None = None,
) -> dict[str, Reconciliation]:
    found = reconcile(
        months,
        invoices=invoices,
        billed=billed or {},
        through=date(2026, 10, 31),
        period_months=["2026-10"],
    )
    return {row.provider: row for row in found}


def test_within_half_a_percent_is_reconciled() -> None:
    found = rows([month("openai", "1000.00")], [Invoice("openai", "2026-10", Decimal("1004.00"))])
    assert (found["openai"].status, found["openai"].percent) == ("reconciled", Decimal("-0.40"))


def test_over_and_under_are_findings_with_causes() -> None:
    found = rows(
        [month("openai", "1100.00"), month("anthropic", "900.00", unpriced=3)],
        [
            Invoice("openai", "2026-10", Decimal("1000.00")),
            Invoice("anthropic", "2026-10", Decimal("1000.00")),
        ],
    )
    assert found["openai"].status == "ledger over invoice" and found[
        "openai"
    ].difference == Decimal("100.00")
    assert found["openai"].percent == Decimal("9.09")
    under = found["anthropic"]
    assert under.status == "ledger under invoice" and under.difference == Decimal("-100.00")
    assert under.causes == ("3 events (15,000 tokens) use a model with no known price",)


def test_a_billed_month_missing_from_the_ledger() -> None:
    found = rows([], [Invoice("google", "2026-10", Decimal("250.00"))])
    assert (found["google"].status, found["google"].ledger, found["google"].percent) == (
        "missing from ledger", Decimal("0.00"), Decimal("-100.00"),
    )  # fmt: skip


def test_billed_days_with_no_usage_are_named() -> None:
    quiet = OCTOBER - {date(2026, 10, 7), date(2026, 10, 8)}
    billed = {("openai", f"2026-10-{day:02d}"): to_units(Decimal("40")) for day in range(1, 32)}
    found = rows([month("openai", "1000.00", days=quiet)], [], billed)
    row = found["openai"]
    assert (row.billed, row.billed_source, row.status) == (
        Decimal("1240.00"),
        "imported cost export",
        "ledger under invoice",
    )
    assert row.causes == ("billed on 2 days with no usage in the ledger: 2026-10-07, 2026-10-08",)


def test_no_invoice_is_not_a_finding_and_other_months_are_ignored() -> None:
    found = rows([month("openai", "10.00")], [Invoice("openai", "2026-09", Decimal("5.00"))])
    assert (
        set(found) == {"openai"}
        and found["openai"].status == "no invoice"
        and found["openai"].reconciled
    )


def test_the_journal_spreads_a_difference_within_tolerance_by_usage_share() -> None:
    lines = entries([month("openai", "1000.00")], [Invoice("openai", "2026-10", Decimal("1000.01"))],
                    JournalSettings(cost_centers={"Engineering": "CC-100"}))  # fmt: skip
    debits = [(line.cost_center, line.debit, line.exact) for line in lines if line.debit]
    assert debits == [
        ("CC-100", Decimal("750.01"), Decimal(750)),
        ("Sales", Decimal("250.00"), Decimal(250)),
    ]
    (credit,) = [line for line in lines if line.credit]
    assert (credit.credit, credit.account, credit.account_name) == (
        Decimal("1000.01"),
        "2150",
        "Accrued AI services",
    )
    assert credit.posting_date == date(2026, 10, 31) and credit.reversal_date is None
    assert [(line.journal_id, line.line) for line in lines] == [
        ("P402-2026-10-OPENAI", n) for n in (1, 2, 3)
    ]
    assert {(line.entity, line.currency) for line in lines} == {("acme", "USD")}


def test_an_unexplained_difference_goes_to_suspense_not_to_cost_centres() -> None:
    lines = entries(
        [month("openai", "1000.00")], [Invoice("openai", "2026-10", Decimal("1056.70"))]
    )
    by_account = [(line.account, line.debit, line.credit) for line in lines]
    assert by_account == [
        ("6150", Decimal("750.00"), Decimal("0.00")), ("6150", Decimal("250.00"), Decimal("0.00")),
        ("2199", Decimal("56.70"), Decimal("0.00")), ("2150", Decimal("0.00"), Decimal("1056.70")),
    ]  # fmt: skip
    assert "no cause in the data" in bridge(reconcile(
        [month("openai", "1000.00")], invoices=[Invoice("openai", "2026-10", Decimal("1056.70"))], billed={},
        through=None, period_months=["2026-10"]), JournalSettings())[0].items[0].description  # fmt: skip
    # At or under the configured threshold, the same difference is spread instead.
    spread = entries([month("openai", "1000.00")], [Invoice("openai", "2026-10", Decimal("1056.70"))],
                     JournalSettings(suspense_threshold=Decimal("60.00")))  # fmt: skip
    assert [line.debit for line in spread if line.debit] == [Decimal("792.53"), Decimal("264.17")]
    # A ledger over its invoice: the suspense line is a credit.
    over = entries([month("openai", "1100.00")], [Invoice("openai", "2026-10", Decimal("1000.00"))])
    assert [(line.account, line.credit) for line in over if line.credit] == [
        ("2199", Decimal("100.00")), ("2150", Decimal("1000.00")),
    ]  # fmt: skip


def test_a_billed_month_without_usage_goes_to_suspense() -> None:
    lines = entries([], [Invoice("google", "2026-10", Decimal("3.00"))])
    assert [(line.account, line.debit, line.credit) for line in lines] == [
        ("2199", Decimal("3.00"), Decimal("0.00")), ("2150", Decimal("0.00"), Decimal("3.00")),
    ]  # fmt: skip


def test_billed_days_with_no_usage_are_charged_to_the_default_cost_centre() -> None:
    quiet = OCTOBER - {date(2026, 10, 7), date(2026, 10, 8)}
    billed = {("openai", f"2026-10-{day:02d}"): to_units(Decimal("40")) for day in range(1, 32)}
    lines = entries([month("openai", "1160.00", days=quiet)], [], billed=billed)
    shared = [line for line in lines if line.cost_center == "SHARED"]
    assert [(s.debit, s.description) for s in shared] == [
        (Decimal("80.00"), "openai billed 2026-10 with no usage in the ledger")
    ]
    assert (
        sum(line.debit for line in lines)
        == sum(line.credit for line in lines)
        == Decimal("1240.00")
    )


def test_customer_facing_use_is_cost_of_revenue_and_a_tag_names_the_cost_centre() -> None:
    charges = (
        Charge("Support", "5200", True, to_units(Decimal(60))),
        Charge("Support", None, False, to_units(Decimal(30))),
        Charge(None, None, False, to_units(Decimal(10))),
    )
    settings = JournalSettings(
        cost_centers={"Support": "CC-52"}, reverse_accruals=True, entity="US01"
    )
    lines = entries([month("openai", "100.00", charges=charges)], [], settings)
    assert [(line.account, line.cost_center, line.department, line.debit) for line in lines if line.debit] == [
        ("5150", "5200", "Support", Decimal("60.00")), ("6150", "CC-52", "Support", Decimal("30.00")),
        ("6150", "SHARED", "Unattributed", Decimal("10.00")),
    ]  # fmt: skip
    assert {(line.reversal_date, line.entity) for line in lines} == {(date(2026, 11, 1), "US01")}


@given(
    st.lists(st.integers(min_value=0, max_value=10**16), min_size=1, max_size=6),
    st.one_of(
        st.none(), st.integers(min_value=0, max_value=10**7).map(lambda c: Decimal(c).scaleb(-2))
    ),
    st.integers(min_value=0, max_value=10**5).map(lambda c: Decimal(c).scaleb(-2)),
)
def test_each_entry_balances_and_the_bridge_reaches_the_invoice(
    parts: list[int], billed: Decimal | None, threshold: Decimal
) -> None:
    charges = tuple(Charge(f"D{i}", None, bool(i % 2), units) for i, units in enumerate(parts))
    held = month("openai", str(from_units(sum(parts))), charges=charges)
    invoices = [] if billed is None else [Invoice("openai", "2026-10", billed)]
    settings = JournalSettings(suspense_threshold=threshold)
    found = reconcile([held], invoices=invoices, billed={}, through=None, period_months=["2026-10"])
    (item,) = bridge(found, settings)
    assert item.ledger + sum((i.amount for i in item.items), Decimal(0)) == item.accrued
    assert item.accrued == (held.cost if billed is None else billed)
    lines = journal([held], [item], settings, entity="acme")
    assert sum(line.debit for line in lines) == sum(line.credit for line in lines)
    assert all(
        line.debit >= 0 and line.credit >= 0 and not (line.debit and line.credit) for line in lines
    )
    usage = [line for line in lines if line.exact is not None]
    assert sum((line.exact for line in usage if line.exact is not None), Decimal(0)) == from_units(
        sum(parts)
    )


@given(
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda cents: Decimal(cents).scaleb(-2)),
    st.lists(st.integers(min_value=0, max_value=10**15), min_size=1, max_size=30),
)
def test_split_cents_always_sums_to_the_whole(total: Decimal, weights: list[int]) -> None:
    parts = split_cents(total, weights)
    assert sum(parts, Decimal(0)) == total
    whole = sum(weights)
    if whole:
        for part, weight in zip(parts, weights, strict=True):
            assert abs(part - total * weight / whole) < Decimal("0.01")
