"""Evidence commands: ``keys``, ``audit`` and ``verify``."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from p402.cli._common import (
    cli,
    config_option,
    db_option,
    echo_json,
    json_option,
    out_dir_option,
    parse_window,
    period_options,
    resolve,
)
from p402.config import Config, ReportSettings, TenantConfig
from p402.errors import ConfigError, P402Error

__all__ = ["audit", "keys", "verify"]


@cli.group()
def keys() -> None:
    """Manage Ed25519 signing keys."""


@keys.command("create")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("keys"),
    show_default=True,
)
def keys_create(*, out_dir: Path) -> None:
    """Create a signing key (private file mode 0600) and its public key."""
    from p402.bundles.signing import ALLOWED_SIGNERS_NAME, SSH_PUBLIC_KEY_NAME, create_keys

    private_path, public_path, key = create_keys(out_dir)
    click.echo(f"Private key:     {private_path} (mode 0600; keep it secret)")
    click.echo(f"Public key:      {public_path} (give it to your auditor)")
    click.echo(
        f"OpenSSH key:     {public_path.with_name(SSH_PUBLIC_KEY_NAME)}, {ALLOWED_SIGNERS_NAME}"
    )
    click.echo(f"Key id:          {key.public.key_id}")
    click.echo(f"SSH fingerprint: {key.public.ssh_fingerprint()}")


@cli.command()
@click.option("--demo", is_flag=True, help="Audit a built-in demo organisation (needs no set-up).")
@period_options
@click.option(
    "--key", "key_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
    envvar="P402_SIGNING_KEY", help="Ed25519 private key to sign with. [env P402_SIGNING_KEY]",
)  # fmt: skip
@out_dir_option
@db_option
@click.option(
    "--tenant", envvar="P402_TENANT", default=None,
    help="Tenant id (default: the configuration's, else 'default'; 'demo' with --demo).",
)  # fmt: skip
@config_option
@click.option("--allow-empty", is_flag=True,
              help="Sign an audit even when the tenant has no events in the period.")  # fmt: skip
@json_option
def audit(
    *, demo: bool, period: str | None, start: Any, end: Any, key_path: Path | None, out_dir: Path,
    db: str | None, tenant: str | None, config_path: Path | None, allow_empty: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Audit a period: PDF and XLSX reports in a signed, verifiable bundle."""
    from p402.audit import run_audit
    from p402.bundles.signing import (
        PRIVATE_KEY_NAME,
        PUBLIC_KEY_NAME,
        create_keys,
        load_signing_key,
    )
    from p402.ingest import demo as demo_org
    from p402.ledger.store import Ledger
    from p402.progress import progress_bar

    window = parse_window(period, start, end, demo_org.DEMO_PERIOD if demo else None)
    if demo and config_path is None:
        tenant = tenant or demo_org.DEMO_TENANT  # the demo needs no configuration, and reads none
        config = None
    else:
        config, tenant = resolve(config_path, tenant)
    public_path: Path | None = None
    if key_path is None:
        if not demo:
            raise ConfigError(
                "--key is required", hint="create one with: p402 keys create --out keys/"
            )
        key_dir = out_dir / "keys"
        key_path, public_path = key_dir / PRIVATE_KEY_NAME, key_dir / PUBLIC_KEY_NAME
        if not key_path.exists():
            create_keys(key_dir)
    key = load_signing_key(key_path)
    if public_path is None:
        public_path = _matching_public_key(key_path, key.public.key_id)
    if demo and db is None:
        out_dir.mkdir(parents=True, exist_ok=True)  # the demo's ledger is kept beside its bundle
    ledger = Ledger.open(
        db or (str(out_dir / "demo-ledger.db") if demo else None), existing=not demo
    )
    try:
        with progress_bar() as bar:
            if demo:
                demo_count = 50_000
                events = demo_org.generate(tenant=tenant, period=window.label, count=demo_count)
                demo_org.store_demo(
                    ledger,
                    _counted(events, lambda n: bar.step("Building the demo ledger", n, demo_count)),
                    tenant=tenant,
                    label=f"demo:{window.label}",
                )
                config = Config(
                    tenant=TenantConfig(tenant, demo_org.DEMO_NAME),
                    invoices=demo_org.demo_invoices(ledger.provider_totals(tenant, window)),
                    journal=demo_org.DEMO_JOURNAL,
                    budgets=demo_org.DEMO_BUDGETS,
                    credits=demo_org.DEMO_CREDITS,
                    report=ReportSettings(breakdowns=("tag.env", "tag.cost_center")),
                )
            elif ledger.count(tenant, window) == 0:
                _nothing_to_audit(tenant, window.label, allow_empty=allow_empty)
            result = run_audit(
                ledger,
                tenant=tenant,
                period=window,
                key=key,
                out_dir=out_dir,
                step=bar.step,
                config=config,
            )
    finally:
        ledger.close()
    _report_audit(result, key_path, public_path, as_json)


def _matching_public_key(key_path: Path, key_id: str) -> Path | None:
    """The ``.pub`` beside a private key, if it is that key's public half."""
    from p402.bundles.signing import load_public_key

    sibling = key_path.with_suffix(".pub")
    try:
        return sibling if sibling.is_file() and load_public_key(sibling).key_id == key_id else None
    except P402Error:
        return None


def _counted(items: Any, report: Any) -> Any:
    for number, item in enumerate(items, start=1):
        if number % 2_000 == 0:
            report(number)
        yield item


def _report_audit(result: Any, key_path: Path, public_path: Path | None, as_json: bool) -> None:
    summary = result.summary
    if as_json:
        echo_json(
            {
                "bundle": str(result.bundle),
                "public_key": str(public_path or ""),
                "manifest": result.manifest,
            }
        )
        return
    click.echo(
        f"Audited {result.manifest['tenant']} {result.manifest['period']['label']}: {summary.events:,} events, "
        f"${summary.total:,} total, {summary.attributed_share * 100:.1f} % attributed to a department, "
        f"{summary.unpriced_events:,} unpriced."
    )
    click.echo(f"Bundle:     {result.bundle}")
    if public_path is not None:
        click.echo(f"Public key: {public_path}")
    click.echo(f"Key id:     {result.manifest['key_id']}")
    click.echo(
        f"Verify with: {_program()} verify {result.bundle} --key {public_path or '<your public key>'}"
    )


def _program() -> str:
    """How to run this p402 from the caller's shell: ``p402`` when that is what the shell finds,
    else the path it was started by (``make audit`` runs ``.venv/bin/p402`` with no venv active,
    so a plain ``p402`` would be "command not found" there)."""
    import os
    import shlex
    import shutil

    started = Path(sys.argv[0])
    found = shutil.which("p402")
    if started.name == "p402" and (found is None or Path(found).resolve() != started.resolve()):
        shown = os.path.relpath(started) if not started.is_absolute() else str(started)
        if "/" not in shown:
            shown = f"./{shown}"
        return shlex.quote(shown)
    return "p402"


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--key", "key_paths", type=click.Path(path_type=Path, dir_okay=False), required=True, multiple=True,
              help="The signer's public key (PEM), as received out of band; give --key again for each "
                   "key of a change-over.")  # fmt: skip
@click.option("--previous", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="An earlier audit bundle of the same tenant: prove this one only appended to its log.")  # fmt: skip
@json_option
def verify(
    *, bundle: Path, key_paths: tuple[Path, ...], previous: Path | None, as_json: bool
) -> None:
    """Verify a bundle offline. Exit 0: valid; exit 1: invalid, saying why."""
    from p402.bundles.verify import BundleInvalid, verify_bundle

    if not bundle.is_file():  # one line, as every user error (not click's usage block)
        click.echo(f"error: {bundle}: no such file", err=True)
        sys.exit(2)
    outcome = verify_bundle(bundle, _public_keys(key_paths), previous=previous)
    if as_json:
        echo_json(outcome.as_json())
        if not outcome.valid:
            sys.exit(1)
        return
    if not outcome.valid:
        more = len(outcome.problems) - 1
        suffix = f" (and {more} more; --json lists them all)" if more else ""
        raise BundleInvalid(f"invalid: {outcome.problems[0]}{suffix}")
    manifest = outcome.manifest or {}
    count = manifest["events"]["count"]
    click.echo(
        f"valid: {bundle.name}: {count:,} event{'' if count == 1 else 's'} of tenant {manifest['tenant']!r}, "
        f"{manifest['period']['label']}, ${Decimal(manifest['totals']['cost_rounded']):,} total; "
        f"signed by key {outcome.key_id[:16]}; Merkle root {manifest['merkle']['root'][:16]}"
    )
    if previous is not None:
        log = manifest["log"]
        click.echo(
            f"append-only: the log of {previous.name} is a prefix of this bundle's log "
            f"({(log['previous'] or {}).get('size', 0):,} → {log['size']:,} leaves, root {log['root'][:16]})"
        )


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("event_id")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the receipt here (default: standard output).")  # fmt: skip
def receipt(*, bundle: Path, event_id: str, out_file: Path | None) -> None:
    """Write the self-contained receipt of one event of a BUNDLE (its proof and signed tree head)."""
    from p402.bundles.receipt import receipt_from_bundle

    data = receipt_from_bundle(bundle, event_id)
    if out_file is None:
        click.echo(data.decode(), nl=False)
    else:
        out_file.write_bytes(data)
        click.echo(f"Receipt of {event_id} written to {out_file}", err=True)


@cli.command("verify-receipt")
@click.argument(
    "receipt_file", metavar="RECEIPT", type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@click.option("--key", "key_paths", type=click.Path(path_type=Path, dir_okay=False), required=True, multiple=True,
              help="A trusted public key (PEM); give --key again for each key of a change-over.")  # fmt: skip
def verify_receipt_command(*, receipt_file: Path, key_paths: tuple[Path, ...]) -> None:
    """Verify one event's receipt offline. Exit 0: the event is in the signed ledger; 1: not."""
    from p402.bundles.receipt import verify_receipt

    checkpoint, event = verify_receipt(receipt_file.read_bytes(), _public_keys(key_paths))
    click.echo(
        f"valid: event {event['event_id']!r} ({event['occurred_at']}, {event['provider']}/{event['model']}, "
        f"cost {event['cost'] or 'unpriced'}) is leaf of {checkpoint.origin} at tree size {checkpoint.size}"
    )


@cli.command()
@period_options
@click.option(
    "--format", "formats", default="pdf,xlsx", show_default=True, help="pdf, xlsx, or both."
)
@click.option("--page-size", type=click.Choice(["A4", "Letter"]), default="A4", show_default=True)
@out_dir_option
@db_option
@click.option(
    "--tenant", envvar="P402_TENANT", default=None, help="Tenant id (default: the configuration's)."
)
@config_option
@json_option
def report(
    *, period: str | None, start: Any, end: Any, formats: str, page_size: str, out_dir: Path, db: str | None,
    tenant: str | None, config_path: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Write the PDF and XLSX reports of a period, without signing a bundle."""
    from p402.audit.draft import write_reports
    from p402.ledger.store import Ledger

    chosen = {part.strip().lower() for part in formats.split(",") if part.strip()}
    if not chosen or chosen - {"pdf", "xlsx"}:
        raise ConfigError(f"--format {formats!r}: give pdf, xlsx or pdf,xlsx")
    window = parse_window(period, start, end, None)
    config, tenant = resolve(config_path, tenant)
    ledger = Ledger.open(db, existing=True)
    try:
        written = write_reports(
            ledger,
            tenant=tenant,
            period=window,
            config=config,
            out_dir=out_dir,
            formats=chosen,
            page_size=page_size,
        )
    finally:
        ledger.close()
    summary = written.report.summary
    if as_json:
        echo_json({
            "tenant": tenant, "period": window.label, "events": summary.events,
            "total": f"{summary.total:f}", "attributed": f"{summary.attributed:f}",
            "unattributed": f"{summary.unattributed:f}", "unpriced_events": summary.unpriced_events,
            "reconciliation_findings": len(written.report.findings),
            "files": [str(path) for path in written.files],
        })  # fmt: skip
        return
    click.echo(
        f"Reported {tenant} {window.label}: {summary.events:,} events, ${summary.total:,} total, "
        f"{len(written.report.findings)} reconciliation findings."
    )
    for path in written.files:
        click.echo(f"  {path}")


@cli.command()
@period_options
@db_option
@click.option(
    "--tenant", envvar="P402_TENANT", default=None, help="Tenant id (default: the configuration's)."
)
@config_option
@json_option
def findings(
    *, period: str | None, start: Any, end: Any, db: str | None, tenant: str | None,
    config_path: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Say what a period's spend calls for: where it is heading, the days that left their own
    pattern (with the events behind them) and the months that do not reconcile."""
    from p402.audit.draft import period_report
    from p402.audit.findings import findings_json
    from p402.ledger.store import Ledger

    window = parse_window(period, start, end, None)
    config, tenant = resolve(config_path, tenant)
    ledger = Ledger.open(db, existing=True)
    try:
        report = period_report(ledger, tenant=tenant, period=window, config=config, by_event=True)
    finally:
        ledger.close()
    if as_json:
        echo_json(findings_json(report, tenant, window.label))
        return
    for line in _findings_lines(report, tenant, window.label):
        click.echo(line)


def _findings_lines(report: Any, tenant: str, label: str) -> list[str]:
    lines = [f"Findings for {tenant} {label} (${report.summary.total:,} spent):"]
    for f in report.forecasts:
        if f.dimension == "total" and f.remaining_days:
            spread = (
                f"range ${f.low:,} to ${f.high:,}, backtest median error {f.backtest_error} % "
                f"over {f.backtests} backtests"
                if f.backtests
                else "too little history for a range"
            )
            lines.append(f"  Forecast: ${f.expected:,} by {f.end} ({spread})")
    lines.append(f"  Anomalies: {len(report.anomalies)}")
    for a in report.anomalies:
        first = ", ".join(a.event_ids[:3]) + (" ..." if a.events > 3 else "")
        lines.append(
            f"    {a.day}  {a.dimension} {a.value}: ${a.actual:,} against ${a.expected:,} "
            f"(+${a.excess:,}, z {a.score}), {a.events:,} events: {first}"
        )
    lines.append(f"  Budgets: {len(report.budgets)}")
    for b in report.budgets:
        when = b.month or "largest day"
        lines.append(
            f"    {b.name} ({b.value}, {when}): ${b.actual:,} of ${b.limit:,}, {b.status}"
            + (f" since {b.crossed}" if b.crossed else "")
        )
    lines.append(f"  Credits: {len(report.credits)}")
    for c in report.credits:
        lines.append(
            f"    {c.name} ({c.provider}, {c.kind}): ${c.used:,} of ${c.amount:,} used, {c.status}"
        )
    lines.append(f"  Savings (what-ifs, each needing a quality check): {len(report.savings)}")
    for v in report.savings:
        now, then = v.per_request
        lines.append(
            f"    {v.workflow} ({v.department}): {v.model} -> {v.alternative}, ${v.saving:,} less "
            f"(${v.cost:,} -> ${v.alternative_cost:,}; ${now} -> ${then} a request)"
        )
    lines.append(f"  Provider-months not reconciled: {len(report.findings)}")
    for r in report.findings:
        lines.append(
            f"    {r.provider} {r.month}: {r.status}, ${r.difference:,}: {'; '.join(r.causes)}"
        )
    return lines


@cli.command("verify-entry")
@click.argument("entry_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--key", "key_paths", type=click.Path(path_type=Path, dir_okay=False), required=True, multiple=True,
              help="A trusted public key (PEM); give --key again for each key of a change-over.")  # fmt: skip
def verify_entry_command(*, entry_file: Path, key_paths: tuple[Path, ...]) -> None:
    """Verify a signed ledger entry offline (a deletion certificate, or a line of a bundle's
    ledger/entries.jsonl). Exit 0: valid; exit 1: invalid."""
    from p402.bundles.canonical import CanonicalError, loads
    from p402.bundles.entries import entry_problem
    from p402.bundles.verify import BundleInvalid

    try:
        item = loads(entry_file.read_bytes().strip())
    except CanonicalError as exc:
        raise BundleInvalid(f"invalid: {entry_file}: {exc}") from None
    entry = item.get("entry") if isinstance(item, dict) else None
    tenant = entry.get("tenant") if isinstance(entry, dict) else None
    problem = entry_problem(item, _public_keys(key_paths), str(tenant))
    if problem is not None:
        raise BundleInvalid(f"invalid: {entry_file}: {problem}")
    assert isinstance(entry, dict)
    click.echo(
        f"valid: {entry['kind']} of tenant {tenant!r} recorded {entry['recorded_at']}, "
        f"signed by key {item['key_id'][:16]}"
    )


def _public_keys(paths: tuple[Path, ...]) -> list[Any]:
    """The public keys to verify with; a private key given instead works (its public half is
    used), with a warning: whoever verifies never needs it, and should not hold it."""
    from p402.bundles.signing import load_public_key

    for path in paths:
        if not path.is_file():
            continue  # load_public_key words the problem
        with path.open("rb") as handle:
            private = b"PRIVATE KEY" in handle.read(4096)
        if private:
            click.echo(
                f"warning: {path} is a private signing key; verifying needs only its public half"
                f" ({path.with_suffix('.pub').name}): keep the private key with the signer",
                err=True,
            )
    return [load_public_key(path) for path in paths]


def _nothing_to_audit(tenant: str, label: str, *, allow_empty: bool) -> None:
    """An audit of no events is refused (a misspelled tenant or period would otherwise give a
    signed $0.00 bundle), unless asked for; then it is said aloud."""
    said = f"tenant {tenant!r} has no events in {label}"
    if not allow_empty:
        raise ConfigError(
            said,
            hint="check --tenant (p402 tenant list) and the period; --allow-empty signs it anyway",
        )
    click.echo(f"warning: {said}: this audit is of nothing, as --allow-empty asked", err=True)
