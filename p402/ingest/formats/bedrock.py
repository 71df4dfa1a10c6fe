"""AWS Bedrock model invocation logs (``bedrock-logs``): one event per logged model call.

Sources relied on (the provider's published format is the contract):

* The record: docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html, and the
  field list Panther keeps for it (docs.panther.com, schema ``AWS.BedrockModelInvocation``):
  ``schemaType`` ("ModelInvocationLog"), ``schemaVersion``, ``timestamp`` (RFC 3339),
  ``accountId``, ``identity.arn``, ``region``, ``requestId``, ``operation``, ``modelId``,
  ``inferenceRegion``, ``requestMetadata``, ``errorCode``, ``input.{inputTokenCount,
  cacheReadInputTokenCount, cacheWriteInputTokenCount, inputBodyJson, inputBodyS3Path}``,
  ``output.{outputTokenCount, outputBodyJson, outputBodyS3Path}``, ``performanceConfig.latency``.
  Captured records in public code (dheerajoruganty/aws-bedrock-logs-mcp-server ``setup.md``)
  show the nesting and that ``inputTokenCount`` equals Converse ``usage.inputTokens``, which
  excludes cache reads and writes (API_runtime_TokenUsage; langchain-aws adds them back).
* Delivery: S3 objects ``AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/
  *.json.gz``, gzipped JSON Lines; CloudWatch Logs events ``{timestamp (ms), message, ...}``
  (CloudWatch Logs API ``OutputLogEvent`` / ``FilteredLogEvent``, as ``aws logs
  filter-log-events`` prints them inside ``{"events": [...]}``); subscription payloads
  ``{"messageType": "DATA_MESSAGE", "logEvents": [{id, timestamp, message}]}`` (AWS Lambda
  Powertools ``CloudWatchLogsDecode``; ``CONTROL_MESSAGE`` payloads are health checks, skipped);
  and a CloudWatch export to S3, whose lines are the event's time, a space, then the message
  (the layout the CloudWatch export guide sorts with ``sort -z`` on the leading time).

Accepted, line by line (a ``.gz`` file is decompressed as it is read): a record; a CloudWatch
event whose ``message`` is the record as JSON text; a CloudWatch export line; an array of these,
or an object holding them in ``events`` / ``logEvents``. A pretty-printed JSON document (the
``aws logs filter-log-events`` output) is read whole.

Mapping: ``input = inputTokenCount`` (already uncached), ``cache_read =
cacheReadInputTokenCount``, ``cache_write = cacheWriteInputTokenCount`` (the log has no TTL
split, so a 1-hour write is priced as a 5-minute one), ``output = outputTokenCount``. The four
model-call operations are ``chat`` (``embeddings`` for an embedding model). ``modelId`` goes
through :func:`model_name` and is kept in the ``bedrock.model_id`` tag. ``accountId`` is the
``provider_project_id``; ``identity.arn`` is the ``user_id`` and, with an assumed role's role
and session names, tags; ``errorCode`` makes the outcome ``error``. ``requestMetadata`` is the
caller's own tags; a key named like an attribution field also sets it.

A guardrail that intervened makes the outcome ``blocked`` (the call is still billed for the
tokens counted): Converse's ``outputBodyJson.stopReason`` ``guardrail_intervened``, or InvokeModel's
``amazon-bedrock-guardrailAction`` ``INTERVENED`` at the top of the body or, for a stream, on any
of its logged events (records captured in elastic/integrations
``packages/aws_bedrock/data_stream/invocation/_dev/test/pipeline/test-aws-bedrock.log``).

The bodies (``inputBodyJson``, ``outputBodyJson``, the ``*S3Path`` pointers) are content: only
those two control fields of the output body are looked at; the rest is never read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from p402.errors import FieldProblems
from p402.ingest.formats._common import (
    Format,
    Parts,
    Progress,
    SourceRow,
    Span,
    json_documents,
    loads_exact,
    printable,
    stable_id,
    time_from,
    whole,
)
from p402.ingest.tags import MAX_TAGS, tags_from
from p402.ledger.events import ATTRIBUTION_FIELDS

__all__ = ["FORMATS"]

NAME = "bedrock-logs"

_SCHEMA = "ModelInvocationLog"
_CALLS = frozenset({"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"})
# ARN resource types whose name is a model id the price table knows; the others (application
# inference profiles, provisioned, custom and imported models) are opaque account resources.
_NAMED_RESOURCES = frozenset({"foundation-model", "inference-profile"})
_EXPORT_LINE = re.compile(rb"^\s*\d{4}-\d{2}-\d{2}T\S*\s+(?=[{\[])")
_MAX_ID = 200
_GUARDRAIL_STOP = "guardrail_intervened"
_GUARDRAIL_ACTION = "amazon-bedrock-guardrailAction"


def model_name(model_id: str) -> str:
    """The model a ``modelId`` names, as the price table's ``aws`` provider knows it.

    Plain ids (``anthropic.claude-3-5-haiku-20241022-v1:0``) and cross-region inference profile
    ids (``us.anthropic...``, ``global.anthropic...``) are kept: the table prices both, and a
    global profile is priced differently from a regional one. An ARN of a foundation model or
    of a system-defined inference profile gives its resource name. Other ARNs (application
    inference profiles, provisioned throughput, custom models) hide the model: kept as they are,
    so the event is visibly unpriced rather than priced as a guess.
    """
    if not model_id.startswith("arn:"):
        return model_id
    parts = model_id.split(":", 5)
    kind, _, name = parts[-1].partition("/")
    return name if len(parts) == 6 and kind in _NAMED_RESOURCES and name else model_id


def _operation(operation: Any, model: str) -> str | None:
    if not isinstance(operation, str) or not operation:
        return None
    if operation in _CALLS:
        return "embeddings" if "embed" in model.lower() else "chat"
    word = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
    word = re.sub(r"[^a-z0-9_]", "_", word)[:32]
    return word if re.fullmatch(r"[a-z][a-z0-9_]*", word) else None


def _intervened(body: Any) -> bool:
    """Whether a logged output body says a guardrail intervened (its content is not read)."""
    if isinstance(body, list):
        return any(_intervened(item) for item in body)
    if not isinstance(body, Mapping):
        return False
    action = body.get(_GUARDRAIL_ACTION)
    return body.get("stopReason") == _GUARDRAIL_STOP or (
        isinstance(action, str) and action.upper() in {"INTERVENED", "GUARDRAIL_INTERVENED"}
    )


def _outcome(record: Mapping[str, Any], taken: Mapping[str, Any]) -> str:
    if record.get("errorCode"):
        return "error"
    # Refused by the account's guardrail: billed for what was counted, but not a success.
    return "blocked" if _intervened(taken.get("outputBodyJson")) else "success"


def _principal_tags(arn: str) -> dict[str, str]:
    """The principal's ARN, and for an assumed role its role and session names (a session is
    often named after the employee, e.g. by SSO)."""
    tags = {"aws.principal": arn}
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role" and "/" in rest:
        role, _, session = rest.partition("/")
        tags.update({"aws.role": role, "aws.session": session})
    elif kind == "user" and rest:
        tags["aws.user"] = rest.rsplit("/", 1)[-1]
    return tags


def _text(record: Mapping[str, Any], name: str, problems: FieldProblems) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not printable(value):
        problems.append((name, f"must be 1 to {_MAX_ID} printable characters"))
        return None
    return str(value).strip()


def _part(record: Mapping[str, Any], name: str, problems: FieldProblems) -> Mapping[str, Any]:
    value = record.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append((name, "must be an object"))
        return {}
    return value


def _tags(metadata: Mapping[str, Any], ours: dict[str, str]) -> dict[str, str]:
    """The caller's tags and ours (ours win on a clash), at most the ledger's 32, ours first."""
    tags = tags_from(ours)
    for key, value in sorted(tags_from(metadata).items()):
        if len(tags) >= MAX_TAGS:
            break
        tags.setdefault(key, value)
    return tags


def event(record: Mapping[str, Any], problems: FieldProblems) -> dict[str, Any] | None:
    """The canonical raw event for one invocation log record (problems go to *problems*)."""
    schema = record.get("schemaType")
    if schema is not None and schema != _SCHEMA:
        problems.append(("schemaType", f"must be {_SCHEMA!r}, got {schema!r}"))
        return None
    occurred_at = time_from(record.get("timestamp"), "timestamp", problems)
    request_id = _text(record, "requestId", problems)
    if request_id is None:
        problems.append(("requestId", "is required (it identifies the call)"))
    model_id = _text(record, "modelId", problems)
    if model_id is None:
        problems.append(("modelId", "is required"))
    account = _text(record, "accountId", problems)
    region = _text(record, "region", problems)
    given = _part(record, "input", problems)
    taken = _part(record, "output", problems)
    identity = _part(record, "identity", problems)
    metadata = _part(record, "requestMetadata", problems)
    performance = _part(record, "performanceConfig", problems)
    input_tokens = whole(given.get("inputTokenCount"), "input.inputTokenCount", problems)
    cache_read = whole(
        given.get("cacheReadInputTokenCount"), "input.cacheReadInputTokenCount", problems
    )
    cache_write = whole(
        given.get("cacheWriteInputTokenCount"), "input.cacheWriteInputTokenCount", problems
    )
    output_tokens = whole(taken.get("outputTokenCount"), "output.outputTokenCount", problems)
    if problems or model_id is None or occurred_at is None:
        return None
    model = model_name(model_id)
    ours = {"bedrock.model_id": model_id, "bedrock.operation": record.get("operation")}
    ours |= {"aws.region": region, "aws.inference_region": record.get("inferenceRegion")}
    ours["bedrock.error_code"] = record.get("errorCode")
    ours["bedrock.latency"] = performance.get("latency")
    arn = identity.get("arn")
    if isinstance(arn, str) and arn:
        ours |= _principal_tags(arn)
    row: dict[str, Any] = {
        "event_id": stable_id(NAME, account, region, request_id),
        "occurred_at": occurred_at,
        "provider": "bedrock",
        "model": model,
        "operation": _operation(record.get("operation"), model),
        # One record is one call: Bedrock logs each invocation on its own.
        "requests": 1,
        "input_tokens": input_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "output_tokens": output_tokens,
        "provider_project_id": account,
        "outcome": _outcome(record, taken),
        "tags": _tags(metadata, tags_from({k: v for k, v in ours.items() if v is not None})),
    }
    if printable(arn):
        row["user_id"] = arn
    for name in ATTRIBUTION_FIELDS:
        value = metadata.get(name)
        if printable(value):
            row[name] = value
    return {key: value for key, value in row.items() if value is not None}


def _line_document(line: bytes) -> Any:
    """A line's JSON; a CloudWatch export line (``<time> <message>``) gives its message."""
    if (match := _EXPORT_LINE.match(line)) is not None:
        line = line[match.end() :]
    return loads_exact(line)


def _records(document: Any, path: str) -> Iterator[tuple[str, Any, str | None]]:
    """The log records in a document, as ``(json path, record, problem)``: arrays and
    CloudWatch containers are opened, a CloudWatch event's ``message`` is parsed."""
    if isinstance(document, list):
        for index, item in enumerate(document):
            yield from _records(item, f"{path}[{index}]")
        return
    if not isinstance(document, Mapping):
        yield path or "$", None, "must be a JSON object (an invocation log record)"
        return
    if document.get("messageType") == "CONTROL_MESSAGE":
        return  # CloudWatch checking that a subscription's destination is reachable
    for container in ("events", "logEvents"):
        if isinstance(document.get(container), list) and "schemaType" not in document:
            yield from _records(document[container], f"{path}.{container}" if path else container)
            return
    message = document.get("message")
    if "schemaType" not in document and isinstance(message, str):
        here = f"{path}.message" if path else "message"
        try:
            parsed = loads_exact(message)
        except ValueError as exc:
            yield here, None, f"the CloudWatch message is not a JSON record: {exc}"
            return
        yield from _records(parsed, here)
        return
    yield path, document, None


def read(
    path: Path, progress: Progress | None = None, span: Span | None = None
) -> Iterator[SourceRow]:
    """Events from a Bedrock invocation log file (JSON Lines, gzipped or not)."""
    for line, document, problem in json_documents(
        path, progress, line_parser=_line_document, span=span
    ):
        if problem is not None:
            yield SourceRow(line, None, None, [(None, problem)])
            continue
        for where, record, trouble in _records(document, ""):
            located = where or None
            if trouble is not None:
                yield SourceRow(line, located, None, [(None, trouble)])
                continue
            if not isinstance(record, Mapping):
                yield SourceRow(
                    line,
                    located,
                    None,
                    [(None, "must be a JSON object (an invocation log record)")],
                )
                continue
            problems: FieldProblems = []
            row = event(record, problems)
            yield SourceRow(line, located, None if problems else row, problems)


FORMATS = (
    Format(
        NAME,
        "events",
        "AWS Bedrock model invocation logs (S3 .json.gz or CloudWatch Logs)",
        read,
        Parts.of_json_lines(read, line_parser=_line_document),
    ),
)
