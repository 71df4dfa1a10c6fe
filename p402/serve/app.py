"""The FastAPI application of ``p402 serve``: meter, read routes, audits and the HTML page.

The routing proxy's routes live in :mod:`p402.serve.proxy`. Every route but ``/healthz``, the
OpenAPI document and the sign-in form needs a key and sees only its tenant's rows: the tenant
comes from the key, never from the request.
"""

from __future__ import annotations

import zipfile
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from p402 import __version__
from p402.bundles.layout import PDF, XLSX
from p402.errors import P402Error
from p402.ledger.audit_jobs import (
    AuditJob,
    create_job,
    fail_job,
    finish_job,
    get_job,
    list_jobs,
    start_job,
)
from p402.ledger.rollup import totals_by
from p402.ledger.sessions import SESSION_SECONDS, end_session, open_session
from p402.money import allocate_cents, format_amount, from_units, round_cents
from p402.period import Period, format_time, micros, parse_period
from p402.serve import proxy
from p402.serve.auth import (
    COOKIE,
    presented_key,
    require_tenant,
    require_tenant_or_cookie,
    same_origin,
    service_of,
    session_of,
)
from p402.serve.bodies import read_body
from p402.serve.errors import NotFound, NotReady, RequestError, TooLarge, Unavailable
from p402.serve.errors import install as install_errors
from p402.serve.schema import (
    BAD_REQUEST,
    ERROR,
    EVENT_SCHEMA,
    METER_REQUEST,
    METER_RESPONSES,
    NOT_FOUND,
    UNAUTHORISED,
)
from p402.serve.service import Service, Unreadable, counts

__all__ = ["MAX_BATCH", "create_app", "from_environment"]

MAX_BATCH = 10_000
"""Events per meter request; larger batches are refused whole (413) before any is stored."""
MAX_BODY = 64 * 1024 * 1024
_INLINE = 16
_PARSE_INLINE = 256 * 1024
"""Bodies up to this size are parsed on the event loop; larger ones in a worker thread."""
"""Batches up to this size are validated on the event loop (no hop to a worker thread)."""
SUMMARY_DIMENSIONS = ("department", "customer", "workflow", "provider")
_DOWNLOADS = {"bundle": None, "pdf": PDF, "xlsx": XLSX}

Tenant = Annotated[str, Depends(require_tenant)]
PageTenant = Annotated[str, Depends(require_tenant_or_cookie)]


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def create_app(service: Service) -> FastAPI:
    """The application serving *service*."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        _settle()
        yield
        service.close()

    app = FastAPI(
        title="p402",
        version=__version__,
        summary="The live AI spend ledger: meter API, routing proxy and audits.",
        lifespan=lifespan,
    )
    app.state.service = service
    _publish_event_schema(app)
    app.include_router(router)
    app.include_router(proxy.router)

    install_errors(app)
    app.add_middleware(_PageHeaders)
    return app


_PAGE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    # Not no-referrer: under it a browser sends "Origin: null" with the page's own form posts,
    # and the sign-in form could not tell them from another site's.
    (b"referrer-policy", b"same-origin"),
)
"""On p402's own answers: no sniffing a download into a page, no framing the page (clickjacking),
forms posting only to p402, and no tenant URL leaking in a Referer."""
_PROXIED = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages"})
"""The proxy's routes: their answers are the upstream's, passed through as they came."""


class _PageHeaders:
    """Adds :data:`_PAGE_HEADERS` to every answer but the proxy's (plain ASGI: no cost per
    request beyond a list append, unlike a BaseHTTPMiddleware)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in _PROXIED:
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in _PAGE_HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send=sending)


def _publish_event_schema(app: FastAPI) -> None:
    """Add the canonical event to the OpenAPI components, where the meter's body refers to it,
    and publish the framework's parameter errors (422) in the one error shape they are answered
    with (see :mod:`p402.serve.errors`)."""
    build = app.openapi
    framework = "#/components/schemas/HTTPValidationError"

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas["EconomicEvent"] = EVENT_SCHEMA
            for operation in (op for item in spec["paths"].values() for op in item.values()):
                answer = operation.get("responses", {}).get("422")
                if answer and framework in orjson.dumps(answer).decode():
                    answer["content"] = ERROR
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def from_environment() -> FastAPI:
    """The app as ``p402 serve`` configures it through the environment: the factory each
    uvicorn worker process calls (``P402_DATABASE_URL``, ``P402_CONFIG``, ``P402_SIGNING_KEY``,
    ``P402_DATA_DIR``)."""
    import os

    from p402.config import load_config
    from p402.ledger.store import Ledger

    config_path = os.environ.get("P402_CONFIG")
    key = os.environ.get("P402_SIGNING_KEY")
    service = Service(
        Ledger.open(os.environ.get("P402_DATABASE_URL")),
        load_config(Path(config_path) if config_path else None),
        data_dir=Path(os.environ.get("P402_DATA_DIR", "p402-data")),
        signing_key=Path(key) if key else None,
    )
    return create_app(service)


def _settle() -> None:
    """Load what the first request would (the price table, the pipeline's modules), then move
    every object alive at start-up out of the collector's way: the heap of a started server is
    mostly that data, and full collections walking it were the slowest requests' pauses."""
    import gc

    from p402.ingest.pricing import Pricer
    from p402.ledger.events import Event

    warm = Event("warm-up", "-", datetime.now(UTC), "openai", "gpt-4o", input_tokens=1)
    Pricer(()).apply(warm)  # loads the genai-prices table
    gc.collect()
    gc.freeze()


def _body_events(body: bytes, content_type: str) -> list[Any]:
    if not body.strip():
        raise RequestError("empty body: send an event, a JSON array of events, or JSON Lines")
    if "ndjson" in content_type or "jsonl" in content_type or "json-seq" in content_type:
        try:
            items = [_line(number, line) for number, line in enumerate(body.splitlines(), 1)
                     if line.strip()]  # fmt: skip
        except UnicodeDecodeError:
            raise RequestError("the body is not valid UTF-8") from None
    else:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RequestError(f"the body is not JSON: {exc}") from None
        items = parsed if isinstance(parsed, list) else [parsed]
    if len(items) > MAX_BATCH:
        raise TooLarge(f"{len(items):,} events in one request; the most is {MAX_BATCH:,}")
    return items


def _line(number: int, line: bytes) -> Any:
    """One JSON Lines line, or the reason it cannot be read (rejected as its own item, with its
    line number: the good lines of the request are kept, as for an array)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        line.decode("utf-8")  # not UTF-8 at all: the whole body is refused
        return Unreadable(f"line {number}: not JSON ({exc})")


def _period(period: str | None, first: date | None, last: date | None) -> Period:
    if period is None and first is None:
        today = datetime.now(UTC)
        period = f"{today.year:04d}-{today.month:02d}"
    return parse_period(period, start=first, end=last)  # a ConfigError answers 400


router = APIRouter(responses=UNAUTHORISED)


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.post(
    "/v1/events",
    summary="Record economic events (one object, a JSON array, or JSON Lines)",
    responses=METER_RESPONSES,
    openapi_extra={"requestBody": METER_REQUEST},
)
async def meter(request: Request, tenant: Tenant) -> Response:
    service = service_of(request)
    try:
        body = await read_body(request, MAX_BODY)
        kind = request.headers.get("content-type", "")
        if len(body) > _PARSE_INLINE:  # parsing megabytes would hold up every other request
            items = await run_in_threadpool(_body_events, body, kind)
        else:
            items = _body_events(body, kind)
    except (RequestError, TooLarge):
        service.refused(tenant, "meter")  # counted: a request refused whole is not lost
        raise
    key = presented_key(request)
    fixed = None if key is None else service.fixed_attribution(key)
    if len(items) <= _INLINE:
        outcomes = await service.record_async(tenant, items, source="meter", fixed=fixed)
    else:  # validating a large batch would hold up the event loop: a worker thread does it
        outcomes = await run_in_threadpool(
            partial(service.record, tenant, items, source="meter", fixed=fixed)
        )
    totals = counts(outcomes)
    status = 200 if totals["rejected"] == 0 else 207 if totals["rejected"] < len(items) else 422
    return _json({**totals, "results": [outcome.as_json() for outcome in outcomes]}, status)


@router.get(
    "/v1/summary",
    summary="Spend by department, customer, workflow and provider",
    responses=BAD_REQUEST,
)
def summary(
    request: Request,
    tenant: Tenant,
    period: Annotated[str | None, Query(description="2026-10 or 2026-Q4")] = None,
    start: Annotated[date | None, Query(alias="from", description="first day, UTC")] = None,
    end: Annotated[date | None, Query(alias="to", description="last day, UTC, included")] = None,
) -> Response:
    window = _period(period, start, end)
    ledger = service_of(request).ledger
    answer: dict[str, Any] = {
        "tenant": tenant,
        "period": {
            "label": window.label,
            "start": format_time(window.start),
            "end": format_time(window.end),
        },
        "currency": "USD",
    }
    breakdowns = totals_by(ledger, tenant, window, SUMMARY_DIMENSIONS)
    rows = breakdowns[SUMMARY_DIMENSIONS[0]]
    answer["total"] = {
        "cost": format_amount(from_units(sum(units for _, units, _, _ in rows))),
        "cost_rounded": str(round_cents(sum(units for _, units, _, _ in rows))),
        "events": sum(n for _, _, n, _ in rows),
        "unpriced_events": sum(unpriced for _, _, _, unpriced in rows),
    }
    for dimension, rows in breakdowns.items():
        _, cents = allocate_cents([units for _, units, _, _ in rows])
        answer[f"by_{dimension}"] = [
            {
                dimension: value,
                "cost": format_amount(from_units(units)),
                "cost_rounded": str(rounded),
                "events": n,
                "unpriced_events": unpriced,
            }
            for (value, units, n, unpriced), rounded in zip(rows, cents, strict=True)
        ]
    return _json(answer)


@router.get(
    "/v1/findings",
    summary="What the period's spend calls for: forecasts, anomalies, budgets, savings",
    responses=BAD_REQUEST,
)
def findings(
    request: Request,
    tenant: Tenant,
    period: Annotated[str | None, Query(description="2026-10 or 2026-Q4")] = None,
    start: Annotated[date | None, Query(alias="from", description="first day, UTC")] = None,
    end: Annotated[date | None, Query(alias="to", description="last day, UTC, included")] = None,
) -> Response:
    """The tenant's findings of a period, as ``p402 findings --json`` gives them: read event by
    event, so each anomaly names its events."""
    from p402.audit.draft import period_report  # the reports' stack, loaded when first asked
    from p402.audit.findings import findings_json

    window = _period(period, start, end)
    service = service_of(request)
    report = period_report(
        service.ledger, tenant=tenant, period=window, config=service.config, by_event=True
    )
    return _json(findings_json(report, tenant, window.label))


@router.get("/v1/audits", summary="The tenant's audits, newest first")
def list_audits(request: Request, tenant: Tenant) -> Response:
    return _json({"audits": _audits(service_of(request), tenant)})


@router.post(
    "/v1/audits",
    status_code=202,
    summary="Build an audit bundle in the background",
    responses={**BAD_REQUEST, 503: {"description": "This server has no signing key"}},
)
def create_audit(
    request: Request,
    tenant: Tenant,
    period: Annotated[str | None, Query()] = None,
    start: Annotated[date | None, Query(alias="from", description="first day, UTC")] = None,
    end: Annotated[date | None, Query(alias="to", description="last day, UTC, included")] = None,
) -> Response:
    service = service_of(request)
    window = _period(period, start, end)
    if service.signing_key is None:
        raise Unavailable("this server has no signing key (start it with --key)")
    job = create_job(service.ledger, tenant, window.label)
    service.background.submit(_run_audit, service, tenant, job.audit_id, window)
    return _json(_public(_audit(service, tenant, job.audit_id)), 202)


@router.get(
    "/v1/audits/{audit_id}", summary="One audit's status and downloads", responses=NOT_FOUND
)
def get_audit(request: Request, tenant: Tenant, audit_id: str) -> Response:
    # Public fields only: the server's own file path of the bundle is nobody's business.
    return _json(_public(_audit(service_of(request), tenant, audit_id)))


@router.get(
    "/v1/audits/{audit_id}/{what}",
    summary="Download an audit's bundle (zip), PDF or XLSX",
    response_class=Response,
    responses={**NOT_FOUND, 409: {"description": "The audit is not finished"}},
)
def download(request: Request, tenant: PageTenant, audit_id: str, what: str) -> Response:
    if what not in _DOWNLOADS:
        raise NotFound("download one of: bundle, pdf, xlsx")
    found = _audit(service_of(request), tenant, audit_id)
    if found["status"] != "done":
        raise NotReady(f"audit {audit_id} is {found['status']}")
    bundle = Path(found["_bundle"])
    if what == "bundle":
        return FileResponse(
            bundle, media_type="application/zip", filename=bundle.name, headers=_PRIVATE
        )
    member = _DOWNLOADS[what]
    assert member is not None
    with zipfile.ZipFile(bundle) as archive:
        data = archive.read(member)
    kind = "application/pdf" if what == "pdf" else _XLSX_TYPE
    name = f"{bundle.stem}.{what}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type=kind, headers={**disposition, **_PRIVATE})


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> Response:
    service = service_of(request)
    session = session_of(request)
    tenant = None if session is None else service.tenant_for_session(session)
    if tenant is None:
        # A cookie of a session that ended (signed out elsewhere, expired, key revoked): sign in.
        return HTMLResponse(_render("serve_signin.html", error=False), headers=_PRIVATE)
    audits = _audits(service, tenant)
    return HTMLResponse(
        _render("serve_audits.html", tenant=tenant, audits=audits), headers=_PRIVATE
    )


@router.post("/signin", include_in_schema=False)
def signin(request: Request, key: Annotated[str, Form()]) -> Response:
    if not same_origin(request):
        return _cross_site()
    service = service_of(request)
    text = key.strip()
    tenant = service.tenant_for_key(text)
    if tenant is None:
        return HTMLResponse(_render("serve_signin.html", error=True), status_code=401)
    key_id = text.removeprefix("p402_").split("_", 1)[0]
    session = open_session(service.ledger, tenant, key_id, now_us=micros(datetime.now(UTC)))
    response = RedirectResponse("/", status_code=303, headers=_PRIVATE)
    response.set_cookie(
        COOKIE, session, max_age=SESSION_SECONDS, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.post("/signout", include_in_schema=False)
def signout(request: Request) -> Response:
    if not same_origin(request):
        return _cross_site()
    session = session_of(request)
    if session is not None:
        end_session(service_of(request).ledger, session)  # the cookie is worthless from now on
    response = RedirectResponse("/", status_code=303, headers=_PRIVATE)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response


def _cross_site() -> Response:
    """A form post from another site: refused, changing nothing."""
    return HTMLResponse(
        "<p>Refused: this form was posted from another site.</p>", status_code=403,
        headers=_PRIVATE,
    )  # fmt: skip


_PRIVATE = {"Cache-Control": "no-store"}
"""A tenant's pages and reports must not linger in a shared browser's or proxy's cache."""
_XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _render(template: str, **values: Any) -> str:
    from p402.reporting.templates import environment

    return environment().get_template(template).render(version=__version__, **values)


def _audit_json(job: AuditJob) -> dict[str, Any]:
    found: dict[str, Any] = {
        "audit_id": job.audit_id,
        "period": job.period,
        "status": job.status,
        "requested_at": format_time(job.requested_at),
        "finished_at": None if job.finished_at is None else format_time(job.finished_at),
    }
    if job.status == "done":
        found["downloads"] = {what: f"/v1/audits/{job.audit_id}/{what}" for what in _DOWNLOADS}
        found["_bundle"] = job.bundle
    if job.error:
        found["error"] = job.error
    return found


def _audits(service: Service, tenant: str) -> list[dict[str, Any]]:
    return [_public(_audit_json(job)) for job in list_jobs(service.ledger, tenant)]


def _public(found: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in found.items() if not key.startswith("_")}


def _audit(service: Service, tenant: str, audit_id: str) -> dict[str, Any]:
    job = get_job(service.ledger, tenant, audit_id)
    if job is None:
        # The same answer whether the audit does not exist or is another tenant's.
        raise NotFound(f"no audit {audit_id}")
    return _audit_json(job)


def _run_audit(service: Service, tenant: str, audit_id: str, window: Period) -> None:
    from p402.audit import run_audit
    from p402.bundles.signing import load_signing_key

    start_job(service.ledger, audit_id)
    try:
        assert service.signing_key is not None
        folder = service.data_dir / "audits" / tenant / audit_id
        result = run_audit(
            service.ledger,
            tenant=tenant,
            period=window,
            key=load_signing_key(service.signing_key),
            out_dir=folder,
            config=service.config,
        )
    except Exception as exc:  # the audit's row must say it failed, whatever failed
        message = (
            exc.one_line() if isinstance(exc, P402Error) else f"{exc.__class__.__name__}: {exc}"
        )
        fail_job(service.ledger, audit_id, message)
        return
    finish_job(service.ledger, audit_id, folder=str(folder), bundle=str(result.bundle))
