"""Shared fixtures: a ledger on every supported store, a small fixed ledger, keys, a bundle.

PostgreSQL tests run against ``P402_TEST_POSTGRES_URL`` (CI sets it, and sets
``P402_REQUIRE_POSTGRES=1`` so a missing server fails the run instead of skipping), each test
in a schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from p402.audit import AuditResult, run_audit
from p402.bundles.signing import SigningKey, create_keys
from p402.ledger.events import Event
from p402.ledger.store import Ledger
from p402.period import Period, parse_period

# Speed is measured by benchmarks/, never asserted in tests: no deadlines, no "too slow" checks
# (a 2-core CI machine is busy). Under CI the examples are derandomized, so a run reproduces.
settings.register_profile(
    "p402",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
)
settings.load_profile("p402")

POSTGRES_URL = os.environ.get("P402_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("P402_REQUIRE_POSTGRES") == "1"
STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _postgres_ledger() -> Iterator[Ledger]:
    for url in postgres_schema_url():
        ledger = Ledger.open(url)
        try:
            yield ledger
        finally:
            ledger.close()


def postgres_schema_url() -> Iterator[str]:
    """The URL of a PostgreSQL schema of its own, dropped afterwards (skipped without a server,
    unless P402_REQUIRE_POSTGRES): what a test gives ``--db`` or ``Ledger.open``."""
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("P402_REQUIRE_POSTGRES=1 but P402_TEST_POSTGRES_URL is not set")
        pytest.skip("P402_TEST_POSTGRES_URL is not set")
    import sqlalchemy

    schema = f"p402_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    try:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=STORES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ledger's ``--db`` for a process under test: a SQLite file, or a PostgreSQL schema of
    its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
    else:
        yield from postgres_schema_url()


@pytest.fixture(params=STORES)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """An empty ledger on SQLite, then on PostgreSQL."""
    if request.param == "postgres":
        yield from _postgres_ledger()
        return
    store = Ledger.open(str(tmp_path / "ledger.db"))
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[Ledger]:
    """An empty SQLite ledger, for tests about what happens on top of any store."""
    store = Ledger.open(str(tmp_path / "ledger.db"))
    try:
        yield store
    finally:
        store.close()


PERIOD = parse_period("2026-10")
TENANT = "acme"


def small_events(tenant: str = TENANT) -> list[Event]:
    """A small fixed ledger with every kind of row a report must handle: reported and computed
    costs, an unpriced model, unattributed spend, sub-cent amounts whose rounding must be
    allocated, a flagged and a denied call, an error."""
    base = datetime(2026, 10, 1, 9, tzinfo=UTC)
    departments = ["Engineering", "Support", "Sales", None]
    customers = ["Globex", None, "Initech", None, "Umbrella"]
    items = []
    for n in range(23):
        items.append(
            Event(
                event_id=f"evt-{n:03d}",
                tenant=tenant,
                occurred_at=base + timedelta(hours=7 * n, microseconds=n * 1000),
                provider=["openai", "anthropic", "google"][n % 3],
                model=["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"][n % 3],
                operation="chat",
                input_tokens=1000 + 137 * n,
                cache_read_tokens=200 * (n % 4),
                output_tokens=50 + 11 * n,
                reasoning_tokens=0,
                cost=Decimal("0.001234567891") * (n + 1),
                cost_source="provider",
                department=departments[n % 4],
                customer=customers[n % 5],
                workflow=["triage", "rag-search", "drafts"][n % 3] if n % 7 else None,
                owner="owner@acme.example" if n % 4 != 3 else None,
                policy_decision="flag" if n == 5 else "deny" if n == 9 else "allow",
                outcome="error" if n == 11 else "success",
            )
        )
    items.append(
        Event(
            event_id="evt-unpriced",
            tenant=tenant,
            occurred_at=base + timedelta(days=20),
            provider="openai",
            model="in-house-finetune-7",
            input_tokens=5000,
            output_tokens=100,
            department="Engineering",
        )
    )
    return items


@pytest.fixture
def signing_key(tmp_path: Path) -> SigningKey:
    """A fresh key pair written under tmp_path/keys."""
    return create_keys(tmp_path / "keys")[2]


@pytest.fixture
def small_bundle(tmp_path: Path, sqlite_ledger: Ledger, signing_key: SigningKey) -> AuditResult:
    """The audit bundle of the small fixed ledger."""
    sqlite_ledger.add(small_events())
    return run_audit(
        sqlite_ledger, tenant=TENANT, period=PERIOD, key=signing_key, out_dir=tmp_path / "out"
    )


def period() -> Period:
    """The period of the small ledger."""
    return PERIOD
