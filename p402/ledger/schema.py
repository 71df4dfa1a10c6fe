"""The ledger's tables, and how events and invoice lines become rows and back.

Money is integer units of 10^-12 USD (``BIGINT``) and times are integer microseconds since the
epoch (UTC) on every store, so SQLite and PostgreSQL hold the same values and sort them the
same way. ``SCHEMA_VERSION`` changes whenever a table does; a ledger of another version is
refused with a clear message rather than failing on a missing column.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter, itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from p402.ledger.events import (
    ATTRIBUTION_FIELDS,
    DEFAULTS,
    SOURCE_ID_FIELDS,
    TOKEN_FIELDS,
    TOOL_FIELDS,
    Event,
)
from p402.ledger.invoices import INVOICE_TEXT_FIELDS, InvoiceLine
from p402.money import format_amount, from_units, to_units
from p402.period import format_time, micros, moment

__all__ = [
    "CAPTURE_COUNTS",
    "EVENT_COLUMNS",
    "SCHEMA_VERSION",
    "TENANT_TABLES",
    "api_keys_table",
    "audits_table",
    "budget_holds_table",
    "budget_windows_table",
    "capture_days_table",
    "captures_table",
    "event_from_row",
    "event_row",
    "events_table",
    "invoice_line_row",
    "invoice_lines_table",
    "ledger_entries_table",
    "log_heads_table",
    "meta_table",
    "metadata",
    "record_from_row",
    "sessions_table",
    "tenants_table",
]

SCHEMA_VERSION = 6
"""2: events and invoice lines; 3: adds tenants, API keys, signed ledger entries, audits and
the tenants' audit logs; 4: tool charges and import control records; 5: the meter's and the
proxy's capture counts; 6: hard budgets' shared windows and holds, API keys' fixed
attribution, whether a tenant's meter clients may shorten retention, and the page's sessions.
Each version is an Alembic revision of ``p402/ledger/migrations`` (``p402 db upgrade``)."""
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite only auto-increments INTEGER
SOURCE_KEYS = (*ATTRIBUTION_FIELDS, "attribution_rule")
"""What ``source_attribution`` records: the attribution the source gave, before any rule."""

metadata = MetaData()
meta_table = Table(
    "p402_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
_text_columns = (
    "provider", "model", "operation", "currency", "cost_source", "price_ref",
    *ATTRIBUTION_FIELDS, "attribution_rule", *SOURCE_ID_FIELDS, "service_tier",
    "policy_decision", "policy", "outcome", "evidence_status", "source", "quality",
)  # fmt: skip
events_table = Table(
    "events",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    # Values read straight off the event first, computed ones after: see event_row.
    Column("tenant", String(64), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("requests", BigInteger, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in TOKEN_FIELDS),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in TOOL_FIELDS),
    *(
        Column(name, Text if name == "price_ref" else String(200), nullable=True)
        for name in _text_columns
    ),
    Column("batch", Boolean, nullable=False),
    Column("occurred_at_us", BigInteger, nullable=False),
    Column("cost_units", BigInteger, nullable=True),
    Column("list_cost_units", BigInteger, nullable=True),
    Column("tool_cost_units", BigInteger, nullable=True),
    Column("tags", Text, nullable=False),
    Column("retention_until_us", BigInteger, nullable=True),
    Column("source_attribution", Text, nullable=True),
    UniqueConstraint("tenant", "event_id", name="uq_events_tenant_event_id"),
    Index("ix_events_tenant_time", "tenant", "occurred_at_us", "event_id"),
)
# Plain str: column names are quoted_name, a str subclass that orjson refuses as a key.
EVENT_COLUMNS = tuple(str(column.name) for column in events_table.columns if column.name != "id")

invoice_lines_table = Table(
    "invoice_lines",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("line_id", String(200), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    *(Column(name, String(200), nullable=True) for name in INVOICE_TEXT_FIELDS),
    Column("source", String(64), nullable=False),
    UniqueConstraint("tenant", "line_id", name="uq_invoice_lines_tenant_line_id"),
    Index("ix_invoice_lines_tenant_time", "tenant", "start_us"),
)

imports_table = Table(
    "imports",
    metadata,
    # One control record per file an import read (see ledger/imports.py): what was read, stored,
    # found already stored, repeated, skipped or odd, and whether it all ties.
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("import_id", String(64), nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    Column("format", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("body", Text, nullable=False),  # RFC 8785 canonical JSON of the whole record
    UniqueConstraint("tenant", "import_id", name="uq_imports_tenant_import_id"),
    Index("ix_imports_tenant_time", "tenant", "recorded_at_us"),
)

CAPTURE_COUNTS = (
    "requests_refused", "received", "accepted", "duplicates", "rejected",
    "content_fields_dropped", "odd", "unpriced", "tier_unpriced", "accepted_units",
    "duplicate_units",
)  # fmt: skip
"""The counts of a capture day, in column order (``*_units``: exact cost, 10^-12 USD)."""
captures_table = Table(
    "capture_counts",
    metadata,
    # What the meter and the proxy did with what they received, per tenant, channel and UTC day
    # of arrival (see ledger/captures.py): counted in the transaction that stores the events, so
    # the counts and the ledger cannot disagree by a crash.
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("day", Integer, nullable=False),  # days since 1970-01-01 (UTC) of arrival
    # The process that counted (one row each: two never wait on each other's row locks).
    Column("writer", BigInteger, nullable=False, server_default="0"),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in CAPTURE_COUNTS),
    Column("updated_at_us", BigInteger, nullable=False),
    UniqueConstraint(
        "tenant", "channel", "day", "writer", name="uq_capture_counts_tenant_channel_day"
    ),
)
capture_days_table = Table(
    "capture_days",
    metadata,
    # The events a capture day accepted, by the UTC day of their own time: what an audit
    # period's share of that day's capture is.
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("day", Integer, nullable=False),
    Column("writer", BigInteger, nullable=False, server_default="0"),
    Column("event_day", Integer, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("units", BigInteger, nullable=False),
    Column("tokens", BigInteger, nullable=False),
    UniqueConstraint(
        "tenant",
        "channel",
        "day",
        "writer",
        "event_day",
        name="uq_capture_days_tenant_channel_days",
    ),
    Index("ix_capture_days_tenant_event_day", "tenant", "event_day"),
)

tenants_table = Table(
    "tenants",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("name", String(200), nullable=True),
    Column("retention_days", Integer, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    # Whether meter clients may ask for a shorter retention than the tenant's (retention_until).
    Column("client_retention", Boolean, nullable=False, server_default="0"),
)
api_keys_table = Table(
    "api_keys",
    metadata,
    # The public half of a key ("p402_<key_id>_<secret>"); the secret is kept only as a hash.
    Column("key_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("label", String(200), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("revoked_at_us", BigInteger, nullable=True),
    # JSON object of attribution fields the key always spends as (set when it is created; a
    # call's headers cannot change them), or NULL.
    Column("attribution", Text, nullable=True),
)
sessions_table = Table(
    "sessions",
    metadata,
    # The HTML page's sign-ins: the cookie holds a random session id, this table only its hash,
    # the tenant and the key it was opened with (revoking the key ends it; signing out deletes it).
    Column("session_sha256", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("key_id", String(32), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
)
budget_windows_table = Table(
    "budget_windows",
    metadata,
    # A hard budget's spend in one window, shared by every p402 serve process of the database
    # (see serve/budgets.py): admissions lock this row; NULL spend is not read from the ledger yet.
    Column("tenant", String(64), primary_key=True),
    Column("budget", String(200), primary_key=True),
    Column("value", String(200), primary_key=True),
    Column("window_start_us", BigInteger, primary_key=True),
    Column("spent_units", BigInteger, nullable=True),
    Column("seeded_at_us", BigInteger, nullable=True),
)
budget_holds_table = Table(
    "budget_holds",
    metadata,
    # What a call in flight may cost, reserved at admission and released when its event is
    # stored; a hold older than its expiry (a process that died) counts no more.
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("hold_id", String(64), nullable=False, index=True),
    Column("tenant", String(64), nullable=False),
    Column("budget", String(200), nullable=False),
    Column("value", String(200), nullable=False),
    Column("window_start_us", BigInteger, nullable=False),
    Column("units", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    Index("ix_budget_holds_window", "tenant", "budget", "value", "window_start_us"),
)
ledger_entries_table = Table(
    "ledger_entries",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("entry_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    Column("body", Text, nullable=False),  # RFC 8785 canonical JSON: exactly the signed bytes
    Column("key_id", String(64), nullable=False),
    Column("signature", Text, nullable=False),
    UniqueConstraint("tenant", "entry_id", name="uq_ledger_entries_tenant_entry_id"),
    Index("ix_ledger_entries_tenant_time", "tenant", "recorded_at_us"),
)
audits_table = Table(
    "audits",
    metadata,
    Column("audit_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("period", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_at_us", BigInteger, nullable=False),
    Column("finished_at_us", BigInteger, nullable=True),
    Column("folder", Text, nullable=True),
    Column("bundle", Text, nullable=True),
    Column("error", Text, nullable=True),
)
log_heads_table = Table(
    "log_heads",
    metadata,
    # The tenant's audit log: each audit appends its events' leaf hashes to one RFC 9162 tree
    # per tenant; a head is the tree after one append, kept as its frontier (see bundles/merkle).
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("first_index", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("root", String(64), nullable=False),
    Column("frontier", Text, nullable=False),  # JSON list of hex hashes
    Column("origin", String(200), nullable=False),  # the audited tree: "p402/<tenant>/<period>"
    Column("period_root", String(64), nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    # One append per position: two audits racing from the same head cannot fork the log.
    UniqueConstraint("tenant", "first_index", name="uq_log_heads_tenant_first_index"),
)
TENANT_TABLES = (
    log_heads_table, imports_table, capture_days_table, captures_table,
    events_table, invoice_lines_table, ledger_entries_table, audits_table, budget_holds_table,
    budget_windows_table, sessions_table, api_keys_table, tenants_table,
)  # fmt: skip
"""Every table that holds a tenant's rows (all but ``p402_meta``), children first: what
deleting a tenant must empty."""


_PLAIN = EVENT_COLUMNS[: EVENT_COLUMNS.index("occurred_at_us")]
_plain_values = attrgetter(*_PLAIN)
assert EVENT_COLUMNS[len(_PLAIN) :] == (
    "occurred_at_us", "cost_units", "list_cost_units", "tool_cost_units", "tags", "retention_until_us",
    "source_attribution",
)  # fmt: skip


_TAGS_JSON: dict[tuple[tuple[str, str], ...], str] = {}


def event_row(item: Event) -> tuple[Any, ...]:
    """The event as a row tuple in :data:`EVENT_COLUMNS` order (for a driver's executemany)."""
    return _row(_plain_values(item), _computed_values(item))


def values_row(values: Mapping[str, Any]) -> tuple[Any, ...]:
    """:func:`event_row` of ``Event.assemble(values)``, without building the event: the
    importer's hot loop goes from checked values straight to the row."""
    full = {**DEFAULTS, **values}
    return _row(_plain_items(full), _computed_items(full))


# The fields stored as they are, then those a column is computed from.
_COMPUTED = (
    "occurred_at", "cost", "list_cost", "tool_cost", "tags", "retention_until", "source_attribution",
)  # fmt: skip
_plain_items = itemgetter(*_PLAIN)
_computed_values = attrgetter(*_COMPUTED)
_computed_items = itemgetter(*_COMPUTED)


def _row(plain: tuple[Any, ...], computed: tuple[Any, ...]) -> tuple[Any, ...]:
    occurred_at, cost, list_cost, tool_cost, pairs, until, source_attribution = computed
    tags = _TAGS_JSON.get(pairs) if pairs else "{}"
    if tags is None:
        tags = orjson.dumps(dict(pairs), option=orjson.OPT_SORT_KEYS).decode()
        if len(_TAGS_JSON) < 50_000:  # a ledger repeats a few tag sets endlessly
            _TAGS_JSON[pairs] = tags
    return (
        *plain,
        micros(occurred_at),
        None if cost is None else to_units(cost),
        None if list_cost is None else to_units(list_cost),
        None if tool_cost is None else to_units(tool_cost),
        tags,
        None if until is None else micros(until),
        # NULL when no rule touched the event: its attribution fields are the source's.
        None
        if source_attribution is None
        else orjson.dumps(dict(source_attribution), option=orjson.OPT_SORT_KEYS).decode(),
    )


_AS_STORED = tuple((i, name) for i, name in enumerate(EVENT_COLUMNS) if name in Event.__slots__)
_AT = {name: i for i, name in enumerate(EVENT_COLUMNS)}


def event_from_row(row: Any) -> Event:
    """An :class:`Event` from a row selected in :data:`EVENT_COLUMNS` order."""
    fields = {name: row[i] for i, name in _AS_STORED}
    fields["occurred_at"] = moment(row[_AT["occurred_at_us"]])
    for name in ("cost", "list_cost", "tool_cost"):
        units = row[_AT[f"{name}_units"]]
        fields[name] = None if units is None else from_units(units)
    tags = row[_AT["tags"]]
    fields["tags"] = () if tags == "{}" else tuple(sorted(orjson.loads(tags).items()))
    until = row[_AT["retention_until_us"]]
    fields["retention_until"] = None if until is None else moment(until)
    source = row[_AT["source_attribution"]]
    given = None if source is None else tuple(sorted(orjson.loads(source).items()))
    current = tuple(sorted((key, fields[key]) for key in SOURCE_KEYS if fields[key] is not None))
    # None: no rule changed anything, the fields are the source's (as for an event never attributed)
    fields["source_attribution"] = None if given == current else given
    return Event(**fields)


_FIRST_COMPUTED = len(_PLAIN)


def record_from_row(row: Any) -> tuple[dict[str, Any], int | None, int]:
    """The event's canonical JSON object straight from a row (exactly ``Event.to_json()``,
    without building the Event), with its exact cost units and its time in microseconds:
    what aggregation and sealing need, at a fraction of the cost."""
    record = dict(zip(_PLAIN, row, strict=False))
    at, units, listed, tools, tags, until = row[_FIRST_COMPUTED : _FIRST_COMPUTED + 6]
    record["occurred_at"] = format_time(moment(at))
    record["cost"] = None if units is None else format_amount(from_units(units))
    record["list_cost"] = None if listed is None else format_amount(from_units(listed))
    record["tool_cost"] = None if tools is None else format_amount(from_units(tools))
    record["tags"] = {} if tags == "{}" else orjson.loads(tags)
    record["retention_until"] = None if until is None else format_time(moment(until))
    return record, units, at


def invoice_line_row(line: InvoiceLine) -> dict[str, Any]:
    """The invoice line as a row mapping for :data:`invoice_lines_table`."""
    return {
        "tenant": line.tenant, "line_id": line.line_id, "provider": line.provider,
        "start_us": micros(line.start), "end_us": micros(line.end), "amount_units": to_units(line.amount),
        "currency": line.currency, "description": line.description, "project_id": line.project_id,
        "workspace_id": line.workspace_id, "api_key_id": line.api_key_id, "user_id": line.user_id,
        "model": line.model,
        "token_type": line.token_type, "service_tier": line.service_tier, "source": line.source,
    }  # fmt: skip
