"""Reading request bodies with a limit: the size is refused from ``Content-Length`` before a
byte is read, and while streaming when the header is absent or lies, so no caller can make the
server hold more than the limit in memory. A body sent with ``Content-Encoding: gzip`` (or
``deflate``) is inflated here, under the same limit for what it inflates to (no compression
bomb gets past it); any other encoding is refused by name."""

from __future__ import annotations

import zlib

from fastapi import Request

from p402.serve.errors import RequestError, TooLarge

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
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        body = _inflated(body, encoding, limit, too_big)
    request._body = body  # what the routes read, and what the proxy forwards (inflated)
    return body


def _inflated(body: bytes, encoding: str, limit: int, too_big: TooLarge) -> bytes:
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise RequestError(
            f"Content-Encoding {encoding!r} is not supported: send the body as is, or gzip"
        )
    # gzip: a gzip header; deflate: a zlib stream (RFC 9110), or a raw one as some clients send.
    window = 16 + zlib.MAX_WBITS if encoding != "deflate" else 32 + zlib.MAX_WBITS
    try:
        inflater = zlib.decompressobj(window)
        found = inflater.decompress(body, limit + 1)
        if len(found) > limit or inflater.unconsumed_tail:
            raise too_big
        if not inflater.eof:
            raise RequestError(f"the body is cut short: its {encoding} stream does not end")
    except zlib.error:
        if encoding != "deflate":
            raise RequestError(f"the body says Content-Encoding: {encoding} but is not") from None
        try:
            found = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, limit + 1)
        except zlib.error:
            raise RequestError("the body says Content-Encoding: deflate but is not") from None
        if len(found) > limit:
            raise too_big from None
    return found
