"""Ledger commands: ``import``, ``attribute`` and ``demo``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from p402.cli._common import (
    cli,
    config_option,
    db_option,
    echo_json,
    json_option,
    resolve,
    tenant_option,
)
from p402.ingest.formats import MODULES

__all__ = ["attribute", "demo_command", "import_command"]

_PROBLEMS_SHOWN = 200


def _show_problems(problems: list[Any], as_json: bool, *, prefix: str = "") -> None:
    if as_json:
        echo_json({"imported": False, "problems": [p.as_json() for p in problems]})
        return
    for problem in problems[:_PROBLEMS_SHOWN]:
        click.echo(f"{prefix}{problem}", err=True)
    if len(problems) > _PROBLEMS_SHOWN:
        click.echo(
            f"... and {len(problems) - _PROBLEMS_SHOWN:,} more (--json lists them all)", err=True
        )


@cli.command("import")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(list(MODULES)))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@db_option
@tenant_option
@config_option
@click.option("--skip-invalid", is_flag=True, help="Import the good rows of files with problems.")
@click.option(
    "--jobs", type=click.IntRange(min=1), default=None,
    help="Worker processes reading big JSON Lines files in parts (default: one per CPU, at most 4).",
)  # fmt: skip
@json_option
def import_command(
    *, format_name: str, files: tuple[Path, ...], db: str | None, tenant: str | None, config_path: Path | None,
    skip_invalid: bool, jobs: int | None, as_json: bool,
) -> None:  # fmt: skip
    """Import FILES of one FORMAT into the ledger, all or nothing.

    FORMAT is `events` (p402's canonical JSON Lines or CSV) or a provider's own export:
    openai-usage, openai-usage-csv, openai-costs, anthropic-usage, anthropic-costs,
    bedrock-logs, gemini, openrouter, litellm, otel. Events are priced and attributed by the
    configuration's prices and rules; cost exports are kept as invoice lines.
    """
    from p402.ingest.importer import ImportRejected, import_files
    from p402.ledger.store import Ledger
    from p402.progress import progress_bar

    config, tenant = resolve(config_path, tenant)
    ledger = Ledger.open(db)
    size = sum(path.stat().st_size for path in files if path.is_file())
    try:
        with progress_bar() as bar:
            summary = import_files(
                ledger, list(files), tenant=tenant, fmt=format_name, skip_invalid=skip_invalid, config=config,
                progress=lambda n: bar.advance("Importing", n, size), jobs=jobs,
            )  # fmt: skip
    except ImportRejected as rejected:
        _show_problems(rejected.problems, as_json)
        raise
    finally:
        ledger.close()
    _report_import(summary, tenant, as_json)


def _report_import(summary: Any, tenant: str, as_json: bool) -> None:
    from p402.money import format_amount, from_units, round_cents

    records = summary.records
    already = sum(record.already_stored for record in records)
    repeated = sum(record.duplicates for record in records)
    if as_json:
        echo_json({
            "imported": True, "rows": summary.rows, "new": summary.new, "duplicates": summary.duplicates,
            "already_stored": already, "repeated": repeated,
            "skipped": summary.skipped, "unpriced": summary.unpriced, "unpriced_tokens": summary.unpriced_tokens,
            "invoice_lines": summary.invoice_lines, "cost": format_amount(from_units(summary.cost_units)),
            "content_fields_dropped": summary.content_fields_dropped,
            "problems": [p.as_json() for p in summary.problems],
            "controls": [record.to_json() for record in records], "findings": summary.findings,
        })  # fmt: skip
    else:
        _show_problems(summary.problems, False, prefix="skipped ")
        what = "invoice lines" if summary.invoice_lines else "events"
        click.echo(
            f"Imported {summary.rows:,} rows into tenant {tenant!r}: {summary.new:,} new {what}, "
            f"{already:,} already in the ledger, {repeated:,} repeated within the files, "
            f"{summary.skipped:,} skipped as invalid; ${round_cents(summary.cost_units):,} of events."
        )
        if summary.unpriced:
            click.echo(
                f"{summary.unpriced:,} events ({summary.unpriced_tokens:,} tokens) have no known price and no "
                "cost: add a [[prices]] entry to price them."
            )
        if summary.content_fields_dropped:
            click.echo(
                f"Dropped {summary.content_fields_dropped:,} content fields (prompts, messages...): never stored."
            )
        for record in records:
            money = round_cents(record.read_cost)
            verdict = "ties" if record.ties else "DOES NOT TIE"
            click.echo(
                f"Control {record.import_id[:12]} {Path(record.file).name}: {record.rows_read:,} read = "
                f"{record.stored:,} stored + {record.already_stored:,} already stored + "
                f"{record.duplicates:,} repeated + {record.skipped:,} skipped; ${money:,} read; {verdict}."
            )
    for finding in summary.findings:
        click.echo(f"finding: {finding}", err=True)
    if summary.findings:
        # The rows were stored and the records kept, but a difference is never a success.
        raise click.exceptions.Exit(1)


@cli.command("imports")
@db_option
@tenant_option
@config_option
@click.option(
    "--captures", is_flag=True,
    help="List the meter's and the proxy's capture days instead: per channel and day of "
    "arrival, what was received, accepted, duplicate, rejected or refused, against the events "
    "the ledger holds.",
)  # fmt: skip
@json_option
def imports_command(
    *, db: str | None, tenant: str | None, config_path: Path | None, captures: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """List the control records of the tenant's imports: one per file read, oldest first, with
    what was read, stored, already stored, repeated, skipped or odd, and whether it ties."""
    from p402.ledger.captures import ledger_days, list_captures
    from p402.ledger.imports import list_imports
    from p402.ledger.store import Ledger
    from p402.money import parse_amount, round_cents, to_units

    _, tenant = resolve(config_path, tenant)
    ledger = Ledger.open(db, existing=True)
    try:
        records = list_captures(ledger, tenant) if captures else list_imports(ledger, tenant)
        held = ledger_days(ledger, tenant) if captures else {}
    finally:
        ledger.close()
    if captures:
        _captures(tenant, records, held, as_json=as_json)
        return
    if as_json:
        echo_json(records)
        return
    if not records:
        click.echo(f"No imports recorded for tenant {tenant!r}.")
        return
    for record in records:
        verdict = "ties" if record["ties"] else f"{len(record['findings'])} findings"
        cost = round_cents(to_units(parse_amount(record["read_cost"])))
        click.echo(
            f"{record['recorded_at']}  {record['import_id'][:12]}  {record['format']:<16} {record['status']:<8} "
            f"{record['rows_read']:>9,} read {record['stored']:>9,} stored {record['already_stored']:>9,} already "
            f"{record['duplicates']:>7,} repeated {record['skipped']:>7,} skipped  ${cost:,}  {verdict}  "
            f"{Path(record['file']).name}"
        )
        for finding in record["findings"]:
            click.echo(f"    finding: {finding}")


def _captures(
    tenant: str,
    records: list[dict[str, Any]],
    held: Mapping[tuple[str, str], tuple[int, int]],
    *,
    as_json: bool,
) -> None:
    """Print the capture days, and compare the events they accepted, per channel and day of
    the events' time, with the events the ledger holds (fewer: lost or purged since)."""
    from p402.money import parse_amount, round_cents, to_units

    counted: dict[tuple[str, str], list[int]] = {}
    for record in records:
        for day, cell in record["days"].items():
            found = counted.setdefault((record["format"], day), [0, 0])
            found[0] += cell["events"]
            found[1] += to_units(parse_amount(cell["cost"]))
    against = [
        {"channel": channel, "day": day, "accepted": counted.get(key, [0])[0],
         "ledger": held.get(key, (0, 0))[0]}
        for key in sorted({*counted, *held})
        for channel, day in [key]
        if tuple(counted.get(key, (0, 0))) != held.get(key, (0, 0))
    ]  # fmt: skip
    if as_json:
        echo_json({"captures": records, "ledger_differences": against})
        return
    if not records:
        click.echo(f"No capture days recorded for tenant {tenant!r}.")
    for record in records:
        verdict = "ties" if record["ties"] else f"{len(record['findings'])} findings"
        cost = round_cents(to_units(parse_amount(record["stored_cost"])))
        click.echo(
            f"{record['day']}  {record['format']:<6} {record['received']:>9,} received "
            f"{record['accepted']:>9,} accepted {record['duplicates']:>7,} duplicate "
            f"{record['rejected']:>7,} rejected {record['requests_refused']:>5,} refused  "
            f"${cost:,}  {verdict}"
        )
        for finding in record["findings"]:
            click.echo(f"    finding: {finding}")
    for row in against:
        click.echo(
            f"difference: {row['channel']} events of {row['day']}: {row['accepted']:,} accepted, "
            f"the ledger holds {row['ledger']:,} (lost, purged, or captured before counts began)"
        )


@cli.command()
@db_option
@tenant_option
@config_option
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@json_option
def attribute(
    *, db: str | None, tenant: str | None, config_path: Path | None, dry_run: bool, as_json: bool
) -> None:
    """Re-apply the configuration's attribution rules to every stored event, history included."""
    from p402.ingest.reattribute import reattribute
    from p402.ledger.store import Ledger
    from p402.money import round_cents
    from p402.progress import progress_bar

    config, tenant = resolve(config_path, tenant)
    ledger = Ledger.open(db, existing=True)
    total = ledger.count(tenant)
    try:
        with progress_bar() as bar:
            outcome = reattribute(
                ledger, tenant=tenant, rules=config.rules, dry_run=dry_run,
                progress=lambda n: bar.advance("Re-attributing", n, total),
            )  # fmt: skip
    finally:
        ledger.close()
    moves = sorted(outcome.moves.items(), key=lambda item: -item[1][1])
    if as_json:
        echo_json({
            "tenant": tenant, "events": outcome.events, "changed": outcome.changed, "dry_run": dry_run,
            "rules_version": config.rules_version, "fields": outcome.fields,
            "department_moves": [
                {"from": old, "to": new, "events": events, "cost": str(round_cents(units))}
                for (old, new), (events, units) in moves
            ],
        })  # fmt: skip
        return
    verb = "would change" if dry_run else "changed"
    click.echo(
        f"{len(config.rules)} rules over {outcome.events:,} events of tenant {tenant!r}: {verb} {outcome.changed:,}."
    )
    for (old, new), (events, units) in moves:
        click.echo(
            f"  {old or 'Unattributed'} -> {new or 'Unattributed'}: {events:,} events, ${round_cents(units):,}"
        )


@cli.command("demo")
@click.option(
    "--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), default=Path("demo-events.jsonl"),
    show_default=True,
)  # fmt: skip
@click.option("--count", type=click.IntRange(1, 10_000_000), default=50_000, show_default=True)
@click.option("--tenant", default=None, help="Tenant id written into the events (default 'demo').")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def demo_command(*, out_file: Path, count: int, tenant: str | None, force: bool) -> None:
    """Write the demo organisation's events as canonical JSON Lines, ready to import."""
    import orjson

    from p402.errors import ConfigError
    from p402.ingest import demo as demo_org

    if out_file.exists() and not force:  # as p402 export: a file is never replaced unasked
        raise ConfigError(f"{out_file} already exists", hint="give --force to replace it")
    partial = out_file.with_name(f".{out_file.name}.partial")
    with partial.open("wb") as handle:
        for item in demo_org.generate(tenant=tenant or demo_org.DEMO_TENANT, count=count):
            handle.write(orjson.dumps(item.to_json()) + b"\n")
    partial.replace(out_file)  # whole or not at all
    click.echo(f"Wrote {count:,} demo events of {demo_org.DEMO_PERIOD} to {out_file}")
