"""The routing proxy, end to end: the official SDKs talk to a real ``p402 serve`` over HTTP, which
forwards to a fake upstream; every call lands in the ledger, and no content does."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from p402.config import Budget, Config, Rule, Upstream
from p402.ledger.events import Event
from p402.ledger.store import Ledger
from p402.ledger.tenants import create_api_key, create_tenant
from p402.serve.app import create_app
from p402.serve.service import Service
from tests.conftest import STORES, _postgres_ledger

CHAT_MODEL = "gpt-4o-mini-2024-07-18"
CLAUDE = "claude-haiku-4-5-20251001"
OPENAI_KEY_ENV = "P402_TEST_UPSTREAM_OPENAI_KEY"
ANTHROPIC_KEY_ENV = "P402_TEST_UPSTREAM_ANTHROPIC_KEY"


# --- a fake upstream that answers like OpenAI and Anthropic ------------------------------------


@dataclass
class Seen:
    """What the fake upstream saw: the headers and bodies of the calls (kept in memory only)."""

    seen: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)


def _completion(body: dict[str, Any]) -> str:
    """The completion text: the prompt's marker turned into a completion marker."""
    found = re.search(r"PROMPT-([0-9a-z]+)", orjson.dumps(body).decode())
    return f"COMPLETION-{found.group(1) if found else 'none'}"


def _sse(
    events: list[tuple[str | None, dict[str, Any] | str]], *, fault: str | None = None
) -> StreamingResponse:
    """A stream of *events*; with *fault* ``cut`` the upstream breaks the connection after the
    second event, with ``early`` it ends cleanly there (no [DONE], message_stop...), with
    ``slow`` it waits 0.3 s before each event after the first."""

    async def chunks() -> AsyncIterator[bytes]:
        for number, (name, data) in enumerate(events):
            if fault == "cut" and number == 2:
                raise ConnectionResetError("the fake upstream breaks the stream off")
            if fault == "early" and number == 2:
                return
            if fault == "slow" and number:
                await asyncio.sleep(0.3)
            head = f"event: {name}\n" if name else ""
            payload = data if isinstance(data, str) else orjson.dumps(data).decode()
            yield f"{head}data: {payload}\n\n".encode()

    return StreamingResponse(chunks(), media_type="text/event-stream")


CHAT_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 10},
}


def _failure(model: str, provider: str) -> Response | None:
    if not model.startswith("fail-"):
        return None
    status = int(model[5:])
    error = {"message": f"upstream says no ({status})", "type": "invalid_request_error"}
    body = {"type": "error", "error": error} if provider == "anthropic" else {"error": error}
    return Response(orjson.dumps(body), status, media_type="application/json")


async def _chat(request: Request) -> Response:
    body = orjson.loads(await request.body())
    request.app.state.upstream.seen.append((dict(request.headers), body))
    if (failed := _failure(body["model"], "openai")) is not None:
        return failed
    # "repeat-id": an upstream that hands out one id for every answer (mocks and some
    # compatible servers do); "no-usage": one that reports no usage.
    repeat, counted = body["model"] == "repeat-id", body["model"] != "no-usage"
    ident = "chatcmpl-fake1" if repeat else f"chatcmpl-{uuid.uuid4().hex}"
    text_ = _completion(body)
    base = {"id": ident, "object": "chat.completion", "created": 1, "model": CHAT_MODEL}
    if not body.get("stream"):
        choice = {"index": 0, "message": {"role": "assistant", "content": text_}}
        choice["finish_reason"] = "stop"
        reported = {"usage": CHAT_USAGE} if counted else {}
        return Response(
            orjson.dumps({**base, "choices": [choice], **reported, "service_tier": "default"}),
            media_type="application/json",
        )
    usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunk = {**base, "object": "chat.completion.chunk", **({"usage": None} if usage else {})}
    half = len(text_) // 2
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        (None, {**chunk, "choices": [{"index": 0, "delta": {"content": text_[:half]}}]}),
        (None, {**chunk, "choices": [{"index": 0, "delta": {"content": text_[half:]}}]}),
        (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ]
    if usage:
        events.append((None, {**chunk, "choices": [], "usage": CHAT_USAGE}))
    events.append((None, "[DONE]"))
    return _sse(events, fault=body.get("user"))


RESPONSES_USAGE = {
    "input_tokens": 50,
    "input_tokens_details": {"cached_tokens": 20},
    "output_tokens": 40,
    "output_tokens_details": {"reasoning_tokens": 16},
    "total_tokens": 90,
}


async def _responses(request: Request) -> Response:
    body = orjson.loads(await request.body())
    request.app.state.upstream.seen.append((dict(request.headers), body))
    text_ = _completion(body)
    content = {"type": "output_text", "text": text_, "annotations": []}
    message = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant"}
    whole = {
        "id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": 1,
        "status": "completed", "model": CHAT_MODEL, "output": [{**message, "content": [content]}],
        "usage": RESPONSES_USAGE, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
    }  # fmt: skip
    if body.get("tools"):  # two web searches and a file search, each an output item
        searches = [{"type": "web_search_call", "id": f"ws_{n}", "status": "completed"}
                    for n in range(2)]  # fmt: skip
        found: list[Any] = [
            {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": []}
        ]
        whole = {**whole, "output": [*searches, *found, {**message, "content": [content]}]}
    if not body.get("stream"):
        return Response(orjson.dumps(whole), media_type="application/json")
    start = {**whole, "status": "in_progress", "output": [], "usage": None}
    delta = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0}
    item = {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {**message, "content": []},
    }
    part = {
        "type": "response.content_part.added",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "part": {**content, "text": ""},
    }
    return _sse([
        ("response.created", {"type": "response.created", "response": start, "sequence_number": 0}),
        ("response.output_item.added", {**item, "sequence_number": 1}),
        ("response.content_part.added", {**part, "sequence_number": 2}),
        ("response.output_text.delta", {**delta, "content_index": 0, "delta": text_, "sequence_number": 3}),
        ("response.completed", {"type": "response.completed", "response": whole, "sequence_number": 4}),
    ])  # fmt: skip


async def _embeddings(request: Request) -> Response:
    body = orjson.loads(await request.body())
    request.app.state.upstream.seen.append((dict(request.headers), body))
    vector: Any = [0.25, 0.5]
    if body.get("encoding_format") == "base64":
        vector = base64.b64encode(struct.pack("<2f", *vector)).decode()
    data = [{"object": "embedding", "index": 0, "embedding": vector}]
    usage = {"prompt_tokens": 8, "total_tokens": 8}
    answer = {"object": "list", "data": data, "model": "text-embedding-3-small", "usage": usage}
    return Response(orjson.dumps(answer), media_type="application/json")


MESSAGES_USAGE = {
    "input_tokens": 40,
    "cache_creation_input_tokens": 200,
    "cache_read_input_tokens": 300,
    "cache_creation": {"ephemeral_5m_input_tokens": 150, "ephemeral_1h_input_tokens": 50},
    "output_tokens": 25,
    "service_tier": "standard",
}


async def _messages(request: Request) -> Response:
    body = orjson.loads(await request.body())
    request.app.state.upstream.seen.append((dict(request.headers), body))
    if (failed := _failure(body["model"], "anthropic")) is not None:
        return failed
    text_ = _completion(body)
    message = {
        "id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "model": CLAUDE,
        "stop_reason": "end_turn", "stop_sequence": None,
    }  # fmt: skip
    if body.get("tools"):  # the web search tool: three searches, billed per search
        usage = {**MESSAGES_USAGE, "server_tool_use": {"web_search_requests": 3}}
        whole = {**message, "content": [{"type": "text", "text": text_}], "usage": usage}
        return Response(orjson.dumps(whole), media_type="application/json")
    if not body.get("stream"):
        whole = {**message, "content": [{"type": "text", "text": text_}], "usage": MESSAGES_USAGE}
        return Response(orjson.dumps(whole), media_type="application/json")
    opening: dict[str, Any] = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**MESSAGES_USAGE, "output_tokens": 1},
    }
    block = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text_},
    }
    return _sse([
        ("message_start", {"type": "message_start", "message": opening}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", block),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 25}}),
        ("message_stop", {"type": "message_stop"}),
    ], fault=(body.get("metadata") or {}).get("user_id"))  # fmt: skip


def _fake_upstream() -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", _chat, methods=["POST"]),
            Route("/v1/responses", _responses, methods=["POST"]),
            Route("/v1/embeddings", _embeddings, methods=["POST"]),
            Route("/v1/messages", _messages, methods=["POST"]),
        ]
    )
    app.state.upstream = Seen()
    return app


# --- serving apps on free ports -----------------------------------------------------------------


class Served:
    """An ASGI app served by uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]})
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Served, Seen]]:
    app = _fake_upstream()
    served = Served(app)
    yield served, app.state.upstream
    served.stop()


@dataclass
class Proxy:
    """A running ``p402 serve`` for tenant ``acme``, pointed at the fake upstream."""

    url: str
    ledger: Ledger
    key: str
    key_id: str
    seen: Seen
    served: Served

    def openai(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0, **kwargs)

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=self.key, max_retries=0)

    def events(self, count: int, tenant: str = "acme") -> list[Event]:
        """The tenant's events once *count* have been recorded (recording follows the answer)."""
        deadline = time.monotonic() + 10
        while self.ledger.count(tenant) < count:
            assert time.monotonic() < deadline, f"{self.ledger.count(tenant)} of {count} events"
            time.sleep(0.02)
        time.sleep(0.05)  # and no more than that
        found = list(self.ledger.stream(tenant))
        assert len(found) == count, found
        return found


def start_proxy(
    ledger: Ledger, upstream: tuple[Served, Seen], config: Config | None = None
) -> Proxy:
    served_upstream, seen = upstream
    config = config or Config()
    upstreams = (
        Upstream("anthropic", served_upstream.url, ANTHROPIC_KEY_ENV),
        Upstream("openai", f"{served_upstream.url}/v1", OPENAI_KEY_ENV),
    )
    config = Config(
        rules=config.rules, budgets=config.budgets, allowed_models=config.allowed_models,
        upstreams=upstreams,
    )  # fmt: skip
    create_tenant(ledger, "acme")
    api_key, full = create_api_key(ledger, "acme")
    served = Served(create_app(Service(ledger, config=config)))
    return Proxy(served.url, ledger, full, api_key.key_id, seen, served)


@pytest.fixture
def proxy(
    sqlite_ledger: Ledger, upstream: tuple[Served, Seen], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Proxy]:
    monkeypatch.setenv(OPENAI_KEY_ENV, "sk-configured-openai")
    monkeypatch.setenv(ANTHROPIC_KEY_ENV, "sk-ant-configured")
    running = start_proxy(sqlite_ledger, upstream)
    yield running
    running.served.stop()


def marker() -> str:
    return uuid.uuid4().hex


# --- the SDKs, unchanged -------------------------------------------------------------------------


def test_openai_chat_plain_lands_with_tokens_cost_and_attribution(proxy: Proxy) -> None:
    client = proxy.openai(
        default_headers={"X-P402-Department": "Support", "X-P402-Tags": "env=prod"}
    )
    mark = marker()
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"PROMPT-{mark}"}]
    )
    assert answer.choices[0].message.content == f"COMPLETION-{mark}"
    (event,) = proxy.events(1)
    assert event.event_id.startswith("proxy:")  # p402's own identity for the call
    assert (event.provider, event.model, event.operation) == ("openai", CHAT_MODEL, "chat")
    # prompt 120 includes 100 cached; completion 30 includes 10 reasoning.
    assert (event.input_tokens, event.cache_read_tokens) == (20, 100)
    assert (event.output_tokens, event.reasoning_tokens) == (30, 10)
    assert event.cost is not None and event.cost > 0
    assert (event.department, event.api_key_id, dict(event.tags)) == (
        "Support",
        proxy.key_id,
        {"env": "prod", "p402.response_id": answer.id},
    )
    assert (event.evidence_status, event.source, event.outcome) == ("captured", "proxy", "success")
    assert event.service_tier == "default"
    headers, _ = proxy.seen.seen[-1]
    # The p402 key came as the SDK's key: the configured one goes upstream, never the p402 key.
    assert headers["authorization"] == "Bearer sk-configured-openai"
    assert not any(name.startswith("x-p402") for name in headers)


def test_openai_chat_stream_hides_the_usage_chunk_it_asked_for(proxy: Proxy) -> None:
    mark = marker()
    stream = proxy.openai().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"PROMPT-{mark}"}], stream=True
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == f"COMPLETION-{mark}"
    )
    assert all(chunk.choices for chunk in chunks), "the usage-only chunk reached the caller"
    _, body = proxy.seen.seen[-1]
    assert body["stream_options"] == {"include_usage": True}
    (event,) = proxy.events(1)
    assert (event.input_tokens, event.cache_read_tokens, event.output_tokens) == (20, 100, 30)
    assert dict(event.tags)["p402.response_id"] == chunks[0].id


def test_openai_chat_stream_keeps_the_usage_chunk_the_caller_asked_for(proxy: Proxy) -> None:
    stream = proxy.openai().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "PROMPT-x"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 120
    (event,) = proxy.events(1)
    assert event.output_tokens == 30


def test_raw_stream_is_passed_through_without_the_usage_chunk(proxy: Proxy) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST", f"{proxy.url}/v1/chat/completions", json=body,
        headers={"X-P402-Key": proxy.key, "Authorization": "Bearer sk-callers-own"},
    ) as answer:  # fmt: skip
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(answer.iter_bytes())
    events = [block for block in raw.split(b"\n\n") if block.strip()]
    assert len(events) == 5 and events[-1] == b"data: [DONE]"
    assert b'"choices":[]' not in raw
    headers, _ = proxy.seen.seen[-1]
    assert headers["authorization"] == "Bearer sk-callers-own"  # the caller's own key, untouched
    proxy.events(1)


def test_openai_responses_plain_and_streaming(proxy: Proxy) -> None:
    client = proxy.openai()
    mark = marker()
    answer = client.responses.create(model="gpt-4o-mini", input=f"PROMPT-{mark}")
    assert answer.output_text == f"COMPLETION-{mark}"
    with client.responses.stream(model="gpt-4o-mini", input=f"PROMPT-{mark}") as stream:
        final = stream.get_final_response()
    assert final.output_text == f"COMPLETION-{mark}"
    first, second = sorted(
        proxy.events(2), key=lambda e: dict(e.tags)["p402.response_id"] == answer.id
    )
    for event in (first, second):
        assert event.operation == "responses" and event.model == CHAT_MODEL
        assert (event.input_tokens, event.cache_read_tokens) == (30, 20)
        assert (event.output_tokens, event.reasoning_tokens) == (40, 16)
        assert event.cost is not None and event.cost > 0
    assert dict(second.tags)["p402.response_id"] == answer.id
    assert dict(first.tags)["p402.response_id"] == final.id


def test_openai_embeddings(proxy: Proxy) -> None:
    answer = proxy.openai().embeddings.create(model="text-embedding-3-small", input="PROMPT-e")
    assert list(answer.data[0].embedding) == [0.25, 0.5]
    (event,) = proxy.events(1)
    assert (event.operation, event.model, event.input_tokens, event.output_tokens) == (
        "embeddings", "text-embedding-3-small", 8, 0,
    )  # fmt: skip
    assert event.cost == Decimal("0.00000016")
    assert event.event_id.startswith("proxy:")


def test_anthropic_messages_plain_and_streaming(proxy: Proxy) -> None:
    client = proxy.anthropic()
    mark = marker()
    answer = client.messages.create(
        model="claude-haiku-4-5", max_tokens=64,
        messages=[{"role": "user", "content": f"PROMPT-{mark}"}],
        extra_headers={"X-P402-Customer": "Globex", "X-P402-Workflow": "drafts"},
    )  # fmt: skip
    assert answer.content[0].type == "text" and answer.content[0].text == f"COMPLETION-{mark}"
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "PROMPT-s"}]
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == "COMPLETION-s" and final.usage.output_tokens == 25
    events = {dict(event.tags)["p402.response_id"]: event for event in proxy.events(2)}
    plain, streaming = events[answer.id], events[final.id]
    for event in (plain, streaming):
        assert (event.provider, event.model) == ("anthropic", CLAUDE)
        assert (event.input_tokens, event.cache_read_tokens) == (40, 300)
        assert (event.cache_write_tokens, event.cache_write_1h_tokens) == (150, 50)
        assert event.output_tokens == 25 and event.service_tier == "standard"
        assert event.cost is not None and event.cost > 0
    assert (plain.customer, plain.workflow) == ("Globex", "drafts")
    headers, _ = proxy.seen.seen[-1]
    assert headers["x-api-key"] == "sk-ant-configured"
    assert headers["anthropic-version"]


# --- errors, keys and attribution ---------------------------------------------------------------


@pytest.mark.parametrize(("path", "model"), [
    ("/v1/chat/completions", "fail-400"), ("/v1/chat/completions", "fail-500"),
    ("/v1/messages", "fail-429"),
])  # fmt: skip
def test_upstream_errors_are_passed_back_unchanged_and_recorded(
    proxy: Proxy, path: str, model: str
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": 5}
    answer = httpx.post(f"{proxy.url}{path}", json=body, headers={"X-P402-Key": proxy.key})
    status = int(model[5:])
    assert answer.status_code == status
    provider = "anthropic" if path == "/v1/messages" else "openai"
    error = {"message": f"upstream says no ({status})", "type": "invalid_request_error"}
    expected = {"type": "error", "error": error} if provider == "anthropic" else {"error": error}
    assert answer.content == orjson.dumps(expected)
    (event,) = proxy.events(1)
    assert (event.outcome, event.model, event.provider) == ("error", model, provider)
    assert event.input_tokens == event.output_tokens == 0


def test_a_missing_or_wrong_p402_key_is_401(proxy: Proxy) -> None:
    body = {"model": "gpt-4o-mini", "messages": []}
    for headers in (
        {},
        {"Authorization": "Bearer sk-only-a-provider-key"},
        {"X-P402-Key": "p402_nope_x"},
    ):
        answer = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-x", max_retries=0).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert proxy.ledger.count("acme") == 0


def test_bad_attribution_header_is_refused_before_forwarding(proxy: Proxy) -> None:
    before = len(proxy.seen.seen)
    answer = httpx.post(
        f"{proxy.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []},
        headers={"X-P402-Key": proxy.key, "X-P402-Department": "x" * 300},
    )  # fmt: skip
    assert answer.status_code == 400 and "x-p402-department" in answer.json()["error"]["message"]
    assert len(proxy.seen.seen) == before


def test_one_call_is_one_event_when_the_upstream_repeats_its_ids(proxy: Proxy) -> None:
    """Compatible servers, gateways and mocks repeat response ids: the identity is p402's."""
    client = proxy.openai()
    for _ in range(9):
        client.chat.completions.create(
            model="repeat-id", messages=[{"role": "user", "content": "x"}]
        )
    events = proxy.events(9)
    assert len({event.event_id for event in events}) == 9
    assert {dict(event.tags)["p402.response_id"] for event in events} == {"chatcmpl-fake1"}


def test_a_call_with_32_tags_and_no_usage_is_recorded_with_p402s_own_tags(proxy: Proxy) -> None:
    tags = ",".join(f"t{n}=v{n}" for n in range(32))
    proxy.openai(default_headers={"X-P402-Tags": tags}).chat.completions.create(
        model="no-usage", messages=[{"role": "user", "content": "x"}]
    )
    (event,) = proxy.events(1)
    found = dict(event.tags)
    assert found["p402.usage"] == "missing" and len(found) == 34  # 32 + usage + response id


@pytest.mark.parametrize(("tags", "said"), [
    ("p402.usage=fine", "p402's own"),
    ('{"team": {"nested": 1}}', "must be a string, a number or a boolean"),
    ("team=" + "x" * 300, "tag 'team' must be 1 to 256"),
    ("=orphan", "tag name ''"),
    ("team=", "tag 'team' must be 1 to 256"),
])  # fmt: skip
def test_a_tag_header_p402_cannot_keep_as_given_is_refused_by_name(
    proxy: Proxy, tags: str, said: str
) -> None:
    before = len(proxy.seen.seen)
    answer = httpx.post(
        f"{proxy.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []},
        headers={"X-P402-Key": proxy.key, "X-P402-Tags": tags},
    )  # fmt: skip
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert message.startswith("x-p402-tags") and said in message, message
    assert len(proxy.seen.seen) == before


def test_a_gzip_request_is_forwarded_inflated(proxy: Proxy) -> None:
    import gzip

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "PROMPT-gz"}]}
    answer = httpx.post(
        f"{proxy.url}/v1/chat/completions", content=gzip.compress(orjson.dumps(body)),
        headers={"X-P402-Key": proxy.key, "Content-Encoding": "gzip",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    headers, seen = proxy.seen.seen[-1]
    assert seen == body and "content-encoding" not in headers
    proxy.events(1)


def test_rules_attribute_proxy_calls(sqlite_ledger: Ledger, upstream: tuple[Served, Seen]) -> None:
    rule = Rule(
        "anthropic goes to research", (("provider", "anthropic"),), (("department", "Research"),)
    )
    running = start_proxy(sqlite_ledger, upstream, Config(rules=(rule,)))
    try:
        running.anthropic().messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
        running.openai().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-P402-Department": "Sales"},
        )  # fmt: skip
        events = {event.provider: event for event in running.events(2)}
    finally:
        running.served.stop()
    assert (events["anthropic"].department, events["anthropic"].attribution_rule) == (
        "Research", "anthropic goes to research",
    )  # fmt: skip
    assert (events["openai"].department, events["openai"].attribution_rule) == ("Sales", None)


def test_tenants_are_isolated(proxy: Proxy) -> None:
    create_tenant(proxy.ledger, "globex")
    _, other = create_api_key(proxy.ledger, "globex")
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=other, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    proxy.openai().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "y"}]
    )
    proxy.openai().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "z"}]
    )
    assert len(proxy.events(1, tenant="globex")) == 1
    assert len(proxy.events(2, tenant="acme")) == 2


# --- policy at the moment of the call -----------------------------------------------------------


def _policy_proxy(
    ledger: Ledger,
    upstream: tuple[Served, Seen],
    *budgets: Budget,
    allow: tuple[str, ...] | None = None,
) -> Proxy:
    return start_proxy(ledger, upstream, Config(budgets=budgets, allowed_models=allow))


def test_a_hard_budget_refuses_with_429_and_records_a_deny(
    sqlite_ledger: Ledger, upstream: tuple[Served, Seen]
) -> None:
    tiny = Budget("support daily", "department", "Supp*", "day", Decimal("0.000001"), "hard")
    running = _policy_proxy(sqlite_ledger, upstream, tiny)
    try:
        client = running.openai(default_headers={"X-P402-Department": "Support"})
        # The spend before the first call is nil: it goes through, and crosses the limit.
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
        running.events(1)
        forwarded = len(running.seen.seen)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
        body = refused.value.response.json()
        assert set(body["error"]) == {"message", "type", "code"}
        assert body["error"]["code"] == "budget_exceeded"
        assert "support daily" in body["error"]["message"]
        assert len(running.seen.seen) == forwarded  # never forwarded
        # Other departments are not limited by it.
        running.openai(default_headers={"X-P402-Department": "Sales"}).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
        events = running.events(3)
    finally:
        running.served.stop()
    (denied,) = [event for event in events if event.policy_decision == "deny"]
    assert (denied.outcome, denied.policy, denied.department) == (
        "denied",
        "support daily",
        "Support",
    )
    assert denied.input_tokens == denied.output_tokens == 0 and not denied.cost


def test_a_model_outside_the_allow_list_is_403(
    sqlite_ledger: Ledger, upstream: tuple[Served, Seen]
) -> None:
    running = _policy_proxy(sqlite_ledger, upstream, allow=("gpt-4o*",))
    try:
        with pytest.raises(anthropic.PermissionDeniedError):
            running.anthropic().messages.create(
                model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        running.openai().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
        events = {event.policy_decision: event for event in running.events(2)}
    finally:
        running.served.stop()
    assert (events["deny"].policy, events["deny"].model) == ("models.allow", "claude-haiku-4-5")
    assert events["allow"].model == CHAT_MODEL


def test_a_soft_budget_flags_and_lets_through(
    sqlite_ledger: Ledger, upstream: tuple[Served, Seen]
) -> None:
    soft = Budget("key watch", "api_key", "*", "month", Decimal(0), "soft")
    running = _policy_proxy(sqlite_ledger, upstream, soft)
    try:
        answer = running.openai().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
        assert answer.choices
        (event,) = running.events(1)
    finally:
        running.served.stop()
    assert (event.policy_decision, event.policy, event.outcome) == ("flag", "key watch", "success")
    assert event.output_tokens == 30


# --- no content is ever stored ------------------------------------------------------------------


def _exercise_everything(running: Proxy, mark: str) -> int:
    prompt = f"PROMPT-{mark}"
    client = running.openai()
    message: Any = [{"role": "user", "content": prompt}]
    assert client.chat.completions.create(model="gpt-4o-mini", messages=message).choices
    assert list(client.chat.completions.create(model="gpt-4o-mini", messages=message, stream=True))
    assert client.responses.create(model="gpt-4o-mini", input=prompt).output_text
    with client.responses.stream(model="gpt-4o-mini", input=prompt) as stream:
        assert stream.get_final_response().output_text == f"COMPLETION-{mark}"
    client.embeddings.create(model="text-embedding-3-small", input=prompt)
    claude = running.anthropic()
    claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=message)
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=5, messages=message) as stream:
        assert "".join(stream.text_stream) == f"COMPLETION-{mark}"
    return 7


@pytest.mark.parametrize("store", STORES)
def test_no_prompt_or_completion_reaches_the_database(
    store: str, tmp_path: Path, upstream: tuple[Served, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OPENAI_KEY_ENV, "sk-configured-openai")
    postgres = _postgres_ledger() if store == "postgres" else None
    ledger = Ledger.open(str(tmp_path / "ledger.db")) if postgres is None else next(postgres)
    mark = marker()
    running = start_proxy(ledger, upstream)
    try:
        count = _exercise_everything(running, mark)
        running.events(count)
    finally:
        running.served.stop()
    try:
        _scan(store, ledger, tmp_path, mark, count)
    finally:
        if postgres is not None:
            next(postgres, None)


def _scan(store: str, ledger: Ledger, tmp_path: Path, mark: str, count: int) -> None:
    needles = (f"PROMPT-{mark}".encode(), f"COMPLETION-{mark}".encode(), mark.encode())
    if store == "sqlite":
        ledger.close()
        files = [path for path in tmp_path.iterdir() if path.name.startswith("ledger.db")]
        assert files
        for path in files:
            data = path.read_bytes()
            assert not any(needle in data for needle in needles), path
    else:
        with ledger.engine.connect() as connection:
            dump = "\n".join(
                connection.execute(text("SELECT e::text FROM events e")).scalars()
            ).encode()
        assert dump.count(b"acme") >= count
        assert not any(needle in dump for needle in needles)


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_a_key_fixed_to_a_department_cannot_spend_as_another(
    ledger: Ledger, upstream: tuple[Served, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once department Capped had spent its budget, the same key got 200 by sending
    X-P402-Department: capped, or no header at all. A key fixed to Capped is Capped, always."""
    monkeypatch.setenv(OPENAI_KEY_ENV, "sk-configured-openai")
    capped = Budget("capped daily", "department", "Capped", "day", Decimal("0.000001"), "hard")
    running = _policy_proxy(ledger, upstream, capped)
    _, bound = create_api_key(ledger, "acme", attribution={"department": "Capped"})
    made: list[openai.OpenAI] = []

    def call(**headers: str) -> None:
        made.append(openai.OpenAI(base_url=f"{running.url}/v1", api_key=bound, max_retries=0,
                                  default_headers=headers))  # fmt: skip
        made[-1].chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )

    try:
        call()  # no header: spends as Capped, and passes it
        (first,) = running.events(1)
        assert first.department == "Capped" and first.cost
        forwarded = len(running.seen.seen)
        for headers in ({}, {"X-P402-Department": "Capped"}):
            with pytest.raises(openai.RateLimitError):
                call(**headers)
        for dodge in ("capped", "Sales"):
            with pytest.raises(openai.PermissionDeniedError) as refused:
                call(**{"X-P402-Department": dodge})
            body = refused.value.response.json()["error"]
            assert body["code"] == "attribution_fixed" and "'Capped'" in body["message"]
        assert len(running.seen.seen) == forwarded  # none of them went upstream
        # Other fields stay the caller's to give.
        with pytest.raises(openai.RateLimitError):
            call(**{"X-P402-Workflow": "nightly"})
        events = running.events(4)
    finally:
        for each in made:
            each.close()
        running.served.stop()
    assert sorted((e.department, e.policy_decision) for e in events) == [
        ("Capped", "allow"), ("Capped", "deny"), ("Capped", "deny"), ("Capped", "deny"),
    ]  # fmt: skip


@pytest.mark.parametrize("fault", ["cut", "early"])
def test_a_stream_the_upstream_breaks_off_is_an_error_with_the_tokens_it_reported(
    proxy: Proxy, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, an upstream cut was recorded 'cancelled' (as a caller's hang-up) with a
    traceback logged, and a stream that ended early 'success', on Anthropic with the
    placeholder output_tokens=1 of message_start."""
    with pytest.raises(openai.APIError) if fault == "cut" else nullcontext():
        chunks = list(proxy.openai().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True,
            user=fault,
        ))  # fmt: skip
        assert len(chunks) == 2
    claude = proxy.anthropic()
    with (
        pytest.raises(anthropic.APIError) if fault == "cut" else nullcontext(),
        claude.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            metadata={"user_id": fault},
        ) as stream,
    ):
        list(stream.text_stream)
    events = {event.provider: event for event in proxy.events(2)}
    for event in events.values():
        assert event.outcome == "error", event
        assert dict(event.tags)["p402.stream"] == ("cut" if fault == "cut" else "incomplete")
    # Anthropic reported its input in message_start; the output count never came.
    claude_event = events["anthropic"]
    assert (claude_event.input_tokens, claude_event.output_tokens) == (40, 0)
    assert (claude_event.cache_read_tokens, claude_event.cache_write_tokens) == (300, 150)
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("p402")]


def test_a_caller_who_hangs_up_is_cancelled_not_an_error(proxy: Proxy) -> None:
    with httpx.Client(timeout=10) as client, client.stream(
        "POST", f"{proxy.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "stream": True, "user": "slow",
              "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {proxy.key}"},
    ) as answer:  # fmt: skip
        next(answer.iter_bytes())
    (event,) = proxy.events(1)
    assert event.outcome == "cancelled"
    assert "p402.stream" not in dict(event.tags)


def test_a_budget_applies_to_the_attribution_after_the_rules(
    sqlite_ledger: Ledger, upstream: tuple[Served, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call the rules put in department Capped spends Capped's budget, whatever its headers
    said (here: none, only the workflow the rule reads)."""
    monkeypatch.setenv(OPENAI_KEY_ENV, "sk-configured-openai")
    rule = Rule("triage is capped", (("workflow", "triage"),), (("department", "Capped"),))
    capped = Budget("capped daily", "department", "Capped", "day", Decimal("0.000001"), "hard")
    running = start_proxy(sqlite_ledger, upstream, Config(rules=(rule,), budgets=(capped,)))
    try:
        client = running.openai(default_headers={"X-P402-Workflow": "triage"})
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
        running.events(1)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
        events = running.events(2)
    finally:
        running.served.stop()
    assert sorted((e.department, e.policy_decision) for e in events) == [
        ("Capped", "allow"), ("Capped", "deny"),
    ]  # fmt: skip


def test_tool_calls_through_the_proxy_are_counted_and_priced_apart(proxy: Proxy) -> None:
    """Anthropic's server_tool_use.web_search_requests and the Responses API's web and file
    search calls are spend, billed per call: the proxy kept neither."""
    proxy.anthropic().messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}],
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
    )  # fmt: skip
    for stream in (False, True):
        answer = proxy.openai().responses.create(
            model="gpt-4o-mini", input="x", tools=[{"type": "web_search_preview"}], stream=stream
        )
        if stream:
            list(answer)
    events = proxy.events(3)
    (claude,) = [event for event in events if event.provider == "anthropic"]
    assert claude.web_search_calls == 3
    assert claude.tool_cost == Decimal("0.03")  # $10 per 1,000 searches
    assert claude.cost is not None and claude.cost > claude.tool_cost
    responses = [event for event in events if event.provider == "openai"]
    assert len(responses) == 2  # answered whole, and streamed
    for event in responses:
        assert (event.web_search_calls, event.file_search_calls) == (2, 1), event
