"""What every command shares: the group, the common options, and how a command finds its
ledger, tenant and configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from p402 import __version__

if TYPE_CHECKING:
    from p402.config import Config
    from p402.period import Period

__all__ = [
    "cli",
    "config_option",
    "db_option",
    "echo_json",
    "json_option",
    "parse_window",
    "resolve",
    "tenant_option",
]

db_option = click.option(
    "--db", envvar="P402_DATABASE_URL", default=None, metavar="PATH|URL",
    help="Ledger database: a SQLite file path or a postgresql:// URL. "
    "[env P402_DATABASE_URL; default ./p402-ledger.db]",
)  # fmt: skip
tenant_option = click.option(
    "--tenant", envvar="P402_TENANT", default=None,
    help="Tenant id. [env P402_TENANT; default: [tenant] id of the configuration, else 'default']",
)  # fmt: skip
config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), envvar="P402_CONFIG",
    default=None, help="Configuration file. [env P402_CONFIG; default ./p402.toml when present]",
)  # fmt: skip
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
out_dir_option = click.option(
    "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("out"), show_default=True,
    help="Folder to write into.",
)  # fmt: skip


def period_options(command: Any) -> Any:
    """``--period``, or ``--from`` and ``--to``: the window of an audit or a report."""
    command = click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None,
                           help="Last day, included (UTC).")(command)  # fmt: skip
    command = click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None,
                           help="First day (UTC).")(command)  # fmt: skip
    return click.option(
        "--period", default=None, help="A month 2026-10 or a quarter 2026-Q3 (UTC)."
    )(command)


def parse_window(period: str | None, start: Any, end: Any, default: str | None) -> Period:
    """The period ``--period`` or ``--from``/``--to`` name, else *default*; one of them is needed."""
    from p402.errors import ConfigError
    from p402.period import parse_period

    if start or end:
        if period:
            raise ConfigError("give --period or --from/--to, not both")
        return parse_period(None, start=start and start.date(), end=end and end.date())
    if period or default:
        return parse_period(period or default)
    raise ConfigError("which period? give --period 2026-10 (or 2026-Q3, or --from/--to)")


def echo_json(value: Any) -> None:
    """Print *value* as indented JSON on stdout."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def resolve(
    config_path: Path | None, tenant: str | None, fallback: str = "default"
) -> tuple[Config, str]:
    """The configuration, and the tenant: the option, else the configuration's, else *fallback*."""
    from p402.config import load_config

    config = load_config(config_path)
    chosen = tenant or (config.tenant.id if config.tenant else None) or fallback
    return config, chosen


class _Group(click.Group):
    """A group whose command list shows each command's first sentence whole, wrapped, where
    click cuts it to the terminal's width with "..."."""

    group_class = type  # its subgroups (tenant, keys, db, ...) list their commands alike

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            text = " ".join((command.help or "").split("\n\n", 1)[0].split())
            first = text.split(". ", 1)[0].rstrip(".")
            rows.append((name, f"{first}." if first else ""))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="p402")
def cli() -> None:
    """p402: AI spend audit. Attribute every AI call, report it, ship signed evidence."""
