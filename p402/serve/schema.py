"""The meter API's published schemas: the canonical event as JSON Schema (for
``/openapi.json``), derived from the event's fields so it cannot drift from them. Validation
itself stays in :mod:`p402.ingest.validation`; this is the contract integrators read."""

from __future__ import annotations

from typing import Any

from p402.ledger.events import (
    ATTRIBUTION_FIELDS,
    COST_SOURCES,
    EVIDENCE_STATUSES,
    FIELDS,
    POLICY_DECISIONS,
    SOURCE_ID_FIELDS,
    TOKEN_FIELDS,
    TOOL_FIELDS,
)
from p402.serve.errors import ERROR_SCHEMA

__all__ = [
    "BAD_REQUEST",
    "ERROR",
    "EVENT_SCHEMA",
    "METER_REQUEST",
    "METER_RESPONSES",
    "NOT_FOUND",
    "UNAUTHORISED",
]

_TEXT: dict[str, Any] = {"type": ["string", "null"]}
_AMOUNT = {
    "type": ["string", "null"],
    "pattern": r"^-?\d+(\.\d+)?$",
    "description": "exact decimal, USD (a JSON number is re-read from its digits)",
}
_TIME = {"type": "string", "format": "date-time", "description": "RFC 3339 with an offset"}
_SPECIAL: dict[str, dict[str, Any]] = {
    "event_id": {"type": "string", "maxLength": 200,
                 "description": "unique per tenant; derived from the content when absent"},
    "occurred_at": _TIME,
    "retention_until": {**_TIME, "type": ["string", "null"]},
    "provider": {"type": "string", "maxLength": 64},
    "model": {"type": "string", "maxLength": 200},
    "requests": {"type": "integer", "minimum": 1, "default": 1},
    "cost": _AMOUNT,
    "list_cost": _AMOUNT,
    "tool_cost": {**_AMOUNT, "description": "the part of cost that is tool calls"},
    "quality": {"type": "string", "pattern": "^[a-z][a-z0-9_]*(,[a-z][a-z0-9_]*)*$",
                "description": "data-quality codes, comma-separated"},
    "currency": {"type": "string", "enum": ["USD"], "default": "USD"},
    "cost_source": {"type": "string", "enum": sorted(COST_SOURCES)},
    "batch": {"type": "boolean", "default": False},
    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    "policy_decision": {"type": "string", "enum": sorted(POLICY_DECISIONS), "default": "allow"},
    "evidence_status": {"type": "string", "enum": sorted(EVIDENCE_STATUSES)},
    "outcome": {"type": "string", "pattern": "^[a-z_]+$", "default": "success"},
    **{name: {"type": "integer", "minimum": 0, "default": 0} for name in (*TOKEN_FIELDS, *TOOL_FIELDS)},
    **{name: {**_TEXT, "maxLength": 200} for name in (*ATTRIBUTION_FIELDS, *SOURCE_ID_FIELDS)},
}  # fmt: skip

EVENT_SCHEMA: dict[str, Any] = {
    "title": "Economic event",
    "description": "One AI call (or usage bucket), metadata only. Content fields (prompt, "
    "messages, completion, ...) are dropped before storage; any other unknown field is refused.",
    "type": "object",
    "required": ["occurred_at", "provider", "model"],
    "properties": {name: _SPECIAL.get(name, _TEXT) for name in FIELDS},
}

METER_REQUEST: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/EconomicEvent"},
                    {
                        "type": "array",
                        "maxItems": 10_000,
                        "items": {"$ref": "#/components/schemas/EconomicEvent"},
                    },
                ]
            }
        },
        "application/x-ndjson": {"schema": {"type": "string", "description": "one event per line"}},
    },
}

_RESULT = {
    "type": "object",
    "required": ["index", "status"],
    "properties": {
        "index": {"type": "integer"},
        "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
        "event_id": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_OUTCOMES = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["accepted", "duplicate", "rejected", "results"],
            "properties": {
                "accepted": {"type": "integer"},
                "duplicate": {"type": "integer"},
                "rejected": {"type": "integer"},
                "results": {"type": "array", "items": _RESULT},
            },
        }
    }
}
ERROR = {"application/json": {"schema": ERROR_SCHEMA}}
"""The content of every error answer (see :mod:`p402.serve.errors`)."""
UNAUTHORISED: dict[int | str, dict[str, Any]] = {
    401: {"description": "No p402 API key, or not a valid one", "content": ERROR}
}
"""What every route of the service may answer."""
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {"description": "The request cannot be read (body, period, dates)", "content": ERROR}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such audit for this tenant", "content": ERROR}
}
METER_RESPONSES: dict[int | str, dict[str, Any]] = {
    **BAD_REQUEST,
    200: {"description": "Every event accepted or a duplicate", "content": _OUTCOMES},
    207: {"description": "Some events rejected; the others are stored", "content": _OUTCOMES},
    413: {
        "description": "More than 10,000 events, or a body over 64 MB: nothing stored",
        "content": ERROR,
    },
    503: {"description": "The ledger could not be written; nothing was stored", "content": ERROR},
    422: {"description": "Every event rejected", "content": _OUTCOMES},
}
