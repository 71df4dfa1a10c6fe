"""Published rates p402 keeps where the price table (genai-prices) has none: each with the
date from which it holds, its source and the day it was read. Used only where the table lacks
the rate for the event's date; the ``price_ref`` then names the supplement, never the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

__all__ = ["TOOL_RATES", "ToolRate", "tool_rate"]


@dataclass(frozen=True, slots=True)
class ToolRate:
    """USD per 1,000 calls of a provider-side tool, billed apart from tokens."""

    per_thousand: Decimal
    since: date
    source: str
    read: date


TOOL_RATES: dict[tuple[str, str], tuple[ToolRate, ...]] = {
    # "Web search is available on the Anthropic API for $10 per 1,000 searches, plus standard
    # token costs" (launched 2025-05-07).
    ("anthropic", "web_search_calls"): (
        ToolRate(
            Decimal("10"),
            date(2025, 5, 7),
            "https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool",
            date(2026, 12, 3),
        ),
    ),
    # OpenAI API pricing, built-in tools: "File search tool call $2.50 / 1k calls" (Responses
    # API only). OpenAI's web search rate depends on the tool version and the model ($10 or $25
    # per 1k calls), which an event does not say: it stays out of the supplement, and such calls
    # are marked tool_unpriced.
    ("openai", "file_search_calls"): (
        ToolRate(
            Decimal("2.50"),
            date(2025, 3, 11),
            "https://openai.com/api/pricing/",
            date(2026, 12, 3),
        ),
    ),
}


def tool_rate(provider: str, tool: str, day: date) -> ToolRate | None:
    """The supplement's rate for *tool* of *provider* on *day*, or ``None``."""
    found = None
    for rate in TOOL_RATES.get((provider, tool), ()):
        if rate.since <= day:
            found = rate
    return found
