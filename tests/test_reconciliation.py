"""Reconciliation with invoices, and the journal that accrues the spend: the cases a controller meets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from p402.config import Invoice, JournalSettings
from p402.money import split_cents, to_units
from p402.reporting.aggregate import ProviderMonth
from p402.reporting.journal import journal
from p402.reporting.reconciliation import Reconciliation, reconcile

OCTOBER = frozenset(date(2026, 10, day) for day in range(1, 32))


def month(
    provider: str, dollars: str, *, days: frozenset[date] = OCTOBER, unpriced: int = 0
) -> ProviderMonth:
    departments = (
        ("Engineering", to_units(Decimal(dollars)) * 3 // 4),
        ("Sales", to_units(Decimal(dollars)) // 4),
    )
    return ProviderMonth(provider, "2026-10", 10, to_units(Decimal(dollars)), unpriced, 5_000 * unpriced, days,
                         departments)  # fmt: skip


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
    assert (found["openai"].status, found["openai"].percent) == ("reconciled", Decimal("0.40"))


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
        "missing from ledger", Decimal("0.00"), Decimal("100.00"),
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


def test_the_journal_accrues_the_invoice_by_usage_share() -> None:
    months = [month("openai", "1000.00")]
    found = reconcile(months, invoices=[Invoice("openai", "2026-10", Decimal("1000.01"))], billed={},
                      through=None, period_months=["2026-10"])  # fmt: skip
    settings = JournalSettings(cost_centers={"Engineering": "CC-100"})
    lines = journal(months, found, settings)
    debits = [(line.cost_center, line.debit) for line in lines if line.debit]
    assert debits == [("CC-100", Decimal("750.01")), ("Sales", Decimal("250.00"))]
    (credit,) = [line for line in lines if line.credit]
    assert credit.credit == Decimal("1000.01") and credit.account == "2150 Accrued AI services"
    assert credit.posting_date == date(2026, 10, 31)


def test_a_billed_month_without_usage_is_accrued_to_the_shared_centre() -> None:
    found = reconcile([], invoices=[Invoice("google", "2026-10", Decimal("3.00"))], billed={}, through=None,
                      period_months=["2026-10"])  # fmt: skip
    lines = journal([], found, JournalSettings())
    assert [(line.cost_center, line.debit, line.credit) for line in lines] == [
        ("SHARED", Decimal("3.00"), Decimal("0.00")), ("", Decimal("0.00"), Decimal("3.00")),
    ]  # fmt: skip


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
