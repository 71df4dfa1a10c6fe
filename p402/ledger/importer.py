"""Import files into the ledger: read (any format) → validate → price → attribute → store.

All or nothing: every problem in every file is collected (file, line or JSON path, field),
and a file set with problems imports nothing unless ``skip_invalid`` is asked for, in which
case the good rows are imported and the bad ones counted. Re-importing the same rows changes
nothing: events are idempotent on ``(tenant, event_id)``, invoice lines on their line id.
Files are streamed; memory does not grow with their size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from p402.config import Config
from p402.errors import P402Error
from p402.ledger.attribution import Attributor
from p402.ledger.events import Event
from p402.ledger.formats import Format, Progress, SourceRow, get_format
from p402.ledger.invoices import InvoiceLine, validate_invoice_line
from p402.ledger.pricing import Pricer
from p402.ledger.problems import FieldProblems, Problem
from p402.ledger.store import Ledger
from p402.ledger.tenants import get_tenant
from p402.ledger.validation import check_row
from p402.money import MAX_EVENT_COST, to_units

__all__ = ["ImportRejected", "ImportSummary", "Pipeline", "import_files"]

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
    unpriced_tokens: int = 0
    content_fields_dropped: int = 0
    cost_units: int = 0
    invoice_lines: int = 0
    problems: list[Problem] = field(default_factory=list)


class Pipeline:
    """validate → price → attribute, for one tenant and source; the same for every entry point."""

    def __init__(
        self,
        *,
        tenant: str,
        source: str,
        config: Config | None = None,
        retention_days: int | None = None,
    ) -> None:
        config = config or Config()
        self.tenant, self.source = tenant, source
        self.config = config
        self.retention = self.retention_of(retention_days)
        self.pricer = Pricer(config.prices)
        self.attributor = Attributor(config.rules)

    def retention_of(self, retention_days: int | None) -> timedelta | None:
        """How long this tenant's events are kept: the registered tenant's retention, else the
        configuration's ``[tenant]`` one when it names this tenant, else no limit."""
        config = self.config
        if retention_days is None and config.tenant is not None and config.tenant.id == self.tenant:
            retention_days = config.tenant.retention_days
        return None if retention_days is None else timedelta(days=retention_days)

    def event(self, raw: dict[str, object]) -> tuple[Event | None, FieldProblems, int]:
        """The stored form of one raw row, or its problems; and how many content fields were dropped."""
        # The event is built once, from the checked values with their cost basis and retention
        # added: what validate, Pricer.apply and a retention stamp would give, without copies.
        values, problems, dropped_content = check_row(raw, tenant=self.tenant, source=self.source)
        dropped = len(dropped_content)
        if values is None:
            return None, problems, dropped
        changes = self.pricer.basis(values)
        if changes is not None:
            values.update(changes)
        for name in ("cost", "list_cost"):
            amount = values.get(name)
            if amount is not None and amount > MAX_EVENT_COST:
                # Only absurd token counts get here; stored units would overflow 64 bits.
                message = f"its tokens price at {amount:.2f} USD, beyond the {MAX_EVENT_COST} an event may hold"
                return None, [(None, message)], dropped
        if self.retention is not None and values.get("retention_until") is None:
            values["retention_until"] = values["occurred_at"] + self.retention
        return self.attributor.apply(Event.assemble(values)), [], dropped


def _problems(path: Path, row: SourceRow, found: FieldProblems) -> list[Problem]:
    return [Problem(str(path), row.line, name, message, row.path) for name, message in found]


class _Run:
    """One import: counts, problems and the batches waiting to be written."""

    def __init__(
        self, ledger: Ledger, fmt: Format, pipeline: Pipeline, summary: ImportSummary
    ) -> None:
        self.ledger, self.fmt, self.pipeline, self.summary = ledger, fmt, pipeline, summary
        self.events: list[Event] = []
        self.lines: list[InvoiceLine] = []

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
                self.lines.append(line)
            return
        item, found, dropped = self.pipeline.event(row.record)
        summary.content_fields_dropped += dropped
        if item is None:
            summary.problems.extend(_problems(path, row, found))
            summary.skipped += 1
            return
        if item.cost is None:
            summary.unpriced += 1
            summary.unpriced_tokens += (
                item.input_tokens + item.cache_read_tokens + item.cache_write_tokens
            )
            summary.unpriced_tokens += item.cache_write_1h_tokens + item.output_tokens
        else:
            summary.cost_units += to_units(item.cost)
        self.events.append(item)

    def flush(self, connection: object, *, final: bool = False) -> None:
        if len(self.events) >= _BATCH or (final and self.events):
            self.ledger.insert(connection, self.events)  # type: ignore[arg-type]
            self.events.clear()
        if len(self.lines) >= _BATCH or (final and self.lines):
            self.ledger.insert_invoice_lines(connection, self.lines)  # type: ignore[arg-type]
            self.lines.clear()


def import_files(
    ledger: Ledger,
    paths: Sequence[Path],
    *,
    tenant: str,
    fmt: str = "events",
    skip_invalid: bool = False,
    progress: Progress | None = None,
    config: Config | None = None,
) -> ImportSummary:
    """Import files of one format into the tenant's ledger, all or nothing.

    Raises:
        ImportRejected: a file has problems and *skip_invalid* is false; nothing was stored.
        ConfigError: the format name is unknown.
        P402Error: a file cannot be opened.
    """
    reader = get_format(fmt)
    for path in paths:
        if not path.is_file():
            raise P402Error(f"{path}: no such file")
    summary = ImportSummary(files=len(paths))
    registered = get_tenant(ledger, tenant)
    pipeline = Pipeline(
        tenant=tenant, source=f"import:{fmt}", config=config,
        retention_days=None if registered is None else registered.retention_days,
    )  # fmt: skip
    run = _Run(ledger, reader, pipeline, summary)
    with ledger.transaction() as connection:
        events_before = ledger.count(tenant, connection=connection)
        lines_before = ledger.count_invoice_lines(tenant, connection=connection)
        for path in paths:
            for row in reader.read(path, progress):
                run.take(path, row)
                if summary.problems and not skip_invalid:
                    # The import will be refused: keep reading to list every problem, but
                    # stop writing batches that the rollback would only throw away.
                    run.events.clear()
                    run.lines.clear()
                    continue
                run.flush(connection)
        if summary.problems and not skip_invalid:
            # Raising inside the transaction rolls back every batch already sent.
            raise ImportRejected(summary.problems, summary.rows)
        run.flush(connection, final=True)
        new_lines = ledger.count_invoice_lines(tenant, connection=connection) - lines_before
        summary.new = ledger.count(tenant, connection=connection) - events_before + new_lines
        summary.invoice_lines = new_lines
    summary.duplicates = summary.rows - summary.skipped - summary.new
    return summary
