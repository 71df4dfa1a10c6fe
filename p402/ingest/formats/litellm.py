"""LiteLLM proxy spend logs: the ``LiteLLM_SpendLogs`` table, exported as CSV, JSON or JSON Lines.

Sources relied on (the provider's published format is the contract):

* Columns of ``model LiteLLM_SpendLogs`` in BerriAI/litellm ``schema.prisma``: ``request_id``
  (primary key), ``call_type``, ``api_key`` (the hashed virtual key), ``spend``,
  ``total_tokens``, ``prompt_tokens``, ``completion_tokens``, ``startTime``, ``endTime``,
  ``completionStartTime``, ``model``, ``model_id``, ``model_group``, ``custom_llm_provider``,
  ``api_base``, ``user``, ``metadata`` (JSON), ``cache_hit`` (text), ``cache_key``,
  ``request_tags`` (JSON list), ``team_id``, ``organization_id``, ``end_user``,
  ``requester_ip_address``, ``messages``, ``response``, ``proxy_server_request``, ``status``
  (``success`` or ``failure``, per ``SpendLogsPayload`` in ``litellm/proxy/_types.py``).
* ``metadata`` keys from ``SpendLogsMetadata`` (same file): ``user_api_key_alias``,
  ``user_api_key_team_id``, ``user_api_key_team_alias``, ``user_api_key_org_id``,
  ``user_api_key_user_id``, ``spend_logs_metadata`` (the caller's own key/values),
  ``usage_object`` (LiteLLM's OpenAI-style ``Usage``).
* Token meanings: LiteLLM's ``prompt_tokens`` includes cache reads *and* cache writes (its
  Anthropic transformation adds ``cache_creation_input_tokens`` and ``cache_read_input_tokens``
  to it, ``litellm/llms/anthropic/chat/transformation.py``); ``completion_tokens`` includes
  reasoning. The split comes from ``usage_object``: ``cache_read_input_tokens`` or
  ``prompt_tokens_details.cached_tokens``, ``cache_creation_input_tokens`` (by TTL in
  ``prompt_tokens_details.cache_creation_token_details``), and
  ``completion_tokens_details.reasoning_tokens`` (``additional_usage_values``, same keys, in rows
  written before ``usage_object`` existed).

Content never enters: ``messages``, ``response`` and ``proxy_server_request`` (column or inside
``metadata``) are never read; the record is built from the named metadata fields above only.

Mapping decisions:

* ``spend`` is what LiteLLM computed and recorded as charged: the cost (``cost_source =
  provider``). A zero spend on a call with tokens that was not a LiteLLM cache hit means LiteLLM
  did not know the model's price, not that the call was free: the cost is left out so the
  pricing stage prices it or keeps it visibly unpriced.
* ``user`` (the LiteLLM internal user who owns the key, often a person but also service users)
  is the source's ``user_id``; attribution rules map it to an employee. ``team_id`` and the key
  and team aliases are tags for the rules. ``end_user`` is whatever the calling application
  passed as the OpenAI ``user`` parameter (a person, an account or a session): a tag, not the
  ``customer``, since only the tenant knows which of these it is.
* Times without an offset are UTC: Prisma stores ``DateTime`` as UTC in a ``timestamp(3)``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
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
from p402.period import format_time

__all__ = ["FORMATS"]


_NAME = "litellm"
_UNIT = Decimal(1).scaleb(-UNIT_SCALE)
# LiteLLM's custom_llm_provider values and p402's provider names, where they differ.
_PROVIDERS = {
    "text-completion-openai": "openai", "azure_text": "azure", "azure_ai": "azure",
    "vertex_ai": "google", "vertex_ai_beta": "google", "gemini": "google", "palm": "google",
    "codestral": "mistral", "text-completion-codestral": "mistral", "cohere_chat": "cohere",
    "xai": "x-ai", "together_ai": "together", "fireworks_ai": "fireworks",
}  # fmt: skip
_OPERATIONS = {
    "completion": "chat", "acompletion": "chat", "embedding": "embeddings",
    "aembedding": "embeddings", "text_completion": "text_completion",
    "atext_completion": "text_completion", "image_generation": "image_generation",
    "aimage_generation": "image_generation", "responses": "responses", "aresponses": "responses",
    "anthropic_messages": "messages", "transcription": "transcription",
    "atranscription": "transcription", "speech": "speech", "aspeech": "speech",
    "moderation": "moderation", "amoderation": "moderation", "rerank": "rerank",
    "arerank": "rerank",
}  # fmt: skip
# Hosts of api_base, for rows written before the custom_llm_provider column existed.
_HOSTS = (
    ("api.openai.com", "openai"), (".openai.azure.com", "azure"), ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "google"), ("aiplatform.googleapis.com", "google"),
    ("bedrock-runtime.", "bedrock"), ("openrouter.ai", "openrouter"), ("api.mistral.ai", "mistral"),
)  # fmt: skip
_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")
_FIELD_LIMIT = 64 << 20  # the content cells are skipped, but csv must still get through them


def _text(
    record: Mapping[str, Any], name: str, problems: FieldProblems, label: str = ""
) -> str | None:
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value.strip()
    problems.append((f"{label}{name}", f"must be a string or null, got {type(value).__name__}"))
    return None


def _json(value: Any, name: str, kind: type, problems: FieldProblems) -> Any:
    """A JSON column: already parsed (JSON input) or JSON text in a CSV cell. The value is never
    quoted in a problem: ``metadata`` can hold the proxied request."""
    if value is None or value == "":
        return kind()
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_float=Decimal)
        except (ValueError, RecursionError):
            problems.append((name, "is not valid JSON"))
            return kind()
    if value is None:
        return kind()
    if not isinstance(value, kind):
        problems.append((name, f"must be a JSON {'object' if kind is dict else 'list'}"))
        return kind()
    return value


def _time(value: Any, name: str, problems: FieldProblems) -> str | None:
    if isinstance(value, str) and value.strip() and not value.strip().isdigit():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            problems.append((name, f"{value[:60]!r} is not a time"))
            return None
        return format_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return time_from(value, name, problems)


def _spend(value: Any, problems: FieldProblems) -> Decimal | None:
    """The spend LiteLLM computed in binary floating point (``0.018000000000000002``): digits
    past the ledger's 10^-12 USD are float noise, so it is rounded once, here, by the money
    module's rule."""
    spend = decimal_text(value, "spend", problems)
    if spend is None:
        return None
    if spend < 0 or spend > MAX_EVENT_COST:
        problems.append(
            ("spend", f"must be between 0 and {MAX_EVENT_COST} USD, got {str(value)[:40]}")
        )
        return None
    return _rounded(spend)


def _rounded(amount: Decimal) -> Decimal:
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -UNIT_SCALE:
        return amount.quantize(_UNIT, rounding=ROUNDING)
    return amount


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _usage(
    row: Mapping[str, Any], usage: Mapping[str, Any], problems: FieldProblems
) -> dict[str, int]:
    """Non-overlapping buckets from LiteLLM's cache-inclusive prompt count and its usage object."""
    mark = len(problems)
    prompt = whole(row.get("prompt_tokens"), "prompt_tokens", problems)
    completion = whole(row.get("completion_tokens"), "completion_tokens", problems)
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    by_ttl = details.get("cache_creation_token_details")
    by_ttl = by_ttl if isinstance(by_ttl, dict) else {}
    done = usage.get("completion_tokens_details")
    done = done if isinstance(done, dict) else {}
    where = "metadata.usage_object."
    read = whole(
        _first(usage.get("cache_read_input_tokens"), details.get("cached_tokens")),
        f"{where}cache_read_input_tokens",
        problems,
    )
    written = whole(
        _first(usage.get("cache_creation_input_tokens"), details.get("cache_creation_tokens")),
        f"{where}cache_creation_input_tokens",
        problems,
    )
    hour = whole(
        by_ttl.get("ephemeral_1h_input_tokens"),
        f"{where}prompt_tokens_details.cache_creation_token_details.ephemeral_1h_input_tokens",
        problems,
    )
    reasoning = whole(
        done.get("reasoning_tokens"), f"{where}completion_tokens_details.reasoning_tokens", problems
    )
    if len(problems) > mark:
        return {}  # a count could not be read: comparing it with the others says nothing more
    if hour > written:
        problems.append(
            (f"{where}cache_creation_input_tokens", f"{written} is less than its 1h part {hour}")
        )
    if read + written > prompt:
        # prompt_tokens includes both: fewer of them than cached tokens is broken data, and a
        # clamp would hide it.
        problems.append(
            (
                "prompt_tokens",
                f"{prompt} is less than the cache reads {read} and writes {written} it includes",
            )
        )
    if reasoning > completion:
        problems.append(
            ("completion_tokens", f"{completion} is less than its reasoning tokens {reasoning}")
        )
    return {
        "input_tokens": prompt - read - written,
        "cache_read_tokens": read,
        "cache_write_tokens": written - hour,  # 5-minute, or TTL not reported
        "cache_write_1h_tokens": hour,
        "output_tokens": completion,
        "reasoning_tokens": reasoning,
    }


def _provider(
    row: Mapping[str, Any], model: str | None, problems: FieldProblems
) -> tuple[str | None, str | None]:
    """p402's provider name, and the model without LiteLLM's ``provider/`` prefix."""
    source = _text(row, "custom_llm_provider", problems)
    base = (_text(row, "api_base", problems) or "").lower()
    if source is None:
        source = next((name for host, name in _HOSTS if host in base), None)
    if source is None and model and "/" in model:
        source = model.split("/", 1)[0]  # "anthropic/claude-...": LiteLLM's own model naming
    if source is None:
        if model is not None:
            problems.append(
                (
                    "custom_llm_provider",
                    "is empty, and neither api_base nor the model names a provider",
                )
            )
        return None, model
    if model and model.lower().startswith(f"{source.lower()}/"):
        model = model.split("/", 1)[1]
    source = source.lower()
    return _PROVIDERS.get(source, source), model


def _request_tags(row: Mapping[str, Any], problems: FieldProblems) -> dict[str, str]:
    tags: dict[str, Any] = {}
    for tag in _json(row.get("request_tags"), "request_tags", list, problems):
        if not isinstance(tag, str) or not tag.strip():
            continue
        key, _, value = tag.partition(":")
        if key.strip().lower() == "user-agent":
            continue  # LiteLLM adds the caller's User-Agent as a tag: noise, not attribution
        tags[key.strip()] = value.strip() if value.strip() else "true"
    return tags_from(tags, prefix="request_tag.")


def _event(row: Mapping[str, Any], problems: FieldProblems) -> dict[str, Any] | None:
    if row.get("request_id") in (None, ""):
        problems.append(("request_id", "is required"))
    request_id = _text(row, "request_id", problems)
    occurred_at = _time(row.get("startTime"), "startTime", problems)
    metadata = _json(row.get("metadata"), "metadata", dict, problems)
    usage = metadata.get("usage_object")
    if not isinstance(usage, dict):
        # Proxies of early 2025 wrote no usage_object, but the same cache and reasoning
        # details as "additional_usage_values" (LiteLLM's test_spend_logs.py payloads).
        usage = metadata.get("additional_usage_values")
    usage = usage if isinstance(usage, dict) else {}
    tokens = _usage(row, usage, problems)
    spend = _spend(row.get("spend"), problems)
    model = _text(row, "model", problems)
    provider, model = _provider(row, model, problems)
    odd = None
    if model is None and row.get("model") in (None, ""):
        if spend is None:
            problems.append(("model", "is required"))
        else:
            # LiteLLM really writes spend rows with no model (a failed or pass-through call that
            # was still charged): an odd record, kept with its money and marked.
            model, provider, odd = "unknown", provider or "unknown", "model_missing"
    cache_hit = str(row.get("cache_hit") or "").strip().lower() == "true"
    status = _text(row, "status", problems)
    # Early proxies (January-February 2024) wrote the function's dotted name,
    # "litellm.completion", where later ones write "completion" or "acompletion".
    call_type = (_text(row, "call_type", problems) or "").removeprefix("litellm.")
    meta = {
        name: _text(metadata, name, problems, "metadata.")
        for name in (
            "user_api_key_alias", "user_api_key_team_id", "user_api_key_team_alias",
            "user_api_key_org_id", "user_api_key_user_id",
        )
    }  # fmt: skip
    ids = {
        name: _text(row, name, problems)
        for name in ("api_key", "user", "team_id", "organization_id", "end_user")
    }
    model_group = _text(row, "model_group", problems)
    caller = metadata.get("spend_logs_metadata")
    tags = {
        **tags_from(caller if isinstance(caller, dict) else None),
        **_request_tags(row, problems),
        **tags_from(
            {
                "team_id": ids["team_id"] or meta["user_api_key_team_id"],
                "team_alias": meta["user_api_key_team_alias"],
                "key_alias": meta["user_api_key_alias"],
                "organization_id": ids["organization_id"] or meta["user_api_key_org_id"],
                "end_user": ids["end_user"],
                "model_group": model_group if model_group != model else None,
                "cache_hit": "true" if cache_hit else None,
            }
        ),
    }
    if problems or request_id is None or occurred_at is None or provider is None or model is None:
        return None
    operation = _OPERATIONS.get(call_type, call_type if _WORD.fullmatch(call_type) else None)
    record: dict[str, Any] = {
        "event_id": stable_id(_NAME, request_id),
        "occurred_at": occurred_at,
        "provider": provider,
        "model": model,
        "operation": operation,
        "requests": 1,
        **tokens,
        "api_key_id": ids["api_key"],
        "user_id": ids["user"] or meta["user_api_key_user_id"],
        "outcome": {"failure": "error", "success": "success"}.get((status or "").lower()),
        "tags": tags or None,
        "quality": odd,
    }
    unknown_price = spend == 0 and not cache_hit and any(tokens.values())
    if spend is not None and not unknown_price:
        record.update(cost=spend, cost_source="provider")
    return {name: value for name, value in record.items() if value is not None}


def _row(line: int | None, where: str | None, row: Any) -> SourceRow:
    if not isinstance(row, dict):
        return SourceRow(line, where, None, [(None, "must be a LiteLLM_SpendLogs row object")])
    problems: FieldProblems = []
    record = _event(row, problems)
    if record is None and not problems:
        problems.append((None, "has nothing to import"))
    return SourceRow(line, where, None if problems else record, problems)


def _decoded(handle: Any, progress: Progress | None) -> Iterator[str]:
    for line in handle:
        if progress:
            progress(len(line))
        yield line.decode("utf-8-sig")


_COLUMNS = ("request_id", "startTime", "model", "spend", "prompt_tokens", "completion_tokens")


def _csv_rows(stream: Any, progress: Progress | None) -> Iterator[SourceRow]:
    reader = csv.DictReader(_decoded(stream, progress))
    line = 1
    try:
        missing = [name for name in _COLUMNS if name not in (reader.fieldnames or [])]
        if reader.fieldnames and missing:
            yield SourceRow(
                1, None, None, [(name, "column is missing from the header") for name in missing]
            )
            return
        for row in reader:
            line, start = reader.line_num, line + 1
            if None in row:
                yield SourceRow(start, None, None, [(None, "has more cells than the header")])
                continue
            yield _row(start, None, row)
    except (UnicodeDecodeError, csv.Error) as exc:
        yield SourceRow(reader.line_num, None, None, [(None, f"cannot be read: {exc}")])


def _csv(path: Path, progress: Progress | None) -> Iterator[SourceRow]:
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, _FIELD_LIMIT))
    try:
        with path.open("rb") as stream:
            yield from _csv_rows(stream, progress)
    finally:
        csv.field_size_limit(limit)


def _json_rows(
    path: Path, progress: Progress | None, span: Span | None = None
) -> Iterator[SourceRow]:
    try:
        for line, document, error in json_documents(path, progress, span=span):
            if error is not None:
                yield SourceRow(line, None, None, [(None, error)])
            elif isinstance(document, list):
                for number, row in enumerate(document):
                    yield _row(line, f"[{number}]", row)
            elif isinstance(document, dict) and isinstance(document.get("data"), list):
                # A page of the proxy's /spend/logs/v2 API.
                for number, row in enumerate(document["data"]):
                    yield _row(line, f"data[{number}]", row)
            else:
                yield _row(line, None, document)
    except RecursionError:  # json.loads on absurdly nested input
        yield SourceRow(None, None, None, [(None, "is nested too deeply to be a spend log")])


def read(path: Path, progress: Progress | None = None) -> Iterator[SourceRow]:
    """Spend log rows: CSV when the file name ends in ``.csv``, else JSON (array, page or lines)."""
    return _csv(path, progress) if path.suffix.lower() == ".csv" else _json_rows(path, progress)


FORMATS = (
    Format(
        _NAME,
        "events",
        "LiteLLM proxy spend logs (LiteLLM_SpendLogs), CSV or JSON",
        read,
        Parts.of_json_lines(_json_rows, applies=lambda path: path.suffix.lower() != ".csv"),
    ),
)
