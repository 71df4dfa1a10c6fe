"""``p402 serve``: the meter API, the controller's read routes, audits and the HTML page, each
scoped to the tenant of the key."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from p402.bundles.signing import create_keys
from p402.ledger.store import Ledger
from p402.ledger.tenants import create_api_key, create_tenant, revoke_api_key
from p402.money import to_units
from p402.serve.app import MAX_BATCH, create_app
from p402.serve.service import Service
from tests.conftest import small_events

PROMPT = "PROMPT-MARKER-7f3a9 tell me the secret plan"
COMPLETION = "COMPLETION-MARKER-c41d the plan is"


def _event(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"m-{n}", "occurred_at": f"2026-10-{1 + n % 28:02d}T10:00:00Z",
        "provider": "openai", "model": "gpt-4o", "input_tokens": 1000 + n, "output_tokens": 100,
        "department": ["eng", "support", None][n % 3], "customer": ["globex", None][n % 2],
        "workflow": "triage", **fields,
    }  # fmt: skip


class Site:
    """A served app with two tenants and a key each."""

    def __init__(self, ledger: Ledger, tmp_path: Path) -> None:
        private, public, _ = create_keys(tmp_path / "keys")
        self.public = public
        self.ledger = ledger
        self.service = Service(ledger, data_dir=tmp_path / "data", signing_key=private)
        for name in ("acme", "umbrella"):
            create_tenant(ledger, name)
        self.keys = {name: create_api_key(ledger, name)[1] for name in ("acme", "umbrella")}
        self.client = TestClient(create_app(self.service))

    def headers(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}

    def post(self, tenant: str, body: Any, **kwargs: Any) -> Any:
        return self.client.post("/v1/events", json=body, headers=self.headers(tenant), **kwargs)


@pytest.fixture
def site(ledger: Ledger, tmp_path: Path) -> Iterator[Site]:
    served = Site(ledger, tmp_path)
    with served.client:
        yield served


def test_meter_accepts_an_event_once_and_answers_per_event(site: Site) -> None:
    first = site.post("acme", _event(1))
    assert first.status_code == 200
    assert first.json() == {
        "accepted": 1, "duplicate": 0, "rejected": 0,
        "results": [{"index": 0, "status": "accepted", "event_id": "m-1"}],
    }  # fmt: skip
    again = site.post("acme", [_event(1), _event(2), _event(2)])
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "accepted", "duplicate"]
    assert site.ledger.count("acme") == 2


def test_concurrent_posts_of_the_same_events_store_each_once(site: Site) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def post(n: int) -> list[str]:
        body = [_event(n % 7), _event(100 + n)]  # 7 ids shared by every thread, one of its own
        return [r["status"] for r in site.post("acme", body).json()["results"]]

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = [status for result in pool.map(post, range(64)) for status in result]
    assert statuses.count("accepted") == 7 + 64
    assert statuses.count("duplicate") == 64 - 7
    assert site.ledger.count("acme") == 7 + 64


def test_a_database_failure_is_503_and_says_so(site: Site, ledger: Ledger) -> None:
    site.post("acme", _event(1))  # the writer is running
    ledger.engine.dispose()
    from sqlalchemy import text

    with ledger.engine.begin() as connection:
        connection.execute(text("DROP TABLE events"))
    answer = site.post("acme", _event(2))
    assert answer.status_code == 503
    assert "could not be written" in answer.json()["error"]["message"]


def test_a_batch_stores_the_good_events_and_names_the_bad_fields(site: Site) -> None:
    bad = _event(3, input_tokens=-5)
    answer = site.post(
        "acme", [_event(1), bad, "not an object", _event(2, occurred_at="yesterday")]
    )
    assert answer.status_code == 207
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (1, 3)
    results = body["results"]
    assert results[1]["event_id"] == "m-3"
    assert results[1]["problems"][0]["field"] == "input_tokens"
    assert results[2]["problems"] == [{"field": None, "message": "not a JSON object"}]
    assert results[3]["problems"][0]["field"] == "occurred_at"
    assert site.ledger.count("acme") == 1


def test_a_meter_client_cannot_set_p402s_own_tags(site: Site) -> None:
    answer = site.post("acme", [
        _event(1, tags={"p402.usage": "missing"}), _event(2, **{"tag.p402.response_id": "x"}),
        _event(3, tags={"env": "prod"}),
    ])  # fmt: skip
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "accepted"]
    assert results[0]["problems"][0]["field"] == "tags.p402.usage"
    assert results[1]["problems"][0]["field"] == "tags.p402.response_id"
    assert site.ledger.count("acme") == 1


def test_every_event_rejected_is_422(site: Site) -> None:
    assert site.post("acme", [_event(1, provider="")]).status_code == 422


def test_json_lines_body(site: Site) -> None:
    body = b"".join(orjson.dumps(_event(n)) + b"\n" for n in range(5))
    answer = site.client.post(
        "/v1/events", content=body,
        headers={**site.headers("acme"), "Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert answer.json()["accepted"] == 5


def test_a_bad_json_lines_line_is_rejected_by_its_own_number_and_the_rest_kept(
    site: Site,
) -> None:
    lines = [orjson.dumps(_event(1)), b"", b'{"event_id": "cut', orjson.dumps(_event(2))]
    answer = site.client.post(
        "/v1/events", content=b"\n".join(lines) + b"\n",
        headers={**site.headers("acme"), "Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert answer.status_code == 207
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    (problem,) = body["results"][1]["problems"]
    assert problem["message"].startswith("line 3: not JSON")
    assert site.ledger.count("acme") == 2


def test_a_gzip_body_is_inflated_and_a_bomb_or_an_unknown_encoding_refused(site: Site) -> None:
    import gzip

    def post(content: bytes, encoding: str) -> Any:
        return site.client.post(
            "/v1/events", content=content,
            headers={**site.headers("acme"), "Content-Encoding": encoding,
                     "Content-Type": "application/json"},
        )  # fmt: skip

    events = orjson.dumps([_event(1), _event(2)])
    assert post(gzip.compress(events), "gzip").json()["accepted"] == 2
    import zlib

    assert post(zlib.compress(orjson.dumps(_event(3))), "deflate").json()["accepted"] == 1
    bomb = gzip.compress(b" " * (65 * 1024 * 1024))  # inflates past the 64 MB limit
    assert post(bomb, "gzip").status_code == 413
    refused = post(events, "br")
    assert refused.status_code == 400 and "'br' is not supported" in refused.text
    broken = post(events, "gzip")
    assert broken.status_code == 400 and "not" in broken.json()["error"]["message"]
    assert post(gzip.compress(events)[:-12], "gzip").status_code == 400  # cut short
    assert site.ledger.count("acme") == 3


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 400), (b"{not json", 400), (b"[" + b"{}," * MAX_BATCH + b"{}]", 413)],
)
def test_malformed_and_oversized_bodies_store_nothing(site: Site, body: bytes, status: int) -> None:
    answer = site.client.post(
        "/v1/events", content=body,
        headers={**site.headers("acme"), "Content-Type": "application/json"},
    )  # fmt: skip
    assert answer.status_code == status
    assert set(answer.json()["error"]) == {"message", "type", "code"}
    assert site.ledger.count("acme") == 0


def test_content_is_dropped_before_storage(site: Site, ledger: Ledger, tmp_path: Path) -> None:
    answer = site.post(
        "acme",
        _event(1, prompt=PROMPT, messages=[{"role": "user", "content": PROMPT}],
               completion=COMPLETION, response_body=COMPLETION),
    )  # fmt: skip
    assert answer.json()["accepted"] == 1
    stored = [item.to_json() for item in ledger.stream("acme")]
    assert PROMPT not in repr(stored) and COMPLETION not in repr(stored)
    if ledger.dialect == "sqlite":
        ledger.close()
        for path in tmp_path.glob("ledger.db*"):
            data = path.read_bytes()
            assert b"PROMPT-MARKER" not in data and b"COMPLETION-MARKER" not in data


def test_an_event_for_another_tenant_is_refused(site: Site) -> None:
    answer = site.post("umbrella", _event(1, tenant="acme"))
    assert answer.json()["results"][0]["problems"][0]["field"] == "tenant"
    assert site.ledger.count("acme") == 0


def test_meter_prices_and_keeps_the_basis(site: Site) -> None:
    site.post("acme", _event(1))
    (stored,) = site.ledger.stream("acme")
    assert stored.cost is not None and stored.cost > 0
    assert stored.cost_source == "price_table" and stored.price_ref
    assert stored.source == "meter" and stored.evidence_status == "reported"


# --- keys ---------------------------------------------------------------------------------


def _concrete(path: str) -> str:
    return path.replace("{audit_id}", "0123456789abcdef").replace("{what}", "pdf")


def _operations(site: Site) -> list[tuple[str, str]]:
    """Every operation the OpenAPI document publishes (the proxy's included): all need a key.
    The routes left out of it are the health check and the sign-in page's form."""
    spec = site.client.get("/openapi.json").json()
    found = [(method.upper(), path) for path, item in spec["paths"].items() for method in item]
    assert len(found) >= 6
    return found


@pytest.mark.parametrize("credential", [None, "Bearer p402_nope", "Bearer sk-provider-key"])
def test_every_route_needs_a_valid_key(site: Site, credential: str | None) -> None:
    headers = {} if credential is None else {"Authorization": credential}
    for method, path in _operations(site):
        answer = site.client.request(method, _concrete(path), headers=headers, json=[])
        assert answer.status_code == 401, (method, path, answer.status_code)


@pytest.mark.slow
def test_no_route_shows_or_changes_another_tenants_data(site: Site, ledger: Ledger) -> None:
    """Tenant acme has events, an audit and a purge-free history; umbrella's key then calls every
    operation of the OpenAPI document but the proxy's (tests/test_proxy.py isolates those), with
    acme's ids wherever a path takes one. Nothing of acme may come back, and acme's rows must
    be exactly as they were."""
    from p402.ledger.tenants import tenant_row_counts

    marked = [e.evolve(department="ACME-SECRET-DEPT") for e in small_events("acme")]
    ledger.add(marked)
    audit_id = site.client.post("/v1/audits?period=2026-10", headers=site.headers("acme")).json()[
        "audit_id"
    ]
    assert _wait(site, "acme", audit_id)["status"] == "done"
    before = tenant_row_counts(ledger, "acme")
    secrets_of_acme = [b"ACME-SECRET-DEPT", b"acme"]
    for method, path in _operations(site):
        if path.startswith(("/v1/chat", "/v1/responses", "/v1/embeddings", "/v1/messages")):
            continue
        concrete = path.replace("{audit_id}", audit_id).replace("{what}", "bundle")
        query = "?period=2026-10" if "summary" in path or method == "POST" else ""
        # acme's event id, posted by umbrella: umbrella's own event (a "duplicate" would tell
        # umbrella that acme has that id).
        body = [{"event_id": "evt-001", "occurred_at": "2026-10-01T09:00:00Z",
                 "provider": "openai", "model": "gpt-4o"}]  # fmt: skip
        answer = site.client.request(
            method, concrete + query, headers=site.headers("umbrella"), json=body
        )
        for secret in secrets_of_acme:
            assert secret not in answer.content, (method, path, secret)
        if path == "/v1/events":
            assert answer.json()["accepted"] == 1
        if "{audit_id}" in path:  # the answer for an id that does not exist, word for word
            assert answer.status_code == 404
            error = {
                "message": f"no audit {audit_id}",
                "type": "not_found_error",
                "code": "not_found",
            }
            assert answer.json() == {"error": error}
        if path == "/v1/audits" and method == "GET":
            assert audit_id.encode() not in answer.content
    if (audit := site.service.data_dir / "audits" / "umbrella").exists():
        assert all("acme" not in path.name for path in audit.rglob("*"))
    assert tenant_row_counts(ledger, "acme") == before


def test_a_revoked_key_stops_working(site: Site) -> None:
    assert site.client.get("/v1/audits", headers=site.headers("acme")).status_code == 200
    key_id = site.keys["acme"].split("_")[1]
    revoke_api_key(site.ledger, "acme", key_id)
    site.service.forget_keys()
    assert site.client.get("/v1/audits", headers=site.headers("acme")).status_code == 401


def test_the_key_may_come_as_x_p402_key_or_x_api_key(site: Site) -> None:
    for header in ("X-P402-Key", "x-api-key"):
        answer = site.client.get("/v1/audits", headers={header: site.keys["acme"]})
        assert answer.status_code == 200


# --- read routes ----------------------------------------------------------------------------


def test_summary_ties_out_across_every_view(site: Site, ledger: Ledger) -> None:
    ledger.add(small_events("acme"))
    body = site.client.get("/v1/summary?period=2026-10", headers=site.headers("acme")).json()
    exact = sum(to_units(e.cost) for e in small_events("acme") if e.cost is not None)
    assert to_units(Decimal(body["total"]["cost"])) == exact
    total = Decimal(body["total"]["cost_rounded"])
    for dimension in ("department", "customer", "workflow", "provider"):
        rows = body[f"by_{dimension}"]
        assert sum(Decimal(r["cost_rounded"]) for r in rows) == total
        assert sum(r["events"] for r in rows) == body["total"]["events"] == 24
    assert body["total"]["unpriced_events"] == 1


def test_summary_sums_costs_past_int64_exactly(site: Site, ledger: Ledger) -> None:
    """Two events of the largest cost allowed overflow SQLite's SUM in 64-bit integers."""
    from dataclasses import replace

    from p402.money import MAX_EVENT_COST

    base = small_events("acme")[0]
    ledger.add([
        replace(base, event_id="big-1", cost=MAX_EVENT_COST),
        replace(base, event_id="big-2", cost=MAX_EVENT_COST),
        replace(base, event_id="small", cost=Decimal("0.000000000001")),
    ])  # fmt: skip
    summary = site.client.get("/v1/summary?period=2026-10", headers=site.headers("acme"))
    assert summary.status_code == 200, summary.text
    assert Decimal(summary.json()["total"]["cost"]) == 2 * MAX_EVENT_COST + Decimal("1e-12")
    assert 2 * to_units(MAX_EVENT_COST) > 2**63  # the case this is about


def test_findings_are_the_command_s_and_only_the_tenant_s(site: Site, ledger: Ledger) -> None:
    from datetime import timedelta

    start = small_events("acme")[0].occurred_at
    days = [
        e.evolve(event_id=f"{e.tenant}-day-{n}", occurred_at=start + timedelta(days=n), cost=Decimal("20"),
                 department="Legal", workflow="contracts", customer=None)
        for n in range(31) for e in (small_events("acme")[0], small_events("umbrella")[0])
    ]  # fmt: skip
    spike = [
        days[42].evolve(event_id=f"acme-spike-{n}", cost=Decimal("30")) for n in range(3)
    ]  # acme, day 21
    ledger.add([*days, *spike])
    answer = site.client.get("/v1/findings?period=2026-10", headers=site.headers("acme"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["tenant"] == "acme" and body["period"] == "2026-10"
    (legal,) = [a for a in body["anomalies"] if a["dimension"] == "department"]
    assert legal["excess"] == "90.00" and all(i.startswith("acme-") for i in legal["event_ids"])
    other = site.client.get("/v1/findings?period=2026-10", headers=site.headers("umbrella")).json()
    assert other["anomalies"] == [] and other["tenant"] == "umbrella"
    assert site.client.get("/v1/findings?period=2026-10").status_code == 401
    assert (
        site.client.get("/v1/findings?period=2026-13", headers=site.headers("acme")).status_code
        == 400
    )
    # The calendar's edges (found by the OpenAPI fuzz): no period before year 1, none past 9999.
    for window in (
        "from=1000-01-01&to=2000-01-01",
        "from=0001-01-01&to=0001-01-31",
        "from=9999-12-01&to=9999-12-30",
    ):
        edge = site.client.get(f"/v1/findings?{window}", headers=site.headers("acme"))
        assert edge.status_code == 200, (window, edge.text)
    for window in (
        "from=9999-12-01&to=9999-12-31",
        "period=9999-12",
        "period=9999-Q4",
        "period=0000-01",
    ):
        edge = site.client.get(f"/v1/findings?{window}", headers=site.headers("acme"))
        assert edge.status_code == 400, (window, edge.text)


def test_summary_rejects_a_bad_period(site: Site) -> None:
    answer = site.client.get("/v1/summary?period=2026-13", headers=site.headers("acme"))
    assert answer.status_code == 400


def _wait(site: Site, tenant: str, audit_id: str) -> dict[str, Any]:
    for _ in range(600):
        found: dict[str, Any] = site.client.get(
            f"/v1/audits/{audit_id}", headers=site.headers(tenant)
        ).json()
        if found["status"] in ("done", "failed"):
            return found
        time.sleep(0.1)
    raise AssertionError("the audit did not finish")


@pytest.mark.slow
def test_an_audit_requested_over_the_api_is_built_and_downloadable(
    site: Site, ledger: Ledger
) -> None:
    from p402.bundles.signing import load_public_key
    from p402.bundles.verify import verify_bundle

    ledger.add(small_events("acme"))
    requested = site.client.post("/v1/audits?period=2026-10", headers=site.headers("acme"))
    assert requested.status_code == 202
    done = _wait(site, "acme", requested.json()["audit_id"])
    assert done["status"] == "done", done
    # No answer names where the server keeps the bundle.
    assert str(site.service.data_dir) not in orjson.dumps(done).decode()
    assert not any(key.startswith("_") for key in done)
    bundle = site.client.get(done["downloads"]["bundle"], headers=site.headers("acme"))
    assert bundle.headers["content-type"] == "application/zip"
    path = site.service.data_dir / "downloaded.zip"
    path.write_bytes(bundle.content)
    manifest = verify_bundle(path, [load_public_key(site.public)]).manifest
    assert manifest is not None and manifest["events"]["count"] == 24
    pdf = site.client.get(done["downloads"]["pdf"], headers=site.headers("acme"))
    assert pdf.content.startswith(b"%PDF-")
    xlsx = site.client.get(done["downloads"]["xlsx"], headers=site.headers("acme"))
    assert zipfile.ZipFile(io.BytesIO(xlsx.content)).testzip() is None
    listed = site.client.get("/v1/audits", headers=site.headers("acme")).json()["audits"]
    assert [a["audit_id"] for a in listed] == [done["audit_id"]]

    # The other tenant sees none of it, by any route.
    other = site.headers("umbrella")
    assert site.client.get("/v1/audits", headers=other).json() == {"audits": []}
    for suffix in ("", "/bundle", "/pdf", "/xlsx"):
        answer = site.client.get(f"/v1/audits/{done['audit_id']}{suffix}", headers=other)
        assert answer.status_code == 404
    summary = site.client.get("/v1/summary?period=2026-10", headers=other).json()
    assert summary["total"]["events"] == 0
    site.client.post("/signin", data={"key": site.keys["umbrella"]})
    page = site.client.get("/")
    assert "Audits of umbrella" in page.text
    assert done["audit_id"] not in page.text


def test_p402s_own_answers_carry_the_page_headers_and_the_proxys_do_not(site: Site) -> None:
    for path, headers in (("/", {}), ("/v1/audits", site.headers("acme")), ("/healthz", {})):
        answer = site.client.get(path, headers=headers)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path
    proxied = site.client.post("/v1/chat/completions", json={}, headers=site.headers("acme"))
    assert "x-frame-options" not in proxied.headers


def test_audits_left_unfinished_by_a_killed_server_are_marked_failed(ledger: Ledger) -> None:
    from p402.ledger.audit_jobs import ABANDONED, abandon_jobs, create_job, get_job, start_job

    create_tenant(ledger, "acme")
    running, queued = create_job(ledger, "acme", "2026-10"), create_job(ledger, "acme", "2026-11")
    start_job(ledger, running.audit_id)
    assert abandon_jobs(ledger) == 2
    for job in (running, queued):
        found = get_job(ledger, "acme", job.audit_id)
        assert found is not None and (found.status, found.error) == ("failed", ABANDONED)
    assert abandon_jobs(ledger) == 0


def test_an_audit_of_a_server_without_a_key_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    create_tenant(ledger, "acme")
    key = create_api_key(ledger, "acme")[1]
    client = TestClient(create_app(Service(ledger, data_dir=tmp_path)))
    answer = client.post("/v1/audits?period=2026-10", headers={"X-P402-Key": key})
    assert answer.status_code == 503


def test_the_page_signs_in_with_a_key_and_out(site: Site) -> None:
    assert 'name="key"' in site.client.get("/").text
    refused = site.client.post("/signin", data={"key": "p402_wrong"})
    assert refused.status_code == 401 and "not valid" in refused.text
    signed = site.client.post("/signin", data={"key": site.keys["acme"]}, follow_redirects=False)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    session = site.client.cookies["p402_session"]
    assert session and site.keys["acme"] not in signed.headers["set-cookie"]  # never the key
    listing = site.client.get("/")
    assert "Audits of acme" in listing.text and listing.headers["cache-control"] == "no-store"
    site.client.post("/signout")
    assert 'name="key"' in site.client.get("/").text
    # Signing out ended the session itself: a copy of the cookie is worth nothing.
    site.client.cookies.set("p402_session", session)
    assert 'name="key"' in site.client.get("/").text
    assert site.client.get("/v1/audits/x/pdf").status_code == 401


def test_the_page_refuses_form_posts_from_another_site(site: Site) -> None:
    """Sign-in and sign-out accepted cross-site form posts (login CSRF, forced sign-out)."""
    key = {"key": site.keys["acme"]}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}, {"Sec-Fetch-Site": "same-site"}):  # fmt: skip
        refused = site.client.post("/signin", data=key, headers=headers, follow_redirects=False)
        assert refused.status_code == 403 and "set-cookie" not in refused.headers, headers
    own = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert (
        site.client.post("/signin", data=key, headers=own, follow_redirects=False).status_code
        == 303
    )
    forced = site.client.post("/signout", headers={"Origin": "https://evil.example"})
    assert forced.status_code == 403
    assert "Audits of acme" in site.client.get("/").text  # still signed in


def test_revoking_the_key_ends_its_sessions(site: Site) -> None:
    site.client.post("/signin", data={"key": site.keys["acme"]})
    assert "Audits of acme" in site.client.get("/").text
    key_id = site.keys["acme"].split("_")[1]
    revoke_api_key(site.ledger, "acme", key_id)
    assert 'name="key"' in site.client.get("/").text


def test_the_cookie_does_not_authorise_writes(site: Site) -> None:
    site.client.post("/signin", data={"key": site.keys["acme"]})
    assert site.client.cookies["p402_session"]
    assert site.client.post("/v1/events", json=_event(1)).status_code == 401
    assert site.client.post("/v1/audits?period=2026-10").status_code == 401


def test_openapi_is_published(site: Site) -> None:
    spec = site.client.get("/openapi.json").json()
    assert {"/v1/events", "/v1/summary", "/v1/audits"} <= set(spec["paths"])


# --- found by an independent review ---------------------------------------------------------


def test_a_cancelled_request_does_not_stop_the_writer(ledger: Ledger, tmp_path: Path) -> None:
    """A request cancelled while waiting for the commit (client gone, shutdown timeout) must
    neither lose its events nor kill the writer thread that every other request waits on."""
    import asyncio

    service = Service(ledger, data_dir=tmp_path)
    create_tenant(ledger, "acme")

    async def scenario() -> list[Any]:
        tasks = [
            asyncio.ensure_future(service.record_async("acme", [_event(n)], source="meter"))
            for n in range(40)
        ]
        await asyncio.sleep(0)
        for task in tasks[::4]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        # The writer is still alive: a later request is served.
        later = await asyncio.wait_for(
            service.record_async("acme", [_event(99)], source="meter"), timeout=30
        )
        return [*results, later]

    results = asyncio.run(scenario())
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) == 10
    assert results[-1][0].status == "accepted"
    # The cancelled requests' events were stored all the same (the writer serves in order).
    assert ledger.count("acme") == 41
    assert service.writer is not None
    service.writer.close()


def test_the_service_says_where_an_event_came_from_not_the_caller(site: Site) -> None:
    site.post("acme", _event(1, source="proxy", evidence_status="captured"))
    (stored,) = site.ledger.stream("acme")
    assert (stored.source, stored.evidence_status) == ("meter", "reported")


def test_a_revoked_key_stops_working_in_a_running_server_within_seconds(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revocation happens in another process (`p402 apikey revoke`): the server's memory of the
    key lapses after REMEMBER_SECONDS."""
    import p402.serve.service as service_module

    clock = [1_000.0]
    monkeypatch.setattr("p402.serve.service.time.monotonic", lambda: clock[0])
    assert site.post("acme", _event(1)).status_code == 200
    key_id = site.keys["acme"].split("_")[1]
    revoke_api_key(site.ledger, "acme", key_id)  # no forget_keys(): as from another process
    assert site.post("acme", _event(2)).status_code == 200  # still remembered
    clock[0] += service_module.REMEMBER_SECONDS + 0.1
    assert site.post("acme", _event(3)).status_code == 401


def test_an_oversized_body_is_refused_before_it_is_read(site: Site) -> None:
    from p402.serve.app import MAX_BODY

    answer = site.client.post(
        "/v1/events", content=b"[]",
        headers={**site.headers("acme"), "Content-Type": "application/json",
                 "Content-Length": str(MAX_BODY + 1)},
    )  # fmt: skip
    assert answer.status_code == 413


def test_the_page_renders_every_audit_state_with_the_reports_environment() -> None:
    """The page's templates share the report's Jinja environment: strict (an unknown name is an
    error, not a blank) and escaping; each state an audit can be in renders."""
    from jinja2 import StrictUndefined

    from p402.reporting.templates import environment
    from p402.serve.app import _render

    assert environment().undefined is StrictUndefined
    audits = [
        {"audit_id": "a1", "period": "2026-10", "status": "queued", "requested_at": "2026-11-01T00:00:00Z",
         "finished_at": None},
        {"audit_id": "a2", "period": "2026-09", "status": "failed", "requested_at": "2026-10-01T00:00:00Z",
         "finished_at": "2026-10-01T00:01:00Z", "error": "<script>alert(1)</script>"},
        {"audit_id": "a3", "period": "2026-08", "status": "done", "requested_at": "2026-09-01T00:00:00Z",
         "finished_at": "2026-09-01T00:01:00Z", "downloads": {"pdf": "/p", "xlsx": "/x", "bundle": "/b"}},
    ]  # fmt: skip
    page = _render("serve_audits.html", tenant="acme & co", audits=audits)
    assert "failed: &lt;script&gt;" in page and "<script>" not in page
    assert "acme &amp; co" in page and 'href="/p"' in page and "not ready" in page
    assert "That key is not valid" in _render("serve_signin.html", error=True)


def test_a_key_fixed_to_attribution_records_every_meter_event_with_it(site: Site) -> None:
    _, bound = create_api_key(site.ledger, "acme", attribution={"department": "Support"})
    headers = {"Authorization": f"Bearer {bound}"}
    answer = site.client.post(
        "/v1/events",
        json=[_event(1, department=None), _event(2, department="Support"),
              _event(3, department="Sales"), _event(4, department=7)],
        headers=headers,
    )  # fmt: skip
    assert answer.status_code == 207
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted", "rejected", "rejected"]
    assert results[2]["problems"] == [
        {"field": "department", "message": "this p402 key always records department 'Support'"}
    ]
    stored = {event.event_id: event.department for event in site.ledger.stream("acme")}
    assert stored == {"m-1": "Support", "m-2": "Support"}
    # The tenant's other keys are not bound.
    assert site.post("acme", _event(5, department="Sales")).json()["accepted"] == 1


def test_no_write_lands_after_the_tenant_is_deleted(site: Site) -> None:
    """A running server remembers a key for 10 s: before, it stored a deleted tenant's events
    for that long after "Nothing of it is left". The writer checks the tenant at commit."""
    import threading

    from p402.audit.lifecycle import delete_tenant
    from p402.ledger.tenants import tenant_row_counts

    assert site.post("acme", _event(1)).json()["accepted"] == 1  # the key is now remembered
    stop, answers = threading.Event(), []

    def keep_posting() -> None:
        n = 100
        while not stop.is_set():
            n += 1
            answers.append(site.post("acme", _event(n)).status_code)

    poster = threading.Thread(target=keep_posting)
    poster.start()
    try:
        time.sleep(0.2)
        deleted, _ = delete_tenant(site.ledger, "acme")
        assert deleted["events"] >= 1
        time.sleep(0.3)  # writes of the remembered key go on arriving
    finally:
        stop.set()
        poster.join()
    late = site.post("acme", _event(9_999))
    assert late.status_code == 401 and "deleted" in late.text  # not 503: nothing to retry
    assert not any(tenant_row_counts(site.ledger, "acme").values())
    assert site.ledger.count("acme") == 0
    assert 200 in answers and set(answers) <= {200, 401}
    assert site.post("umbrella", _event(1)).json()["accepted"] == 1  # the other tenant writes on


def test_retention_is_the_tenants_policy_not_the_meter_clients(ledger: Ledger) -> None:
    """Meter clients could set retention_until, keeping events past the tenant's retention or
    before their own occurred_at."""
    create_tenant(ledger, "strict", retention_days=30)
    create_tenant(ledger, "lenient", retention_days=30, client_retention=True)
    keys = {name: create_api_key(ledger, name)[1] for name in ("strict", "lenient")}
    with TestClient(create_app(Service(ledger))) as client:

        def post(tenant: str, until: str | None, n: int) -> dict[str, Any]:
            event = _event(n, occurred_at="2026-10-05T10:00:00Z")
            if until is not None:
                event["retention_until"] = until
            answer = client.post("/v1/events", json=event,
                                 headers={"Authorization": f"Bearer {keys[tenant]}"})  # fmt: skip
            result: dict[str, Any] = answer.json()["results"][0]
            return result

        for tenant in ("strict", "lenient"):
            early = post(tenant, "2026-10-04T00:00:00Z", 1)
            assert early["status"] == "rejected"
            assert early["problems"][0]["field"] == "retention_until"
            assert "before occurred_at" in early["problems"][0]["message"]
            late = post(tenant, "2027-01-01T00:00:00Z", 2)
            assert late["status"] == "rejected"
            assert (
                "beyond the tenant's retention of 30 days (until 2026-11-04T10:00:00Z)"
                in (late["problems"][0]["message"])
            )
            assert post(tenant, None, 3)["status"] == "accepted"  # the tenant's own: 30 days
        shorter = post("strict", "2026-10-10T00:00:00Z", 4)
        assert (
            shorter["status"] == "rejected"
            and "does not let clients" in (shorter["problems"][0]["message"])
        )
        assert post("lenient", "2026-10-10T00:00:00Z", 4)["status"] == "accepted"
    kept = {e.event_id: e.retention_until for e in ledger.stream("lenient")}
    assert {k: f"{v:%Y-%m-%d}" for k, v in kept.items() if v} == {
        "m-3": "2026-11-04", "m-4": "2026-10-10",
    }  # fmt: skip


def test_a_thirteenth_decimal_place_is_refused_not_rounded_away(site: Site) -> None:
    answer = site.post("acme", [
        _event(1, cost="0.0000000000001"), _event(2, cost="1.123456789012"),
        _event(3, cost="2.5000000000000"),
    ])  # fmt: skip
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted", "accepted"]
    assert results[0]["problems"] == [{
        "field": "cost",
        "message": "0.0000000000001 has more than 12 decimal places: send it rounded to 10^-12 USD",
    }]  # fmt: skip


def test_tokens_that_price_beyond_an_events_ceiling_name_the_cost(site: Site) -> None:
    answer = site.post("acme", _event(1, input_tokens=2**40, output_tokens=2**40))
    (problem,) = answer.json()["results"][0]["problems"]
    assert problem["field"] == "cost" and "beyond the" in problem["message"]
