"""The canonical format: p402's own events, as JSON Lines or CSV in the public field names."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from p402.cells import restored
from p402.ingest.formats._common import Format, Parts, Progress, SourceRow, Span, span_lines

__all__ = ["FORMATS"]


def _has_float(record: dict[str, Any]) -> bool:
    # orjson makes exact floats only, so comparing types in C is the isinstance test, faster.
    return float in map(type, record.values())


def _jsonl(path: Path, progress: Progress | None) -> Iterator[SourceRow]:
    with path.open("rb") as handle:
        yield from _jsonl_rows(_counted(handle, progress))


def _counted(handle: Any, progress: Progress | None) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(handle, start=1):
        if progress:
            progress(len(line))
        yield number, line.removeprefix(b"\xef\xbb\xbf") if number == 1 else line


def _jsonl_rows(lines: Iterable[tuple[int, bytes]]) -> Iterator[SourceRow]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            # orjson reads numbers as binary floats; an amount written as a JSON number is
            # read again as an exact Decimal, from the very digits in the file.
            if isinstance(record, dict) and _has_float(record):
                record = json.loads(line, parse_float=Decimal)
        except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
            yield SourceRow(number, None, None, [(None, f"not valid JSON: {exc}")])
            continue
        if not isinstance(record, dict):
            yield SourceRow(number, None, None, [(None, "each line must be a JSON object")])
            continue
        yield SourceRow(number, None, record)


def _decoded(handle: Any, progress: Progress | None) -> Iterator[str]:
    for line in handle:
        if progress:
            progress(len(line))
        yield line.decode("utf-8-sig")


def _csv(path: Path, progress: Progress | None) -> Iterator[SourceRow]:
    with path.open("rb") as handle:
        reader = csv.DictReader(_decoded(handle, progress))
        line = 1
        try:
            for record in reader:
                line, start = reader.line_num, line + 1
                if None in record:
                    yield SourceRow(start, None, None, [(None, "has more cells than the header")])
                    continue
                # Texts p402's own export neutralised for spreadsheets (a leading ') come back.
                yield SourceRow(start, None, {k: restored(v) for k, v in record.items()})
        except (UnicodeDecodeError, csv.Error) as exc:
            yield SourceRow(reader.line_num, None, None, [(None, f"cannot be read: {exc}")])


def read(path: Path, progress: Progress | None = None) -> Iterator[SourceRow]:
    """Canonical events from JSON Lines, or from CSV when the file name ends in ``.csv``."""
    return _csv(path, progress) if path.suffix.lower() == ".csv" else _jsonl(path, progress)


def _is_json_lines(path: Path) -> bool:
    return path.suffix.lower() != ".csv"


def _read_span(path: Path, span: Span) -> Iterator[SourceRow]:
    return _jsonl_rows(span_lines(path, span))


FORMATS = (
    Format(
        "events",
        "events",
        "p402 canonical events, JSON Lines or CSV",
        read,
        Parts(_is_json_lines, _read_span),
    ),
)
