"""Tenants, API keys, retention purges and deletion."""

from __future__ import annotations

import io
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy

from p402.audit import run_audit
from p402.audit.lifecycle import enforce_retention, entry_signature_valid, ledger_entries
from p402.bundles.signing import SigningKey, generate
from p402.ingest.pipeline import Pipeline
from p402.ledger.captures import Tally, add_counts
from p402.ledger.events import Event
from p402.ledger.imports import ImportRecord, record_imports
from p402.ledger.invoices import InvoiceLine
from p402.ledger.schema import (
    TENANT_TABLES,
    audits_table,
    budget_holds_table,
    budget_windows_table,
    metadata,
    sessions_table,
)
from p402.ledger.store import Ledger
from p402.ledger.tenants import (
    TenantError,
    authenticate,
    create_api_key,
    create_tenant,
    delete_tenant_rows,
    list_api_keys,
    revoke_api_key,
    tenant_row_counts,
)
from p402.money import to_units
from tests.conftest import PERIOD, small_events
from tests.test_cli import assert_one_line_error, run

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_tenant_ids_are_checked_and_unique(ledger: Ledger) -> None:
    create_tenant(ledger, "acme", name="Acme Corp", retention_days=30)
    with pytest.raises(TenantError, match="already exists"):
        create_tenant(ledger, "acme")
    for bad in ("", "Acme", "a b", "-x", "x" * 65, "a/b"):
        with pytest.raises(TenantError, match="not valid"):
            create_tenant(ledger, bad)


def test_keys_are_kept_as_hashes_shown_once_and_revocable(ledger: Ledger) -> None:
    create_tenant(ledger, "acme")
    with pytest.raises(TenantError, match="no tenant"):
        create_api_key(ledger, "nobody")
    key, text = create_api_key(ledger, "acme", label="backend")
    assert authenticate(ledger, text) == "acme"
    secret = text.rsplit("_", 1)[1]
    with ledger.engine.connect() as connection:
        dumped = repr(
            [list(row) for row in connection.execute(sqlalchemy.text("SELECT * FROM api_keys"))]
        )
    assert secret not in dumped and key.key_id in dumped
    for wrong in (text[:-1] + ("A" if text[-1] != "A" else "B"), "p402_x", "", text + "x"):
        assert authenticate(ledger, wrong) is None
    revoke_api_key(ledger, "acme", key.key_id)
    assert authenticate(ledger, text) is None
    assert list_api_keys(ledger, "acme")[0].revoked_at is not None
    with pytest.raises(TenantError):
        revoke_api_key(ledger, "acme", key.key_id)


def test_another_tenant_cannot_revoke_a_key(ledger: Ledger) -> None:
    create_tenant(ledger, "acme")
    create_tenant(ledger, "umbrella")
    key, text = create_api_key(ledger, "acme")
    with pytest.raises(TenantError):
        revoke_api_key(ledger, "umbrella", key.key_id)
    assert authenticate(ledger, text) == "acme"


def _aged(days_ago: int, n: int, tenant: str = "acme") -> Event:
    return Event(
        event_id=f"old-{days_ago}-{n}",
        tenant=tenant,
        occurred_at=NOW - timedelta(days=days_ago),
        provider="openai",
        model="gpt-4o",
        input_tokens=1000,
        output_tokens=10,
        cost=Decimal("0.010000000001") * (n + 1),
        cost_source="provider",
    )


def test_the_pipeline_stamps_retention_until(ledger: Ledger) -> None:
    pipeline = Pipeline(tenant="acme", source="meter", retention_days=30)
    raw = {
        "occurred_at": "2026-10-01T00:00:00Z",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 5,
    }
    item, problems, _ = pipeline.event(raw)
    assert not problems and item is not None
    assert item.retention_until == datetime(2026, 10, 31, tzinfo=UTC)


def test_retention_purges_expired_events_and_signs_what_it_removed(ledger: Ledger) -> None:
    create_tenant(ledger, "acme", retention_days=90)
    create_tenant(ledger, "umbrella", retention_days=1)
    old = [_aged(200, n) for n in range(3)] + [_aged(120, 7)]
    young = [_aged(10, n) for n in range(2)]
    stamped = _aged(5, 9).evolve(event_id="stamped", retention_until=NOW - timedelta(seconds=1))
    ledger.add([*old, *young, stamped, _aged(300, 0, tenant="umbrella").evolve(tenant="umbrella")])
    key = generate()
    purge = enforce_retention(ledger, "acme", key=key, now=NOW)
    gone = [*old, stamped]
    assert purge.count == len(gone)
    assert purge.cost_units == sum(to_units(e.cost) for e in gone if e.cost is not None)
    assert {e.event_id for e in ledger.stream("acme")} == {e.event_id for e in young}
    assert ledger.count("umbrella") == 1  # another tenant's purge is its own business
    assert purge.entry is not None
    events = purge.entry["events"]
    assert events["count"] == 5
    assert events["first_occurred_at"] == "2026-05-11T12:00:00Z"
    assert sum(m["count"] for m in purge.entry["by_month"]) == 5
    (stored,) = ledger_entries(ledger, "acme")
    assert stored["entry"] == purge.entry
    assert entry_signature_valid(stored, [key.public])
    assert not entry_signature_valid(stored, [generate().public])
    forged = {**stored, "entry": {**stored["entry"], "events": {**events, "count": 4}}}
    assert not entry_signature_valid(forged, [key.public])
    again = enforce_retention(ledger, "acme", key=key, now=NOW)
    assert again.count == 0 and again.entry is None
    assert len(ledger_entries(ledger, "acme")) == 1
    assert ledger_entries(ledger, "acme", since=NOW - timedelta(days=4), until=NOW) == []
    assert len(ledger_entries(ledger, "acme", since=NOW - timedelta(days=250), until=NOW)) == 1


def _every_table_row(ledger: Ledger) -> list[tuple[str, tuple[object, ...]]]:
    """Every row of every table, in a fixed order: PostgreSQL lists tables, and returns rows
    without ORDER BY, in whatever order its catalogue and heap hold them, which a DELETE
    elsewhere can change."""
    rows = []
    with ledger.engine.connect() as connection:
        for name in sqlalchemy.inspect(connection).get_table_names():
            table = sqlalchemy.Table(name, sqlalchemy.MetaData(), autoload_with=connection)
            for row in connection.execute(sqlalchemy.select(table)):
                rows.append((name, tuple(row)))
    return sorted(rows, key=repr)


def _fill(ledger: Ledger, tenant: str, key: SigningKey) -> None:
    create_tenant(ledger, tenant, name=f"{tenant} corp", retention_days=90)
    create_api_key(ledger, tenant, label=f"{tenant}-backend")
    ledger.add([e.evolve(event_id=f"{tenant}-{e.event_id}") for e in small_events(tenant)])
    ledger.add([_aged(400, 1, tenant).evolve(event_id=f"{tenant}-expired")])
    enforce_retention(ledger, tenant, key=key, now=NOW)
    with tempfile.TemporaryDirectory() as scratch:  # the audit appends to the tenant's log
        run_audit(ledger, tenant=tenant, period=PERIOD, key=key, out_dir=Path(scratch))
    line = InvoiceLine(
        tenant=tenant,
        line_id=f"{tenant}-line",
        provider="openai",
        start=NOW,
        end=NOW,
        amount=Decimal("12.34"),
        source="import:openai-costs",
    )
    with ledger.transaction() as connection:
        ledger.insert_invoice_lines(connection, [line])
        record_imports(
            connection,
            [ImportRecord(f"{tenant}-import", tenant, "events", "x.jsonl", 0, "0" * 64, NOW)],
        )
        captured = Tally()
        captured.received((tenant, "meter", 20_000), 1)
        captured.accepted((tenant, "meter", 20_000), small_events(tenant)[0])
        add_counts(connection, captured, 1)
        connection.execute(
            budget_windows_table.insert().values(
                tenant=tenant, budget="b", value="v", window_start_us=0, spent_units=1
            )
        )
        connection.execute(
            sessions_table.insert().values(
                session_sha256=f"{tenant:0<64}", tenant=tenant, key_id="k", created_at_us=1,
                expires_at_us=2,
            )
        )  # fmt: skip
        connection.execute(
            budget_holds_table.insert().values(
                hold_id=f"{tenant}-hold", tenant=tenant, budget="b", value="v",
                window_start_us=0, units=1, expires_at_us=1,
            )
        )  # fmt: skip
        connection.execute(
            audits_table.insert().values(
                audit_id=f"{tenant}-audit",
                tenant=tenant,
                period="2026-10",
                status="done",
                requested_at_us=1,
                folder=f"/x/{tenant}",
                bundle=f"/x/{tenant}.zip",
            )
        )


def test_deleting_a_tenant_leaves_nothing_of_it_in_any_table(ledger: Ledger) -> None:
    key = generate()
    _fill(ledger, "acme", key)
    _fill(ledger, "umbrella", key)
    counts = tenant_row_counts(ledger, "acme")
    assert all(counts.values()), counts  # every tenant table held rows of it
    assert {t.name for t in TENANT_TABLES} == set(metadata.tables) - {"p402_meta"}
    before_other = [row for row in _every_table_row(ledger) if "umbrella" in repr(row)]
    deleted = delete_tenant_rows(ledger, "acme")
    assert deleted == counts
    # Every value the tenant wrote starts with its id ("acme", "acme-evt-001", "acme corp", ...).
    left = [(name, row) for name, row in _every_table_row(ledger) if "'acme" in repr(row)]
    assert left == []
    assert [row for row in _every_table_row(ledger) if "umbrella" in repr(row)] == before_other


@pytest.mark.slow
def test_tenant_delete_command(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    ledger = Ledger.open(db)
    _fill(ledger, "acme", generate())
    ledger.close()
    assert_one_line_error(
        run("tenant", "delete", "acme", "--confirm", "acm", "--db", db), "does not match"
    )
    assert_one_line_error(
        run("tenant", "delete", "ghost", "--confirm", "ghost", "--db", db), "no rows"
    )
    audits = tmp_path / "p402-data" / "audits" / "acme" / "0123"  # as p402 serve leaves them
    audits.mkdir(parents=True)
    (audits / "p402-audit-acme-2026-10.zip").write_bytes(b"acme's ledger")
    done = run("tenant", "delete", "acme", "--confirm", "acme", "--db", db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Nothing of it is left" in done.stdout and "1 audit files" in done.stdout
    assert not (tmp_path / "p402-data" / "audits" / "acme").exists()
    with sqlite3.connect(db) as connection:
        connection.execute("VACUUM")
    data = b"".join(path.read_bytes() for path in tmp_path.glob("l.db*"))
    assert b"acme" not in data


@pytest.mark.slow
def test_tenant_and_key_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    made = run("tenant", "create", "acme", "--retention-days", "30", "--db", db)
    assert made.returncode == 0 and "kept 30 days" in made.stdout
    assert_one_line_error(run("tenant", "create", "acme", "--db", db), "already exists")
    assert_one_line_error(run("tenant", "create", "Bad Id", "--db", db), "not valid")
    key = run("apikey", "create", "--tenant", "acme", "--db", db)
    text = key.stdout.strip()
    assert text.startswith("p402_") and "not shown again" in key.stderr
    listed = run("apikey", "list", "--tenant", "acme", "--db", db).stdout
    assert text.split("_")[1] in listed and text.rsplit("_", 1)[1] not in listed
    assert_one_line_error(run("apikey", "create", "--tenant", "ghost", "--db", db), "no tenant")
    assert "acme" in run("tenant", "list", "--db", db).stdout


def test_retention_command_needs_a_key(tmp_path: Path) -> None:
    assert_one_line_error(run("retention", "enforce", "--db", str(tmp_path / "l.db")), "--key")


def test_an_audit_after_a_purge_carries_the_signed_entry(
    sqlite_ledger: Ledger, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    from p402.bundles.canonical import dumps, loads
    from p402.bundles.layout import ENTRIES, MANIFEST, PDF
    from p402.bundles.verify import verify_bundle
    from tests.test_bundle_tamper import read_members, resign, write_zip

    key = generate()
    create_tenant(sqlite_ledger, "acme", retention_days=40)
    sqlite_ledger.add(small_events())  # October 2026: 24 events, of which the first days expire
    purge = enforce_retention(
        sqlite_ledger, "acme", key=key, now=datetime(2026, 11, 15, tzinfo=UTC)
    )
    assert 0 < purge.count < 24 and purge.entry is not None
    result = run_audit(
        sqlite_ledger, tenant="acme", period=PERIOD, key=key, out_dir=tmp_path / "out"
    )
    assert verify_bundle(result.bundle, key.public).valid
    members = read_members(result.bundle.read_bytes())
    manifest = loads(members[MANIFEST])
    assert manifest["ledger_entries"] == {"file": ENTRIES, "count": 1}
    (line,) = members[ENTRIES].splitlines()
    assert loads(line)["entry"] == purge.entry
    assert manifest["events"]["count"] == 24 - purge.count
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(members[PDF])).pages)
    assert "removed under the retention policy" in text and purge.entry["entry_id"][:16] in text

    def forged(item: dict[str, object]) -> list[str]:
        bad = resign({**members, ENTRIES: dumps(item) + b"\n"}, key)
        return verify_bundle(write_zip(tmp_path / "forged.zip", bad.items()), key.public).problems

    shipped = loads(line)
    more = {
        **shipped,
        "entry": {**shipped["entry"], "events": {**shipped["entry"]["events"], "count": 1}},
    }
    assert forged(more) == [f"{ENTRIES}:1: the signature does not match the entry"]
    other = generate()
    from p402.bundles.entries import sign_entry

    assert forged(sign_entry(shipped["entry"], other)) == [
        f"{ENTRIES}:1: signed by key {other.public.key_id[:16]}, which is not trusted"
    ]
    assert forged(sign_entry({**shipped["entry"], "tenant": "umbrella"}, key)) == [
        f"{ENTRIES}:1: an entry of tenant 'umbrella'"
    ]


@pytest.mark.slow
def test_a_deletion_certificate_is_signed_and_checks_offline(tmp_path: Path) -> None:
    from p402.bundles.signing import create_keys

    private, public, key = create_keys(tmp_path / "keys")
    db = str(tmp_path / "l.db")
    ledger = Ledger.open(db)
    _fill(ledger, "acme", key)
    ledger.close()
    certificate, export = tmp_path / "acme-deleted.json", tmp_path / "acme.jsonl"
    refused = run(
        "tenant",
        "delete",
        "acme",
        "--confirm",
        "acme",
        "--db",
        db,
        "--certificate",
        str(certificate),
    )
    assert_one_line_error(refused, "--certificate needs --key")
    done = run(
        "tenant", "delete", "acme", "--confirm", "acme", "--db", db, "--export", str(export),
        "--certificate", str(certificate), "--key", str(private),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    import json

    signed = json.loads(certificate.read_text())
    entry = signed["entry"]
    assert entry["kind"] == "tenant_deletion" and entry["tenant"] == "acme"
    assert entry["deleted_rows"]["events"] == 24 and entry["log"]["size"] == 24
    assert entry["final_export"]["events"] == 24 and entry["final_export"]["file"] == "acme.jsonl"
    checked = run("verify-entry", str(certificate), "--key", str(public))
    assert checked.returncode == 0 and "valid: tenant_deletion of tenant 'acme'" in checked.stdout
    signed["entry"]["deleted_rows"]["events"] = 23
    certificate.write_text(json.dumps(signed))
    assert_one_line_error(
        run("verify-entry", str(certificate), "--key", str(public)), "does not match"
    )
