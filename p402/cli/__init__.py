"""The ``p402`` command line. Thin: parse, call the library, print a short summary.

Every :class:`~p402.errors.P402Error` is turned into one line on stderr (after the details it
carries, if any) and an exit code in :func:`main`, never a traceback. Heavy modules are
imported inside commands, so ``p402 --help`` is instant.
"""

from __future__ import annotations

import sys

import click

from p402.cli import audit as _audit_commands  # registers keys, audit, verify
from p402.cli import export as _export_commands  # registers export
from p402.cli import ledger as _ledger_commands  # registers import, attribute, demo
from p402.cli import live as _live_commands  # registers serve, tenant, apikey, db, retention
from p402.cli._common import cli
from p402.errors import P402Error

__all__ = ["cli", "main"]
del _audit_commands, _export_commands, _ledger_commands, _live_commands


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
        for detail in exc.details:
            click.echo(detail, err=True)
        prefix = "" if exc.bare else "error: "
        click.echo(f"{prefix}{exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
