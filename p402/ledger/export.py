"""Export a tenant's ledger, whole or for a period, as a file other tools read.

Four formats, all streamed from :meth:`~p402.ledger.store.Ledger.stream` (oldest first, ties by
event id), so the whole ledger is never in memory and the same ledger always gives the same file:

- ``jsonl``: exactly :meth:`Event.to_json` per line, the canonical contract (``p402 import
  events`` reads it back);
- ``csv``: the canonical fields as columns, RFC 4180 (CRLF, quoted as needed), tags as JSON
  text, money as plain decimal strings (``p402 import events`` reads it back too);
- ``parquet``: the same columns, typed: money ``decimal128(38, 12)`` (the storage unit, exact),
  times ``timestamp[us, UTC]``, counts ``int64``; written in row groups of
  :data:`PARQUET_BATCH` rows;
- ``focus``: FinOps FOCUS 1.2 cost-and-usage rows, one per event (:func:`focus_row` says how
  each column is filled), as CSV or, when the file name ends in ``.parquet``, Parquet.

The file is written beside its final name and renamed into place at the end, so a failed export
leaves nothing half-written behind, and an existing file is never replaced unless asked.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import orjson

from p402.cells import neutralised
from p402.errors import P402Error
from p402.ledger.events import ATTRIBUTION_FIELDS, FIELDS, Event
from p402.money import format_amount, from_units, to_units
from p402.period import Period, format_time

if TYPE_CHECKING:
    from p402.ledger.store import Ledger

__all__ = [
    "CANONICAL_COLUMNS",
    "FOCUS_COLUMNS",
    "FORMATS",
    "PARQUET_BATCH",
    "ExportError",
    "ExportSummary",
    "export_ledger",
    "focus_row",
]

FORMATS: Final = ("jsonl", "csv", "parquet", "focus")
PARQUET_BATCH: Final = 50_000
"""Rows per Parquet row group: what is held in memory at once."""
_PROGRESS_EVERY = 2_000
_STAGE = "Exporting"

Step = Callable[[str, int, int], None]
"""``step(stage, done, total)``, as :meth:`p402.progress.Bar.step` takes it."""


class ExportError(P402Error):
    """The export cannot be written: an unknown format, or a file that would be replaced."""

    code = "export_refused"


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote."""

    count: int
    """Events written."""
    total: Decimal
    """The exact sum of their costs (unpriced events count as nothing), unrounded."""
    unpriced: int
    """Events with no cost (written with cost zero and ``x_Unpriced`` in FOCUS)."""
    path: Path


# --- columns -------------------------------------------------------------------------------------
# Each column has a kind, which says how it is written as text (CSV) and typed (Parquet).
Kind = str  # "text" | "int" | "money" | "decimal" | "quantity" | "time" | "bool" | "json"
# money: an amount, as the canonical formats write it ("2.5", "0"). decimal and quantity: FOCUS
# Decimal columns, whose CSV text always has a decimal point ("2.5", "0.0", "1200.0"): readers
# that infer types from CSV text (the FOCUS validator among them) would take "0" or "1200" for
# integers, and FOCUS requires a Decimal. decimal is an amount, quantity a count of tokens.

_CANONICAL_KINDS: Final[dict[str, Kind]] = {
    "occurred_at": "time", "retention_until": "time", "requests": "int",
    "input_tokens": "int", "cache_read_tokens": "int", "cache_write_tokens": "int",
    "cache_write_1h_tokens": "int", "output_tokens": "int", "reasoning_tokens": "int",
    "web_search_calls": "int", "file_search_calls": "int",
    "cost": "money", "list_cost": "money", "tool_cost": "money", "batch": "bool", "tags": "json",
}  # fmt: skip
CANONICAL_COLUMNS: Final = tuple((name, _CANONICAL_KINDS.get(name, "text")) for name in FIELDS)

FOCUS_COLUMNS: Final[tuple[tuple[str, Kind], ...]] = (
    # Mandatory in FOCUS 1.2
    ("BilledCost", "decimal"), ("BillingAccountId", "text"), ("BillingAccountName", "text"),
    ("BillingCurrency", "text"), ("BillingPeriodEnd", "time"), ("BillingPeriodStart", "time"),
    ("ChargeCategory", "text"), ("ChargeClass", "text"), ("ChargeDescription", "text"),
    ("ChargePeriodEnd", "time"), ("ChargePeriodStart", "time"), ("ContractedCost", "decimal"),
    ("EffectiveCost", "decimal"), ("InvoiceIssuerName", "text"), ("ListCost", "decimal"),
    ("PricingQuantity", "quantity"), ("PricingUnit", "text"), ("ProviderName", "text"),
    ("PublisherName", "text"), ("ServiceCategory", "text"), ("ServiceName", "text"),
    # Conditional and recommended ones p402 knows
    ("ChargeFrequency", "text"), ("CommitmentDiscountStatus", "text"),
    ("ConsumedQuantity", "quantity"), ("ConsumedUnit", "text"),
    ("InvoiceId", "text"), ("ServiceSubcategory", "text"), ("SkuId", "text"),
    ("SkuPriceId", "text"), ("Tags", "json"),
    # p402's own, prefixed x_ as the specification requires of custom columns
    ("x_EventId", "text"), ("x_OccurredAt", "time"), ("x_Model", "text"), ("x_Operation", "text"),
    ("x_Requests", "int"), ("x_InputTokens", "int"), ("x_CacheReadTokens", "int"),
    ("x_CacheWriteTokens", "int"), ("x_CacheWrite1hTokens", "int"), ("x_OutputTokens", "int"),
    ("x_ReasoningTokens", "int"), ("x_CostSource", "text"), ("x_Unpriced", "bool"),
    ("x_PriceRef", "text"), ("x_ServiceTier", "text"), ("x_Batch", "bool"),
    ("x_ApiKeyId", "text"), ("x_ProviderProjectId", "text"), ("x_WorkspaceId", "text"),
    ("x_UserId", "text"), ("x_AttributionRule", "text"), ("x_PolicyDecision", "text"),
    ("x_Policy", "text"), ("x_Outcome", "text"), ("x_EvidenceStatus", "text"), ("x_Source", "text"),
)  # fmt: skip
"""The FOCUS columns written, in order, with their kinds (ids and types: FOCUS 1.2)."""

# (provider id) -> (display name, service name). A provider not listed is shown by its own id.
_PROVIDERS: Final = {
    "openai": ("OpenAI", "OpenAI API"),
    "anthropic": ("Anthropic", "Claude API"),
    "google": ("Google", "Gemini API"),
    "gemini": ("Google", "Gemini API"),
    "vertex": ("Google", "Vertex AI"),
    "bedrock": ("Amazon Web Services", "Amazon Bedrock"),
    "azure": ("Microsoft", "Azure OpenAI"),
    "openrouter": ("OpenRouter", "OpenRouter API"),
    "mistral": ("Mistral AI", "Mistral API"),
    "cohere": ("Cohere", "Cohere API"),
    "meta": ("Meta", "Llama API"),
    "amazon": ("Amazon Web Services", "Amazon Bedrock"),
}
# Marketplaces resell other publishers' models; the model id names the publisher.
_MARKETPLACES: Final = {"bedrock": ".", "openrouter": "/", "azure": "/"}
_BEDROCK_REGIONS: Final = frozenset({"us", "eu", "apac", "global", "jp", "au", "ca", "us-gov"})
_ZERO = Decimal(0)


def _display(provider: str) -> str:
    return _PROVIDERS.get(provider, (provider, ""))[0]


def _publisher(provider: str, model: str) -> str:
    separator = _MARKETPLACES.get(provider)
    if separator is None or separator not in model:
        return _display(provider)
    parts = model.split(separator)
    if separator == "." and parts[0] in _BEDROCK_REGIONS and len(parts) > 2:
        parts = parts[1:]  # a cross-region inference profile: us.anthropic.claude-...
    return _display(parts[0])


def _month(moment: datetime) -> tuple[datetime, datetime]:
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    after = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return start, after


def _tokens(event: Event) -> int:
    # reasoning_tokens are part of output_tokens (validation enforces it): not added again.
    return (
        event.input_tokens + event.cache_read_tokens + event.cache_write_tokens
        + event.cache_write_1h_tokens + event.output_tokens
    )  # fmt: skip


def _tags(event: Event) -> dict[str, str]:
    tags = dict(event.tags)
    for name in ATTRIBUTION_FIELDS:  # the attribution fields win over an event tag of that name
        value = getattr(event, name)
        if value is not None:
            tags[name] = value
    return tags


def focus_row(event: Event) -> tuple[Any, ...]:
    """The event as one FOCUS 1.2 cost-and-usage row, in :data:`FOCUS_COLUMNS` order.

    One row per event, ``ChargeCategory`` ``Usage``. The charge period is the whole second the
    call happened in (FOCUS times have no fractions; ``x_OccurredAt`` keeps the exact time), and
    the billing period is the calendar month (UTC) of the call. ``ConsumedQuantity`` and
    ``PricingQuantity`` are the total tokens (input, cache reads and writes, output; reasoning
    tokens are part of output), in ``Tokens``. ``InvoiceId`` is null: an event is a call, not a
    line of an issued invoice (p402 keeps invoice lines apart). ``CommitmentDiscountStatus`` is
    null (no commitment discount applies to a token charge) and is written anyway: focus-validator
    2.2 checks ``ConsumedQuantity`` with SQL that names it, and fails when it is missing. The
    attribution (department, customer, workflow,
    owner, employee, project, feature) and the event's own tags are ``Tags``.

    Costs: ``BilledCost``, ``EffectiveCost`` and ``ContractedCost`` are the event's cost (what
    the provider reported, or the price table's cost of the tokens); ``ListCost`` is the price
    table's cost when the event carries one beside a reported cost, else the cost itself.

    An unpriced event (a model with no known price and no reported cost) still becomes a row:
    FOCUS makes every cost column mandatory and non-null, and has no "unknown" value, so its
    four costs are written as ``0`` and ``x_Unpriced`` is ``true`` (``x_CostSource`` says
    ``unpriced``). That zero means *not known*, not *free*: a FOCUS total understates spend by
    the unpriced events, which p402's own reports list separately.
    """
    billing_start, billing_end = _month(event.occurred_at)
    charge_start = event.occurred_at.replace(microsecond=0)
    cost = _ZERO if event.cost is None else event.cost
    listed = event.list_cost if event.list_cost is not None else cost
    provider = event.provider
    display, service = _PROVIDERS.get(provider, (provider, f"{provider} API"))
    tokens = Decimal(_tokens(event))
    tier = event.service_tier or "default"
    return (
        cost, event.tenant, event.tenant, event.currency, billing_end, billing_start,
        "Usage", None, f"{event.model} {event.operation or 'usage'}, {int(tokens):,} tokens",
        charge_start + timedelta(seconds=1), charge_start, cost,
        cost, display, listed,
        tokens, "Tokens", display,
        _publisher(provider, event.model), "AI and Machine Learning", service,
        "Usage-Based", None, tokens, "Tokens",
        None, "Generative AI", event.model, f"{event.model}:{tier}{':batch' if event.batch else ''}",
        _tags(event),
        event.event_id, event.occurred_at, event.model, event.operation,
        event.requests, event.input_tokens, event.cache_read_tokens,
        event.cache_write_tokens, event.cache_write_1h_tokens, event.output_tokens,
        event.reasoning_tokens, event.cost_source, event.cost is None,
        event.price_ref, event.service_tier, event.batch,
        event.api_key_id, event.provider_project_id, event.workspace_id,
        event.user_id, event.attribution_rule, event.policy_decision,
        event.policy, event.outcome, event.evidence_status, event.source,
    )  # fmt: skip


def _canonical_row(event: Event) -> tuple[Any, ...]:
    return tuple(
        getattr(event, name) if name != "tags" else dict(event.tags)
        for name, _ in CANONICAL_COLUMNS
    )


# --- writers -------------------------------------------------------------------------------------


def _decimal_text(value: Decimal) -> str:
    text = format_amount(value)
    return text if "." in text else f"{text}.0"


def _json_text(value: dict[str, str]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


_TEXT: Final[dict[Kind, Callable[[Any], str]]] = {
    "text": str, "int": str, "money": format_amount, "decimal": _decimal_text,
    "quantity": _decimal_text, "time": format_time, "bool": lambda value: "true" if value else "false",
    "json": _json_text,
}  # fmt: skip
"""How each kind of cell is written as text: exact decimals, RFC 3339 times, JSON objects."""


def _text_cell(value: Any) -> str:
    return neutralised(str(value))


class _CsvSink:
    """Rows as RFC 4180 CSV: a header, CRLF line ends, quoted as needed, null as empty, and a
    text that starts like a formula neutralised (:func:`neutralised`)."""

    def __init__(self, handle: IO[str], columns: Sequence[tuple[str, Kind]]) -> None:
        self._texts = [_text_cell if kind == "text" else _TEXT[kind] for _, kind in columns]
        self._writer = csv.writer(handle, lineterminator="\r\n")
        self._writer.writerow([name for name, _ in columns])

    def write(self, row: tuple[Any, ...]) -> None:
        cells = zip(self._texts, row, strict=True)
        self._writer.writerow(["" if value is None else text(value) for text, value in cells])


class _ParquetSink:
    """Rows buffered by column, written a row group at a time."""

    def __init__(self, path: Path, columns: Sequence[tuple[str, Kind]], *, batch: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {
            "text": pa.string(), "int": pa.int64(), "money": pa.decimal128(38, 12),
            "decimal": pa.decimal128(38, 12),
            "quantity": pa.decimal128(38, 0), "time": pa.timestamp("us", tz="UTC"),
            "bool": pa.bool_(), "json": pa.string(),
        }  # fmt: skip
        self._pa = pa
        self._kinds = [kind for _, kind in columns]
        self._schema = pa.schema([pa.field(name, types[kind]) for name, kind in columns])
        self._writer = pq.ParquetWriter(path, self._schema)
        self._columns: list[list[Any]] = [[] for _ in columns]
        self._batch = batch

    def write(self, row: tuple[Any, ...]) -> None:
        for cells, kind, value in zip(self._columns, self._kinds, row, strict=True):
            cells.append(_json_text(value) if kind == "json" else value)
        if len(self._columns[0]) >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Write the rows held as one row group."""
        if not self._columns[0]:
            return
        arrays = [
            self._pa.array(cells, type=field.type)
            for cells, field in zip(self._columns, self._schema, strict=True)
        ]
        self._writer.write_batch(self._pa.record_batch(arrays, schema=self._schema))
        for cells in self._columns:
            cells.clear()

    def close(self) -> None:
        """Finish the file (its footer); rows not flushed are dropped."""
        self._writer.close()


# --- the export ----------------------------------------------------------------------------------


def _focus_as_parquet(out: Path) -> bool:
    return out.suffix.lower() == ".parquet"


@contextmanager
def _staged(out: Path, *, overwrite: bool) -> Iterator[Path]:
    """A temporary path beside *out*, renamed to *out* when the block succeeds."""
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists", hint="give --force to replace it")
    if out.is_dir():
        raise ExportError(f"{out} is a folder", hint="give a file name to --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        yield partial
        partial.replace(out)
    finally:
        with suppress(FileNotFoundError):
            partial.unlink()


def _rows(
    events: Iterator[Event], fmt: str, write: Callable[[tuple[Any, ...]], None], tally: _Tally
) -> None:
    build = focus_row if fmt == "focus" else _canonical_row
    for event in events:
        tally.add(event)
        write(build(event))


class _Tally:
    """Counts and sums what is written, and reports progress."""

    def __init__(self, step: Step | None, total: int) -> None:
        self.count = 0
        self.units = 0
        self.unpriced = 0
        self._step = step
        self._total = total

    def add(self, event: Event) -> None:
        self.count += 1
        if event.cost is None:
            self.unpriced += 1
        else:
            self.units += to_units(event.cost)
        if self._step is not None and self.count % _PROGRESS_EVERY == 0:
            self._step(_STAGE, self.count, self._total)


def export_ledger(
    ledger: Ledger,
    *,
    tenant: str,
    period: Period | None,
    fmt: str,
    out: Path,
    step: Step | None = None,
    overwrite: bool = False,
    batch: int = PARQUET_BATCH,
) -> ExportSummary:
    """Write the tenant's events (in *period*, or all of them) to *out* in format *fmt*.

    Args:
        ledger: the store to read.
        tenant: whose events; no other tenant's event is ever read.
        period: the window, or ``None`` for the whole ledger of the tenant.
        fmt: one of :data:`FORMATS`. ``focus`` writes Parquet when *out* ends in ``.parquet``,
            CSV otherwise.
        out: the file to write.
        step: progress callback, ``step(stage, done, total)``.
        overwrite: replace *out* if it exists (otherwise that is an error).
        batch: rows per Parquet row group.

    Returns:
        How many events were written, their exact total cost, and the path.

    Raises:
        ExportError: *fmt* is unknown, or *out* exists and *overwrite* is false.
    """
    if fmt not in FORMATS:
        raise ExportError(
            f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}"
        )
    total = ledger.count(tenant, period)
    tally = _Tally(step, total)
    if step is not None:
        step(_STAGE, 0, total)
    with _staged(out, overwrite=overwrite) as partial:
        events = ledger.stream(tenant, period)
        if fmt == "jsonl":
            with partial.open("wb") as handle:
                for event in events:
                    tally.add(event)
                    handle.write(orjson.dumps(event.to_json()) + b"\n")
        elif fmt == "parquet" or (fmt == "focus" and _focus_as_parquet(out)):
            columns = FOCUS_COLUMNS if fmt == "focus" else CANONICAL_COLUMNS
            sink = _ParquetSink(partial, columns, batch=batch)
            try:
                _rows(events, fmt, sink.write, tally)
                sink.flush()
            finally:
                sink.close()
        else:
            columns = FOCUS_COLUMNS if fmt == "focus" else CANONICAL_COLUMNS
            with partial.open("w", encoding="utf-8", newline="") as text:
                _rows(events, fmt, _CsvSink(text, columns).write, tally)
    if step is not None:
        step(_STAGE, tally.count, total)
    return ExportSummary(tally.count, from_units(tally.units), tally.unpriced, out)
