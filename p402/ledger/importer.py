"""Import canonical events from JSON Lines or CSV files: read → validate → price → store.

All or nothing: every problem in every file is collected (file, line, field), and a file set
with problems imports nothing unless ``skip_invalid`` is asked for, in which case the good rows
are imported and the bad ones counted. Re-importing the same rows changes nothing: events are
idempotent on ``(tenant, event_id)``. Files are streamed; memory does not grow with their size.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from p402.errors import P402Error
from p402.ledger.events import Event, validate
from p402.ledger.pricing import Pricer
from p402.ledger.problems import Problem
from p402.ledger.store import Ledger
from p402.money import to_units

__all__ = ["ImportRejected", "ImportSummary", "import_files", "read_rows"]

Progress = Callable[[int], None]
"""Called with the number of bytes read since the last call."""
_BATCH = 5_000


class ImportRejected(P402Error):
    """The files have problems, so nothing was imported. Carries every problem."""

    exit_code = 1

    def __init__(self, problems: Sequence[Problem], rows: int) -> None:
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"{len(problems)} {noun} in {rows} rows; nothing was imported",
            hint="fix the rows, or pass --skip-invalid to import the good ones",
        )
        self.problems = list(problems)


@dataclass(slots=True)
class ImportSummary:
    """What an import did."""

    files: int = 0
    rows: int = 0
    new: int = 0
    duplicates: int = 0
    skipped: int = 0
    unpriced: int = 0
    content_fields_dropped: int = 0
    cost_units: int = 0
    problems: list[Problem] = field(default_factory=list)


def _has_float(record: dict[str, Any]) -> bool:
    return any(isinstance(value, float) for value in record.values())


def _jsonl_rows(path: Path, progress: Progress | None) -> Iterator[tuple[int, Any, Problem | None]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if progress:
                progress(len(line))
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                # orjson reads numbers as binary floats; an amount written as a JSON number is
                # read again as an exact Decimal, from the very digits in the file.
                if isinstance(record, dict) and _has_float(record):
                    record = json.loads(line, parse_float=Decimal)
            except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                yield number, None, Problem(str(path), number, None, f"not valid JSON: {exc}")
                continue
            if not isinstance(record, dict):
                yield (
                    number,
                    None,
                    Problem(str(path), number, None, "each line must be a JSON object"),
                )
                continue
            yield number, record, None


def _decoded(handle: Any, progress: Progress | None) -> Iterator[str]:
    for line in handle:
        if progress:
            progress(len(line))
        yield line.decode("utf-8-sig")


def _csv_rows(path: Path, progress: Progress | None) -> Iterator[tuple[int, Any, Problem | None]]:
    with path.open("rb") as handle:
        reader = csv.DictReader(_decoded(handle, progress))
        line = 1
        try:
            for record in reader:
                line, start = reader.line_num, line + 1
                if None in record:
                    yield (
                        start,
                        None,
                        Problem(str(path), start, None, "has more cells than the header"),
                    )
                    continue
                yield start, record, None
        except (UnicodeDecodeError, csv.Error) as exc:
            yield (
                reader.line_num,
                None,
                Problem(str(path), reader.line_num, None, f"cannot be read: {exc}"),
            )


def read_rows(
    path: Path, progress: Progress | None = None
) -> Iterator[tuple[int, Any, Problem | None]]:
    """The rows of a JSONL or CSV file as ``(line, record, problem)``, streamed.

    The format comes from the suffix: ``.csv`` is CSV, anything else JSON Lines.
    """
    reader = _csv_rows if path.suffix.lower() == ".csv" else _jsonl_rows
    return reader(path, progress)


def import_files(
    ledger: Ledger,
    paths: Sequence[Path],
    *,
    tenant: str,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import canonical event files into the tenant's ledger, all or nothing.

    Raises:
        ImportRejected: a file has problems and *skip_invalid* is false; nothing was stored.
        P402Error: a file cannot be opened.
    """
    for path in paths:
        if not path.is_file():
            raise P402Error(f"{path}: no such file")
    summary = ImportSummary(files=len(paths))
    pricer = Pricer()
    with ledger.transaction() as connection:
        before = ledger.count(tenant, connection=connection)
        batch: list[Event] = []
        for path in paths:
            for line, record, problem in read_rows(path, progress):
                summary.rows += 1
                if problem is None:
                    checked = validate(record, tenant=tenant, source="import:events")
                    summary.content_fields_dropped += len(checked.dropped_content)
                    if checked.event is not None:
                        item = pricer.apply(checked.event)
                        summary.unpriced += item.cost is None
                        summary.cost_units += 0 if item.cost is None else to_units(item.cost)
                        batch.append(item)
                        if len(batch) >= _BATCH:
                            ledger.insert(connection, batch)
                            batch.clear()
                        continue
                    summary.problems.extend(
                        Problem(str(path), line, name, message)
                        for name, message in checked.problems
                    )
                else:
                    summary.problems.append(problem)
                summary.skipped += 1
        if summary.problems and not skip_invalid:
            # Raising inside the transaction rolls back every batch already sent.
            raise ImportRejected(summary.problems, summary.rows)
        ledger.insert(connection, batch)
        summary.new = ledger.count(tenant, connection=connection) - before
    summary.duplicates = summary.rows - summary.skipped - summary.new
    return summary
