"""OpenAI's own exports: Usage API pages, the dashboard Activity CSV, and the cost exports.

Sources relied on (the provider's published format is the contract):

* Usage API ``GET /v1/organization/usage/{completions,embeddings}``: page ``{object: "page", data:
  [bucket], has_more, next_page}``, bucket ``{object: "bucket", start_time, end_time, results}``;
  result fields as in the OpenAPI spec's ``UsageCompletionsResult`` / ``UsageEmbeddingsResult``
  (platform.openai.com/docs/api-reference/usage; 64bit/async-openai
  ``src/types/admin/usage/usage_.rs``; oapicf/openapi-openai generated docs). ``input_tokens``
  "including cached tokens" and, in the newest spec (openai-client-base 0.16.0 on docs.rs), also
  cache-write tokens, reported as ``input_cache_write_tokens`` where present. Grouping fields
  are null unless grouped. The generated reference on developers.openai.com names the bucket's
  list ``result``; the live API and the cookbook (cookbook.openai.com/examples/
  completions_usage_api) use ``results``: both are read.
* Costs API ``GET /v1/organization/costs``: results ``organization.costs.result`` with ``amount:
  {value, currency}``, ``line_item``, ``project_id``, ``api_key_id``, ``quantity``
  (developers.openai.com CLI reference). ``line_item`` looks like ``"gpt-4o-2024-08-06, input"``;
  captured line items in public code also show ``"<model> audio, input"``, ``"priority | <model>,
  output, long context"`` and non-model items such as ``"web search tool calls"``.
* Dashboard exports (help.openai.com/en/articles/8554956; header rows from a captured export in
  xavierjflanagan/Guardian; Cost columns confirmed by docs.pelanor.io/integrations/services/openai):
  see reference/provider-formats.md §3.3 for the headers and their quirks.

One bucket of the Activity CSV and the same bucket of a Usage API page are the *same* event:
both get their id from ``stable_id("openai-usage", start, end, result type, grouping values)``,
so importing both, or overlapping pages, counts the bucket once. A bucket exported with another
``group_by`` is a different set of records: import one grouping per period.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
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
from p402.money import MAX_EVENT_COST

__all__ = ["FORMATS"]

# A provider record, its bucket's start and end (RFC 3339, None if unreadable), and the list its
# problems go to; returns the canonical row, or None when there is nothing to import.
Handler = Callable[
    [Mapping[str, Any], str | None, str | None, FieldProblems], dict[str, Any] | None
]

_COMPLETIONS = "organization.usage.completions.result"
_EMBEDDINGS = "organization.usage.embeddings.result"
_COSTS = "organization.costs.result"
_OPERATIONS = {_COMPLETIONS: "chat", _EMBEDDINGS: "embeddings"}
_REQUIRED = {
    _COMPLETIONS: ("input_tokens", "output_tokens", "num_model_requests"),
    _EMBEDDINGS: ("input_tokens", "num_model_requests"),
}
_GROUPING = ("project_id", "user_id", "api_key_id", "model", "service_tier", "api_source")
_MAX_DIGITS = 18  # beyond any real token count; stops "1e999999999" becoming a billion-digit int


def _count(value: Any, name: str, problems: FieldProblems) -> int:
    """A token or request count; counts arrive as ``12`` from the API and ``12.0`` in CSVs."""
    if isinstance(value, Decimal | str) and not isinstance(value, bool):
        try:
            number = Decimal(str(value).strip() or "0")
        except InvalidOperation:
            number = Decimal(0)  # whole() names the problem
        if number.is_finite() and number.adjusted() > _MAX_DIGITS:
            problems.append((name, f"{value!r} is too large to be a count"))
            return 0
    return whole(value, name, problems)


def _text(value: Any, name: str, problems: FieldProblems) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value.strip()
    problems.append((name, f"must be a string or null, got {type(value).__name__}"))
    return None


def _times(start: Any, end: Any, problems: FieldProblems) -> tuple[str | None, str | None]:
    begins = time_from(start, "start_time", problems)
    ends = time_from(end, "end_time", problems)
    if begins is not None and ends is not None and ends <= begins:
        problems.append(("end_time", "must be after start_time"))
    return begins, ends


# --- usage -------------------------------------------------------------------------------------


def _usage_event(
    result: Mapping[str, Any],
    kind: str,
    bucket: tuple[str | None, str | None],
    batch: bool | None,
    problems: FieldProblems,
) -> dict[str, Any] | None:
    """The canonical event of one usage result (a JSON result or an Activity CSV row)."""
    ids = {name: _text(result.get(name), name, problems) for name in _GROUPING}
    requests = _count(result.get("num_model_requests"), "num_model_requests", problems)
    cached = _count(result.get("input_cached_tokens"), "input_cached_tokens", problems)
    writes = _count(result.get("input_cache_write_tokens"), "input_cache_write_tokens", problems)
    output = _count(result.get("output_tokens"), "output_tokens", problems)
    uncached = result.get("input_uncached_tokens")
    if result.get("input_tokens") in (None, "") and uncached not in (None, ""):
        # A CSV without the input_tokens column: the uncached part is given on its own.
        total = _count(uncached, "input_uncached_tokens", problems) + cached + writes
    else:
        total = _count(result.get("input_tokens"), "input_tokens", problems)
    start, end = bucket
    if problems or start is None or end is None:
        return None
    if cached + writes > total:
        # input_tokens includes the cached (and cache-write) tokens; more of them than input
        # means the numbers are broken, and a clamp would hide it.
        field = "input_cached_tokens" if cached > total else "input_cache_write_tokens"
        problems.append(
            (field, f"cached {cached} + cache-write {writes} exceed input_tokens {total}")
        )
        return None
    if requests == 0 and total == 0 and output == 0:
        return None  # an empty bucket: nothing happened
    model = ids["model"]
    record: dict[str, Any] = {
        "event_id": stable_id("openai-usage", start, end, kind, *ids.values(), batch),
        "occurred_at": start,
        "provider": "openai",
        "model": model or "unknown",
        "operation": _OPERATIONS[kind],
        # Tokens with no request count cannot come from no request: the bucket stands for one.
        "requests": max(requests, 1),
        "input_tokens": total - cached - writes,
        "cache_read_tokens": cached,
        "cache_write_tokens": writes,
        # output_tokens includes reasoning; the Usage API has no reasoning split. Audio and image
        # tokens are inside input_tokens/output_tokens as the API reports them; modality-specific
        # prices (audio tokens cost more than text) are not applied by the pricing stage.
        "output_tokens": output,
    }
    if batch is not None:
        record["batch"] = batch
    for source, target in (
        ("project_id", "provider_project_id"),
        ("api_key_id", "api_key_id"),
        ("user_id", "user_id"),
        ("service_tier", "service_tier"),
    ):
        if ids[source] is not None:
            record[target] = ids[source]
    # Not grouped by model: kept (its tokens are real) but the pricing stage leaves it unpriced.
    api_source = ids["api_source"]
    tags = (
        tags_from({"ungrouped_model": None if model else "true", "api_source": api_source})
        if api_source is not None or not model
        else None  # what tags_from gives for two nulls: nothing
    )
    if tags:
        record["tags"] = tags
    return record


def _usage_result(
    result: Mapping[str, Any], start: str | None, end: str | None, problems: FieldProblems
) -> dict[str, Any] | None:
    kind = result.get("object")
    if not isinstance(kind, str) or kind not in _OPERATIONS:
        problems.append(("object", f"{kind!r} is not a completions or embeddings usage result"))
        return None
    problems.extend((name, "is required") for name in _REQUIRED[kind] if result.get(name) is None)
    batch = result.get("batch")
    if batch is not None and not isinstance(batch, bool):
        problems.append(("batch", f"must be true, false or null, got {batch!r}"))
        batch = None
    return _usage_event(result, kind, (start, end), batch, problems)


def _activity_row(
    row: Mapping[str, Any], start: str | None, end: str | None, problems: FieldProblems
) -> dict[str, Any] | None:
    flag = (row.get("batch") or "").strip().lower()
    batch: bool | None = None
    if flag in {"true", "false"}:
        batch = flag == "true"
    elif flag:
        problems.append(("batch", f"must be TRUE, FALSE or empty, got {row.get('batch')!r}"))
    # The Activity export is the completions endpoint's data, so the same result type.
    return _usage_event(row, _COMPLETIONS, (start, end), batch, problems)


# --- costs -------------------------------------------------------------------------------------

_LINE_ITEM = re.compile(
    r"(?:(?P<tier>[a-z]+) \| )?(?P<model>[A-Za-z0-9][\w.:/-]*)(?: (?P<modality>text|audio|image))?"
    r", (?P<kind>cached input|input|output|cache writes?)(?P<rest>(?:, [a-z ]+)*)"
)


# Grouping values of a cost line beyond the first three (line item, project, API key), which
# are the Costs API's whole group_by: the dashboard's Cost export grouped by user writes one
# line per user per line item, and its newer header also has an api_source column
# (start_time,...,line_item,user_id,api_key_id,project_id,organization_id,project_name,
# organization_name,user_email,api_source, as quoted in a public converter's test).
_COST_GROUPING = ("user_id", "api_source")


def _split_line_item(line_item: str | None) -> dict[str, str]:
    """Model, token type and tier of a line item shaped like ``"gpt-4o-2024-08-06, input"``;
    nothing for other items (``"web search tool calls"``), which keep only the description."""
    found = _LINE_ITEM.fullmatch(line_item or "")
    if found is None:
        return {}
    kind = " ".join(part for part in (found["modality"], found["kind"]) if part)
    parts = {"model": found["model"], "token_type": kind + found["rest"]}
    if found["tier"]:
        parts["service_tier"] = found["tier"]
    return parts


def _invoice_line(
    fields: Mapping[str, Any],
    bucket: tuple[str | None, str | None],
    amount: tuple[Decimal | None, str | None],
    problems: FieldProblems,
) -> dict[str, Any] | None:
    line_item = _text(fields.get("line_item"), "line_item", problems)
    project_id = _text(fields.get("project_id"), "project_id", problems)
    api_key_id = _text(fields.get("api_key_id"), "api_key_id", problems)
    grouped = {name: _text(fields.get(name), name, problems) for name in _COST_GROUPING}
    (start, end), (value, currency) = bucket, amount
    if problems or start is None or end is None or value is None:
        return None
    # Lines that differ only by a later grouping (the user) are different lines: their values
    # join the identity, named, and only when present, so a line without them keeps the id it
    # had before they were read.
    extra = [f"{name}={found}" for name, found in grouped.items() if found is not None]
    # quantity (tokens billed, when grouped by line_item) and the organization's id and name
    # have no invoice-line field; they are not kept.
    line: dict[str, Any] = {
        "line_id": stable_id("openai-costs", start, end, line_item, project_id, api_key_id, *extra),
        "provider": "openai",
        "start": start,
        "end": end,
        "amount": value,  # exact, from the digits; credits are negative and stay so
        "currency": (currency or "usd").upper(),
        "description": line_item,
        "project_id": project_id,
        "api_key_id": api_key_id,
        "user_id": grouped["user_id"],
        **_split_line_item(line_item),
    }
    return {name: value for name, value in line.items() if value is not None}


def _amount(value: Any, name: str, problems: FieldProblems) -> Decimal | None:
    amount = decimal_text(value, name, problems)
    if amount is not None and abs(amount) > MAX_EVENT_COST:
        # The store keeps amounts as 64-bit integer units of 10^-12 USD: about 9.2 million a line.
        problems.append((name, f"{value} is beyond any single line of a bill"))
        return None
    return amount


def _cost_result(
    result: Mapping[str, Any], start: str | None, end: str | None, problems: FieldProblems
) -> dict[str, Any] | None:
    kind = result.get("object")
    if kind is not None and kind != _COSTS:
        problems.append(("object", f"{kind!r} is not a costs result"))
        return None
    amount = result.get("amount")
    if not isinstance(amount, dict):
        problems.append(("amount", "is required: {value, currency}"))
        return None
    value = _amount(amount.get("value"), "amount.value", problems)
    if value is None and not problems:
        problems.append(("amount.value", "is required"))
    currency = _text(amount.get("currency"), "amount.currency", problems)
    return _invoice_line(result, (start, end), (value, currency), problems)


def _cost_row(
    row: Mapping[str, Any], start: str | None, end: str | None, problems: FieldProblems
) -> dict[str, Any] | None:
    if not (row.get("amount_value") or "").strip():
        if (row.get("line_item") or "").strip():
            problems.append(("amount_value", "is required"))
        return None  # an empty bucket: only the times are filled
    value = _amount(row.get("amount_value"), "amount_value", problems)
    currency = _text(row.get("amount_currency"), "amount_currency", problems)
    return _invoice_line(row, (start, end), (value, currency), problems)


# --- reading JSON pages ------------------------------------------------------------------------


def _results(bucket: Any, where: str, line: int | None, handle: Handler) -> Iterator[SourceRow]:
    if not isinstance(bucket, dict):
        yield SourceRow(line, where, None, [(None, "must be a bucket object")])
        return
    problems: FieldProblems = []
    start, end = _times(bucket.get("start_time"), bucket.get("end_time"), problems)
    key = "result" if "result" in bucket and "results" not in bucket else "results"
    results = bucket.get(key)
    if not isinstance(results, list):
        problems.append((key, "is required: the list of results of a bucket"))
    if problems or not isinstance(results, list):
        yield SourceRow(line, where, None, problems)
        return
    for number, result in enumerate(results):
        path = f"{where}.{key}[{number}]"
        if not isinstance(result, dict):
            yield SourceRow(line, path, None, [(None, "must be a result object")])
            continue
        found: FieldProblems = []
        record = handle(result, start, end, found)
        if found:
            yield SourceRow(line, path, None, found)
        elif record is not None:
            yield SourceRow(line, path, record)


def _page(page: Any, prefix: str, line: int | None, handle: Handler) -> Iterator[SourceRow]:
    where = prefix or None
    if isinstance(page, dict) and page.get("object") == "bucket" and prefix:
        # An array of buckets, as the cookbook's loop collects them from the pages.
        yield from _results(page, prefix, line, handle)
        return
    if not isinstance(page, dict):
        yield SourceRow(line, where, None, [(None, "must be an API page object")])
        return
    data = page.get("data")
    if not isinstance(data, list):
        yield SourceRow(line, where, None, [("data", "is required: the buckets of an API page")])
        return
    for number, bucket in enumerate(data):
        yield from _results(bucket, f"{prefix}{'.' if prefix else ''}data[{number}]", line, handle)


def _pages(
    path: Path, progress: Progress | None, handle: Handler, span: Span | None = None
) -> Iterator[SourceRow]:
    try:
        for line, document, error in json_documents(path, progress, span=span):
            if error is not None:
                yield SourceRow(line, None, None, [(None, error)])
            elif isinstance(document, list):
                for number, page in enumerate(document):
                    yield from _page(page, f"[{number}]", line, handle)
            else:
                yield from _page(document, "", line, handle)
    except RecursionError:  # json.loads on absurdly nested input
        yield SourceRow(None, None, None, [(None, "is nested too deeply to be an API page")])


# --- reading CSV exports -----------------------------------------------------------------------


def _decoded(handle: Any, progress: Progress | None) -> Iterator[str]:
    for line in handle:
        if progress:
            progress(len(line))
        yield line.decode("utf-8-sig")


def _missing(header: list[str], required: tuple[tuple[str, ...], ...]) -> FieldProblems:
    return [
        (names[0], f"column is missing (an export has {' or '.join(names)})")
        for names in required
        if not any(name in header for name in names)
    ]


class _Repeats:
    """Rows of one export that share a grouping key but not their figures.

    A published Activity export (xavierjflanagan/Guardian's report) has two rows of one day,
    project, user, key, model, batch flag and tier with different counts: both are usage, so the
    second must not be taken for a duplicate of the first. A repeat with other figures gets an id
    derived from the first and its rank among the variants, plus the code ``repeated_group`` (on
    events); a repeat with the same figures keeps the id and stays a duplicate.
    """

    def __init__(self) -> None:
        self.variants: dict[str, list[tuple[tuple[str, str], ...]]] = {}

    def distinct(self, record: dict[str, Any]) -> dict[str, Any]:
        key = "event_id" if "event_id" in record else "line_id"
        figures = tuple(sorted((name, str(value)) for name, value in record.items() if name != key))
        known = self.variants.setdefault(record[key], [])
        if figures not in known:
            known.append(figures)
        rank = known.index(figures)
        if rank == 0:
            return record
        record = {**record, key: stable_id(record[key], "variant", rank)}
        if key == "event_id":
            record["quality"] = "repeated_group"
        return record


def _csv_rows(
    path: Path,
    progress: Progress | None,
    required: tuple[tuple[str, ...], ...],
    handle: Handler,
) -> Iterator[SourceRow]:
    repeats = _Repeats()
    with path.open("rb") as stream:
        reader = csv.DictReader(_decoded(stream, progress))
        line = 1
        try:
            header = [name.strip() for name in reader.fieldnames or []]
            if not header:
                return
            problems = _missing(header, required)
            if problems:
                yield SourceRow(1, None, None, problems)
                return
            reader.fieldnames = header
            for row in reader:
                line, start = reader.line_num, line + 1
                if None in row and any(cell.strip() for cell in row.pop(None)):
                    # Only blank cells past the header are dropped: a published export's empty
                    # buckets carry one or two of them (xavierjflanagan/Guardian's report).
                    yield SourceRow(start, None, None, [(None, "has more cells than the header")])
                    continue
                if None in row.values():
                    yield SourceRow(start, None, None, [(None, "has fewer cells than the header")])
                    continue
                found: FieldProblems = []
                begins, ends = _times(
                    row.get("start_time") or row.get("start_time_iso"),
                    row.get("end_time") or row.get("end_time_iso"),
                    found,
                )
                record = handle(row, begins, ends, found)
                if found:
                    yield SourceRow(start, None, None, found)
                elif record is not None:
                    yield SourceRow(start, None, repeats.distinct(record))
        except (UnicodeDecodeError, csv.Error) as exc:
            yield SourceRow(reader.line_num, None, None, [(None, f"cannot be read: {exc}")])


_TIMES = (("start_time", "start_time_iso"), ("end_time", "end_time_iso"))


def read_usage(
    path: Path, progress: Progress | None = None, span: Span | None = None
) -> Iterator[SourceRow]:
    """Usage API completions and embeddings pages: one page, an array of pages, or JSON Lines."""
    return _pages(path, progress, _usage_result, span)


def read_activity_csv(path: Path, progress: Progress | None = None) -> Iterator[SourceRow]:
    """The dashboard Activity export (CSV), columns found by their header names."""
    required = (*_TIMES, ("input_tokens", "input_uncached_tokens"), ("output_tokens",))
    return _csv_rows(path, progress, required, _activity_row)


def read_costs(path: Path, progress: Progress | None = None) -> Iterator[SourceRow]:
    """Costs API pages, or the dashboard Cost export when the file name ends in ``.csv``."""
    if path.suffix.lower() == ".csv":
        return _csv_rows(path, progress, (*_TIMES, ("amount_value",)), _cost_row)
    return _pages(path, progress, _cost_result)


FORMATS = (
    Format(
        "openai-usage",
        "events",
        "OpenAI Usage API pages (completions, embeddings): a page, an array of pages, JSON Lines",
        read_usage,
        Parts.of_json_lines(read_usage),
    ),
    Format(
        "openai-usage-csv",
        "events",
        "OpenAI dashboard Usage export, Activity tab (CSV)",
        read_activity_csv,
    ),
    Format(
        "openai-costs",
        "invoice_lines",
        "OpenAI Costs API pages, or the dashboard Cost export (.csv)",
        read_costs,
    ),
)
