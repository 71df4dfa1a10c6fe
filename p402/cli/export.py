"""The ``export`` command: a tenant's whole ledger, or a period of it, as a file."""

from __future__ import annotations

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
    parse_window,
    period_options,
    resolve,
    tenant_option,
)

__all__ = ["export"]


def _window(period: str | None, start: Any, end: Any) -> Any:
    """The period asked for, or ``None`` (the whole ledger) when none is."""
    if not (period or start or end):
        return None
    return parse_window(period, start, end, None)


@cli.command()
@click.option(
    "--format", "fmt", default="jsonl", show_default=True, metavar="FORMAT",
    help="jsonl or csv: p402's canonical events (what `p402 import events` reads); parquet: the "
    "same, typed; focus: FinOps FOCUS 1.2 cost and usage (Parquet if FILE ends in .parquet, else CSV); "
    "journal: the period's close journal as a journal-import CSV, journal-intacct and journal-xero "
    "in Sage Intacct's and Xero's import templates (needs --period or --from/--to).",
)  # fmt: skip
@click.option(
    "--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), required=True,
    metavar="FILE", help="The file to write.",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@period_options
@db_option
@tenant_option
@config_option
@json_option
def export(
    *, fmt: str, out_file: Path, force: bool, period: str | None, start: Any, end: Any, db: str | None,
    tenant: str | None, config_path: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Export the tenant's ledger to FILE: every event, or those of a period; or a period's
    close journal, to import into an ERP.

    Without --period (or --from/--to) the whole ledger of the tenant is written. Money is
    exact everywhere (decimal strings; decimal128 in Parquet), never a binary float.
    """
    from p402.ledger.export import FORMATS, ExportError, export_ledger
    from p402.ledger.store import Ledger
    from p402.money import format_amount, round_cents, to_units
    from p402.progress import progress_bar
    from p402.reporting.journal_files import JOURNAL_FORMATS

    window = _window(period, start, end)
    config, tenant = resolve(config_path, tenant)
    fmt = fmt.strip().lower()
    if fmt not in (
        *FORMATS,
        *JOURNAL_FORMATS,
    ):  # the user's words first, then whether there is data
        raise ExportError(
            f"unknown export format {fmt!r}",
            hint=f"use one of: {', '.join((*FORMATS, *JOURNAL_FORMATS))}",
        )
    if fmt in JOURNAL_FORMATS:
        _export_journal(fmt, out_file, force=force, window=window, db=db, tenant=tenant,
                        config=config, as_json=as_json)  # fmt: skip
        return
    ledger = Ledger.open(db, existing=True)
    try:
        with progress_bar() as bar:
            summary = export_ledger(
                ledger, tenant=tenant, period=window, fmt=fmt, out=out_file,
                step=bar.step, overwrite=force,
            )  # fmt: skip
    finally:
        ledger.close()
    if as_json:
        echo_json({
            "path": str(summary.path), "format": fmt, "tenant": tenant,
            "period": None if window is None else window.label, "events": summary.count,
            "unpriced": summary.unpriced, "cost": format_amount(summary.total),
        })  # fmt: skip
        return
    total = round_cents(to_units(summary.total))
    unpriced = f", {summary.unpriced:,} unpriced" if summary.unpriced else ""
    click.echo(f"Exported {summary.count:,} events (total ${total:,}{unpriced}) to {summary.path}")


def _export_journal(
    fmt: str, out_file: Path, *, force: bool, window: Any, db: str | None, tenant: str,
    config: Any, as_json: bool,
) -> None:  # fmt: skip
    """Write the period's close journal in the layout *fmt*, and say what it holds."""
    from p402.audit.draft import period_report
    from p402.ledger.export import ExportError
    from p402.ledger.store import Ledger
    from p402.reporting.journal_files import XERO_MAX_LINES, journal_csv

    if window is None:
        raise ExportError(
            "a journal is of a period", hint="add --period 2026-10 (or --from and --to)"
        )
    if out_file.exists() and not force:
        raise ExportError(f"{out_file} exists", hint="use --force to replace it")
    ledger = Ledger.open(db, existing=True)
    try:
        report = period_report(ledger, tenant=tenant, period=window, config=config)
    finally:
        ledger.close()
    lines = report.journal
    partial = out_file.with_name(out_file.name + ".partial")
    partial.write_text(journal_csv(lines, fmt, config.journal), encoding="utf-8", newline="")
    partial.replace(out_file)
    debits = sum((line.debit for line in lines), Decimal("0.00"))
    credits = sum((line.credit for line in lines), Decimal("0.00"))
    entries = len({line.journal_id for line in lines})
    if as_json:
        echo_json({
            "path": str(out_file), "format": fmt, "tenant": tenant, "period": window.label,
            "entries": entries, "lines": len(lines), "debits": str(debits), "credits": str(credits),
        })  # fmt: skip
        return
    click.echo(
        f"Exported the {window.label} journal: {entries} entries, {len(lines)} lines, "
        f"${debits:,} debits = ${credits:,} credits, to {out_file}"
    )
    if fmt == "journal-xero" and len(lines) > XERO_MAX_LINES:
        click.echo(
            f"Note: Xero imports at most {XERO_MAX_LINES} lines a file; this one has {len(lines)}: "
            "import it in parts, whole entries each.",
            err=True,
        )
