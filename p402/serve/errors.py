"""Errors as HTTP answers, mapped in one place.

Every error a route raises is a :class:`~p402.errors.P402Error` whose class carries its status
and a stable code (the request errors of this module, and those of the stages, such as a
period that does not parse or a ledger that cannot be written). :func:`install` answers them
all, and the framework's own refusals (an unknown path, a query parameter of the wrong type),
with one body, the OpenAI error shape that the providers' SDKs already read::

    {"error": {"message": "...", "type": "invalid_request_error", "code": "invalid_json"}}

On Anthropic's route (``/v1/messages``) the same error comes in Anthropic's envelope,
``{"type": "error", "error": {...}}``. The proxy's refusals (budgets, the model allow-list)
use :func:`error_response` too, so every answer that is not a success has this shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from p402.errors import P402Error

__all__ = [
    "ERROR_SCHEMA",
    "NotFound",
    "NotReady",
    "RequestError",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "error_response",
    "install",
]


class RequestError(P402Error):
    """The request cannot be read: its body, a header, a parameter."""

    code = "invalid_request"


class Unauthenticated(RequestError):
    """No p402 API key came with the request, or not a valid one."""

    http_status = 401
    code = "invalid_api_key"


class NotFound(RequestError):
    """No such thing for this tenant (the same answer when it is another tenant's)."""

    http_status = 404
    code = "not_found"


class NotReady(RequestError):
    """The thing exists but is not finished yet (an audit still being built)."""

    http_status = 409
    code = "not_ready"


class TooLarge(RequestError):
    """The body, or the batch in it, is over the limit: nothing of it was stored."""

    http_status = 413
    code = "too_large"


class Unavailable(RequestError):
    """This server cannot do it now (no signing key): the request was fine."""

    http_status = 503
    code = "unavailable"


_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
"""The OpenAI error ``type`` of a status; other 4xx are ``invalid_request_error``, 5xx ``api_error``."""
_ANTHROPIC_ROUTE = "/v1/messages"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": "string"},
            },
        },
    },
}
"""The body of every error answer, as the OpenAPI document publishes it."""


def _kind(status: int) -> str:
    return _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_response(
    status: int,
    message: str,
    code: str,
    *,
    anthropic: bool = False,
    retry: bool = False,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The answer for an error: *status*, and the body in the OpenAI shape (Anthropic's
    envelope when *anthropic*). The SDKs' ``x-should-retry`` says whether the same request may
    succeed later (*retry*)."""
    error = {"message": message, "type": _kind(status), "code": code}
    body = {"type": "error", "error": error} if anthropic else {"error": error}
    return Response(
        orjson.dumps(body),
        status,
        media_type="application/json",
        headers={"x-should-retry": "true" if retry else "false", **(headers or {})},
    )


def _answer(request: Request, status: int, message: str, code: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    anthropic = request.url.path == _ANTHROPIC_ROUTE
    # A server-side failure (the ledger, no signing key) may pass later; a bad request never.
    return error_response(
        status, message, code, anthropic=anthropic, retry=status >= 500, headers=headers
    )


def install(app: FastAPI) -> None:
    """Answer every error of *app* in the one shape: p402's own, and the framework's."""

    @app.exception_handler(P402Error)
    async def _p402(request: Request, exc: P402Error) -> Response:
        return _answer(request, exc.http_status, exc.one_line(), exc.code)

    @app.exception_handler(RequestValidationError)
    async def _parameters(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', '')}"
            for item in exc.errors()
        )
        return _answer(request, 422, problems or "the request is not valid", "invalid_parameters")

    @app.exception_handler(StarletteHTTPException)
    async def _framework(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        answer = _answer(request, exc.status_code, str(exc.detail), code)
        answer.headers.update(exc.headers or {})
        return answer
