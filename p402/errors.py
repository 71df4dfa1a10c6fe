"""The one exception root of p402, its tree, and the one shape of a problem found in input.

Every error a user can cause is a :class:`P402Error`: the CLI catches it in one place and prints
``error: <message>`` (plus the hint) on one line, with no traceback. Subclasses live next to the
code that raises them.

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
