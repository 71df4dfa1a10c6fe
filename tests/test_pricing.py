"""Pricing: costs equal a hand computation from the table's unit prices, bucket by bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from p402.ledger.events import Event
from p402.ledger.pricing import Pricer

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


def test_reported_cost_is_kept() -> None:
    reported = event("openai", "gpt-4o", input_tokens=10).with_cost(
        Decimal("0.5"), "provider", None
    )
    assert Pricer().apply(reported) is reported


def test_zero_tokens_cost_zero_and_say_so() -> None:
    priced = Pricer().apply(event("openai", "gpt-4o"))
    assert priced.cost == 0
    assert priced.price_ref is not None and priced.price_ref.endswith("no billable tokens")
