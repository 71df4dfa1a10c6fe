"""Published rates p402 keeps where the price table (genai-prices) has none: each with the
date from which it holds, its source and the day it was read. Used only where the table lacks
the rate for the event's date; the ``price_ref`` then names the supplement, never the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import TypeVar

__all__ = [
    "LONG_CONTEXT_RATES",
    "MULTIPLIERS",
    "TOOL_RATES",
    "LongContextRate",
    "Multiplier",
    "ToolRate",
    "long_context_rate",
    "multiplier",
    "tool_rate",
]


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
    return _latest(TOOL_RATES.get((provider, tool), ()), day)


@dataclass(frozen=True, slots=True)
class LongContextRate:
    """USD per million tokens of each bucket for a request whose prompt is above *start*
    tokens, where the table prices the model flat."""

    start: int
    rates: tuple[tuple[str, Decimal], ...]
    """By p402's bucket names (``input_tokens``, ``cache_read_tokens``...)."""
    since: date
    source: str
    read: date


LONG_CONTEXT_RATES: dict[tuple[str, str], tuple[LongContextRate, ...]] = {
    # Anthropic pricing, "Long context pricing": with the 1M-token context window (beta from
    # 2025-08-12), a request to Claude Sonnet 4 whose input exceeds 200K tokens is billed at $6
    # input and $22.50 output per MTok; cache writes and reads follow input (5-minute write 1.25x
    # = $7.50, 1-hour write 2x = $12, read 0.1x = $0.60). genai-prices carries these tiers for
    # Sonnet 4.5 but not for claude-sonnet-4-0.
    ("anthropic", "claude-sonnet-4-0"): (
        LongContextRate(
            200_000,
            (
                ("input_tokens", Decimal("6")),
                ("cache_read_tokens", Decimal("0.6")),
                ("cache_write_tokens", Decimal("7.5")),
                ("cache_write_1h_tokens", Decimal("12")),
                ("output_tokens", Decimal("22.5")),
            ),
            date(2025, 8, 12),
            "https://docs.anthropic.com/en/docs/about-claude/pricing#long-context-pricing",
            date(2026, 12, 3),
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class Multiplier:
    """A factor on every token rate of calls that carry a tag (not on tool calls)."""

    factor: Decimal
    since: date
    source: str
    read: date
    excluding: tuple[str, ...] = ()
    """Model ids (glob patterns) it does not apply to."""


MULTIPLIERS: dict[tuple[str, str, str], tuple[Multiplier, ...]] = {
    # Anthropic pricing, "Data residency pricing": US-only inference (``inference_geo: "us"``)
    # is billed at 1.1x standard rates on every token category, for Claude Opus 4.6 (released
    # 2026-02-05) and later models; "requests on Claude Opus 4.5, Claude Sonnet 4.5, Claude Haiku
    # 4.5, or earlier models are billed at the standard rate" (support.claude.com, article
    # 15422948, "Enable US-only inference for your organization").
    ("anthropic", "inference_geo", "us"): (
        Multiplier(
            Decimal("1.1"),
            date(2026, 2, 5),
            "https://docs.anthropic.com/en/docs/about-claude/pricing#data-residency-pricing",
            date(2026, 12, 3),
            excluding=(
                "claude-instant*",
                "claude-2*",
                "claude-3*",
                "claude-*-4",
                "claude-*-4-0*",
                "claude-*-4-1*",
                "claude-*-4-5*",
                "claude-*-4-2025*",
            ),
        ),
    ),
}


_Rate = TypeVar("_Rate", ToolRate, LongContextRate, Multiplier)


def _latest(found: tuple[_Rate, ...], day: date) -> _Rate | None:
    latest = None
    for rate in found:
        if rate.since <= day:
            latest = rate
    return latest


def long_context_rate(provider: str, model_id: str, day: date) -> LongContextRate | None:
    """The supplement's long-context rates of the table's *model_id* on *day*, or ``None``."""
    return _latest(LONG_CONTEXT_RATES.get((provider, model_id), ()), day)


def multiplier(provider: str, model_id: str, tag: str, value: str, day: date) -> Multiplier | None:
    """The supplement's factor for calls of *provider*'s *model_id* tagged ``tag=value`` on
    *day*, or ``None``."""
    found = _latest(MULTIPLIERS.get((provider, tag, value), ()), day)
    if found is None or any(fnmatchcase(model_id, pattern) for pattern in found.excluding):
        return None
    return found
