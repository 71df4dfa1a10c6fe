"""OpenTelemetry GenAI spans as OTLP/JSON (``otel``): one event per span that carries usage.

Sources relied on (the published format is the contract):

* OTLP/JSON encoding (opentelemetry-proto ``docs/specification.md`` "JSON Protobuf Encoding"):
  lowerCamelCase field names; ``traceId`` / ``spanId`` in hex; 64-bit integers such as
  ``intValue`` and ``startTimeUnixNano`` as decimal *strings* (numbers are accepted too);
  enums as integers (``status.code`` 2 is ERROR; the enum name is accepted too). ``AnyValue``
  is one of ``stringValue``, ``boolValue``, ``intValue``, ``doubleValue``, ``arrayValue``,
  ``kvlistValue``, ``bytesValue``.
* File layout (opentelemetry.io/docs/specs/otel/protocol/file-exporter, and the collector's
  ``fileexporter``): JSON Lines, one ``TracesData`` ``{"resourceSpans": [...]}`` a line; a file
  holding one such document (a saved export request) is read too.
* GenAI attributes (open-telemetry/semantic-conventions ``docs/registry/attributes/gen-ai.md``,
  v1.37-v1.41): ``gen_ai.provider.name`` (deprecated ``gen_ai.system``), ``gen_ai.request.model``,
  ``gen_ai.response.model``, ``gen_ai.operation.name``, ``gen_ai.usage.input_tokens`` ("SHOULD
  include all types of input tokens, including cached tokens"), ``gen_ai.usage.output_tokens``,
  ``gen_ai.usage.cache_read.input_tokens`` and ``gen_ai.usage.cache_creation.input_tokens``
  ("SHOULD be included in gen_ai.usage.input_tokens", v1.40), ``gen_ai.usage.reasoning.
  output_tokens`` (v1.41), deprecated ``gen_ai.usage.prompt_tokens`` / ``completion_tokens``,
  ``gen_ai.openai.{request,response}.service_tier`` (later ``openai.*``).

Mapping: ``cache_read = cache_read.input_tokens``, ``cache_write = cache_creation.input_tokens``,
``input = input_tokens - cache_read - cache_write``; when that would be negative the
instrumentation reported input *excluding* cache (as Anthropic's own API counts it), so
``input = input_tokens`` and the event is tagged ``p402.input_excludes_cache``. (An exclusive
count that happens to be larger than the cache counts cannot be told apart; the convention's
inclusive reading is used.) ``output = output_tokens`` (it includes reasoning), ``reasoning =
reasoning.output_tokens``. ``status.code`` 2 gives outcome ``error``.

Attribution: ``p402.<field>`` or ``app.<field>`` (field one of owner, department, employee,
customer, workflow, project, feature) on the span, else on the resource, sets that field;
``enduser.id`` or ``user.id`` sets ``user_id``. Tags: a few resource attributes as
``resource.<key>`` (service, deployment environment), a few non-content span attributes
(provider as given, request model, response id, conversation, agent, server, error type) and
any other scalar ``p402.*`` attribute. Nested (array, kvlist) and bytes values never become tags,
and no message, prompt, completion, system instruction or tool argument/result attribute, nor
any span event, is ever read.

Agent spans: an ``invoke_agent`` / ``create_agent`` span's usage is the sum of its model calls.
It becomes an event only when no model-call span of the same trace carrying usage is in the
file, so an agent's spend is counted once whether the instrumentation reports usage per call,
per agent, or both. (This remembers the ids of traces with model calls, not the spans.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from p402.errors import FieldProblems
from p402.ingest.formats._common import (
    Format,
    Progress,
    SourceRow,
    dated,
    json_documents,
    printable,
    stable_id,
    whole,
)
from p402.ingest.formats.bedrock import model_name
from p402.ingest.tags import MAX_TAGS, tags_from
from p402.ledger.events import ATTRIBUTION_FIELDS

__all__ = ["FORMATS"]

NAME = "otel"
Attributes = dict[str, Any]

_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "bedrock",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "azure.ai.openai": "azure",
    # Values of the deprecated gen_ai.system, and the table's ids where they differ.
    "az.ai.openai": "azure",
    "vertex_ai": "google",
    "gemini": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
}
_AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
_RESOURCE_TAGS = (
    "service.name",
    "service.namespace",
    "service.version",
    "deployment.environment",
    "deployment.environment.name",
)
_SPAN_TAGS = (
    "gen_ai.request.model",
    "gen_ai.response.id",
    "gen_ai.conversation.id",
    "gen_ai.agent.name",
    "gen_ai.agent.id",
    "server.address",
    "error.type",
)
_TIERS = (
    "gen_ai.openai.response.service_tier",
    "openai.response.service_tier",
    "gen_ai.openai.request.service_tier",
    "openai.request.service_tier",
)
_PROVIDER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_NESTED = object()  # an array, kvlist or bytes value: never a tag, never a count


def _count(value: Any, name: str, problems: FieldProblems) -> int:
    if value is _NESTED:
        problems.append((name, "must be a number, got an array or kvlist"))
        return 0
    return whole(value, name, problems)


def _scalar(value: Any) -> Any:
    """An OTLP ``AnyValue`` as a Python scalar (``intValue`` may be text); nested ones are
    :data:`_NESTED` and are not decoded at all."""
    if not isinstance(value, Mapping):
        return None
    for key in ("stringValue", "boolValue", "intValue", "doubleValue"):
        if key in value:
            found = value[key]
            return found if isinstance(found, str | bool | int | Decimal | float) else None
    if any(key in value for key in ("arrayValue", "kvlistValue", "bytesValue")):
        return _NESTED
    return None


def attributes(items: Any, name: str, problems: FieldProblems) -> Attributes:
    """An OTLP attribute list ``[{key, value}]`` as a dict of scalars."""
    if items is None:
        return {}
    if not isinstance(items, list):
        problems.append((name, "must be an array of {key, value}"))
        return {}
    found: Attributes = {}
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("key"), str):
            found[item["key"]] = _scalar(item.get("value"))
    return found


def _text(attrs: Attributes, *names: str) -> str | None:
    """The first of *names* that holds text the ledger can store as is."""
    for name in names:
        value = attrs.get(name)
        if printable(value):
            return str(value).strip()
    return None


def _time(value: Any, problems: FieldProblems) -> str | None:
    name = "startTimeUnixNano"
    if isinstance(value, bool) or not isinstance(value, int | str) or value in ("", 0, "0"):
        problems.append((name, "is required (nanoseconds since 1970, as text)"))
        return None
    try:
        nanos = int(str(value).strip())
        seconds, rest = divmod(nanos, 1_000_000_000)
        moment = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=rest // 1000)
    except (ValueError, OverflowError, OSError):
        problems.append((name, f"{value!r} is not a time in nanoseconds since 1970"))
        return None
    return dated(moment, name, problems)


def _provider(attrs: Attributes, problems: FieldProblems) -> str | None:
    given = _text(attrs, "gen_ai.provider.name", "gen_ai.system")
    if given is None:
        problems.append(("gen_ai.provider.name", "is required (or the deprecated gen_ai.system)"))
        return None
    provider = _PROVIDERS.get(given.lower(), given.lower())
    if not _PROVIDER.fullmatch(provider):
        problems.append(("gen_ai.provider.name", f"{given!r} is not a provider name"))
        return None
    return provider


def _operation(attrs: Attributes) -> str | None:
    given = _text(attrs, "gen_ai.operation.name")
    if given is None:
        return None
    word = re.sub(r"[^a-z0-9_]", "_", given.lower())[:32]
    return word if re.fullmatch(r"[a-z][a-z0-9_]*", word) else None


def _tokens(attrs: Attributes, problems: FieldProblems) -> dict[str, int]:
    def count(*names: str) -> int:
        name = next((n for n in names if attrs.get(n) is not None), names[0])
        return _count(attrs.get(name), name, problems)

    given = count("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
    cache_read = count("gen_ai.usage.cache_read.input_tokens")
    cache_write = count("gen_ai.usage.cache_creation.input_tokens")
    output = count("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
    reasoning = count("gen_ai.usage.reasoning.output_tokens")
    if reasoning > output:
        problems.append(
            (
                "gen_ai.usage.reasoning.output_tokens",
                "is part of output_tokens, so cannot exceed it",
            )
        )
    inclusive = given >= cache_read + cache_write
    return {
        "input_tokens": given - cache_read - cache_write if inclusive else given,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
        "excludes_cache": 0 if inclusive else 1,
    }


def _attribution(span: Attributes, resource: Attributes) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in ATTRIBUTION_FIELDS:
        names = (f"p402.{name}", f"app.{name}")
        value = _text(span, *names) or _text(resource, *names)
        if value is not None:
            found[name] = value
    user = _text(span, "enduser.id", "user.id") or _text(resource, "enduser.id", "user.id")
    if user is not None:
        found["user_id"] = user
    return found


def _tags(span: Attributes, resource: Attributes, excludes_cache: bool) -> dict[str, str]:
    chosen: dict[str, Any] = {f"resource.{key}": resource.get(key) for key in _RESOURCE_TAGS}
    # The provider as the instrumentation named it, whichever attribute carried it.
    chosen["gen_ai.provider.name"] = _text(span, "gen_ai.provider.name", "gen_ai.system")
    chosen |= {key: span.get(key) for key in _SPAN_TAGS}
    if excludes_cache:
        chosen["p402.input_excludes_cache"] = "true"
    tags = tags_from({k: v for k, v in chosen.items() if v is not None and v is not _NESTED})
    extra = {**resource, **span}
    scalars = {k: v for k, v in extra.items() if k.startswith("p402.") and v is not _NESTED}
    for key, value in sorted(tags_from(scalars).items()):
        if len(tags) >= MAX_TAGS:
            break
        tags.setdefault(key, value)
    return tags


def _outcome(status: Any) -> str | None:
    code = status.get("code") if isinstance(status, Mapping) else None
    if code in (2, "2", "STATUS_CODE_ERROR"):
        return "error"
    if code in (1, "1", "STATUS_CODE_OK"):
        return "success"
    return None


def event(
    span: Mapping[str, Any], resource: Attributes, problems: FieldProblems
) -> dict[str, Any] | None:
    """The canonical raw event for one span, or ``None`` when it carries no GenAI usage."""
    attrs = attributes(span.get("attributes"), "attributes", problems)
    usage_names = (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
    )
    if not any(attrs.get(name) is not None for name in usage_names):
        return None
    trace_id, span_id = span.get("traceId"), span.get("spanId")
    for name, value in (("traceId", trace_id), ("spanId", span_id)):
        if not isinstance(value, str) or not value.strip():
            problems.append((name, "is required (it identifies the call)"))
    occurred_at = _time(span.get("startTimeUnixNano"), problems)
    provider = _provider(attrs, problems)
    model = _text(attrs, "gen_ai.response.model", "gen_ai.request.model")
    if model is None:
        problems.append(("gen_ai.response.model", "is required (or gen_ai.request.model)"))
    tokens = _tokens(attrs, problems)
    if problems or provider is None or model is None:
        return None
    excludes_cache = bool(tokens.pop("excludes_cache"))
    tier = _text(attrs, *_TIERS)  # the response's tier (what was used) before the request's
    row: dict[str, Any] = {
        "event_id": stable_id(NAME, trace_id, span_id),
        "occurred_at": occurred_at,
        "provider": provider,
        "model": model_name(model) if provider == "bedrock" else model,
        "operation": _operation(attrs),
        # A span is one call (an agent span is handled by the caller, see the module notes).
        "requests": 1,
        **tokens,
        **_attribution(attrs, resource),
        "service_tier": tier if printable(tier, 64) else None,
        "outcome": _outcome(span.get("status")),
        "tags": _tags(attrs, resource, excludes_cache),
    }
    return {key: value for key, value in row.items() if value is not None and value != {}}


Found = tuple[str, Mapping[str, Any] | None, Attributes, FieldProblems]


def _spans(document: Any, prefix: str = "") -> Iterator[Found]:
    """``(json path, span, resource attributes, problems)`` for every span of an export (or of
    an array of exports)."""
    if isinstance(document, list) and not prefix:
        for index, item in enumerate(document):
            yield from _spans(item, f"[{index}].")
        return
    if not isinstance(document, Mapping) or not isinstance(document.get("resourceSpans"), list):
        problem = 'must be an OTLP/JSON traces export {"resourceSpans": [...]}'
        yield prefix.rstrip("."), None, {}, [(None, problem)]
        return
    for r, resource_spans in enumerate(document["resourceSpans"]):
        here = f"{prefix}resourceSpans[{r}]"
        problems: FieldProblems = []
        if not isinstance(resource_spans, Mapping):
            yield here, None, {}, [(None, "must be an object")]
            continue
        resource = resource_spans.get("resource")
        if resource is not None and not isinstance(resource, Mapping):
            yield here, None, {}, [("resource", "must be an object")]
            continue
        items = None if resource is None else resource.get("attributes")
        attrs = attributes(items, "resource.attributes", problems)
        scopes = resource_spans.get("scopeSpans", [])
        if problems or not isinstance(scopes, list):
            yield here, None, {}, problems or [("scopeSpans", "must be an array")]
            continue
        for s, scope in enumerate(scopes):
            spans = scope.get("spans", []) if isinstance(scope, Mapping) else None
            if not isinstance(spans, list):
                yield f"{here}.scopeSpans[{s}]", None, {}, [("spans", "must be an array")]
                continue
            for n, span in enumerate(spans):
                path = f"{here}.scopeSpans[{s}].spans[{n}]"
                if isinstance(span, Mapping):
                    yield path, span, attrs, []
                else:
                    yield path, None, {}, [(None, "a span must be an object")]


def _is_agent(span: Mapping[str, Any]) -> bool:
    items = span.get("attributes")
    if not isinstance(items, list):
        return False
    return any(
        isinstance(item, Mapping)
        and item.get("key") == "gen_ai.operation.name"
        and _scalar(item.get("value")) in _AGENT_OPERATIONS
        for item in items
    )


def read(path: Path, progress: Progress | None = None) -> Iterator[SourceRow]:
    """Events from OTLP/JSON trace exports (JSON Lines, or one export request)."""
    with_calls: set[str] = set()  # traces with a model-call span carrying usage
    agents: list[tuple[str, SourceRow]] = []  # agent spans, decided at the end of the file
    for line, document, error in json_documents(path, progress):
        if error is not None:
            yield SourceRow(line, None, None, [(None, error)])
            continue
        for where, span, resource, problems in _spans(document):
            if span is None:
                yield SourceRow(line, where or None, None, problems)
                continue
            row = event(span, resource, problems)
            if problems:
                yield SourceRow(line, where, None, problems)
            elif row is not None and _is_agent(span):
                agents.append((str(span.get("traceId")), SourceRow(line, where, row)))
            elif row is not None:
                with_calls.add(str(span.get("traceId")))
                yield SourceRow(line, where, row)
    for trace_id, agent in agents:
        if trace_id not in with_calls:
            yield agent


FORMATS = (
    Format(NAME, "events", "OpenTelemetry GenAI spans, OTLP/JSON (collector file exporter)", read),
)
