"""Anthropic's Admin API reports: token usage as events, the cost report as invoice lines.

Sources relied on (the provider's published format is the contract):

* Usage report ``GET /v1/organizations/usage_report/messages``: page ``{data: [bucket], has_more,
  next_page}``, bucket ``{starting_at, ending_at, results}``, result ``{uncached_input_tokens,
  cache_creation: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens},
  cache_read_input_tokens, output_tokens, server_tool_use: {web_search_requests}}`` plus the
  grouping fields, null unless grouped (platform.claude.com/docs/en/api/admin/usage_report/
  retrieve_messages; the nested ``cache_creation`` object as in anthropics/claude-cookbooks
  ``observability/usage_cost_api.ipynb``). ``uncached_input_tokens`` already excludes cache
  reads and writes; ``output_tokens`` includes extended thinking.
* Cost report ``GET /v1/organizations/cost_report``: the same page and bucket; result ``{amount,
  currency, workspace_id, description, cost_type, context_window, model, service_tier,
  token_type, inference_geo}``, ``amount`` a decimal string in cents ("123.45" is $1.2345)
  (platform.claude.com/docs/en/api/admin/cost_report, mirrored in gpambrozio/ClaudeDocs
  ``docs-md/api/api/admin/cost_report.md``).
* Claude Enterprise analytics ``GET /v1/organizations/analytics/usage_report`` and
  ``/cost_report``: the same buckets, results adding ``requests``, ``product``,
  ``rbac_group_id``, ``claude_tag_category``, ``claude_tag_user_id``, ``slack_channel_id``,
  ``speed``; cost results add ``list_amount`` (anthropics/anthropic-sdk-python
  ``types/beta/organization/beta_analytics_usage_bucketed_result.py`` and
  ``beta_analytics_cost_bucketed_result.py``; gpambrozio/ClaudeDocs
  ``docs-md/api/api/beta/organization/analytics/usage/list.md``).
* Usage & Cost Analytics API (beta ``analytics-usage-cost-2026-08-24``), ``GET
  /v1/organizations/analytics/cost``: one row per bucket and group, ``{starting_at, ending_at,
  group: {...}, cost: {amount, currency, list_amount, requests}}``, amounts in fractional cents
  (platform.claude.com/docs/en/api/go/beta/organization/analytics/cost). Its usage rows
  (``/analytics/usage``: ``{starting_at, ending_at, group, usage}``) are recognised but refused
  with a problem: the token field names inside ``usage`` are not in any published source found,
  and a guess could misprice every row. Export with ``/analytics/usage_report`` meanwhile.
* Claude Enterprise per-user analytics ``GET /v1/organizations/analytics/user_usage_report`` and
  ``/user_cost_report``: flat rows ``{actor: {type: "user_actor", user_id, email, name,
  deleted}, starting_at, ending_at, ...the bucketed result's fields}``, seat-user traffic only
  (gpambrozio/ClaudeDocs ``docs-md/api/api/admin/analytics/usage/list_by_user.md``). Recognised
  and refused with a problem: the same usage is in the bucketed reports.

Web searches (``server_tool_use.web_search_requests``) are billed per search, apart from tokens
(``web_search_calls``, priced at the table's or the supplement's rate).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
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

__all__ = ["FORMATS"]


_USAGE = "anthropic-usage"
_COSTS = "anthropic-costs"
# The grouping values that tell the results of one bucket apart: the legacy report's, then the
# Enterprise analytics report's. An absent key reads as null, so a result gets the same id
# whichever endpoint it came from, and overlapping pages import once.
_USAGE_GROUPING = (
    "api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo",
    "speed", "account_id", "service_account_id", "product", "rbac_group_id",
    "claude_tag_category", "claude_tag_user_id", "slack_channel_id",
)  # fmt: skip
_COST_GROUPING = (
    "workspace_id", "description", "cost_type", "context_window", "model", "service_tier",
    "token_type", "inference_geo", "speed", "product", "rbac_group_id", "claude_tag_category",
    "claude_tag_user_id", "slack_channel_id",
)  # fmt: skip
_USAGE_TAGS = (
    "context_window", "inference_geo", "speed", "product", "claude_tag_category",
    "claude_tag_user_id", "slack_channel_id",
)  # fmt: skip
# The per-user analytics reports count, per seat user, usage that the bucketed reports count in
# full (with API-key and automation traffic besides): read with them, that usage would count twice.
_PER_USER = (
    "a per-user analytics row (/v1/organizations/analytics/user_usage_report or "
    "user_cost_report) is not read: it repeats, per seat user, usage the bucketed report counts; "
    "export /v1/organizations/analytics/usage_report or cost_report instead"
)
_MAX_DIGITS = 18  # cents beyond any real bill; also keeps "1e999999999" from being computed on


@dataclass(frozen=True, slots=True)
class _Item:
    """One record found in a page: a bucket's result, or a row of the 2026 analytics API."""

    line: int | None
    path: str
    start: str | None
    end: str | None
    record: Mapping[str, Any]
    row: bool  # True for a ``{group, usage|cost}`` row, False for a bucket's result


Handler = Callable[[_Item, FieldProblems], dict[str, Any] | None]


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


def _object(record: Mapping[str, Any], name: str, problems: FieldProblems) -> Mapping[str, Any]:
    value = record.get(name)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    problems.append((name, f"must be an object or null, got {type(value).__name__}"))
    return {}


# --- usage -------------------------------------------------------------------------------------


def _usage_event(item: _Item, problems: FieldProblems) -> dict[str, Any] | None:
    if item.row and "cost" in item.record:
        problems.append(("cost", "a cost row: import it with the anthropic-costs format"))
        return None
    if item.row:
        problems.append(
            ("usage", "a Usage & Cost Analytics row ({group, usage}) is not read yet: its token "
             "fields are not confirmed from a published source; export the same period from "
             "/v1/organizations/analytics/usage_report or /v1/organizations/usage_report/messages")
        )  # fmt: skip
        return None
    result = item.record
    if "currency" in result and "uncached_input_tokens" not in result:
        problems.append(
            ("amount", "a cost report result: import it with the anthropic-costs format")
        )
        return None
    ids = {name: _text(result, name, problems) for name in _USAGE_GROUPING}
    writes = _object(result, "cache_creation", problems)
    tools = _object(result, "server_tool_use", problems)
    tokens = {
        "input_tokens": whole(result.get("uncached_input_tokens"), "uncached_input_tokens", problems),
        "cache_read_tokens": whole(result.get("cache_read_input_tokens"), "cache_read_input_tokens", problems),
        "cache_write_tokens": whole(
            writes.get("ephemeral_5m_input_tokens"), "cache_creation.ephemeral_5m_input_tokens", problems
        ),
        "cache_write_1h_tokens": whole(
            writes.get("ephemeral_1h_input_tokens"), "cache_creation.ephemeral_1h_input_tokens", problems
        ),
        "output_tokens": whole(result.get("output_tokens"), "output_tokens", problems),  # incl. thinking
    }  # fmt: skip
    requests = whole(result.get("requests"), "requests", problems)
    searches = whole(
        tools.get("web_search_requests"), "server_tool_use.web_search_requests", problems
    )
    if ids["rbac_group_id"] is not None:
        # A user in several RBAC groups is counted in full in each group's row: the rows overlap,
        # and importing them would count that usage more than once.
        problems.append(
            ("rbac_group_id", "rows grouped by RBAC group overlap, so they are not spend; export "
             "without group_by[]=rbac_group_id")
        )  # fmt: skip
    if problems or item.start is None or item.end is None:
        return None
    model = ids["model"]
    if not any(tokens.values()) and (requests == 0 or model is None):
        # Nothing happened, or code-execution spans (model null, no tokens): no token spend.
        return None
    tier = ids["service_tier"]
    record: dict[str, Any] = {
        "event_id": stable_id(_USAGE, item.start, item.end, *ids.values()),
        "occurred_at": item.start,
        "provider": "anthropic",
        # Not grouped by model: the tokens are real, so kept, and the pricing stage leaves the
        # row visibly unpriced.
        "model": model or "unknown",
        "operation": "chat",
        # The legacy report has no request count, and the analytics one may give none: a
        # result with tokens stands for at least one call, recorded as 1.
        "requests": max(requests, 1),
        **tokens,
        "service_tier": tier,
        "batch": tier == "batch",
        "api_key_id": ids["api_key_id"],
        "workspace_id": ids["workspace_id"],
        "user_id": ids["account_id"] or ids["service_account_id"],
        "web_search_calls": searches or None,  # billed per search, priced apart from tokens
    }
    tags = tags_from(
        {
            **{name: ids[name] for name in _USAGE_TAGS},
            "service_account": "true" if ids["service_account_id"] else None,
            # A result grouped by both keeps both: the user above, the service account here.
            "service_account_id": ids["service_account_id"] if ids["account_id"] else None,
            "ungrouped_model": None if model else "true",
        }
    )
    if tags:
        record["tags"] = tags
    return {name: value for name, value in record.items() if value is not None}


# --- costs -------------------------------------------------------------------------------------


def _cents(value: Any, name: str, problems: FieldProblems) -> Decimal | None:
    """USD from a decimal amount in cents, exactly (``"0.5"`` is $0.005)."""
    if value is None or value == "":
        problems.append((name, "is required"))
        return None
    cents = decimal_text(value, name, problems)
    if cents is None:
        return None
    if cents.adjusted() > _MAX_DIGITS:
        problems.append((name, f"{str(value)[:40]!r} is too large to be an amount"))
        return None
    return cents.scaleb(-2)


def _cost_line(item: _Item, problems: FieldProblems) -> dict[str, Any] | None:
    fields = item.record
    if item.row:
        fields = _object(item.record, "group", problems)
        metrics = _object(item.record, "cost", problems)
        if "cost" not in item.record and not problems:
            problems.append(("cost", "is required: {amount, currency, ...}"))
    elif "uncached_input_tokens" in fields and "amount" not in fields:
        problems.append(
            ("amount", "a usage report result: import it with the anthropic-usage format")
        )
        return None
    else:
        metrics = fields
    prefix = "cost." if item.row else ""
    amount = _cents(metrics.get("amount"), f"{prefix}amount", problems)
    currency = _text(metrics, "currency", problems, prefix)
    if currency is not None and currency.upper() != "USD":
        problems.append((f"{prefix}currency", f"only USD is supported, got {currency!r}"))
    label = "group." if item.row else ""
    texts = {name: _text(fields, name, problems, label) for name in (*_COST_GROUPING, "api_key_id")}
    # A row of the 2026 API is identified by all of its group, known values or not (actor
    # objects included); a bucket's result by the report's grouping fields.
    identity: list[str | None] = [texts[name] for name in _COST_GROUPING]
    if item.row:
        try:
            identity = [json.dumps(fields, sort_keys=True, default=str)]
        except (RecursionError, ValueError):
            problems.append(("group", "is nested too deeply to be a group"))
    if problems or item.start is None or item.end is None or amount is None:
        return None
    if amount == 0:
        return None  # nothing billed
    line = {
        "line_id": stable_id(_COSTS, item.start, item.end, *identity),
        "provider": "anthropic",
        "start": item.start,
        "end": item.end,
        "amount": amount,  # post-discount, pre-credit; list_amount is not kept
        "currency": "USD",
        # Grouped by cost type only (no description): the cost type says what was billed.
        "description": texts["description"] or texts["cost_type"],
        **{
            name: texts[name]
            for name in ("workspace_id", "api_key_id", "model", "token_type", "service_tier")
        },
    }
    return {name: value for name, value in line.items() if value is not None}


# --- reading pages -----------------------------------------------------------------------------


def _bucket(bucket: Any, where: str, line: int | None) -> Iterator[_Item | SourceRow]:
    if not isinstance(bucket, dict):
        yield SourceRow(line, where, None, [(None, "must be a time bucket object")])
        return
    if "results" not in bucket and "actor" in bucket:
        yield SourceRow(line, where, None, [("actor", _PER_USER)])
        return
    problems: FieldProblems = []
    start = time_from(bucket.get("starting_at"), "starting_at", problems)
    end = time_from(bucket.get("ending_at"), "ending_at", problems)
    if start is not None and end is not None and end <= start:
        problems.append(("ending_at", "must be after starting_at"))
    results = bucket.get("results")
    if "results" not in bucket and ("group" in bucket or "usage" in bucket or "cost" in bucket):
        if problems:
            yield SourceRow(line, where, None, problems)
        else:
            yield _Item(line, where, start, end, bucket, row=True)
        return
    if not isinstance(results, list):
        problems.append(("results", "is required: the list of results of a time bucket"))
    if problems or not isinstance(results, list):
        yield SourceRow(line, where, None, problems)
        return
    for number, result in enumerate(results):
        path = f"{where}.results[{number}]"
        if isinstance(result, dict):
            yield _Item(line, path, start, end, result, row=False)
        else:
            yield SourceRow(line, path, None, [(None, "must be a result object")])


def _items(path: Path, progress: Progress | None, span: Span | None) -> Iterator[_Item | SourceRow]:
    """The results of every bucket of every page: one page, an array of pages, or JSON Lines."""
    try:
        for line, document, error in json_documents(path, progress, span=span):
            if error is not None:
                yield SourceRow(line, None, None, [(None, error)])
                continue
            many = isinstance(document, list)
            for number, page in enumerate(document if many else [document]):
                prefix = f"[{number}]." if many else ""
                data = page.get("data") if isinstance(page, dict) else None
                if not isinstance(data, list):
                    where = prefix.rstrip(".") or None
                    yield SourceRow(
                        line, where, None, [("data", "is required: a report page's buckets")]
                    )
                    continue
                for index, bucket in enumerate(data):
                    yield from _bucket(bucket, f"{prefix}data[{index}]", line)
    except RecursionError:  # json.loads on absurdly nested input
        yield SourceRow(None, None, None, [(None, "is nested too deeply to be a report page")])


def _read(
    path: Path, progress: Progress | None, handle: Handler, key: str, span: Span | None = None
) -> Iterator[SourceRow]:
    bucket: tuple[int | None, str] | None = None
    seen: dict[str, str] = {}  # the ids of the current bucket's results, and where they were
    for item in _items(path, progress, span):
        if isinstance(item, SourceRow):
            yield item
            continue
        problems: FieldProblems = []
        record = handle(item, problems)
        if problems:
            yield SourceRow(item.line, item.path, None, problems)
            continue
        if record is None:
            continue
        here = (item.line, item.path.rsplit(".results[", 1)[0])
        if here != bucket:
            bucket, seen = here, {}
        # Two results of one bucket with the same grouping values would share an id and one
        # would be lost: a grouping field this reader does not know. Said, never merged.
        if record[key] in seen:
            message = f"has the grouping values of {seen[record[key]]}: an unknown grouping field?"
            yield SourceRow(item.line, item.path, None, [(None, message)])
            continue
        seen[record[key]] = item.path
        yield SourceRow(item.line, item.path, record)


def read_usage(
    path: Path, progress: Progress | None = None, span: Span | None = None
) -> Iterator[SourceRow]:
    """Usage report pages (legacy or Enterprise analytics): one page, an array, or JSON Lines."""
    return _read(path, progress, _usage_event, "event_id", span)


def read_costs(path: Path, progress: Progress | None = None) -> Iterator[SourceRow]:
    """Cost report pages, or Usage & Cost Analytics cost rows, as invoice lines in USD."""
    return _read(path, progress, _cost_line, "line_id")


FORMATS = (
    Format(
        _USAGE,
        "events",
        "Anthropic Admin API usage report pages (JSON)",
        read_usage,
        Parts.of_json_lines(read_usage),
    ),
    Format(
        _COSTS,
        "invoice_lines",
        "Anthropic Admin API cost report pages (JSON, amounts in cents)",
        read_costs,
    ),
)
