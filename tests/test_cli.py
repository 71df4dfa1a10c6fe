"""The command line as a user meets it: instant help, one-line errors, exit codes, summaries."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

P402 = str(Path(sys.executable).parent / "p402")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([P402, *args], capture_output=True, text=True, cwd=cwd, check=False,
                          env={**os.environ, "P402_DATABASE_URL": ""})  # fmt: skip


def three_events(folder: Path, **fields: str) -> Path:
    """Three gpt-4o calls of $2.50 on the first days of October 2026, with *fields*, as JSONL."""
    path = folder / "e.jsonl"
    rows = [{"occurred_at": f"2026-10-0{n}T00:00:00Z", "provider": "openai", "model": "gpt-4o", "cost": "2.50",
             **fields} for n in range(1, 4)]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, result.stderr


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from p402.cli import cli; "
        "heavy = {'weasyprint', 'openpyxl', 'sqlalchemy', 'pandas', 'cryptography', 'genai_prices'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
    assert "audit" in run("--help").stdout


def test_help_lists_every_command_with_its_first_sentence_whole() -> None:
    for args in (("--help",), ("tenant", "--help"), ("keys", "--help")):
        listed = run(*args).stdout.split("Commands:", 1)[1]
        assert "..." not in listed, listed
    assert "stored event, history included." in run("--help").stdout


def test_keys_create_protects_the_private_key(tmp_path: Path) -> None:
    result = run("keys", "create", "--out", str(tmp_path / "keys"))
    assert result.returncode == 0
    private = tmp_path / "keys" / "p402-signing.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert "Key id:" in result.stdout
    assert_one_line_error(run("keys", "create", "--out", str(tmp_path / "keys")), "already exists")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


@pytest.mark.slow
def test_import_problems_are_listed_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"provider": "openai"}\nnot json\n', encoding="utf-8")
    result = run("import", "events", str(bad), "--db", str(tmp_path / "l.db"))
    assert result.returncode == 1
    assert f"{bad}:1: model: is required" in result.stderr
    assert f"{bad}:2: not valid JSON" in result.stderr
    assert_one_line_error(result, "nothing was imported", "--skip-invalid")
    as_json = run("import", "events", str(bad), "--db", str(tmp_path / "l.db"), "--json")
    assert json.loads(as_json.stdout)["problems"][0]["line"] == 1


@pytest.mark.slow
def test_import_summary(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps({"occurred_at": "2026-10-01T00:00:00Z", "provider": "openai", "model": "gpt-4o",
                    "input_tokens": 10, "prompt": "secret"}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    first = run("import", "events", str(good), "--db", str(tmp_path / "l.db"), "--tenant", "acme")
    assert "1 new" in first.stdout and "Dropped 1 content field" in first.stdout
    again = run("import", "events", str(good), "--db", str(tmp_path / "l.db"), "--tenant", "acme")
    assert "0 new events, 1 already in the ledger" in again.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["audit", "--period", "2026-13", "--key", "k"], ["month must be 01 to 12"]),
        (["audit", "--period", "October"], ["not a month"]),
        (["audit", "--period", "2026-10"], ["--key is required", "p402 keys create"]),
        (["audit", "--period", "2026-10", "--key", "missing.key"], ["cannot read key missing.key"]),
        (["audit", "--period", "2026-10", "--from", "2026-10-01", "--to", "2026-10-02", "--key", "k"],
         ["not both"]),
        (["import", "events", "missing.jsonl"], ["missing.jsonl: no such file"]),
        (["import", "events", "x.jsonl", "--db", "mysql://x/y"], ["unsupported database"]),
    ],
)  # fmt: skip
def test_user_errors_are_one_line(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    assert_one_line_error(run(*args, cwd=tmp_path), *needles)


@pytest.mark.slow
def test_verify_exit_codes(tmp_path: Path) -> None:
    from p402.audit import run_audit
    from p402.bundles.signing import create_keys, load_signing_key
    from p402.ledger.store import Ledger
    from tests.conftest import PERIOD, TENANT, small_events

    create_keys(tmp_path / "keys")
    create_keys(tmp_path / "other")
    ledger = Ledger.open(str(tmp_path / "l.db"))
    ledger.add(small_events())
    key = load_signing_key(tmp_path / "keys" / "p402-signing.key")
    bundle = run_audit(
        ledger, tenant=TENANT, period=PERIOD, key=key, out_dir=tmp_path / "out"
    ).bundle
    ledger.close()
    good = run("verify", str(bundle), "--key", str(tmp_path / "keys" / "p402-signing.pub"))
    assert good.returncode == 0 and good.stdout.startswith("valid:")
    wrong = run("verify", str(bundle), "--key", str(tmp_path / "other" / "p402-signing.pub"))
    assert wrong.returncode == 1
    assert_one_line_error(wrong, "invalid:", "manifest.json.sig")
    as_json = run(
        "verify", str(bundle), "--key", str(tmp_path / "other" / "p402-signing.pub"), "--json"
    )
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["valid"] is False


def test_unknown_format_lists_the_known_ones(tmp_path: Path) -> None:
    result = run("import", "azure-usage", "x.json", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'azure-usage' is not one of" in result.stderr and "anthropic-usage" in result.stderr


def test_configuration_problems_are_each_listed_then_summed_up(tmp_path: Path) -> None:
    (tmp_path / "p402.toml").write_text(
        '[[rules]]\nname = "x"\nmatch = { modle = "gpt*" }\nset = { department = "A" }\n'
    )
    result = run("attribute", "--db", str(tmp_path / "l.db"), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert lines[0].startswith("p402.toml:3: [[rules]] #1: match cannot use 'modle'")
    assert lines[-1] == "error: 1 problem in p402.toml; nothing was done"


@pytest.mark.slow
def test_attribute_reports_what_moved(tmp_path: Path) -> None:
    events = three_events(tmp_path, api_key_id="key_support_1")
    (tmp_path / "p402.toml").write_text(
        '[tenant]\nid = "acme"\n\n[[rules]]\nname = "support"\nmatch = { api_key_id = "key_support*" }\n'
        'set = { department = "Customer Support" }\n'
    )
    assert run("import", "events", str(events), "--db", "l.db", cwd=tmp_path).returncode == 0
    dry = run("attribute", "--db", "l.db", "--dry-run", cwd=tmp_path)
    assert "would change 0" in dry.stdout  # rules already applied at import
    (tmp_path / "p402.toml").write_text('[tenant]\nid = "acme"\n')
    moved = run("attribute", "--db", "l.db", cwd=tmp_path)
    assert "0 rules over 3 events of tenant 'acme': changed 3." in moved.stdout
    assert "Customer Support -> Unattributed: 3 events, $7.50" in moved.stdout


@pytest.mark.slow
def test_receipt_and_verify_receipt(tmp_path: Path) -> None:
    from p402.audit import run_audit
    from p402.bundles.signing import create_keys
    from p402.ledger.store import Ledger
    from tests.conftest import PERIOD, TENANT, small_events

    _, public, key = create_keys(tmp_path / "keys")
    ledger = Ledger.open(str(tmp_path / "l.db"))
    ledger.add(small_events())
    bundle = run_audit(
        ledger, tenant=TENANT, period=PERIOD, key=key, out_dir=tmp_path / "out"
    ).bundle
    ledger.close()
    made = run("receipt", str(bundle), "evt-007", "--out", str(tmp_path / "r.json"))
    assert made.returncode == 0, made.stderr
    good = run("verify-receipt", str(tmp_path / "r.json"), "--key", str(public))
    assert good.returncode == 0 and good.stdout.startswith("valid: event 'evt-007'")
    forged = (tmp_path / "r.json").read_text().replace('"evt-007"', '"evt-008"')
    (tmp_path / "forged.json").write_text(forged)
    bad = run("verify-receipt", str(tmp_path / "forged.json"), "--key", str(public))
    assert_one_line_error(bad, "invalid: the event is not leaf")
    assert bad.returncode == 1
    missing = run("receipt", str(bundle), "nope")
    assert_one_line_error(missing, "no event 'nope'")


@pytest.mark.slow
def test_report_writes_the_pdf_and_workbook_of_a_period(tmp_path: Path) -> None:
    events = three_events(tmp_path, department="Sales")
    (tmp_path / "p402.toml").write_text(
        '[tenant]\nid = "acme"\n\n[[invoices]]\nprovider = "openai"\nperiod = "2026-10"\namount = "8.00"\n'
        '\n[journal]\nexpense_account = "6100 AI"\ncost_centers = { Sales = "CC-SALES" }\n'
    )
    assert run("import", "events", str(events), "--db", "l.db", cwd=tmp_path).returncode == 0
    made = run(
        "report", "--period", "2026-10", "--db", "l.db", "--page-size", "Letter", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    assert "3 events, $7.50 total, 1 reconciliation findings." in made.stdout
    pdf, xlsx = (
        tmp_path / "out" / "p402-report-acme-2026-10.pdf",
        tmp_path / "out" / "p402-report-acme-2026-10.xlsx",
    )
    assert pdf.read_bytes().startswith(b"%PDF") and xlsx.is_file()
    from openpyxl import load_workbook

    journal = list(load_workbook(xlsx)["Journal"].iter_rows(min_row=2, values_only=True))
    # $7.50 in the ledger, $8.00 billed: 6.25 % apart, so the $0.50 goes to suspense.
    assert [(row[6], row[7], row[8], row[11], row[12]) for row in journal[:3]] == [
        ("6100", "AI", "CC-SALES", 7.5, 0), ("2199", "AI invoice differences, suspense", None, 0.5, 0),
        ("2150", "Accrued AI services", None, 0, 8),
    ]  # fmt: skip
    bad = run("report", "--period", "2026-10", "--db", "l.db", "--format", "docx", cwd=tmp_path)
    assert_one_line_error(bad, "--format 'docx'")
    machine = run("report", "--period", "2026-10", "--db", "l.db", "--format", "pdf", "--json",
                  "--out", "again", cwd=tmp_path)  # fmt: skip
    assert machine.returncode == 0, machine.stderr
    assert json.loads(machine.stdout) == {
        "tenant": "acme", "period": "2026-10", "events": 3, "total": "7.50", "attributed": "7.50",
        "unattributed": "0.00", "unpriced_events": 0, "reconciliation_findings": 1,
        "files": [str(Path("again") / "p402-report-acme-2026-10.pdf")],
    }  # fmt: skip


@pytest.mark.slow
def test_the_demo_with_a_key_of_ones_own_makes_its_output_folder(tmp_path: Path) -> None:
    """The README's order: keys first, then the demo into a folder that does not exist yet."""
    assert run("keys", "create", "--out", "keys", cwd=tmp_path).returncode == 0
    result = run("audit", "--demo", "--key", "keys/p402-signing.key", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (bundle,) = (tmp_path / "out").glob("p402-audit-*.zip")
    verified = run("verify", str(bundle), "--key", "keys/p402-signing.pub", cwd=tmp_path)
    assert verified.returncode == 0 and "valid" in verified.stdout


def test_verify_with_the_private_key_says_so_and_tenant_list_says_when_empty(
    tmp_path: Path,
) -> None:
    from p402.bundles.signing import create_keys

    create_keys(tmp_path / "keys")
    result = run(
        "verify", str(tmp_path / "nope.zip"), "--key", str(tmp_path / "keys" / "p402-signing.key")
    )
    assert_one_line_error(result, "nope.zip: no such file")
    (tmp_path / "b.zip").write_bytes(b"not a zip")
    private = run(
        "verify", str(tmp_path / "b.zip"), "--key", str(tmp_path / "keys" / "p402-signing.key")
    )
    assert "is a private signing key" in private.stderr and "Traceback" not in private.stderr
    listed = run("tenant", "list", "--db", str(tmp_path / "l.db"))
    assert listed.returncode == 0 and "No tenants yet" in listed.stderr


def test_an_audit_of_nothing_is_refused_unless_asked_for(tmp_path: Path) -> None:
    from p402.bundles.signing import create_keys

    create_keys(tmp_path / "keys")
    key, db = str(tmp_path / "keys" / "p402-signing.key"), str(tmp_path / "l.db")
    from p402.ledger.store import Ledger

    Ledger.open(db).close()  # a ledger, without the misspelt tenant's events
    args = ("audit", "--period", "2026-10", "--key", key, "--db", db, "--tenant", "acmee")
    assert_one_line_error(
        run(*args, "--out", str(tmp_path / "a")), "tenant 'acmee' has no events in 2026-10"
    )
    assert not (tmp_path / "a").exists()
    allowed = run(*args, "--out", str(tmp_path / "b"), "--allow-empty")
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: tenant 'acmee' has no events in 2026-10" in allowed.stderr
    assert list((tmp_path / "b").glob("p402-audit-*.zip"))
    # The command it prints works as shown, in a shell where no venv is active.
    (line,) = [x for x in allowed.stdout.splitlines() if x.startswith("Verify with: ")]
    command = line.removeprefix("Verify with: ").replace("<your public key>", key)
    bare = {**os.environ, "PATH": "/usr/bin:/bin"}
    shown = subprocess.run(  # as a user pastes it: through the shell
        ["/bin/sh", "-c", command], capture_output=True, text=True, env=bare, check=False
    )
    assert shown.returncode == 0 and shown.stdout.startswith("valid:"), (command, shown.stderr)


def test_apikey_create_fixes_attribution_and_lists_it(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    assert run("tenant", "create", "acme", "--db", db).returncode == 0
    made = run("apikey", "create", "--tenant", "acme", "--attribution", "department=Support",
               "--attribution", "customer=Globex", "--db", db)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "always customer 'Globex', always department 'Support'" in made.stderr
    listed = run("apikey", "list", "--tenant", "acme", "--db", db).stdout
    assert "customer=Globex, department=Support" in listed
    for bad, said in (("planet=Mars", "cannot fix 'planet'"), ("department", "FIELD=VALUE")):
        refused = run("apikey", "create", "--tenant", "acme", "--attribution", bad, "--db", db)
        assert refused.returncode != 0 and said in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_a_command_that_needs_a_ledger_leaves_none_behind_when_there_is_none(
    tmp_path: Path,
) -> None:
    from p402.bundles.signing import create_keys

    private = str(create_keys(tmp_path.parent / f"{tmp_path.name}-keys")[0])
    for args in (
        ("audit", "--period", "2026-10", "--tenant", "nope", "--key", private),
        ("report", "--period", "2026-10", "--tenant", "nope"),
        ("export", "--tenant", "nope", "--out", "x.jsonl"),
        ("imports",),
        ("apikey", "create", "--tenant", "nope"),
    ):
        failed = run(*args, cwd=tmp_path)
        assert failed.returncode != 0, args
        assert "there is no ledger at p402-ledger.db" in failed.stderr, (args, failed.stderr)
        assert "Traceback" not in failed.stderr
        assert list(tmp_path.iterdir()) == [], args  # no empty p402-ledger.db left behind
    listed = run("tenant", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "No tenants yet" in listed.stderr
    assert list(tmp_path.iterdir()) == []


def test_demo_refuses_to_replace_a_file_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    target.write_text("mine\n")
    refused = run("demo", "--out", str(target), "--count", "3")
    assert refused.returncode != 0 and "already exists" in refused.stderr
    assert "--force" in refused.stderr and target.read_text() == "mine\n"
    forced = run("demo", "--out", str(target), "--count", "3", "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(target.read_text().splitlines()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]  # no partial left
