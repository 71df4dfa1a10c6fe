"""Who is calling: every route needs a p402 API key, and the key names the tenant.

A key may come as ``X-P402-Key``, as ``Authorization: Bearer p402_...`` or as Anthropic's
``x-api-key: p402_...`` (so an SDK pointed at the proxy can carry it as its own API key). The
HTML page and its download links also take the ``p402_session`` cookie its sign-in form sets:
a random session id, never the key (``ledger/sessions.py``). An ``Authorization`` or
``x-api-key`` that is not a p402 key is the caller's own provider key, which the routing proxy
passes upstream untouched.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from p402.serve.errors import Unauthenticated
from p402.serve.service import Service

__all__ = [
    "COOKIE", "presented_key", "require_tenant", "same_origin", "service_of", "session_of",
]  # fmt: skip

COOKIE = "p402_session"
_PREFIX = "p402_"


def service_of(request: Request) -> Service:
    """The service this app serves."""
    service: Service = request.app.state.service
    return service


def presented_key(request: Request) -> str | None:
    """The p402 key the request's headers carry, or ``None``."""
    headers = request.headers
    explicit = headers.get("x-p402-key")
    if explicit:
        return explicit.strip()
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip().startswith(_PREFIX):
        return credential.strip()
    anthropic = headers.get("x-api-key", "").strip()
    if anthropic.startswith(_PREFIX):
        return anthropic
    return None


def session_of(request: Request) -> str | None:
    """The page's session id the request's cookie carries, or ``None``."""
    return request.cookies.get(COOKIE) or None


def same_origin(request: Request) -> bool:
    """Whether a form post comes from p402's own page: a browser says where a post comes from
    (``Sec-Fetch-Site``, ``Origin``), and a post from any other site (login CSRF, a forced
    sign-out) is refused. A client that says nothing is no browser, and no such victim."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:  # every current browser says it; Origin may be "null" for its own posts
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin.rstrip("/").lower() == own.lower()


async def _tenant(request: Request, *, cookie: bool) -> str:
    key = presented_key(request)
    service = service_of(request)
    tenant = None if key is None else service.known_tenant(key)
    if tenant is None and key is not None:  # first sight of the key: one database lookup
        tenant = await run_in_threadpool(service.tenant_for_key, key)
    session = session_of(request) if cookie and key is None else None
    if session is not None:
        tenant = await run_in_threadpool(service.tenant_for_session, session)
    if tenant is None:
        raise Unauthenticated(
            "missing or invalid p402 API key (send it as X-P402-Key or Authorization: Bearer)"
        )
    return tenant


async def require_tenant(request: Request) -> str:
    """Dependency: the tenant of the request's key (header only), else 401."""
    return await _tenant(request, cookie=False)


async def require_tenant_or_cookie(request: Request) -> str:
    """Dependency for the HTML page and downloads: header or the sign-in cookie."""
    return await _tenant(request, cookie=True)
