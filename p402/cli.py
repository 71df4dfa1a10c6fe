"""The ``p402`` command line. Thin: parse, call the library, print a short summary.

Every :class:`~p402.errors.P402Error` is turned into one line on stderr and an exit code in
:func:`main`, never a traceback. Heavy modules are imported inside commands, so ``p402 --help``
is instant.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from p402 import __version__
from p402.errors import ConfigError, P402Error

__all__ = ["main"]

_db_option = click.option(
    "--db", envvar="P402_DATABASE_URL", default=None, metavar="PATH|URL",
    help="Ledger database: a SQLite file path or a postgresql:// URL. "
    "[env P402_DATABASE_URL; default ./p402-ledger.db]",
)  # fmt: skip
_tenant_option = click.option(
    "--tenant",
    envvar="P402_TENANT",
    default="default",
    show_default=True,
    help="Tenant id. [env P402_TENANT]",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="p402")
def cli() -> None:
    """p402: AI spend audit. Attribute every AI call, report it, ship signed evidence."""


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
    from p402.bundles.signing import create_keys

    private_path, public_path, key = create_keys(out_dir)
    click.echo(f"Private key: {private_path} (mode 0600; keep it secret)")
    click.echo(f"Public key:  {public_path} (give it to your auditor)")
    click.echo(f"Key id:      {key.public.key_id}")


@cli.group("import")
def import_() -> None:
    """Import usage into the ledger."""


@import_.command("events")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@_db_option
@_tenant_option
@click.option("--skip-invalid", is_flag=True, help="Import the good rows of files with problems.")
@_json_option
def import_events(
    *, files: tuple[Path, ...], db: str | None, tenant: str, skip_invalid: bool, as_json: bool
) -> None:
    """Import canonical events from JSON Lines or CSV FILES (all or nothing)."""
    from p402.ledger.importer import ImportRejected, import_files
    from p402.ledger.store import Ledger
    from p402.money import format_amount, from_units, round_cents
    from p402.progress import progress_bar

    ledger = Ledger.open(db)
    size = sum(path.stat().st_size for path in files if path.is_file())
    try:
        with progress_bar() as bar:
            summary = import_files(
                ledger, list(files), tenant=tenant, skip_invalid=skip_invalid,
                progress=lambda n: bar.advance("Importing", n, size),
            )  # fmt: skip
    except ImportRejected as rejected:
        if as_json:
            _echo_json({"imported": False, "problems": [p.as_json() for p in rejected.problems]})
        else:
            for problem in rejected.problems[:200]:
                click.echo(str(problem), err=True)
            if len(rejected.problems) > 200:
                click.echo(
                    f"... and {len(rejected.problems) - 200} more (use --json for all)", err=True
                )
        raise
    finally:
        ledger.close()
    cost = format_amount(from_units(summary.cost_units))
    if as_json:
        _echo_json({
            "imported": True, "rows": summary.rows, "new": summary.new, "duplicates": summary.duplicates,
            "skipped": summary.skipped, "unpriced": summary.unpriced, "cost": cost,
            "content_fields_dropped": summary.content_fields_dropped,
            "problems": [p.as_json() for p in summary.problems],
        })  # fmt: skip
        return
    for problem in summary.problems[:50]:
        click.echo(f"skipped {problem}", err=True)
    click.echo(
        f"Imported {summary.rows:,} rows into tenant {tenant!r}: {summary.new:,} new, "
        f"{summary.duplicates:,} already in the ledger, {summary.skipped:,} skipped as invalid, "
        f"{summary.unpriced:,} unpriced; ${round_cents(summary.cost_units):,} in the files."
    )
    if summary.content_fields_dropped:
        click.echo(
            f"Dropped {summary.content_fields_dropped:,} content fields (prompts, messages...): never stored."
        )


def _parse_window(period: str | None, start: Any, end: Any, default: str | None) -> Any:
    from p402.period import parse_period

    if start or end:
        if period:
            raise ConfigError("give --period or --from/--to, not both")
        return parse_period(None, start=start and start.date(), end=end and end.date())
    if period or default:
        return parse_period(period or default)
    raise ConfigError("which period? give --period 2026-10 (or 2026-Q3, or --from/--to)")


@cli.command()
@click.option("--demo", is_flag=True, help="Audit a built-in demo organisation (needs no set-up).")
@click.option("--period", default=None, help="A month 2026-10 or a quarter 2026-Q3 (UTC).")
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day (UTC)."
)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day, included (UTC)."
)
@click.option(
    "--key", "key_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
    envvar="P402_SIGNING_KEY", help="Ed25519 private key to sign with. [env P402_SIGNING_KEY]",
)  # fmt: skip
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("out"),
    show_default=True,
)
@_db_option
@click.option(
    "--tenant",
    envvar="P402_TENANT",
    default=None,
    help="Tenant id (default: 'default', or 'demo' with --demo).",
)
@_json_option
def audit(
    *, demo: bool, period: str | None, start: Any, end: Any, key_path: Path | None, out_dir: Path,
    db: str | None, tenant: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Audit a period: PDF and XLSX reports in a signed, verifiable bundle."""
    from p402.audit import run_audit
    from p402.bundles.signing import (
        PRIVATE_KEY_NAME,
        PUBLIC_KEY_NAME,
        create_keys,
        load_signing_key,
    )
    from p402.ledger import demo as demo_org
    from p402.ledger.store import Ledger
    from p402.progress import progress_bar

    window = _parse_window(period, start, end, demo_org.DEMO_PERIOD if demo else None)
    tenant = tenant or (demo_org.DEMO_TENANT if demo else "default")
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
    ledger = Ledger.open(db or (str(out_dir / "demo-ledger.db") if demo else None))
    try:
        with progress_bar() as bar:
            if demo:
                demo_count = 50_000
                events = demo_org.generate(tenant=tenant, period=window.label, count=demo_count)
                ledger.add(
                    _counted(events, lambda n: bar.step("Building the demo ledger", n, demo_count))
                )
            result = run_audit(
                ledger, tenant=tenant, period=window, key=key, out_dir=out_dir, step=bar.step
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
        _echo_json(
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
        f"Verify with: p402 verify {result.bundle} --key {public_path or '<your public key>'}"
    )


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--key", "key_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The signer's public key, as received out of band (PEM).")  # fmt: skip
@_json_option
def verify(*, bundle: Path, key_path: Path, as_json: bool) -> None:
    """Verify a bundle offline. Exit 0: valid; exit 1: invalid, saying why."""
    from p402.bundles.signing import load_public_key
    from p402.bundles.verify import BundleInvalid, verify_bundle

    outcome = verify_bundle(bundle, load_public_key(key_path))
    if as_json:
        _echo_json(outcome.as_json())
        if not outcome.valid:
            sys.exit(1)
        return
    if not outcome.valid:
        more = len(outcome.problems) - 1
        suffix = f" (and {more} more; --json lists them all)" if more else ""
        raise BundleInvalid(f"invalid: {outcome.problems[0]}{suffix}")
    manifest = outcome.manifest or {}
    click.echo(
        f"valid: {bundle.name}: {manifest['events']['count']:,} events of tenant {manifest['tenant']!r}, "
        f"{manifest['period']['label']}, ${Decimal(manifest['totals']['cost_rounded']):,} total; "
        f"signed by key {outcome.key_id[:16]}; Merkle root {manifest['merkle']['root'][:16]}"
    )


@cli.command("demo")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("demo-events.jsonl"),
    show_default=True,
)
@click.option("--count", type=click.IntRange(1, 10_000_000), default=50_000, show_default=True)
@click.option("--tenant", default=None, help="Tenant id written into the events (default 'demo').")
def demo_command(*, out_file: Path, count: int, tenant: str | None) -> None:
    """Write the demo organisation's events as canonical JSON Lines, ready to import."""
    import orjson

    from p402.ledger import demo as demo_org

    with out_file.open("wb") as handle:
        for item in demo_org.generate(tenant=tenant or demo_org.DEMO_TENANT, count=count):
            handle.write(orjson.dumps(item.to_json()) + b"\n")
    click.echo(f"Wrote {count:,} demo events of {demo_org.DEMO_PERIOD} to {out_file}")


def main() -> None:
    """Entry point: run the CLI, mapping p402's errors to one line and an exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except P402Error as exc:
        click.echo(
            f"error: {exc.one_line()}" if not isinstance(exc, _invalid()) else exc.one_line(),
            err=True,
        )
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


def _invalid() -> type[P402Error]:
    from p402.bundles.verify import BundleInvalid

    return BundleInvalid
