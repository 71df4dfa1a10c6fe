"""What every provider format shares: the row it yields, and careful readers for provider fields.

A format turns the provider's own records into *canonical raw rows*: plain dicts in the field
names of :data:`p402.ledger.events.FIELDS` (strings, ints, ``Decimal``, dicts of strings), which
the one validator then checks like any other input. Formats never copy content: they pick the
metadata fields they know, by name, and nothing else.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import orjson

from p402.errors import FieldProblems
from p402.ingest.tags import CONTROL
from p402.period import format_time

__all__ = [
    "Format",
    "Parts",
    "Progress",
    "SourceRow",
    "Span",
    "dated",
    "decimal_text",
    "is_json_lines",
    "json_documents",
    "loads_exact",
    "printable",
    "span_line_count",
    "span_lines",
    "stable_id",
    "time_from",
    "whole",
]

Progress = Callable[[int], None]
"""Called with the number of bytes read since the last call."""


@dataclass(frozen=True, slots=True)
class Span:
    """Whole lines of a JSON Lines file: the bytes ``[start, end)``. A reader given a span
    reads those lines alone, numbering them from 1 at *start*, so that parts of one file can be
    read in parallel; the caller, which knows how many lines came before, shifts the numbers."""

    start: int
    end: int


def span_lines(path: Path, span: Span) -> Iterator[tuple[int, bytes]]:
    """The lines of *span* in the file at *path*, numbered from 1 (a byte order mark at the very
    start of the file removed)."""
    data = _span_bytes(path, span)
    if span.start == 0:
        data = data.removeprefix(b"\xef\xbb\xbf")
    return enumerate(io.BytesIO(data), start=1)


def span_line_count(path: Path, span: Span) -> int:
    """How many lines *span* holds (its last line may lack the newline at the end of a file)."""
    data = _span_bytes(path, span)
    return data.count(b"\n") + (not data.endswith(b"\n") and bool(data))


def _span_bytes(path: Path, span: Span) -> bytes:
    with path.open("rb") as handle:
        handle.seek(span.start)
        return handle.read(span.end - span.start)


@dataclass(slots=True)
class SourceRow:
    """One record of a provider file, turned into a canonical raw row (or not, with problems).

    Attributes:
        line: 1-based line in the file, for line-based formats (CSV, JSON Lines).
        path: JSON path of the record in its document (``data[0].results[3]``), for JSON pages;
            with *line* too when a JSON Lines file holds pages.
        record: the canonical raw row, or ``None`` when the record is a problem or carries
            nothing to import (an empty usage bucket).
        problems: ``(field, message)`` pairs, with the *provider's* field name.
    """

    line: int | None
    path: str | None
    record: dict[str, Any] | None
    problems: FieldProblems = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Parts:
    """How a format reads a JSON Lines file in parts, each a :class:`Span`, so that the parts
    can be read in parallel.

    Attributes:
        applies: whether the file at a path is one the format can read in parts (plain JSON
            Lines, not gzipped).
        read: the rows of one span, as reading the whole file gives them.
    """

    applies: Callable[[Path], bool]
    read: Callable[[Path, Span], Iterator[SourceRow]]

    @classmethod
    def of_json_lines(
        cls,
        read: Callable[[Path, Progress | None, Span | None], Iterator[SourceRow]],
        *,
        line_parser: Callable[[bytes], Any] | None = None,
        applies: Callable[[Path], bool] | None = None,
    ) -> Parts:
        """The parts of a format whose *read* passes its span to :func:`json_documents`: a
        file that :func:`is_json_lines` (and *applies*, when given) is read in parts."""
        return cls(
            lambda path: (
                (applies is None or applies(path)) and is_json_lines(path, line_parser=line_parser)
            ),
            lambda path, span: read(path, None, span),
        )


@dataclass(frozen=True, slots=True)
class Format:
    """An import format: its name on the command line, what it yields and how to read a file.

    ``kind = "events"`` rows are canonical events; ``kind = "invoice_lines"`` rows are billed
    amounts kept for reconciliation (see :mod:`p402.ledger.invoices`). *parts*: how to read a
    JSON Lines file in parts; ``None`` when the format is always read whole.
    """

    name: str
    kind: Literal["events", "invoice_lines"]
    description: str
    read: Callable[[Path, Progress | None], Iterator[SourceRow]]
    parts: Parts | None = None


def stable_id(fmt: str, *parts: object) -> str:
    """A stable event id from the identity of a source record, so re-import finds the same one.

    *parts* are what makes the record unique in the provider's data (bucket start, grouping
    values, model...). ``None`` and ``""`` stay distinct.
    """
    identity = orjson.dumps([fmt, *[None if p is None else str(p) for p in parts]])
    return f"{fmt}:{hashlib.sha256(identity).hexdigest()[:32]}"


_WHOLE_LIMIT = 10**19  # adjusted() <= 18, below


def whole(value: Any, name: str, problems: FieldProblems, *, default: int = 0) -> int:
    """A non-negative whole number from a provider field: ``12``, ``"12"``, ``12.0`` or ``"12.0"``
    (dashboard CSVs write counts as decimals). ``None`` and ``""`` give *default*."""
    if value.__class__ is int and 0 <= value < _WHOLE_LIMIT:
        return value  # what the checks below accept of an int, without the Decimal round trip
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        problems.append((name, f"must be a whole number, got {value!r}"))
        return default
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        problems.append((name, f"must be a whole number, got {value!r}"))
        return default
    # Bound the size first: to_integral_value of "1e99999999" builds a hundred-million-digit number.
    if (
        not number.is_finite()
        or number.adjusted() > 18
        or number != number.to_integral_value()
        or number < 0
    ):
        problems.append((name, f"must be a whole number of at least 0, got {value!r}"))
        return default
    return int(number)


def decimal_text(value: Any, name: str, problems: FieldProblems) -> Decimal | None:
    """An exact amount from a provider field (a JSON number already read as Decimal, or text)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        problems.append((name, f"must be a number, got {value!r}"))
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        problems.append((name, f"must be a number, got {value!r}"))
        return None
    if not amount.is_finite():
        problems.append((name, f"must be a finite number, got {value!r}"))
        return None
    return amount


def time_from(value: Any, name: str, problems: FieldProblems) -> str | None:
    """RFC 3339 UTC text from unix seconds (int, float or digits) or from an RFC 3339 string."""
    if value is None or value == "":
        problems.append((name, "is required"))
        return None
    try:
        numeric = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        if numeric or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip())):
            moment = datetime.fromtimestamp(float(value), tz=UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                problems.append((name, f"{value!r} has no UTC offset"))
                return None
        else:
            raise ValueError
    except (ValueError, OverflowError, OSError):
        problems.append((name, f"{value!r} is not a time (unix seconds or RFC 3339)"))
        return None
    return dated(moment, name, problems)


def dated(moment: datetime, name: str, problems: FieldProblems) -> str | None:
    """The RFC 3339 text of *moment* if it falls in 2000-2099, the ledger's range; else a problem
    on the provider's field (a count of seconds read as a time lands in 1970)."""
    if not 2000 <= moment.astimezone(UTC).year <= 2099:
        problems.append((name, f"{moment.isoformat()} is outside 2000-2099"))
        return None
    return format_time(moment)


def printable(value: Any, limit: int = 200) -> bool:
    """Whether *value* is text the ledger stores as is: 1 to *limit* printable characters."""
    return isinstance(value, str) and 0 < len(value.strip()) <= limit and not CONTROL.search(value)


def json_documents(
    path: Path,
    progress: Progress | None,
    *,
    line_parser: Callable[[bytes], Any] | None = None,
    span: Span | None = None,
) -> Iterator[tuple[int | None, Any, str | None]]:
    """The JSON documents of a file, as ``(line, document, problem)``.

    A file is JSON Lines (streamed, one document a line, of any length) when its first
    non-blank line is JSON on its own; otherwise, when that line opens an object or an array,
    the file is one document (a pretty-printed API page, an array of pages). A name ending in
    ``.gz`` is gunzipped as it is read, and a truncated archive keeps what was read and reports
    the rest. *line_parser* reads a line (default: JSON, fractions as exact ``Decimal``).
    Progress counts the bytes on disk. With *span*, the file is JSON Lines (see
    :func:`is_json_lines`) and only the lines of the span are read.
    """
    parse = line_parser or _loads
    if span is not None:
        for number, line in span_lines(path, span):
            if line.strip():
                yield _parsed(number, line, parse)
        return
    with path.open("rb") as raw:
        stream: io.BufferedIOBase = (
            gzip.GzipFile(fileobj=raw) if path.suffix.lower() == ".gz" else raw
        )
        seen = 0

        def report() -> None:
            nonlocal seen
            if progress:
                where = raw.tell()
                progress(where - seen)
                seen = where

        number = 0
        try:
            first, number = _first_line(stream)
            head = _parsed(number, first, parse) if first else None
            if head is not None and head[2] is not None and not _json_lines(first):
                yield from _whole(first + stream.read(), report)
                return
            report()
            if head is not None:
                yield head
            for number, line in enumerate(stream, start=number + 1):  # noqa: B020 (resumes the count)
                report()
                if line.strip():
                    yield _parsed(number, line, parse)
        except (OSError, EOFError, zlib.error) as exc:
            yield number + 1, None, f"cannot be read: {exc}"


def is_json_lines(path: Path, *, line_parser: Callable[[bytes], Any] | None = None) -> bool:
    """Whether :func:`json_documents` reads the file at *path* as plain (not gzipped) JSON
    Lines, which it can then read span by span."""
    if path.suffix.lower() == ".gz":
        return False
    with path.open("rb") as handle:
        first, number = _first_line(handle, _FIRST_LINE_LIMIT)
    if not first:
        return True
    if not first.endswith(b"\n") and len(first) == _FIRST_LINE_LIMIT:
        return False  # one huge line, e.g. a whole array of pages: one part anyway, read whole
    problem = _parsed(number, first, line_parser or _loads)[2]
    return problem is None or _json_lines(first)


_FIRST_LINE_LIMIT = 1 << 20
"""A first line longer than this is not parsed twice just to decide whether to split a file."""


def _first_line(stream: Any, limit: int = -1) -> tuple[bytes, int]:
    """The first non-blank line (without a UTF-8 byte order mark; at most *limit* bytes of it)
    and its number."""
    first, number = stream.readline(limit).removeprefix(b"\xef\xbb\xbf"), 1
    while first and not first.strip():
        first, number = stream.readline(limit), number + 1
    return first, number


def _json_lines(first: bytes) -> bool:
    # A first line that is not JSON alone opens one pretty-printed document when it starts an
    # object or an array; otherwise the file is JSON Lines with a bad first line.
    return first.lstrip()[:1] not in (b"{", b"[")


def _parsed(number: int, line: bytes, parse: Callable[[bytes], Any]) -> tuple[int, Any, str | None]:
    try:
        return number, parse(line), None
    except ValueError as exc:
        return number, None, f"not valid JSON: {exc}"


def _whole(data: bytes, report: Callable[[], None]) -> Iterator[tuple[None, Any, str | None]]:
    report()
    try:
        yield None, _loads(data), None
    except ValueError as exc:
        yield None, None, f"not valid JSON: {exc}"


def _loads(data: bytes | str) -> Any:
    import json

    try:
        return json.loads(data, parse_float=Decimal)
    except UnicodeDecodeError as exc:
        raise ValueError(str(exc)) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


loads_exact = _loads
"""JSON with fractions as exact ``Decimal``; ``ValueError`` for anything unreadable."""
