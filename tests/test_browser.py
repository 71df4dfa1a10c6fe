"""The HTML page of ``p402 serve`` in a real headless browser: Debian's chromium, driven by
Playwright, against the real app served by uvicorn over a SQLite ledger.

A controller signs in with a key, sees the tenant's audits and downloads the PDF, the XLSX and
the signed bundle; a session id (never the key) lives in an HttpOnly cookie; another tenant sees
none of it.
Chromium is Debian's (``.ci/browser`` installs it); Playwright's own browsers are never
downloaded. Without ``/usr/bin/chromium`` the module is skipped, unless
``P402_REQUIRE_BROWSER=1`` (CI), which makes a missing browser a failure.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from p402.bundles.layout import PDF, XLSX
from p402.bundles.signing import create_keys
from p402.ledger.store import Ledger
from p402.ledger.tenants import create_api_key, create_tenant
from p402.serve.app import create_app
from p402.serve.service import Service
from tests.conftest import small_events

pytestmark = pytest.mark.slow  # a real server, browser or fuzzing run: not in make test-fast

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    if os.environ.get("P402_REQUIRE_BROWSER") == "1":
        pytest.fail(
            f"P402_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (run .ci/browser)", pytrace=False
        )
    pytest.skip(
        f"{CHROMIUM} is missing: apt-get install chromium (or run .ci/browser)",
        allow_module_level=True,
    )

TENANT_A, TENANT_B = "acme", "umbrella"
DOWNLOADS = {"pdf": "PDF report", "xlsx": "XLSX workbook", "bundle": "Evidence bundle (zip)"}


@dataclass(frozen=True, slots=True)
class Served:
    """The running app: its address and a key per tenant."""

    url: str
    keys: dict[str, str]


@dataclass(frozen=True, slots=True)
class Site:
    """The running app once tenant A's audit is built."""

    url: str
    keys: dict[str, str]
    audit_id: str


def _free_socket() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    return listener


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Tenants A and B with a key each, A's October events, and the app on a free port."""
    base = tmp_path_factory.mktemp("browser")
    ledger = Ledger.open(str(base / "ledger.db"))
    private, _, _ = create_keys(base / "keys")
    service = Service(ledger, data_dir=base / "data", signing_key=private)
    keys = {}
    for tenant in (TENANT_A, TENANT_B):
        create_tenant(ledger, tenant)
        keys[tenant] = create_api_key(ledger, tenant)[1]
    ledger.add(small_events(TENANT_A))
    listener = _free_socket()
    host, port = listener.getsockname()
    config = uvicorn.Config(
        create_app(service), log_level="warning", http="h11", ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    # Server.run installs no signal handlers off the main thread; should_exit stops it.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield Served(f"http://{host}:{port}", keys)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


@pytest.fixture(scope="module")
def site(served: Served) -> Site:
    """The served app once tenant A's October audit is built over the API."""
    headers = {"X-P402-Key": served.keys[TENANT_A]}
    with httpx.Client(base_url=served.url, headers=headers, timeout=30) as client:
        requested = client.post("/v1/audits", params={"period": "2026-10"})
        assert requested.status_code == 202, requested.text
        audit_id = requested.json()["audit_id"]
        for _ in range(1200):
            found = client.get(f"/v1/audits/{audit_id}").json()
            if found["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert found["status"] == "done", found
    return Site(served.url, served.keys, audit_id)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile: no cookies."""
    fresh = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 700})
    try:
        yield fresh
    finally:
        fresh.close()


def _sign_in(page: Page, site: Site, key: str) -> None:
    page.goto(f"{site.url}/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def _download(page: Page, link: str, suffix: str) -> bytes:
    """Click a download link; the file the browser saved, which must be named ``*suffix``."""
    with page.expect_download() as started:
        page.get_by_role("link", name=link).click()
    download = started.value
    assert download.suggested_filename.endswith(suffix), download.suggested_filename
    return Path(download.path()).read_bytes()


def test_a_wrong_key_is_refused_with_a_message(
    context: BrowserContext, site: Site, tmp_path: Path
) -> None:
    page = context.new_page()
    page.goto(f"{site.url}/")
    expect(page).to_have_title("Sign in · p402")
    expect(page.get_by_role("alert")).to_have_count(0)
    _sign_in(page, site, "p402_0000000000000000_not-a-key")
    expect(page.get_by_role("alert")).to_have_text("That key is not valid, or it was revoked.")
    page.screenshot(path=tmp_path / "signin-refused.png", full_page=True)
    expect(page.get_by_label("API key")).to_be_visible()
    assert not [cookie for cookie in context.cookies() if cookie["name"] == "p402_session"]


def test_a_signed_in_tenant_lists_and_downloads_its_audit(
    context: BrowserContext, site: Site, tmp_path: Path
) -> None:
    page = context.new_page()
    _sign_in(page, site, site.keys[TENANT_A])
    expect(page.get_by_role("heading", name=f"Audits of {TENANT_A}")).to_be_visible()
    row = page.locator(f'tr[data-audit="{site.audit_id}"]')
    expect(row.locator("td").nth(0)).to_have_text("2026-10")
    expect(row.locator("td").nth(1)).to_have_text("done")
    expect(row.get_by_role("link")).to_have_count(3)
    for what, name in DOWNLOADS.items():
        expect(row.get_by_role("link", name=name)).to_have_attribute(
            "href", f"/v1/audits/{site.audit_id}/{what}"
        )
    page.screenshot(path=tmp_path / "audits.png", full_page=True)

    assert _download(page, DOWNLOADS["pdf"], ".pdf").startswith(b"%PDF-")
    workbook = zipfile.ZipFile(io.BytesIO(_download(page, DOWNLOADS["xlsx"], ".xlsx")))
    assert workbook.testzip() is None
    assert "xl/workbook.xml" in workbook.namelist()
    bundle = zipfile.ZipFile(io.BytesIO(_download(page, DOWNLOADS["bundle"], ".zip")))
    assert bundle.testzip() is None
    assert {PDF, XLSX} <= set(bundle.namelist())

    (cookie,) = [cookie for cookie in context.cookies() if cookie["name"] == "p402_session"]
    assert cookie["value"] and cookie["value"] not in site.keys[TENANT_A]  # a session, not the key
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert "p402_session" not in page.evaluate("document.cookie")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert not [cookie for cookie in context.cookies() if cookie["name"] == "p402_session"]


def test_another_tenant_sees_nothing_of_the_audit(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    _sign_in(page, site, site.keys[TENANT_B])
    expect(page.get_by_role("heading", name=f"Audits of {TENANT_B}")).to_be_visible()
    expect(page.get_by_text("No audits yet.")).to_be_visible()
    assert site.audit_id not in page.content()
    for what in DOWNLOADS:
        answer = page.goto(f"{site.url}/v1/audits/{site.audit_id}/{what}")
        assert answer is not None
        assert answer.status == 404
        # "no audit <id>": the answer an id that never existed gets, not a refused route.
        assert f"no audit {site.audit_id}" in answer.text()
