"""Reading request bodies with a limit: the size is refused from ``Content-Length`` before a
byte is read, and while streaming when the header is absent or lies, so no caller can make the
server hold more than the limit in memory."""

from __future__ import annotations

from fastapi import Request

from p402.serve.errors import TooLarge

__all__ = ["read_body"]


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`~p402.serve.errors.TooLarge` (413) once it is known to exceed
    *limit* bytes."""
    too_big = TooLarge(f"the body is over {limit // (1024 * 1024)} MB")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body
    return body
