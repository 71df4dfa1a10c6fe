"""The ``export`` command: a tenant's whole ledger, or a period of it, as a file."""

from __future__ import annotations

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
    "--format", "fmt", default="jsonl", show_default=True, metavar="jsonl|csv|parquet|focus",
    help="jsonl or csv: p402's canonical events (what `p402 import events` reads); parquet: the "
    "same, typed; focus: FinOps FOCUS 1.2 cost and usage (Parquet if FILE ends in .parquet, else CSV).",
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
    """Export the tenant's ledger to FILE: every event, or those of a period.

    Without --period (or --from/--to) the whole ledger of the tenant is written. Money is
    exact everywhere (decimal strings; decimal128 in Parquet), never a binary float.
    """
    from p402.ledger.export import FORMATS, ExportError, export_ledger
    from p402.ledger.store import Ledger
    from p402.money import format_amount, round_cents, to_units
    from p402.progress import progress_bar

    window = _window(period, start, end)
    _, tenant = resolve(config_path, tenant)
    if fmt.strip().lower() not in FORMATS:  # the user's words first, then whether there is data
        raise ExportError(
            f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}"
        )
    ledger = Ledger.open(db, existing=True)
    try:
        with progress_bar() as bar:
            summary = export_ledger(
                ledger, tenant=tenant, period=window, fmt=fmt.strip().lower(), out=out_file,
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
