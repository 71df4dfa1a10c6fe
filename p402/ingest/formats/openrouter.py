"""OpenRouter generation records, as ``GET /api/v1/generation?id=...`` returns them.

Sources relied on (the provider's published format is the contract):

* ``GenerationResponse`` ``{data: {...}}`` and its fields ``id, total_cost, cache_discount,
  upstream_inference_cost, created_at, model, app_id, cancelled, provider_name, finish_reason,
  tokens_prompt, tokens_completion, native_tokens_prompt, native_tokens_completion,
  native_tokens_reasoning, native_tokens_cached, is_byok, external_user, api_type,
  service_tier, ...`` (openrouter.ai/docs/client-sdks/python/components/generationresponsedata;
  the TypeScript SDK's ``GenerationResponse`` example).
* Usage accounting (openrouter.ai/docs/use-cases/usage-accounting): the native token counts are
  the model's own tokenizer's; prompt tokens include cached ones, completion tokens include
  reasoning; cache writes are not reported; the cost is what was charged to the account's
  credits, and ``upstream_inference_cost`` is what the upstream provider charged (BYOK).

Mapping: ``total_cost`` is the charge OpenRouter reports, so it is the event's cost
(``cost_source = provider``). On a bring-your-own-key call (``is_byok``) that charge is only
OpenRouter's fee: the inference itself is billed by the provider to the customer's own key, and
shows up in that provider's own usage export and invoice. It is kept as the tag
``byok_upstream_cost`` and not added to the cost, so importing the provider's export as well does
not count it twice; a report can add it from the tag where no such export is imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from p402.errors import FieldProblems
from p402.ingest.formats._common import (
    Format,
    Parts,
    Progress,
    SourceRow,
    Span,
    decimal_text,
    json_documents,
    stable_id,
    time_from,
    whole,
)
from p402.ingest.tags import tags_from
from p402.money import MAX_EVENT_COST, ROUNDING, UNIT_SCALE

__all__ = ["FORMATS"]


_NAME = "openrouter"
_UNIT = Decimal(1).scaleb(-UNIT_SCALE)


def _text(record: Mapping[str, Any], name: str, problems: FieldProblems) -> str | None:
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value.strip()
    problems.append((name, f"must be a string or null, got {type(value).__name__}"))
    return None


def _flag(record: Mapping[str, Any], name: str, problems: FieldProblems) -> bool | None:
    value = record.get(name)
    if value is None or isinstance(value, bool):
        return value
    problems.append((name, f"must be true, false or null, got {type(value).__name__}"))
    return None


def _rounded(amount: Decimal) -> Decimal:
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -UNIT_SCALE:
        return amount.quantize(_UNIT, rounding=ROUNDING)
    return amount


def _amount(record: Mapping[str, Any], name: str, problems: FieldProblems) -> Decimal | None:
    """An amount OpenRouter computed in binary floating point: digits past the ledger's 10^-12
    USD are float noise, so it is rounded once, here, by the money module's rule."""
    amount = decimal_text(record.get(name), name, problems)
    if amount is None:
        return None
    if amount < 0:
        problems.append((name, f"must not be negative, got {str(record.get(name))[:40]}"))
        return None
    if amount > MAX_EVENT_COST:
        problems.append((name, f"is more than one generation can cost ({MAX_EVENT_COST} USD)"))
        return None
    return _rounded(amount)


def _tokens(data: Mapping[str, Any], problems: FieldProblems) -> tuple[dict[str, int], bool]:
    """The token buckets, and whether they are the normalized counts (no native ones given)."""
    mark = len(problems)
    normalized = data.get("native_tokens_prompt") is None and data.get("tokens_prompt") is not None
    prompt_name = "tokens_prompt" if normalized else "native_tokens_prompt"
    completion_name = "tokens_completion" if normalized else "native_tokens_completion"
    prompt = whole(data.get(prompt_name), prompt_name, problems)
    completion = whole(data.get(completion_name), completion_name, problems)
    cached = whole(data.get("native_tokens_cached"), "native_tokens_cached", problems)
    reasoning = whole(data.get("native_tokens_reasoning"), "native_tokens_reasoning", problems)
    # Compared only when every count could be read: else comparing says nothing more.
    if len(problems) == mark and cached > prompt:
        # The prompt count includes the cached tokens: more cached than prompt is broken
        # data, and a clamp would hide it.
        problems.append(("native_tokens_cached", f"{cached} exceeds {prompt_name} {prompt}"))
    buckets: dict[str, Any] = {
        "input_tokens": prompt - cached,
        "cache_read_tokens": cached,
        # Cache writes are not reported by OpenRouter: they are inside the prompt count, at the
        # input rate when the table prices a row (the charged total_cost is exact regardless).
        "output_tokens": completion,  # includes reasoning, as billed
        "reasoning_tokens": reasoning,
    }
    if len(problems) == mark and reasoning > completion:
        # Genuine generations report more reasoning than completion tokens (some upstreams
        # count reasoning apart). An odd record, not a broken one: kept with its charge, the
        # reasoning counted inside the output as p402 defines it, the reported figure kept.
        buckets["reasoning_tokens"] = completion
        buckets["tag.native_tokens_reasoning"] = str(reasoning)
        buckets["quality"] = "reasoning_exceeds_output"
    return buckets, normalized


def _event(data: Mapping[str, Any], problems: FieldProblems) -> dict[str, Any] | None:
    if data.get("id") in (None, ""):
        problems.append(("id", "is required"))
    generation = _text(data, "id", problems)
    occurred_at = time_from(data.get("created_at"), "created_at", problems)
    if data.get("model") in (None, ""):
        problems.append(("model", "is required"))
    model = _text(data, "model", problems)
    tokens, normalized = _tokens(data, problems)
    cost = _amount(data, "total_cost", problems)
    upstream = _amount(data, "upstream_inference_cost", problems)
    discount = decimal_text(data.get("cache_discount"), "cache_discount", problems)
    byok = _flag(data, "is_byok", problems)
    cancelled = _flag(data, "cancelled", problems)
    texts = {
        name: _text(data, name, problems)
        for name in ("provider_name", "finish_reason", "external_user", "api_type", "service_tier")
    }
    app = data.get("app_id")
    if app is not None and (isinstance(app, bool) or not isinstance(app, int | str)):
        problems.append(("app_id", f"must be a number, a string or null, got {type(app).__name__}"))
        app = None
    if problems or generation is None or occurred_at is None:
        return None
    record: dict[str, Any] = {
        "event_id": stable_id(_NAME, generation),
        "occurred_at": occurred_at,
        "provider": _NAME,
        "model": model,  # as OpenRouter names it, e.g. "anthropic/claude-sonnet-4.5"
        "requests": 1,
        **tokens,
        "service_tier": texts["service_tier"],
        # The caller's end-user id, passed as the request's `user`: the source's user, and a tag
        # for attribution rules.
        "user_id": texts["external_user"],
        # A cancelled generation is still billed for what was generated; it produced nothing
        # usable, so it counts with the errors.
        "outcome": "error" if cancelled or texts["finish_reason"] == "error" else "success",
    }
    if cost is not None:
        record.update(cost=cost, cost_source="provider")
    tags = tags_from(
        {
            "upstream_provider": texts["provider_name"],
            "external_user": texts["external_user"],
            "app_id": app,
            "api_type": texts["api_type"],
            "finish_reason": texts["finish_reason"],
            "cancelled": True if cancelled else None,
            "byok": True if byok else None,
            "byok_upstream_cost": upstream if byok and upstream is not None else None,
            "cache_discount": discount if discount else None,
            "tokens": "normalized" if normalized else None,
        }
    )
    if tags:
        record["tags"] = tags
    return {name: value for name, value in record.items() if value is not None}


def _row(line: int | None, where: str | None, item: Any) -> SourceRow | None:
    if isinstance(item, dict) and isinstance(item.get("data"), dict):
        item, where = item["data"], f"{where}.data" if where else "data"
    if not isinstance(item, dict) or "data" in item:
        return SourceRow(
            line, where, None, [(None, 'must be a generation: {"data": {...}} or its data')]
        )
    problems: FieldProblems = []
    record = _event(item, problems)
    if problems:
        return SourceRow(line, where, None, problems)
    return None if record is None else SourceRow(line, where, record)


def read(
    path: Path, progress: Progress | None = None, span: Span | None = None
) -> Iterator[SourceRow]:
    """Generation records: JSON Lines (one a line), a JSON array, or one ``{"data": {...}}``."""
    try:
        for line, document, error in json_documents(path, progress, span=span):
            if error is not None:
                yield SourceRow(line, None, None, [(None, error)])
                continue
            many = isinstance(document, list)
            for number, item in enumerate(document if many else [document]):
                row = _row(line, f"[{number}]" if many else None, item)
                if row is not None:
                    yield row
    except RecursionError:  # json.loads on absurdly nested input
        yield SourceRow(None, None, None, [(None, "is nested too deeply to be a generation")])


FORMATS = (
    Format(
        _NAME,
        "events",
        "OpenRouter generation records (GET /api/v1/generation), JSON",
        read,
        Parts.of_json_lines(read),
    ),
)
