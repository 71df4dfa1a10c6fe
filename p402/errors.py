"""The one exception root of p402, its tree, and the one shape of a problem found in input.

Every error a user can cause is a :class:`P402Error`. Each class says how it ends a command
(:attr:`~P402Error.exit_code`) and how it is answered over HTTP (:attr:`~P402Error.http_status`
and a stable :attr:`~P402Error.code`); the CLI (``p402.cli.main``) and the HTTP API
(``p402.serve.errors``) each map them in one place, so a message is one line and never a
traceback. Subclasses live next to the code that raises them. The tree (``tests/test_errors.py``
holds it to the real classes, their statuses and codes; a subclass without a home named lives
with its parent)::

    P402Error                                 400 p402_error
    ├── ConfigError (here)                    400 invalid_setting
    │   └── ConfigProblems (config)           400 invalid_configuration
    ├── StoreError (ledger.store)             503 ledger_unavailable
    ├── TenantError (ledger.tenants)          400 tenant_refused
    ├── ExportError (ledger.export)           400 export_refused
    ├── ImportFailed (ingest.importer)        400 import_failed
    ├── ImportRejected (ingest.importer)      422 import_rejected
    ├── KeyFileError (bundles.signing)        400 invalid_key_file
    ├── BundleInvalid (bundles.verify)        422 bundle_invalid
    ├── ReceiptInvalid (bundles.receipt)      422 receipt_invalid
    ├── ReceiptUnavailable (bundles.receipt)  404 receipt_unavailable
    └── RequestError (serve.errors)           400 invalid_request
        ├── Unauthenticated                   401 invalid_api_key
        ├── NotFound                          404 not_found
        ├── NotReady                          409 not_ready
        ├── TooLarge                          413 too_large
        └── Unavailable                       503 unavailable

A :class:`Problem` is one thing wrong with input (an import row, a line of ``p402.toml``, an
event sent to the meter): where it is and what is wrong. Errors that carry several
(:class:`ConfigProblems`, ``ImportRejected``) carry them in this one shape.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "FieldProblems", "P402Error", "Problem"]


class P402Error(Exception):
    """Root of every error p402 raises on purpose.

    Args:
        message: What went wrong, in one sentence that names the thing (file, line, field).
        hint: What the user can do about it, or ``None``.
        details: Lines printed before the message: each problem, when there are several.
    """

    exit_code = 2
    """The command's exit status (1 is a verdict, such as an invalid bundle; 2 a usage error)."""
    http_status = 400
    """The status the HTTP API answers it with."""
    code = "p402_error"
    """A stable, machine-readable name, the same over HTTP and in ``--json`` output."""
    bare = False
    """Printed without the ``error:`` prefix (a verdict such as ``invalid: ...``)."""

    def __init__(
        self, message: str, *, hint: str | None = None, details: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or []

    def one_line(self) -> str:
        """The message and the hint on a single line, for a terminal."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(P402Error):
    """A command-line option, period or setting is not valid."""

    code = "invalid_setting"


FieldProblems = list[tuple[str | None, str]]
"""What is wrong with one row before it is placed in its file: ``(field or None, message)``
pairs, which the reader of the file turns into :class:`Problem` values."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one field of one input row (or one setting of a file).

    Attributes:
        source: the file (or stream, or request) the row came from.
        line: 1-based line number in that file, or ``None`` (a whole-file problem, or a record
            inside a JSON document, located by ``path``).
        field: the field's name, or ``None`` when the row as a whole is wrong.
        message: what is wrong, in words a controller understands.
        path: where the record sits inside a JSON document (``data[0].results[3]``), when it
            does.
    """

    source: str
    line: int | None
    field: str | None
    message: str
    path: str | None = None

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        if self.path:
            where = f"{where}: {self.path}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )

    def as_json(self) -> dict[str, object]:
        """The problem as a JSON object, for ``--json`` output."""
        return {
            "source": self.source,
            "line": self.line,
            "path": self.path,
            "field": self.field,
            "message": self.message,
        }
