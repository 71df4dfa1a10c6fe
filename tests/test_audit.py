"""The audit end to end: every view of the bundle ties out to the cent, and content never gets in."""

from __future__ import annotations

import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from p402.audit import AuditResult, run_audit
from p402.bundles.layout import EVENTS, MANIFEST, PDF, RECEIPTS, XLSX
from p402.bundles.signing import SigningKey
from p402.ingest import demo
from p402.ingest.importer import import_files
from p402.ledger.store import Ledger
from p402.money import format_amount, from_units, round_cents, to_units
from p402.period import parse_period
from p402.reporting.filters import money
from p402.reporting.xlsx import SHEETS
from tests.conftest import PERIOD


def members(result: AuditResult) -> dict[str, bytes]:
    with zipfile.ZipFile(result.bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def tie_out(result: AuditResult) -> Decimal:
    """Assert every view agrees and return the rounded total."""
    from openpyxl import load_workbook
    from pypdf import PdfReader

    files = members(result)
    records = [json.loads(line) for line in files[EVENTS].splitlines()]
    units = sum(to_units(Decimal(r["cost"])) for r in records if r["cost"] is not None)
    manifest = json.loads(files[MANIFEST])
    total = round_cents(units)
    # ledger = manifest
    assert manifest["totals"]["cost"] == format_amount(from_units(units))
    assert manifest["totals"]["cost_rounded"] == str(total)
    assert manifest["events"]["count"] == len(records) == len(files[RECEIPTS].splitlines())
    # = XLSX Summary = every breakdown sheet's rows (their totals are =SUM formulas over them,
    # computed by LibreOffice in test_report.py)
    book = load_workbook(io.BytesIO(files[XLSX]))
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert Decimal(str(summary["Total spend, stored figure (USD)"])) == total
    for title in SHEETS.values():
        *rows, last = book[title].iter_rows(min_row=2, values_only=True)
        assert last[4] == f"=SUM(E2:E{len(rows) + 1})"
        assert sum(Decimal(str(row[4])) for row in rows) == total
    # = the PDF (summary figure and every table's total row)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(files[PDF])).pages)
    assert (
        text.count(money(total)) >= 1 + 5
    )  # the summary, plus provider, department, customer, workflow, model
    return total


def test_small_audit_ties_out(small_bundle: AuditResult) -> None:
    assert tie_out(small_bundle) == small_bundle.summary.total


@pytest.mark.slow
def test_demo_audit_ties_out(
    tmp_path: Path, sqlite_ledger: Ledger, signing_key: SigningKey
) -> None:
    sqlite_ledger.add(demo.generate(count=3_000))
    result = run_audit(
        sqlite_ledger, tenant=demo.DEMO_TENANT, period=parse_period(demo.DEMO_PERIOD),
        key=signing_key, out_dir=tmp_path / "out",
    )  # fmt: skip
    assert tie_out(result) > Decimal(100)
    assert result.summary.unattributed > 0


def test_content_never_reaches_the_bundle(
    tmp_path: Path, sqlite_ledger: Ledger, signing_key: SigningKey
) -> None:
    secret = "CONFIDENTIAL-MERGER-PROMPT-7731"
    rows = [
        {"occurred_at": f"2026-10-0{n + 1}T12:00:00Z", "provider": "openai", "model": "gpt-4o", "input_tokens": 9,
         "messages": [{"role": "user", "content": secret}], "response": secret, "output": secret,
         "tags": {"prompt": secret}, "tag.completion": secret}
        for n in range(3)
    ]  # fmt: skip
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_files(sqlite_ledger, [source], tenant="acme")
    result = run_audit(
        sqlite_ledger, tenant="acme", period=PERIOD, key=signing_key, out_dir=tmp_path / "out"
    )
    assert result.summary.events == 3
    from pypdf import PdfReader

    files = members(result)
    for name, data in files.items():
        assert secret.encode() not in data, name
    # the PDF's streams and the workbook's parts are compressed inside: look inside them too
    pdf_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(files[PDF])).pages)
    assert "gpt-4o" in pdf_text and secret not in pdf_text
    with zipfile.ZipFile(io.BytesIO(files[XLSX])) as workbook:
        parts = {part: workbook.read(part) for part in workbook.namelist()}
    assert any(b"gpt-4o" in data for data in parts.values())
    assert not any(secret.encode() in data for data in parts.values())


@pytest.mark.slow
def test_verify_text_commands_run_as_written(small_bundle: AuditResult, tmp_path: Path) -> None:
    """An auditor copies the stock-tools commands from VERIFY.txt into a shell: they must work."""
    import shutil
    import subprocess

    if not all(shutil.which(tool) for tool in ("openssl", "ssh-keygen", "sha256sum", "unzip")):
        import pytest

        pytest.skip("needs openssl, sha256sum and unzip")
    text = members(small_bundle)["VERIFY.txt"].decode()
    block = text.split("2. With stock tools only")[1].split("\n\n", 1)[1].split("\n\n")[0]
    script = block  # as pasted: indentation and all
    work = tmp_path / "auditor"
    work.mkdir()
    shutil.copy(small_bundle.bundle, work / "THIS-BUNDLE.zip")
    # What an auditor holds: the zip and the issuer's two public key files, nothing else.
    for name in ("p402-signing.pub", "p402-signing.ssh.pub"):
        shutil.copy(tmp_path / "keys" / name, work / name)
    first = text.split("1. With the standalone verifier")[1].split("\n\n", 1)[1].split("\n\n")[0]
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", first], cwd=work, capture_output=True,
                         text=True, check=False, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("valid: THIS-BUNDLE.zip: 24 events of tenant 'acme'"), run.stdout
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, capture_output=True, text=True,
                         check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Signature Verified Successfully" in run.stdout
    assert 'Good "p402-audit" signature for p402 with ED25519 key' in run.stdout + run.stderr
    assert run.stdout.count(": OK") == len(small_bundle.manifest["files"])  # type: ignore[arg-type]
