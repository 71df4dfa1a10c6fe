"""Import files into the ledger: read (any format) → the pipeline (validate → price →
attribute, :mod:`p402.ingest.pipeline`) → store.

All or nothing: every problem in every file is collected (file, line or JSON path, field),
and a file set with problems imports nothing unless ``skip_invalid`` is asked for, in which
case the good rows are imported and the bad ones counted. Re-importing the same rows changes
nothing: events are idempotent on ``(tenant, event_id)``, invoice lines on their line id.
Files are streamed; memory does not grow with their size.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from p402.config import Config
from p402.errors import FieldProblems, P402Error, Problem
from p402.ingest.formats import Format, Progress, SourceRow, Span, get_format, span_line_count
from p402.ingest.invoice_lines import validate_invoice_line
from p402.ingest.pipeline import Pipeline
from p402.ledger.imports import ImportRecord, existing_ids, record_imports, totals
from p402.ledger.invoices import InvoiceLine
from p402.ledger.schema import EVENT_COLUMNS, values_row
from p402.ledger.store import Ledger
from p402.ledger.tenants import get_tenant
from p402.money import to_units

__all__ = [
    "ImportFailed",
    "ImportRejected",
    "ImportSummary",
    "Pipeline",
    "default_jobs",
    "import_files",
]

_BATCH = 5_000
_COST_UNITS = EVENT_COLUMNS.index("cost_units")
_EVENT_ID = EVENT_COLUMNS.index("event_id")
_QUALITY = EVENT_COLUMNS.index("quality")
_COST_SOURCE = EVENT_COLUMNS.index("cost_source")
_AT = EVENT_COLUMNS.index("occurred_at_us")
_TOKENS = tuple(
    EVENT_COLUMNS.index(name)
    for name in (
        "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
        "output_tokens",
    )
)  # fmt: skip
"""The token counts whose sum is an event's tokens, as the reports count them."""
_DAY_US = 86_400_000_000
_UNPRICED_TOKENS = (
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens",
)  # fmt: skip
"""The token buckets an unpriced event is counted by (reasoning is inside output)."""
_SPAN = 4 << 20
"""Bytes of JSON Lines a worker process reads at a time (rounded up to the end of a line)."""
_MAX_JOBS = 4
"""Workers by default at most: this process writes every row, one at a time, and a SQLite
insert costs about half of what a worker spends on a row, so a few workers keep it busy and
more only hold memory (about 50 MB each)."""
_PARTS_FROM = 32 << 20
"""Files from this size are read in parts by worker processes; for smaller ones, starting the
workers costs more than it saves."""


class ImportFailed(P402Error):
    """A file cannot be read at all (missing, or a worker reading it stopped): nothing was
    imported."""

    code = "import_failed"


class ImportRejected(P402Error):
    """The files have problems, so nothing was imported. Carries every problem."""

    exit_code = 1
    http_status = 422
    code = "import_rejected"

    def __init__(self, problems: Sequence[Problem], rows: int) -> None:
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"{len(problems)} {noun} in {rows:,} {'row' if rows == 1 else 'rows'};"
            " nothing was imported",
            hint="fix the rows, or pass --skip-invalid to import the good ones",
        )
        self.problems = list(problems)
        self.records: list[ImportRecord] = []
        """The control records of the refused files (kept in the ledger as ``refused``)."""


@dataclass(slots=True)
class ImportSummary:
    """What an import did."""

    files: int = 0
    rows: int = 0
    new: int = 0
    duplicates: int = 0
    skipped: int = 0
    unpriced: int = 0
    unpriced_tokens: int = 0
    content_fields_dropped: int = 0
    cost_units: int = 0
    invoice_lines: int = 0
    invoice_units: int = 0
    """The exact amount of the valid invoice lines read, in storage units."""
    problems: list[Problem] = field(default_factory=list)
    records: list[ImportRecord] = field(default_factory=list)
    """One control record per file (see :mod:`p402.ledger.imports`)."""

    @property
    def findings(self) -> list[str]:
        """Every file's differences, each line naming its file."""
        return [
            f"{record.file}: {finding}" for record in self.records for finding in record.findings
        ]

    def add(self, part: ImportSummary, *, lines_before: int = 0) -> None:
        """Count in what reading one part of a file found (its rows, problems and costs), the
        part's lines numbered from 1 and *lines_before* lines into the file."""
        self.rows += part.rows
        self.skipped += part.skipped
        self.unpriced += part.unpriced
        self.unpriced_tokens += part.unpriced_tokens
        self.content_fields_dropped += part.content_fields_dropped
        self.cost_units += part.cost_units
        self.invoice_units += part.invoice_units
        self.problems.extend(
            problem if problem.line is None else replace(problem, line=problem.line + lines_before)
            for problem in part.problems
        )


def _problems(path: Path, row: SourceRow, found: FieldProblems) -> list[Problem]:
    return [Problem(str(path), row.line, name, message, row.path) for name, message in found]


class _Run:
    """One import: counts, problems and the batches waiting to be written."""

    def __init__(
        self,
        ledger: Ledger | None,
        fmt: Format,
        pipeline: Pipeline,
        summary: ImportSummary,
        *,
        skip_invalid: bool = False,
    ) -> None:
        self.ledger, self.fmt, self.pipeline, self.summary = ledger, fmt, pipeline, summary
        self.skip_invalid = skip_invalid
        self.rows: list[tuple[Any, ...]] = []
        self.lines: list[InvoiceLine] = []
        self.started = datetime.now(UTC)
        self.seen: set[int] = set()
        """Hashes of the ids this import has met: a repeat is a duplicate within the run (a
        64-bit hash keeps memory small; a collision would show as a finding, never pass)."""
        self._empty_before: bool | None = None
        """Whether the tenant had no events (or lines) when the run began, measured at its first file."""
        self.record: ImportRecord | None = None
        self._marks = (0, 0, 0, 0, 0)
        self._before = (0, 0)

    def take(self, path: Path, row: SourceRow) -> None:
        summary = self.summary
        summary.rows += 1
        if row.problems or row.record is None:
            summary.problems.extend(_problems(path, row, row.problems or [(None, "no record")]))
            summary.skipped += 1
            return
        if self.fmt.kind == "invoice_lines":
            line, found = validate_invoice_line(
                row.record, tenant=self.pipeline.tenant, source=self.pipeline.source
            )
            if line is None:
                summary.problems.extend(_problems(path, row, found))
                summary.skipped += 1
            else:
                summary.invoice_units += to_units(line.amount)
                self.lines.append(line)
            return
        values, found, dropped = self.pipeline.values(row.record)
        summary.content_fields_dropped += dropped
        if values is None:
            summary.problems.extend(_problems(path, row, found))
            summary.skipped += 1
            return
        stored = values_row(values)
        units = stored[_COST_UNITS]
        if units is None:
            summary.unpriced += 1
            summary.unpriced_tokens += sum(values.get(name, 0) for name in _UNPRICED_TOKENS)
        else:
            summary.cost_units += units
        self.rows.append(stored)

    @property
    def refused(self) -> bool:
        """Whether the import will be refused: then nothing more is worth writing."""
        return bool(self.summary.problems) and not self.skip_invalid

    def flush(self, connection: Any, *, final: bool = False) -> None:
        assert self.ledger is not None
        if len(self.rows) >= _BATCH or (final and self.rows):
            self.store(connection, self.rows)
            self.rows.clear()
        if len(self.lines) >= _BATCH or (final and self.lines):
            self.store_lines(connection, self.lines)
            self.lines.clear()

    # --- the control record of each file -------------------------------------------------------

    def start_file(self, path: Path, connection: Any) -> None:
        """Open the control record of *path*: what the store holds before it."""
        self.flush(connection, final=True)  # what earlier files left goes under their records
        summary, pipeline = self.summary, self.pipeline
        digest, size = _file_digest(path)
        number = len(summary.records)
        import_id = hashlib.sha256(
            f"{pipeline.tenant}\0{self.fmt.name}\0{digest}\0{self.started.isoformat()}\0{number}".encode()
        ).hexdigest()[:32]
        self.record = ImportRecord(
            import_id, pipeline.tenant, self.fmt.name, str(path), size, digest, self.started
        )
        self._marks = (
            summary.rows, summary.skipped, summary.content_fields_dropped, summary.unpriced,
            summary.invoice_units if self._lines else summary.cost_units,
        )  # fmt: skip
        if not self.refused:
            self._before = totals(connection, pipeline.tenant, lines=self._lines)
            if self._empty_before is None:
                self._empty_before = self._before[0] == 0

    def end_file(self, connection: Any) -> None:
        """Close the record: the rows' outcomes, and the store's own change, tied."""
        record, summary = self.record, self.summary
        assert record is not None
        if not self.refused:
            self.flush(connection, final=True)
            after = totals(connection, self.pipeline.tenant, lines=self._lines)
            record.ledger_added = after[0] - self._before[0]
            record.ledger_cost_change = after[1] - self._before[1]
        rows, skipped, dropped, unpriced, units = self._marks
        record.rows_read = summary.rows - rows
        record.skipped = summary.skipped - skipped
        record.content_fields_dropped = summary.content_fields_dropped - dropped
        record.unpriced = summary.unpriced - unpriced - record.tier_unpriced
        # What the rows cost as they were read, before anything was counted or stored.
        record.read_cost = (summary.invoice_units if self._lines else summary.cost_units) - units
        record.check()
        summary.records.append(record)
        self.record = None

    @property
    def _lines(self) -> bool:
        return self.fmt.kind == "invoice_lines"

    def _count(self, key: str, units: int) -> bool | None:
        """Count one valid row in the record: whether it is new to this run (``None``: no)."""
        record = self.record
        assert record is not None
        record.valid += 1
        marker = hash(key)
        if marker in self.seen:
            record.duplicates += 1
            record.duplicate_cost += units
            return None
        self.seen.add(marker)
        return True

    def _settle(self, first: list[tuple[str, int]], connection: Any) -> set[str]:
        """Rows first met in this run: already stored before it, or to be stored now (the keys
        returned)."""
        record = self.record
        assert record is not None
        # A row first met in this run is already stored only if it was before the run began
        # (rows of this run are in the seen-set): a tenant that had none needs no lookup.
        already = (
            set()
            if self._empty_before
            else existing_ids(
                connection, self.pipeline.tenant, (key for key, _ in first), lines=self._lines
            )
        )
        stored: set[str] = set()
        for key, units in first:
            if key in already:
                record.already_stored += 1
                record.already_stored_cost += units
            else:
                record.stored += 1
                record.stored_cost += units
                stored.add(key)
        return stored

    def store(self, connection: Any, rows: list[tuple[Any, ...]]) -> None:
        """Insert event rows, counting each in the current file's record first.

        Each step is one pass with its counts in locals: these run for every event of a big
        import, and the control record must cost little beside the insert itself."""
        assert self.ledger is not None
        new = self._first_met(rows)
        self._count_stored(self._not_stored_before(connection, new))
        self.ledger.insert_rows(connection, rows)

    def _first_met(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Count *rows* in the record (odd, tier-unpriced, their times, repeats of an id met
        earlier in this run); the rows first met."""
        record, seen = self.record, self.seen
        assert record is not None
        remember, new = seen.add, []
        odd = tier = duplicates = duplicate_cost = 0
        times = [row[_AT] for row in rows]
        for row in rows:
            if row[_QUALITY]:
                odd += 1
            if row[_COST_SOURCE] == "tier_unpriced":
                tier += 1
            # A 64-bit hash keeps memory small; a collision would show as a finding, never pass.
            marker = hash(row[_EVENT_ID])
            if marker in seen:
                duplicates += 1
                duplicate_cost += row[_COST_UNITS] or 0
            else:
                remember(marker)
                new.append(row)
        record.valid += len(rows)
        record.odd += odd
        record.tier_unpriced += tier
        record.duplicates += duplicates
        record.duplicate_cost += duplicate_cost
        if times:
            low, high = min(times), max(times)
            if record.first_event_us is None or low < record.first_event_us:
                record.first_event_us = low
            if record.last_event_us is None or high > record.last_event_us:
                record.last_event_us = high
        return new

    def _not_stored_before(
        self, connection: Any, new: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """Of the rows first met in this run, those the ledger did not hold before it (the
        others are counted as already stored)."""
        # A row first met in this run is already stored only if it was before the run began
        # (rows of this run are in the seen-set): a tenant that had none needs no lookup.
        if not new or self._empty_before:
            return new
        record = self.record
        assert record is not None
        already = existing_ids(connection, self.pipeline.tenant, (row[_EVENT_ID] for row in new))
        if not already:
            return new
        fresh = []
        for row in new:
            if row[_EVENT_ID] in already:
                record.already_stored += 1
                record.already_stored_cost += row[_COST_UNITS] or 0
            else:
                fresh.append(row)
        return fresh

    def _count_stored(self, fresh: list[tuple[Any, ...]]) -> None:
        """Count the rows to be stored, in all and per UTC day of their time."""
        record = self.record
        assert record is not None
        days, (a, b, c, d, e), stored_cost = record.days, _TOKENS, 0
        for row in fresh:
            units = row[_COST_UNITS] or 0
            stored_cost += units
            cell = days.get(day := row[_AT] // _DAY_US)
            if cell is None:
                cell = days[day] = [0, 0, 0]
            cell[0] += 1
            cell[1] += units
            cell[2] += row[a] + row[b] + row[c] + row[d] + row[e]
        record.stored += len(fresh)
        record.stored_cost += stored_cost

    def store_lines(self, connection: Any, lines: list[InvoiceLine]) -> None:
        """Insert invoice lines, counting each in the current file's record first."""
        assert self.ledger is not None
        first = []
        for line in lines:
            units = to_units(line.amount)
            if self._count(line.line_id, units):
                first.append((line.line_id, units))
        self._settle(first, connection)
        self.ledger.insert_invoice_lines(connection, lines)

    def read(self, path: Path, progress: Progress | None, connection: Any) -> None:
        """Read a file in this process, writing batches as they fill."""
        for row in self.fmt.read(path, progress):
            self.take(path, row)
            if self.refused:
                # The import will be refused: keep reading to list every problem, but stop
                # writing batches that the rollback would only throw away.
                self.rows.clear()
                self.lines.clear()
                continue
            self.flush(connection)

    def read_in_parts(
        self, workers: _Workers, path: Path, progress: Progress | None, connection: Any
    ) -> None:
        """Read a file in parts in the worker processes, writing each part's rows in order."""
        assert self.ledger is not None
        self.flush(connection, final=True)  # what earlier files left comes first
        lines_before = 0
        for span, rows, part, lines in workers.read(path):
            self.summary.add(part, lines_before=lines_before)
            lines_before += lines
            if progress:
                progress(span.end - span.start)
            if not self.refused:
                self.store(connection, rows)


def _file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 of the file's bytes as received, and their size."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def default_jobs() -> int:
    """How many worker processes read files in parts: one per CPU this process may use, at
    most :data:`_MAX_JOBS`."""
    usable = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere every CPU is usable
    cpus = len(usable(0)) if usable else os.cpu_count() or 1
    return min(cpus, _MAX_JOBS)


def spans(path: Path, size: int | None = None) -> Iterator[Span]:
    """The file at *path* cut into spans of whole lines of about *size* bytes each (default:
    what a worker reads at a time)."""
    size = size or _SPAN
    with path.open("rb") as handle:
        start = 0
        while handle.seek(start + size) and handle.read(1):
            handle.readline()  # up to the end of the line the span would stop in
            yield Span(start, handle.tell())
            start = handle.tell()
        end = handle.seek(0, os.SEEK_END)
        if end > start:
            yield Span(start, end)


_WORKER: tuple[Format, Pipeline] | None = None


def _start_worker(fmt: str, pipeline: Pipeline) -> None:
    global _WORKER  # noqa: PLW0603 (one worker process, one format and pipeline)
    _WORKER = (get_format(fmt), pipeline)


_Part = tuple[list[tuple[Any, ...]], ImportSummary, int]


def _read_part(path: Path, span: Span) -> _Part:
    """In a worker process: the rows of one span of a file, ready to insert, what was found
    (problems on lines numbered from the span's start) and how many lines the span holds."""
    assert _WORKER is not None
    fmt, pipeline = _WORKER
    assert fmt.parts is not None
    summary = ImportSummary()
    run = _Run(None, fmt, pipeline, summary)
    for row in fmt.parts.read(path, span):
        run.take(path, row)
    return run.rows, summary, span_line_count(path, span)


class _Workers:
    """Worker processes that read big JSON Lines files in parts, in parallel: validating,
    pricing and attributing each part's rows, which this process then writes in file order.
    Started when the first such file comes; a file set without one starts none."""

    def __init__(self, fmt: Format, pipeline: Pipeline, jobs: int) -> None:
        self.fmt, self.pipeline, self.jobs = fmt, pipeline, jobs
        self.pool: ProcessPoolExecutor | None = None

    def wanted(self, path: Path) -> bool:
        """Whether the file is big and of a kind worth reading in parts."""
        parts = self.fmt.parts
        if self.jobs < 2 or parts is None or self.fmt.kind != "events":
            return False
        return path.stat().st_size >= _PARTS_FROM and parts.applies(path)

    def read(self, path: Path) -> Iterator[tuple[Span, list[tuple[Any, ...]], ImportSummary, int]]:
        """Each span of the file with what :func:`_read_part` makes of it, in file order; at
        most four parts per worker are in flight, so memory stays flat whatever the file's size."""
        if self.pool is None:
            # spawn: the parent may run threads (the progress display), which fork would copy.
            self.pool = ProcessPoolExecutor(
                self.jobs, get_context("spawn"), _start_worker, (self.fmt.name, self.pipeline)
            )
        pending: deque[tuple[Span, Future[_Part]]] = deque()
        cut = spans(path)
        try:
            while True:
                while len(pending) < 4 * self.jobs and (span := next(cut, None)) is not None:
                    pending.append((span, self.pool.submit(_read_part, path, span)))
                if not pending:
                    return
                span, future = pending.popleft()
                yield span, *future.result()
        except BrokenProcessPool:
            raise ImportFailed(
                f"{path}: a worker process reading it stopped unexpectedly; nothing was imported",
                hint="import with --jobs 1 (jobs=1) to read it in this process",
            ) from None
        finally:
            for _, future in pending:
                future.cancel()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def import_files(
    ledger: Ledger,
    paths: Sequence[Path],
    *,
    tenant: str,
    fmt: str = "events",
    skip_invalid: bool = False,
    progress: Progress | None = None,
    config: Config | None = None,
    jobs: int | None = None,
) -> ImportSummary:
    """Import files of one format into the tenant's ledger, all or nothing.

    Big JSON Lines files are read in parts by *jobs* worker processes (default: one per CPU,
    at most four; 1 reads everything in this process); the outcome is the same either way.
    The workers are spawned, so a script calling this with more than one job must guard its
    entry point with ``if __name__ == "__main__":``, as :mod:`multiprocessing` requires.

    Raises:
        ImportRejected: a file has problems and *skip_invalid* is false; nothing was stored.
        ConfigError: the format name is unknown.
        ImportFailed: a file cannot be opened, or a worker reading it stopped.
    """
    reader = get_format(fmt)
    for path in paths:
        if not path.is_file():
            raise ImportFailed(f"{path}: no such file")
    summary = ImportSummary(files=len(paths))
    registered = get_tenant(ledger, tenant)
    pipeline = Pipeline(
        tenant=tenant, source=f"import:{fmt}", config=config,
        retention_days=None if registered is None else registered.retention_days,
    )  # fmt: skip
    run = _Run(ledger, reader, pipeline, summary, skip_invalid=skip_invalid)
    workers = _Workers(reader, pipeline, default_jobs() if jobs is None else jobs)
    try:
        with ledger.transaction(bulk=True) as connection:
            events_before = ledger.count(tenant, connection=connection)
            lines_before = ledger.count_invoice_lines(tenant, connection=connection)
            for path in paths:
                run.start_file(path, connection)
                if workers.wanted(path):
                    run.read_in_parts(workers, path, progress, connection)
                else:
                    run.read(path, progress, connection)
                run.end_file(connection)
            if run.refused:
                # Raising inside the transaction rolls back every batch already sent.
                raise ImportRejected(summary.problems, summary.rows)
            run.flush(connection, final=True)
            record_imports(connection, summary.records)
            new_lines = ledger.count_invoice_lines(tenant, connection=connection) - lines_before
            summary.new = ledger.count(tenant, connection=connection) - events_before + new_lines
            summary.invoice_lines = new_lines
    except ImportRejected as rejected:
        # Nothing was stored, and the records say so: the refusal leaves its trace too.
        for record in summary.records:
            record.refuse()
        with ledger.transaction() as connection:
            record_imports(connection, summary.records)
        rejected.records = summary.records
        raise
    finally:
        workers.close()
    summary.duplicates = summary.rows - summary.skipped - summary.new
    return summary
