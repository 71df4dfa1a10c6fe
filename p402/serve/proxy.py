"""The routing proxy: OpenAI- and Anthropic-compatible routes that forward each call upstream and
record it as an economic event, metadata only.

``POST /v1/chat/completions``, ``/v1/responses`` and ``/v1/embeddings`` go to the configured
OpenAI upstream, ``POST /v1/messages`` to the Anthropic one (``[upstreams]`` in ``p402.toml``).
The caller's own provider key (``Authorization`` or ``x-api-key``, when it is not a p402 key)
goes upstream untouched; when the p402 key came in one of those headers, the key configured
for the provider is sent instead. Streams are passed through as they come, while a small
incremental reader of the server-sent events watches for the usage.

The event is built from the response's usage (tokens in p402's non-overlapping buckets), the
response's model, and the attribution headers (``X-P402-Owner``, ``-Department``,
``-Employee``, ``-Customer``, ``-Workflow``, ``-Project``, ``-Feature``, ``-Tags``) before the
rules. Its id is p402's own, given when the call arrives (the upstream's id is kept as the tag
``p402.response_id``). It is recorded after the response has been handed over, off the event loop. Request and
response bodies are read for the model, the stream flag and the usage only: they are never
stored or logged. Policy (:mod:`p402.serve.policy`) is decided before forwarding: a refused
call is answered 403 or 429 and recorded with ``policy_decision = deny``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from p402.ingest.tags import (
    CONTROL,
    MAX_TAG_NAME,
    MAX_TAG_VALUE,
    MAX_TAGS,
    OWN_PREFIX,
    TAG_NAME,
    tags_from,
)
from p402.ledger.events import ATTRIBUTION_FIELDS
from p402.money import to_units
from p402.period import format_time
from p402.serve.auth import presented_key, service_of
from p402.serve.bodies import read_body
from p402.serve.errors import error_response
from p402.serve.policy import ALLOW, Decision, Policy
from p402.serve.service import Service

__all__ = ["router"]

log = logging.getLogger(__name__)

_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length", "content-encoding",
    "accept-encoding", "cookie",
})  # fmt: skip
"""Never copied across: hop-by-hop, recomputed by the sending side, or p402's own cookie."""
_ATTRIBUTION_HEADERS = tuple((f"x-p402-{name}", name) for name in ATTRIBUTION_FIELDS)
_MAX_VALUE = 200
MAX_PROXY_BODY = 100 * 1024 * 1024
"""A request body the proxy forwards (images and documents travel inline, base64)."""
_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=30.0)
_LIMITS = httpx.Limits(max_connections=1_000, max_keepalive_connections=200)


# --- usage: provider buckets → p402's non-overlapping ones --------------------------------------


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _openai_tokens(usage: Mapping[str, Any], prefix: str, done: str) -> dict[str, int]:
    """OpenAI's input counts include cached (and, on some compatible upstreams, cache-write)
    tokens and its output counts include reasoning; p402's input excludes them."""
    details = _object(usage.get(f"{prefix}_tokens_details"))
    prompt = _count(usage.get(f"{prefix}_tokens"))
    cached = min(_count(details.get("cached_tokens")), prompt)
    written = min(_count(details.get("cache_write_tokens")), prompt - cached)
    output = _count(usage.get(f"{done}_tokens"))
    reasoning = _count(_object(usage.get(f"{done}_tokens_details")).get("reasoning_tokens"))
    return {
        "input_tokens": prompt - cached - written,
        "cache_read_tokens": cached,
        "cache_write_tokens": written,
        "output_tokens": output,
        "reasoning_tokens": min(reasoning, output),
    }


def _chat_tokens(usage: Mapping[str, Any]) -> dict[str, int]:
    return _openai_tokens(usage, "prompt", "completion")


def _responses_tokens(usage: Mapping[str, Any]) -> dict[str, int]:
    return _openai_tokens(usage, "input", "output")


def _anthropic_tokens(usage: Mapping[str, Any]) -> dict[str, int]:
    """Anthropic's input excludes the cache already; writes are split by lifetime when told."""
    by_ttl = _object(usage.get("cache_creation"))
    hour = _count(by_ttl.get("ephemeral_1h_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens")) or (
        hour + _count(by_ttl.get("ephemeral_5m_input_tokens"))
    )
    hour = min(hour, written)
    output = _count(usage.get("output_tokens"))
    thinking = _count(_object(usage.get("output_tokens_details")).get("thinking_tokens"))
    return {
        "input_tokens": _count(usage.get("input_tokens")),
        "cache_read_tokens": _count(usage.get("cache_read_input_tokens")),
        "cache_write_tokens": written - hour,
        "cache_write_1h_tokens": hour,
        "output_tokens": output,
        "reasoning_tokens": min(thinking, output),
        # Billed per search ($10 per 1,000), apart from tokens: spend, priced as such.
        "web_search_calls": _count(
            _object(usage.get("server_tool_use")).get("web_search_requests")
        ),
    }


@dataclass(frozen=True, slots=True)
class _Route:
    provider: str
    operation: str
    tokens: Callable[[Mapping[str, Any]], dict[str, int]]


_CHAT = _Route("openai", "chat", _chat_tokens)
_RESPONSES = _Route("openai", "responses", _responses_tokens)
_EMBEDDINGS = _Route("openai", "embeddings", _chat_tokens)
_MESSAGES = _Route("anthropic", "chat", _anthropic_tokens)


_TOOL_ITEMS = {"web_search_calls": "web_search_call", "file_search_calls": "file_search_call"}
"""Event field → the Responses API output item that is one such billed call."""


# --- the call: who, what, and the event it becomes ----------------------------------------------


@dataclass(slots=True)
class _Call:
    """One proxied call: what is known before forwarding, then what the response told."""

    service: Service
    policy: Policy
    tenant: str
    route: _Route
    model: str
    attribution: dict[str, Any]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    event_id: str = field(default_factory=lambda: f"proxy:{uuid.uuid4()}")
    """p402's own identity for the call, given when it arrives: one call is one event, whatever
    ids the upstream hands out (compatible servers, gateways and mocks repeat theirs)."""
    decision: Decision = ALLOW
    upstream_id: str | None = None
    response_model: str | None = None
    usage: dict[str, Any] | None = None
    service_tier: str | None = None
    tool_calls: dict[str, int] = field(default_factory=dict)
    """The Responses API's web and file search calls, counted from its output items (each
    billed per call, apart from tokens)."""
    stream_end: str | None = None
    """How a stream went wrong: ``cut`` (the upstream broke it off), ``incomplete`` (it ended
    without its final event); kept as the tag ``p402.stream``."""

    def take(self, found: Mapping[str, Any]) -> None:
        """Keep the id, model, tier and usage of a response object (or stream event)."""
        if isinstance(found.get("id"), str) and self.upstream_id is None:
            self.upstream_id = found["id"]
        if isinstance(found.get("model"), str) and found["model"]:
            self.response_model = found["model"]
        usage = found.get("usage")
        if isinstance(usage, dict):
            # Anthropic's message_delta repeats some counts; the later ones are the totals.
            self.usage = {**(self.usage or {}), **{k: v for k, v in usage.items() if v is not None}}
        tier = found.get("service_tier") or _object(usage).get("service_tier")
        if isinstance(tier, str) and tier:
            self.service_tier = tier
        output = found.get("output")
        if self.route is _RESPONSES and isinstance(output, list):  # the whole response: count anew
            kinds = [item.get("type") for item in output if isinstance(item, dict)]
            self.tool_calls = {
                name: kinds.count(kind) for name, kind in _TOOL_ITEMS.items() if kinds.count(kind)
            }

    def event(self, outcome: str) -> dict[str, Any]:
        """The canonical raw event of the call."""
        provider = self.route.provider
        raw: dict[str, Any] = {
            "event_id": self.event_id,
            "occurred_at": format_time(self.started),
            "provider": provider,
            "model": (self.response_model or self.model)[:_MAX_VALUE],
            "operation": self.route.operation,
            "requests": 1,
            **self.attribution,
            "policy_decision": self.decision.decision,
            "outcome": outcome,
            "evidence_status": "captured",
        }
        if self.decision.policy is not None:
            raw["policy"] = self.decision.policy
        if self.service_tier is not None:
            raw["service_tier"] = self.service_tier[:64]
        ours: dict[str, str] = {}
        upstream_id = self.upstream_id
        if upstream_id and len(upstream_id) <= 150 and upstream_id.isprintable():
            ours["p402.response_id"] = upstream_id  # the upstream's id: kept, never the identity
        if self.stream_end is not None:
            ours["p402.stream"] = self.stream_end
        if self.usage is not None:
            raw.update(self.route.tokens(self.usage))
        elif outcome == "success":
            ours["p402.usage"] = "missing"
        raw.update(self.tool_calls)
        if ours:
            raw["tags"] = {**raw.get("tags", {}), **ours}
        return raw

    def record(self, outcome: str) -> None:
        """Store the event: validated and priced here (tens of microseconds), then handed to the
        service's writer without waiting for the commit, nor for a worker thread. Its cost
        reaches the running budgets through Service.on_recorded once it is stored."""
        raw = self.event(outcome)
        try:
            rejected = self.service.record_nowait(
                self.tenant, raw, source="proxy", hold=self.decision.hold
            )
        except Exception:  # a failed write must never reach the caller, who has its answer
            log.exception("proxy event %s could not be recorded", raw["event_id"])
            return
        if rejected is not None:
            fields = ", ".join(
                f"{problem.field}: {problem.message}" for problem in rejected.problems
            )
            log.warning("proxy event %s was rejected (%s)", raw["event_id"], fields)

    async def record_soon(self, outcome: str) -> None:
        """:meth:`record`, as a response's background task (run on the event loop)."""
        self.record(outcome)

    def record_later(self, outcome: str) -> None:
        """Record from a stream's end (or its abandonment by the caller)."""
        self.record(outcome)


# --- the incremental server-sent events reader --------------------------------------------------

_MAX_EVENT = 1024 * 1024
"""Longest server-sent event the watcher holds while waiting for its end."""
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LAST_EVENT = re.compile(
    rb'"type"\s*:\s*"(?:message_stop|response\.completed|response\.incomplete)"'
)
"""The event that ends an Anthropic or Responses stream (a chat stream ends with [DONE])."""


class _Watcher:
    """Splits a server-sent event stream into events as its bytes pass, reading the ones that
    carry the response's id, model and usage. With *hide_usage*, the OpenAI usage-only chunk
    (asked for by p402, not by the caller) is held back; otherwise bytes pass unchanged."""

    def __init__(self, call: _Call, *, hide_usage: bool) -> None:
        self.call, self.hide_usage = call, hide_usage
        self.buffer = b""
        self.first = True
        self.gave_up = False
        self.finished = False
        self.failed = False
        self.completed = False
        """Whether the stream's own last event came ([DONE], message_stop, response.completed)."""

    def feed(self, chunk: bytes) -> bytes:
        """Read *chunk*; return the bytes to pass on now."""
        if self.gave_up:
            return chunk
        self.buffer += chunk
        kept: list[bytes] = []
        start = 0
        while (end := _EVENT_END.search(self.buffer, start)) is not None:
            block = self.buffer[start : end.end()]
            if self._read(block) or not self.hide_usage:
                kept.append(block)
            start = end.end()
        self.buffer = self.buffer[start:]
        if len(self.buffer) > _MAX_EVENT:
            # No event is this long: stop reading the stream (its usage is then unknown) rather
            # than keep and re-search an ever-growing buffer; everything passes through as is.
            self.gave_up = True
            held, self.buffer = self.buffer, b""
            return chunk if not self.hide_usage else b"".join(kept) + held
        if not self.hide_usage:
            return chunk
        return b"".join(kept)

    def flush(self) -> bytes:
        """What is left when the stream ends (an event without its closing blank line)."""
        tail, self.buffer = self.buffer, b""
        if tail.strip():
            self._read(tail)
        return tail if self.hide_usage else b""

    def _read(self, block: bytes) -> bool:
        """Read one event; whether the caller should see it."""
        lines = [line[5:] for line in block.splitlines() if line.startswith(b"data:")]
        data = b"\n".join(line[1:] if line.startswith(b" ") else line for line in lines)
        if data.strip() == b"[DONE]" or _LAST_EVENT.search(data):
            self.completed = True
        if not data or (not self.first and b'"usage"' not in data and b'"error"' not in data):
            return True
        self.first = False
        try:
            found = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True  # [DONE], or not JSON: not ours to judge
        if not isinstance(found, dict):
            return True
        kind = found.get("type")
        if kind in ("error", "response.failed") or (kind is None and "error" in found):
            self.failed = True
        if kind == "message_start":
            # Its output_tokens is a placeholder (1): the count comes with message_delta.
            message = dict(_object(found.get("message")))
            usage = {k: v for k, v in _object(message.get("usage")).items() if k != "output_tokens"}
            self.call.take({**message, "usage": usage})
        elif isinstance(kind, str) and kind.startswith("response."):
            self.call.take(_object(found.get("response")))
        else:
            self.call.take(found)
        usage_only = found.get("choices") == [] and isinstance(found.get("usage"), dict)
        return not (usage_only and self.call.route is _CHAT)


# --- forwarding ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    client: httpx.AsyncClient
    policy: Policy


def _state(request: Request) -> _State:
    """The app's shared HTTP client and policy, made on first use."""
    app = request.app
    found: _State | None = getattr(app.state, "p402_proxy", None)
    if found is None:
        service = service_of(request)
        client = httpx.AsyncClient(timeout=_TIMEOUT, limits=_LIMITS, follow_redirects=False)
        found = _State(client, Policy(service.config, service.ledger))
        if found.policy.has_budgets:
            service.on_recorded.append(found.policy.spent)
        app.state.p402_proxy = found
    return found


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    found: _State | None = getattr(app.state, "p402_proxy", None)
    if found is not None:
        await found.client.aclose()


router = APIRouter(lifespan=_lifespan)


def _is_p402(value: str | None) -> bool:
    if not value:
        return False
    scheme, _, credential = value.partition(" ")
    text = credential if scheme.lower() == "bearer" else value
    return text.strip().startswith("p402_")


def _upstream_headers(headers: Headers, call: _Call) -> dict[str, str]:
    sent = {
        name: value
        for name, value in headers.items()
        if name not in _HOP_BY_HOP and not name.startswith("x-p402-")
    }
    for name in ("authorization", "x-api-key"):
        if _is_p402(sent.get(name)):
            del sent[name]
    if "authorization" not in sent and "x-api-key" not in sent:
        key = call.service.config.upstream(call.route.provider).api_key()
        if key is not None and call.route.provider == "anthropic":
            sent["x-api-key"] = key
        elif key is not None:
            sent["authorization"] = f"Bearer {key}"
    return sent


def _downstream_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value for name, value in response.headers.items() if name.lower() not in _HOP_BY_HOP
    }


def _url(provider_base: str, path: str, query: str) -> str:
    base = provider_base.rstrip("/")
    if base.endswith("/v1"):
        path = path.removeprefix("/v1")
    return f"{base}{path}?{query}" if query else f"{base}{path}"


def _error(route: _Route, status: int, message: str, code: str) -> Response:
    """A refusal in the provider's error shape (see :mod:`p402.serve.errors`); never retried."""
    return error_response(status, message, code, anthropic=route.provider == "anthropic")


def _header_text(value: str) -> str:
    """A header value as the caller meant it: raw UTF-8 bytes arrive read as Latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8").strip()
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value.strip()


def _tag_problem(name: str, value: Any) -> str | None:
    """Why a caller's tag cannot be kept as given (a tag is never dropped without a word)."""
    if not TAG_NAME.match(name):
        return f"tag name {name[:70]!r} must be 1 to {MAX_TAG_NAME} of A-Z a-z 0-9 _ . : / -"
    if isinstance(value, dict | list) or value is None:
        return f"tag {name!r} must be a string, a number or a boolean"
    text = value.strip() if isinstance(value, str) else str(value)
    if not text or len(text) > MAX_TAG_VALUE or CONTROL.search(text):
        return f"tag {name!r} must be 1 to {MAX_TAG_VALUE} printable characters"
    return None


def _tags_header(text: str) -> tuple[dict[str, str], str | None]:
    """The caller's tags in ``X-P402-Tags`` (``a=b,c=d`` or a JSON object), or the problem."""
    try:
        pairs = orjson.loads(text) if text.startswith("{") else dict(
            item.split("=", 1) for item in text.split(",") if item.strip()
        )  # fmt: skip
    except (orjson.JSONDecodeError, ValueError):
        return {}, "x-p402-tags must be name=value pairs separated by commas, or a JSON object"
    if not isinstance(pairs, dict):
        return {}, "x-p402-tags must be a JSON object of name: value"
    for name, value in pairs.items():
        if (problem := _tag_problem(str(name).strip(), value)) is not None:
            return {}, f"x-p402-tags: {problem}"
    tags = tags_from({str(k).strip(): v.strip() if isinstance(v, str) else v
                      for k, v in pairs.items()})  # fmt: skip
    if any(name.startswith(OWN_PREFIX) for name in tags):
        return {}, f"x-p402-tags: names beginning {OWN_PREFIX!r} are p402's own"
    if len(tags) > MAX_TAGS:
        return {}, f"x-p402-tags: at most {MAX_TAGS} tags"
    return tags, None


def _attribution(headers: Headers) -> tuple[dict[str, Any], str | None]:
    """The attribution and tags the caller's headers give, or the problem with them."""
    found: dict[str, Any] = {}
    for header, name in _ATTRIBUTION_HEADERS:
        value = headers.get(header)
        if value is None:
            continue
        text = _header_text(value)
        if not text or len(text) > _MAX_VALUE or not text.isprintable():
            return {}, f"{header} must be 1 to {_MAX_VALUE} printable characters"
        found[name] = text
    given = headers.get("x-p402-tags")
    if given:
        tags, problem = _tags_header(_header_text(given))
        if problem is not None:
            return {}, problem
        if tags:
            found["tags"] = tags
    return found, None


_MAXIMA = ("max_completion_tokens", "max_tokens", "max_output_tokens")
"""Where a request names the most output it may have (chat, chat and messages, responses)."""


def _requested_output(route: _Route, payload: Mapping[str, Any]) -> tuple[int | None, int]:
    """The output tokens a request allows itself (``None``: it names no maximum), and how many
    answers it asks for (chat's ``n``)."""
    if route is _EMBEDDINGS:
        return 0, 1
    most = next(
        (v for name in _MAXIMA if type(v := payload.get(name)) is int and v >= 0), None
    )  # fmt: skip
    choices = payload.get("n")
    return most, choices if route is _CHAT and type(choices) is int and choices > 1 else 1


def _estimator(call: _Call, size: int, payload: Mapping[str, Any]) -> Callable[[int], int]:
    """What the call may cost (10^-12 USD) if it writes at most *ceiling* output tokens when it
    names no maximum: priced as an event with one input token per byte of the request (no
    tokenizer makes fewer bytes than tokens) and all of its allowed output."""
    most, answers = _requested_output(call.route, payload)
    pipeline = call.service.pipeline(call.tenant, "proxy")
    priced: dict[int, int] = {}

    def estimate(ceiling: int) -> int:
        output = (ceiling if most is None else most) * answers
        if output not in priced:
            raw = {**call.event("success"), "input_tokens": size, "output_tokens": output}
            found, _problems, _dropped = pipeline.event(raw)
            cost = None if found is None else found.cost
            priced[output] = 0 if cost is None else to_units(cost)
        return priced[output]

    return estimate


def _decide(call: _Call, size: int, payload: Mapping[str, Any]) -> Decision:
    """Policy for the call, on its attribution after the rules (worker thread: reads and
    writes the hard budgets' shared windows)."""
    department = customer = workflow = api_key_id = None
    if call.policy.has_budgets:
        raw = call.event("success")
        stored, _problems, _dropped = call.service.pipeline(call.tenant, "proxy").event(raw)
        if stored is not None:
            department, customer = stored.department, stored.customer
            workflow, api_key_id = stored.workflow, stored.api_key_id
    return call.policy.decide(
        call.tenant, model=call.model, department=department, customer=customer,
        workflow=workflow, api_key_id=api_key_id, now=call.started,
        estimate=_estimator(call, size, payload) if call.policy.has_budgets else None,
    )  # fmt: skip


async def _admit(request: Request, route: _Route) -> tuple[_Call, dict[str, Any]] | Response:
    """The call and its parsed body, or the answer that refuses it (key, body, headers, policy)."""
    service = service_of(request)
    key = presented_key(request)
    # A key already seen is a dictionary lookup: no hop to a worker thread for it.
    tenant = None if key is None else service.known_tenant(key)
    if tenant is None and key is not None:
        tenant = await run_in_threadpool(service.tenant_for_key, key)
    if tenant is None or key is None:
        message = "missing or invalid p402 API key (send it as X-P402-Key, or as the SDK's API key)"
        return _error(route, 401, message, "invalid_api_key")
    body = await read_body(request, MAX_PROXY_BODY)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        message = "the body is not a JSON object"
        return _error(route, 400, message, "invalid_json")
    attribution, problem = _attribution(request.headers)
    if problem is not None:
        return _error(route, 400, problem, "invalid_p402_header")
    for name, value in service.fixed_attribution(key).items():
        said = attribution.get(name)
        if said is not None and said != value:
            message = (
                f"this p402 key always spends as {name} {value!r}: x-p402-{name} cannot "
                "change it (use a key made for the other value)"
            )
            return _error(route, 403, message, "attribution_fixed")
        attribution[name] = value
    # The key id (never its secret) names the p402 key the call came with.
    attribution["api_key_id"] = key.removeprefix("p402_").split("_", 1)[0][:64]
    model = payload.get("model")
    policy = _state(request).policy
    call = _Call(
        service, policy, tenant, route,
        model if isinstance(model, str) and model else "unknown", attribution,
    )  # fmt: skip
    if policy.active:
        call.decision = decision = await run_in_threadpool(_decide, call, len(body), payload)
        if decision.decision == "deny":
            message, code = decision.message or "refused by policy", decision.code or "denied"
            refusal = _error(route, decision.http_status, message, code)
            refusal.background = BackgroundTask(call.record_soon, "denied")
            return refusal
    return call, payload


async def _proxy(request: Request, route: _Route) -> Response:
    admitted = await _admit(request, route)
    if isinstance(admitted, Response):
        return admitted
    call, payload = admitted
    body, hide_usage = await request.body(), False
    if route is _CHAT and payload.get("stream") is True:
        options = _object(payload.get("stream_options"))
        if options.get("include_usage") is not True:
            # Without it an OpenAI stream carries no usage; the extra chunk is hidden again.
            payload["stream_options"] = {**options, "include_usage": True}
            body, hide_usage = orjson.dumps(payload), True
    client = _state(request).client
    upstream = call.service.config.upstream(route.provider)
    outgoing = client.build_request(
        "POST", _url(upstream.base_url, request.url.path, request.url.query),
        content=body, headers=_upstream_headers(request.headers, call),
    )  # fmt: skip
    try:
        answer = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        message = f"the {route.provider} upstream could not be reached ({exc.__class__.__name__})"
        failure = _error(route, 502, message, "upstream_unreachable")
        failure.background = BackgroundTask(call.record_soon, "error")
        return failure
    headers = _downstream_headers(answer)
    if "text/event-stream" in answer.headers.get("content-type", ""):
        watcher = _Watcher(call, hide_usage=hide_usage)
        return StreamingResponse(
            _relay(answer, watcher), answer.status_code, headers=headers,
            background=BackgroundTask(_record_stream, answer, watcher),
        )  # fmt: skip
    try:
        content = await answer.aread()
    finally:
        await answer.aclose()
    try:
        found = orjson.loads(content)
    except orjson.JSONDecodeError:
        found = None
    if isinstance(found, dict):
        call.take(found)
    outcome = "error" if answer.status_code >= 400 else "success"
    task = BackgroundTask(call.record_soon, outcome)
    return Response(content, answer.status_code, headers=headers, background=task)


async def _relay(answer: httpx.Response, watcher: _Watcher) -> AsyncIterator[bytes]:
    """Pass a stream on as it comes. A stream that runs to its end is recorded by the
    response's background task, once the caller has its last byte; one cut short (the caller
    went away) is recorded here, as cancelled."""
    call = watcher.call
    try:
        async for chunk in answer.aiter_bytes():
            passed = watcher.feed(chunk)
            if passed:
                yield passed
        tail = watcher.flush()
        if tail:
            yield tail
        watcher.finished = True
    except httpx.HTTPError as exc:  # the upstream broke the stream off: not the caller's doing
        call.stream_end = "cut"
        log.warning("the %s upstream cut a stream short (%s)", call.route.provider,
                    exc.__class__.__name__)  # fmt: skip
        yield _stream_error(call.route, "the upstream ended the stream before it was complete")
    finally:
        await answer.aclose()
        if not watcher.finished:
            call.record_later("error" if call.stream_end == "cut" else "cancelled")


def _stream_error(route: _Route, message: str) -> bytes:
    """A last server-sent event that makes the caller's SDK raise, in the provider's shape."""
    if route.provider == "anthropic":
        body = {"type": "error", "error": {"type": "api_error", "message": message}}
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
    error = {"message": message, "type": "server_error", "code": "upstream_stream_cut"}
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"


async def _record_stream(answer: httpx.Response, watcher: _Watcher) -> None:
    """Record a stream that ran to its end (the background task of its response). One that
    ended without its last event is an error: what it used is what the upstream had reported."""
    if watcher.finished:
        # A stream too odd to follow (gave_up) is not judged on its end.
        ended = watcher.completed or watcher.gave_up
        if not ended and answer.status_code < 400 and not watcher.failed:
            watcher.call.stream_end = "incomplete"
        failed = answer.status_code >= 400 or watcher.failed or not ended
        watcher.call.record("error" if failed else "success")


# --- routes -------------------------------------------------------------------------------------


@router.post("/v1/chat/completions", summary="OpenAI chat completions, forwarded and recorded")
async def chat_completions(request: Request) -> Response:
    return await _proxy(request, _CHAT)


@router.post("/v1/responses", summary="OpenAI responses, forwarded and recorded")
async def responses(request: Request) -> Response:
    return await _proxy(request, _RESPONSES)


@router.post("/v1/embeddings", summary="OpenAI embeddings, forwarded and recorded")
async def embeddings(request: Request) -> Response:
    return await _proxy(request, _EMBEDDINGS)


@router.post("/v1/messages", summary="Anthropic messages, forwarded and recorded")
async def messages(request: Request) -> Response:
    return await _proxy(request, _MESSAGES)
