"""Gemini API (AI Studio) and Vertex AI responses (``gemini``): one event per response.

Sources relied on (the provider's published format is the contract):

* ``GenerateContentResponse``: ``candidates``, ``promptFeedback``, ``usageMetadata``,
  ``modelVersion``, ``responseId``, and on Vertex ``createTime`` ("timestamp when the request is
  made to the server", RFC 3339) (Vertex ``aiplatform_v1.types.GenerateContentResponse``;
  googleapis.dev ``GoogleCloudAiplatformV1GenerateContentResponse``; a captured Vertex response
  in inputhacker/ai_generated_code ``rest_examples/vertexai_gemini_flash.sh``).
* ``usageMetadata`` (firebase.google.com/docs/reference/js/ai.usagemetadata; js-genai
  ``GenerateContentResponseUsageMetadata``): ``promptTokenCount`` ("when cached_content is set,
  this also includes the number of tokens in the cached content"), ``cachedContentTokenCount``,
  ``candidatesTokenCount``, ``thoughtsTokenCount``, ``toolUsePromptTokenCount`` ("tokens in the
  results from tool executions, which are provided back to the model as input"),
  ``totalTokenCount``, the ``*TokensDetails`` modality lists, and on Vertex ``trafficType``.

Mapping: ``input = promptTokenCount - cachedContentTokenCount + toolUsePromptTokenCount``
(tool-use prompt tokens are fed to the model and billed as input, as genai-prices' Google
extractor counts them), ``cache_read = cachedContentTokenCount``, ``output =
candidatesTokenCount + thoughtsTokenCount`` (thinking is billed as output), ``reasoning =
thoughtsTokenCount``. ``candidates[].content`` is content and is never read.

Accepted records (JSON Lines, one record a line; or one JSON document: a record, or an array):

1. A response carrying ``createTime`` (Vertex): the time is the response's own.
2. A wrapper ``{"timestamp": <RFC 3339 or unix seconds>, "response": <response or array of
   chunks>, "metadata": {...}, "labels": {...}, "model": "..."}`` for responses without a time
   (AI Studio). ``metadata`` and ``labels`` (Vertex's name for request labels) are the caller's:
   a key named like an attribution field (owner, department, employee, customer, workflow,
   project, feature) sets that field, every scalar becomes a tag. ``model`` is used only when
   the response has no ``modelVersion``. Any other key (e.g. a logged ``request``) is ignored.
3. A streamed response: an array of chunks (the REST ``streamGenerateContent`` body) or
   consecutive records sharing a ``responseId``. Usage is counted once, from the last chunk
   that carries ``usageMetadata`` (each chunk's usage is cumulative, the last is final). An
   array is split where ``responseId`` changes, so an array of whole responses works when they
   carry their ids; an array of id-less responses is read as one stream. An array whose items
   all have ``response`` is an array of wrappers.

A response's ``createTime`` wins over a wrapper's ``timestamp``. A response without
``createTime`` and without a wrapper has no time: a problem, not a guess. ``responseId``,
``trafficType`` and ``promptFeedback.blockReason`` are kept as tags; a response blocked by a
safety filter (a ``blockReason``, or a candidate's ``finishReason`` such as ``SAFETY``) has the
outcome ``blocked``; provisioned-throughput
traffic is still priced at list (the table has no per-contract price).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from p402.errors import FieldProblems
from p402.ingest.formats._common import (
    Format,
    Progress,
    SourceRow,
    json_documents,
    printable,
    stable_id,
    time_from,
    whole,
)
from p402.ingest.tags import MAX_TAGS, tags_from
from p402.ledger.events import ATTRIBUTION_FIELDS

__all__ = ["FORMATS"]

NAME = "gemini"

_COUNTS = (
    "promptTokenCount",
    "cachedContentTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "toolUsePromptTokenCount",
    "totalTokenCount",
)
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(slots=True)
class _Unit:
    """One response as read: its chunks, the wrapper around it (if any), and where it was."""

    line: int | None
    path: str | None
    chunks: list[Mapping[str, Any]]
    wrapper: Mapping[str, Any] | None
    problems: FieldProblems = field(default_factory=list)

    @property
    def response_id(self) -> str | None:
        ids = [c.get("responseId") for c in self.chunks if isinstance(c.get("responseId"), str)]
        return ids[-1] if ids else None


def _model(value: Any) -> str | None:
    """``modelVersion`` as the price table knows it: ``models/`` and Vertex resource paths off."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().rsplit("/models/", 1)[-1].removeprefix("models/") or None


def _time(value: Any, name: str, problems: FieldProblems) -> str | None:
    # Protobuf timestamps may carry nanoseconds; Python reads at most microseconds.
    if isinstance(value, str):
        value = _FRACTION.sub(r"\1", value)
    return time_from(value, name, problems)


def _usage(usage: Any, problems: FieldProblems) -> dict[str, int] | None:
    if usage is None:
        problems.append(("usageMetadata", "is missing: the response reports no token counts"))
        return None
    if not isinstance(usage, Mapping):
        problems.append(("usageMetadata", "must be an object"))
        return None
    counts = {name: whole(usage.get(name), f"usageMetadata.{name}", problems) for name in _COUNTS}
    if counts["cachedContentTokenCount"] > counts["promptTokenCount"]:
        problems.append(
            (
                "usageMetadata.cachedContentTokenCount",
                "is part of promptTokenCount, so cannot exceed it",
            )
        )
    return counts


def _caller(wrapper: Mapping[str, Any] | None, problems: FieldProblems) -> dict[str, Any]:
    """Attribution fields and tags from the wrapper's ``labels`` and ``metadata``."""
    given: dict[str, Any] = {}
    for name in ("labels", "metadata"):
        part = None if wrapper is None else wrapper.get(name)
        if part is None:
            continue
        if not isinstance(part, Mapping):
            problems.append((name, "must be an object of name: value"))
            continue
        given.update(part)
    found: dict[str, Any] = {}
    for name in ATTRIBUTION_FIELDS:
        value = given.get(name)
        if printable(value):
            found[name] = value
    tags = dict(sorted(tags_from(given).items())[:MAX_TAGS])
    if tags:
        found["tags"] = tags
    return found


def _event(unit: _Unit) -> dict[str, Any] | None:
    problems = unit.problems
    chunks, wrapper = unit.chunks, unit.wrapper
    created = next((c["createTime"] for c in chunks if c.get("createTime")), None)
    if created is not None:
        occurred_at = _time(created, "createTime", problems)
    elif wrapper is not None:
        occurred_at = _time(wrapper.get("timestamp"), "timestamp", problems)
    else:
        problems.append(
            ("createTime", "no time: the response has no createTime and no wrapper timestamp")
        )
        occurred_at = None
    version = next((c["modelVersion"] for c in reversed(chunks) if c.get("modelVersion")), None)
    model = _model(version) or _model(None if wrapper is None else wrapper.get("model"))
    if model is None:
        problems.append(("modelVersion", "is required (or give the wrapper a model)"))
    elif not printable(model):
        problems.append(("modelVersion", "must be 1 to 200 printable characters"))
    # The last chunk with usage holds the final, cumulative counts of the whole stream.
    usage = next((c["usageMetadata"] for c in reversed(chunks) if "usageMetadata" in c), None)
    counts = _usage(usage, problems)
    caller = _caller(wrapper, problems)
    if problems or counts is None or occurred_at is None or model is None:
        return None
    response_id = unit.response_id
    identity: tuple[object, ...] = (
        ("response", response_id)
        if response_id
        else ("record", occurred_at, model, *counts.values(), unit.line, unit.path)
    )
    thoughts = counts["thoughtsTokenCount"]
    tags = caller.pop("tags", {})
    ours = {
        "gemini.response_id": response_id,
        "gemini.traffic_type": usage.get("trafficType") if isinstance(usage, Mapping) else None,
        "gemini.block_reason": _block_reason(chunks),
        "gemini.finish_reason": _blocking_finish(chunks),
    }
    for key, value in tags_from({k: v for k, v in ours.items() if v is not None}).items():
        if key in tags or len(tags) < MAX_TAGS:
            tags[key] = value
    row: dict[str, Any] = {
        "event_id": stable_id(NAME, *identity),
        "occurred_at": occurred_at,
        "provider": "google",
        "model": model,
        "operation": "chat",
        # One response is one call.
        "requests": 1,
        "input_tokens": counts["promptTokenCount"]
        - counts["cachedContentTokenCount"]
        + counts["toolUsePromptTokenCount"],
        "cache_read_tokens": counts["cachedContentTokenCount"],
        "output_tokens": counts["candidatesTokenCount"] + thoughts,
        "reasoning_tokens": thoughts,
        **caller,
    }
    if ours["gemini.block_reason"] or ours["gemini.finish_reason"]:
        row["outcome"] = "blocked"  # refused by a safety filter: billed, but not a success
    if tags:
        row["tags"] = tags
    return row


def _block_reason(chunks: list[Mapping[str, Any]]) -> str | None:
    for chunk in chunks:
        feedback = chunk.get("promptFeedback")
        if isinstance(feedback, Mapping) and isinstance(feedback.get("blockReason"), str):
            return str(feedback["blockReason"])
    return None


# Candidate finish reasons that mean the response was stopped by a safety or policy filter
# (the API's FinishReason enum), not that the model finished.
_BLOCKING_FINISH = frozenset({
    "SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "RECITATION",
    "IMAGE_PROHIBITED_CONTENT",
})  # fmt: skip


def _blocking_finish(chunks: list[Mapping[str, Any]]) -> str | None:
    """The first candidate finish reason that means a block (metadata: content is not read)."""
    for chunk in chunks:
        candidates = chunk.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else ():
            reason = candidate.get("finishReason") if isinstance(candidate, Mapping) else None
            if isinstance(reason, str) and reason in _BLOCKING_FINISH:
                return reason
    return None


def _wrapped(wrapper: Mapping[str, Any], line: int | None, path: str | None) -> _Unit:
    """A wrapper record: its ``response`` is one response object or an array of chunks."""
    response = wrapper.get("response")
    if isinstance(response, Mapping):
        return _Unit(line, path, [response], wrapper)
    if isinstance(response, list) and response and all(isinstance(c, Mapping) for c in response):
        return _Unit(line, path, list(response), wrapper)
    problem = ("response", "must be a response object or a non-empty array of response chunks")
    return _Unit(line, path, [], wrapper, [problem])


def _streams(chunks: list[Mapping[str, Any]], line: int | None) -> Iterator[_Unit]:
    """An array of chunks: one streamed response, split where the ``responseId`` changes (so
    an array of whole responses that carry their ids gives one unit per response)."""
    bounds = [0]
    for index in range(1, len(chunks)):
        here, before = chunks[index].get("responseId"), chunks[index - 1].get("responseId")
        if here and before and here != before:
            bounds.append(index)
    bounds.append(len(chunks))
    for start, stop in pairwise(bounds):
        path = f"[{start}]" if len(bounds) > 2 else None
        yield _Unit(line, path, list(chunks[start:stop]), None)


def _units(document: Any, line: int | None) -> Iterator[_Unit]:
    """The responses in one JSON document, each with its wrapper and location."""
    if isinstance(document, Mapping):
        if "response" in document:
            yield _wrapped(document, line, None)
        else:
            yield _Unit(line, None, [document], None)
        return
    if isinstance(document, list) and document and all(isinstance(i, Mapping) for i in document):
        if all("response" in item for item in document):
            for index, item in enumerate(document):
                yield _wrapped(item, line, f"[{index}]")
        else:
            yield from _streams(document, line)
        return
    problem = "must be a response, a wrapper {timestamp, response, metadata} or an array of chunks"
    yield _Unit(line, None, [], None, [(None, problem)])


def _merge(pending: _Unit, unit: _Unit) -> bool:
    """Join *unit* to *pending* when both are chunks of one stream (consecutive records with the
    same ``responseId``); the first record's place and wrapper stand for the whole."""
    if pending.problems or unit.problems or pending.response_id is None:
        return False
    if pending.response_id != unit.response_id:
        return False
    pending.chunks = _compact([*pending.chunks, *unit.chunks])
    pending.wrapper = pending.wrapper or unit.wrapper
    return True


def _compact(chunks: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The chunks a stream's event is made from, in order: the first (and the first with a time
    or prompt feedback), the last, and the last with usage or a model version. A long stream
    logged chunk by chunk then holds a handful of chunks in memory, not all of them."""
    last = len(chunks) - 1
    keep = {0, last}
    for key in ("usageMetadata", "modelVersion", "responseId"):
        keep.add(next((i for i in range(last, -1, -1) if key in chunks[i]), 0))
    for key in ("createTime", "promptFeedback"):
        keep.add(next((i for i, chunk in enumerate(chunks) if key in chunk), 0))
    return [chunks[i] for i in sorted(keep)]


def _row(unit: _Unit) -> SourceRow:
    record = None if unit.problems else _event(unit)
    return SourceRow(unit.line, unit.path, record, unit.problems)


def read(path: Path, progress: Progress | None = None) -> Iterator[SourceRow]:
    """Events from Gemini / Vertex responses (JSON Lines or one JSON document)."""
    pending: _Unit | None = None
    for line, document, error in json_documents(path, progress):
        if error is not None:
            if pending is not None:
                yield _row(pending)
                pending = None
            yield SourceRow(line, None, None, [(None, error)])
            continue
        for unit in _units(document, line):
            if pending is not None and _merge(pending, unit):
                continue
            if pending is not None:
                yield _row(pending)
            pending = unit
    if pending is not None:
        yield _row(pending)


FORMATS = (Format(NAME, "events", "Gemini API / Vertex AI GenerateContentResponse records", read),)
