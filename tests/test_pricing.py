"""Pricing: costs equal a hand computation from the table's unit prices, bucket by bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from p402.ingest.pricing import Pricer
from p402.ledger.events import Event

WHEN = datetime(2026, 10, 5, 15, tzinfo=UTC)


def event(provider: str, model: str, **tokens: Any) -> Event:
    return Event(
        event_id="p", tenant="t", occurred_at=WHEN, provider=provider, model=model, **tokens
    )


def test_every_anthropic_bucket_at_its_own_rate() -> None:
    # claude-sonnet-4-5 list prices per million tokens: input 3, cache read 0.30,
    # cache write 5 min 3.75, cache write 1 h 6, output 15.
    priced = Pricer().apply(
        event("anthropic", "claude-sonnet-4-5", input_tokens=10_000, cache_read_tokens=50_000,
              cache_write_tokens=20_000, cache_write_1h_tokens=8_000, output_tokens=1_500)
    )  # fmt: skip
    hand = (
        Decimal(10_000) * 3 + Decimal(50_000) * Decimal("0.3") + Decimal(20_000) * Decimal("3.75")
        + Decimal(8_000) * 6 + Decimal(1_500) * 15
    ) / 1_000_000  # fmt: skip
    assert priced.cost == hand == Decimal("0.1905")
    assert priced.cost_source == "price_table"
    assert priced.price_ref is not None
    assert (
        "anthropic/claude-sonnet-4-5 2026-10-05: in=3 cache_read=0.3 cache_write=3.75"
        in priced.price_ref
    )


def test_long_context_requests_use_the_tier_price() -> None:
    # Above 200k prompt tokens per request, Sonnet 4.5 bills input at 6 and output at 22.5.
    short = Pricer().apply(
        event("anthropic", "claude-sonnet-4-5", input_tokens=150_000, output_tokens=1_000)
    )
    long = Pricer().apply(
        event("anthropic", "claude-sonnet-4-5", input_tokens=250_000, output_tokens=1_000)
    )
    assert short.cost == Decimal("0.465")
    assert long.cost == Decimal("1.5225")
    # the same 250k tokens spread over two requests stay below the threshold
    two = Pricer().apply(
        event(
            "anthropic", "claude-sonnet-4-5", input_tokens=250_000, output_tokens=1_000, requests=2
        )
    )
    assert two.cost == Decimal("0.765")


def test_embeddings_price_input_only() -> None:
    priced = Pricer().apply(event("openai", "text-embedding-3-small", input_tokens=1_000_000))
    assert priced.cost == Decimal("0.02")


def test_bedrock_and_gemini_names_map_to_the_table() -> None:
    nova = Pricer().apply(event("bedrock", "amazon.nova-pro-v1:0", input_tokens=1_000_000))
    flash = Pricer().apply(
        event("google", "gemini-2.5-flash", input_tokens=1_000_000, output_tokens=1_000_000)
    )
    assert nova.cost == Decimal("0.8")
    assert flash.cost == Decimal("2.8")


def test_unknown_model_or_unpriced_bucket_stays_unpriced() -> None:
    unknown = Pricer().apply(event("openai", "our-finetune", input_tokens=10))
    embedding_output = Pricer().apply(
        event("openai", "text-embedding-3-small", input_tokens=10, output_tokens=5)
    )
    for priced in (unknown, embedding_output):
        assert priced.cost is None and priced.cost_source == "unpriced" and priced.price_ref is None


def test_reported_cost_is_kept_with_the_list_price_beside_it() -> None:
    reported = event("openai", "gpt-4o", input_tokens=1_000_000).with_cost(
        Decimal("2.3"), "provider", None
    )
    priced = Pricer().apply(reported)
    assert (priced.cost, priced.cost_source, priced.price_ref) == (Decimal("2.3"), "provider", None)
    assert priced.list_cost == Decimal("2.5")  # gpt-4o list: $2.50 per million input tokens


def test_zero_tokens_cost_zero_and_say_so() -> None:
    priced = Pricer().apply(event("openai", "gpt-4o"))
    assert priced.cost == 0
    assert priced.price_ref is not None and priced.price_ref.endswith("no billable tokens")


def test_batch_gets_the_published_discount_only_where_the_table_has_no_batch_price() -> None:
    early = Pricer().apply(event("openai", "gpt-4o", input_tokens=1_000_000, batch=True))
    assert early.cost == Decimal(
        "1.25"
    )  # half of $2.50: the table has no gpt-4o batch price on 5 Oct
    assert early.price_ref is not None and "published batch discount 50 %" in early.price_ref
    late = Pricer().apply(
        event("openai", "gpt-4o", input_tokens=1_000_000, batch=True).evolve(
            occurred_at=datetime(2026, 10, 20, tzinfo=UTC)
        )
    )
    assert late.cost == Decimal(
        "1.25"
    )  # the table's own batch price from 14 Oct: no double discount
    assert late.price_ref is not None and "published batch discount" not in late.price_ref


def test_negotiated_rates_override_the_table_from_their_date() -> None:
    from datetime import date

    from p402.config import PriceOverride

    contract = PriceOverride("acme 2026", "openai", "gpt-4o*", (("input", Decimal(2)), ("output", Decimal(8))),
                             date(2026, 10, 1))  # fmt: skip
    older = PriceOverride(
        "acme 2025", "openai", "gpt-4o*", (("input", Decimal("2.2")), ("output", Decimal(9)))
    )
    pricer = Pricer([older, contract])
    now = pricer.apply(
        event("openai", "gpt-4o-2024-08-06", input_tokens=1_000_000, output_tokens=1_000_000)
    )
    assert (now.cost, now.cost_source, now.list_cost) == (Decimal(10), "override", Decimal("12.5"))
    assert now.price_ref is not None and now.price_ref.startswith(
        "override 'acme 2026' from 2026-10-01"
    )
    before = pricer.apply(
        event("openai", "gpt-4o", input_tokens=1_000_000).evolve(
            occurred_at=datetime(2026, 9, 30, tzinfo=UTC)
        )
    )
    assert (before.cost, before.price_ref is not None and "acme 2025" in before.price_ref) == (
        Decimal("2.2"),
        True,
    )
    other = pricer.apply(event("anthropic", "claude-sonnet-4-5", input_tokens=1_000_000))
    assert other.cost_source == "price_table"


def _on(day: datetime, **fields: Any) -> Event:
    return Event(event_id="p", tenant="t", occurred_at=day, **fields)


def test_a_tier_the_table_lacks_that_day_is_tier_unpriced_never_priced_under_its_name() -> None:
    """genai-prices knows gpt-5.4-mini's priority and flex rates from 2026-10-15 only: before
    that, the standard rates must not be applied under the tier's name."""
    usage = {"provider": "openai", "model": "gpt-5.4-mini", "input_tokens": 1_000_000}
    for tier in ("priority", "flex"):
        early = Pricer().apply(_on(datetime(2026, 10, 1, tzinfo=UTC), service_tier=tier, **usage))
        assert (early.cost, early.cost_source) == (None, "tier_unpriced")
        assert early.price_ref is not None and f"no {tier!r} tier rate" in early.price_ref
    # From the day the table has the tier, its rate applies and price_ref names it.
    late = Pricer().apply(_on(datetime(2026, 10, 20, tzinfo=UTC), service_tier="priority", **usage))
    assert late.cost == Decimal("1.5") and "service_tier=priority" in (late.price_ref or "")
    # The standard tier is priced as ever.
    default = Pricer().apply(
        _on(datetime(2026, 10, 1, tzinfo=UTC), service_tier="default", **usage)
    )
    assert default.cost == Decimal("0.75") and default.cost_source == "price_table"


def test_anthropic_fast_mode_is_not_priced_at_base() -> None:
    fast = Pricer().apply(
        event("anthropic", "claude-sonnet-4-5", input_tokens=1000, tags=(("speed", "fast"),))
    )
    assert (fast.cost, fast.cost_source) == (None, "tier_unpriced")
    assert "no 'fast' speed rate" in (fast.price_ref or "")


def test_tool_calls_are_priced_apart_from_tokens() -> None:
    # Anthropic: $10 per 1,000 web searches; OpenAI: $2.50 per 1,000 file search calls.
    searched = Pricer().apply(
        event("anthropic", "claude-sonnet-4-5", input_tokens=10_000, web_search_calls=7)
    )
    assert searched.tool_cost == Decimal("0.07")
    assert searched.cost == Decimal(10_000) * 3 / 1_000_000 + Decimal("0.07")
    assert searched.list_cost == searched.cost
    assert "web_search_calls=7 at 10 USD/1k calls" in (searched.price_ref or "")
    filed = Pricer().apply(event("openai", "gpt-4o", input_tokens=1000, file_search_calls=4))
    assert filed.tool_cost == Decimal("0.01") and "p402 supplement" in (filed.price_ref or "")
    # Where the table has a web search rate, it is the table's.
    table = Pricer().apply(event("openai", "gpt-4o", input_tokens=1000, web_search_calls=2))
    assert table.tool_cost == Decimal("0.02") and "genai-prices" in (table.price_ref or "")
    # Where neither the table nor the supplement has one: marked, not guessed.
    unknown = Pricer().apply(
        event("mistral", "mistral-large-latest", input_tokens=1000, web_search_calls=2)
    )
    assert unknown.tool_cost == 0 and unknown.quality == "tool_unpriced"
    assert "no published rate" in (unknown.price_ref or "")
    # A cost the source reported already holds its tool charges: kept as it is.
    reported = Pricer().apply(
        event("anthropic", "claude-sonnet-4-5", input_tokens=10, web_search_calls=1,
              cost=Decimal("0.5"), cost_source="provider")
    )  # fmt: skip
    assert reported.cost == Decimal("0.5") and reported.tool_cost is None
