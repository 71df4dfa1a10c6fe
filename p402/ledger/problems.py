"""A problem found in input: where it is (file, line, field) and what is wrong with it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FieldProblems", "Problem"]

FieldProblems = list[tuple[str | None, str]]
"""Problems found in one row before it is placed: ``(field or None, message)`` pairs."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one field of one input row.

    Attributes:
        source: the file (or stream) the row came from.
        line: 1-based line number in that file, or ``None`` (a whole-file problem, or a record
            inside a JSON document, located by ``path``).
        field: the field's name, or ``None`` when the row as a whole is wrong.
        message: what is wrong, in words a controller understands.
    """

    source: str
    line: int | None
    field: str | None
    message: str
    path: str | None = None
    """Where the record sits inside a JSON document (``data[0].results[3]``), when it does."""

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
