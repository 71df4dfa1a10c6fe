"""Aggregate a period of events into exact totals, by every dimension, in one streaming pass.

Sums are kept in integer storage units, so they are exact whatever the event count. Rounding
to cents happens here once per breakdown, with :func:`p402.money.allocate_cents`, so each
breakdown's rows sum to the same rounded grand total: every view of the report ties out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from p402.config import Config
from p402.ledger.events import Event, Group
from p402.money import allocate_cents, allocate_to, parse_amount, round_cents, to_units
from p402.period import micros, moment

__all__ = [
    "API_KEY",
    "DIMENSIONS",
    "EVENT_IDS",
    "NO_CUSTOMER",
    "SERIES",
    "TAG_PREFIX",
    "UNATTRIBUTED",
    "UNIT_DIMENSIONS",
    "Aggregator",
    "Breakdown",
    "Charge",
    "Daily",
    "DetailRow",
    "Finding",
    "ProviderMonth",
    "Row",
    "Summary",
    "Unowned",
    "event_tokens",
    "tag_dimension",
]

UNATTRIBUTED = "Unattributed"
"""The label of the bucket for events a dimension has no value for. Never hidden."""
NO_CUSTOMER = "No customer (internal use)"
"""Most AI spend serves no customer: for that dimension an empty value is not a gap."""
_EMPTY_LABELS = {"customer": NO_CUSTOMER}

Record = Mapping[str, Any]
"""An event as its canonical JSON object (``Event.to_json()``): what aggregation reads."""

TAG_PREFIX = "tag."
"""A breakdown by an event tag is named ``tag.<name>`` (``[report] breakdowns``)."""


def tag_dimension(name: str) -> str:
    """The breakdown's name for the tag *name*."""
    return f"{TAG_PREFIX}{name}"


def _tag_getter(name: str) -> Callable[[Record], str | None]:
    def value(record: Record) -> str | None:
        found: str | None = (record.get("tags") or {}).get(name)
        return found

    return value


def _empty_label(dimension: str) -> str:
    if dimension.startswith(TAG_PREFIX):
        return f"No {dimension[len(TAG_PREFIX) :]} tag"
    return _EMPTY_LABELS.get(dimension, UNATTRIBUTED)


DIMENSIONS: dict[str, Callable[[Record], str | None]] = {
    "department": lambda r: r["department"],
    "customer": lambda r: r["customer"],
    "workflow": lambda r: r["workflow"],
    "owner": lambda r: r["owner"],
    "employee": lambda r: r["employee"],
    "model": lambda r: f"{r['provider']}/{r['model']}",
    "provider": lambda r: r["provider"],
}


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a breakdown: its exact cost and its share of the rounded total."""

    label: str
    attributed: bool
    events: int
    requests: int
    tokens: int
    cost_units: int
    cost: Decimal
    """Rounded to cents by allocation: the rows of a breakdown sum to its total."""


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The period's spend split by one dimension, largest first, unattributed last."""

    dimension: str
    rows: tuple[Row, ...]
    total: Decimal

    @property
    def empty_is_gap(self) -> bool:
        """Whether events without a value here are missing attribution (not, say, internal use
        or an event that carries no such tag)."""
        return self.dimension not in _EMPTY_LABELS and not self.dimension.startswith(TAG_PREFIX)


@dataclass(frozen=True, slots=True)
class Daily:
    """Spend per day and provider, each cell rounded by allocation: the cells sum to the total."""

    days: tuple[date, ...]
    providers: tuple[str, ...]
    cells: dict[tuple[date, str], Decimal]
    units: dict[tuple[date, str], int] = field(default_factory=dict)
    """The exact cost units of each cell."""

    def series(self) -> list[tuple[str, list[Decimal]]]:
        """One list of daily amounts per provider, every day of the period present."""
        return [
            (p, [self.cells.get((d, p), Decimal("0.00")) for d in self.days])
            for p in self.providers
        ]


@dataclass(frozen=True, slots=True)
class Finding:
    """Calls a policy flagged or refused, per policy and department."""

    decision: str
    policy: str
    department: str
    events: int
    cost_units: int


@dataclass(frozen=True, slots=True)
class Charge:
    """Spend of one provider-month charged alike: the same department, the same value of the
    configured cost-centre tag, and customer-facing (a customer named) or internal."""

    department: str | None
    tag: str | None
    customer_facing: bool
    units: int


@dataclass(frozen=True, slots=True)
class ProviderMonth:
    """What the ledger holds for one provider in one month: what reconciliation compares."""

    provider: str
    month: str
    events: int
    cost_units: int
    unpriced_events: int
    unpriced_tokens: int
    days: frozenset[date]
    departments: tuple[tuple[str | None, int], ...] = ()
    """Exact cost units per department (``None``: unattributed), largest first."""
    cost: Decimal = Decimal("0.00")
    """The month's cents: the provider's row of By Provider split across its months, so the
    months of a provider sum to its row (and its days, in the Daily sheet, to this)."""
    charges: tuple[Charge, ...] = ()
    """Exact cost units per department, cost-centre tag and customer-facing or internal use,
    largest first: what the journal's debit lines split."""


@dataclass(frozen=True, slots=True)
class DetailRow:
    """One cell of the roll-up: a day, a department, a customer, a workflow and a model."""

    day: date
    department: str | None
    customer: str | None
    workflow: str | None
    model: str
    events: int
    requests: int
    tokens: int
    cost: Decimal
    cost_units: int = 0
    """Exact."""


@dataclass(frozen=True, slots=True)
class Unowned:
    """Spend with no department from one provider's API key, project and workspace."""

    provider: str
    api_key_id: str | None
    project: str | None
    workspace: str | None
    events: int
    cost_units: int


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything a report needs about a period, exact and already rounded once."""

    events: int
    requests: int
    tokens: int
    cost_units: int
    total: Decimal
    attributed: Decimal
    unattributed: Decimal
    unpriced_events: int
    unpriced_tokens: int
    flagged: int
    denied: int
    errors: int
    first: datetime | None
    last: datetime | None
    breakdowns: dict[str, Breakdown]
    daily: Daily
    findings: tuple[Finding, ...]
    provider_months: tuple[ProviderMonth, ...]
    detail: tuple[DetailRow, ...] = ()
    """Spend per day, department, customer, workflow and model, cents allocated: the workbook's
    roll-up when a period has too many events for a sheet."""
    unpriced_models: tuple[tuple[str, int, int], ...] = ()
    """(provider/model, events, tokens) of the models with no known price, most tokens first."""
    tool_cost: Decimal = Decimal(0)
    """The part of the total that is tool calls (web and file search), billed apart from tokens;
    rounded once, on its own."""
    tier_unpriced_events: int = 0
    """Of the unpriced events, those whose model is priced but not at the tier they were billed."""
    quality: tuple[tuple[str, int, Decimal], ...] = ()
    """(code, events, cost) of each data-quality code genuine but odd records carry, most events
    first: kept with their money, and shown."""
    series: Mapping[tuple[str, str], Mapping[date, tuple[int, int]]] = field(default_factory=dict)
    """Per (dimension, value) of :data:`SERIES`, API keys and tag breakdowns, per day: exact cost
    units and events."""
    event_ids: Mapping[tuple[str, str, date], tuple[str, ...]] = field(
        default_factory=dict, compare=False
    )
    """Per (dimension, value, day): its first events' ids, by time (only when the events were
    counted one by one: a roll-up has none)."""
    successes: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Events whose outcome is ``success``, per (dimension, value) of :data:`UNIT_DIMENSIONS`."""
    key_series: Mapping[tuple[str, str], Mapping[date, tuple[int, int]]] = field(
        default_factory=dict, compare=False
    )
    """Per (``api_key``, key id), per day: exact cost units and events (only when the events
    were counted one by one: a roll-up has no key ids)."""
    unowned: tuple[Unowned, ...] = field(default=(), compare=False)
    """Unattributed spend by provider, API key, project and workspace, largest first (only
    when the events were counted one by one)."""

    @property
    def attributed_share(self) -> Decimal:
        """The attributed share of the rounded total, 0 to 1 (0 for an empty period)."""
        return self.attributed / self.total if self.total else Decimal(0)


def event_tokens(record: Record) -> int:
    """An event's tokens as the reports count them: input, cache reads and writes, output."""
    tokens: int = (
        record["input_tokens"] + record["cache_read_tokens"] + record["cache_write_tokens"]
        + record["cache_write_1h_tokens"] + record["output_tokens"]
    )  # fmt: skip
    return tokens


EVENT_IDS = 10
"""How many events (the first, by time) a finding about a day names."""
SERIES = ("department", "workflow", "customer", "model")
"""The dimensions whose daily spend :attr:`Summary.series` always holds; besides them it holds
each tag breakdown's (``tag.<name>``)."""
API_KEY = "api_key"
"""The series of an API key's daily spend, by its id as the provider names it
(:attr:`Summary.key_series`)."""
UNIT_DIMENSIONS = ("workflow", "customer")
"""The dimensions unit costs are given for: per request and per successful outcome."""

_DAY_US = 86_400_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class Aggregator:
    """Feed it events one at a time (:meth:`add`, :meth:`add_record`) or the ledger's roll-up
    groups (:meth:`add_group`), then read the :class:`Summary`."""

    def __init__(
        self, *, cost_center_tag: str | None = None, tag_breakdowns: tuple[str, ...] = ()
    ) -> None:
        """*cost_center_tag* names the event tag whose value is the journal's cost centre;
        *tag_breakdowns* the tags the reports break spend down by (``env``: "By tag env")."""
        self._tag = cost_center_tag
        self.tag_names = tuple(dict.fromkeys(t for t in (cost_center_tag, *tag_breakdowns) if t))
        """Every tag this aggregation reads: what a roll-up must group by (``rollup(tags=)``)."""
        tagged = {tag_dimension(name): _tag_getter(name) for name in tag_breakdowns}
        self._dimensions = {**DIMENSIONS, **tagged}
        self._tagged = tuple(tagged.items())
        # Daily series besides the detail's (API keys, tags): per (dimension, value), per day:
        # cost units and events; and their first events' ids.
        self._keyed: dict[tuple[str, str], dict[date, list[int]]] = {}
        self._keyed_ids: dict[tuple[str, str, date], list[tuple[int, str]]] = {}
        # per dimension, per value: [events, requests, tokens, cost units]
        self._cells: dict[str, defaultdict[str | None, list[int]]] = {
            name: defaultdict(lambda: [0, 0, 0, 0]) for name in self._dimensions
        }
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._successes: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._first: int | None = None
        self._last: int | None = None
        self._daily: defaultdict[tuple[date, str], int] = defaultdict(int)
        self._findings: defaultdict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        # per (provider, month): events, units, unpriced events, unpriced tokens; and the days seen
        self._months: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self._month_days: defaultdict[tuple[str, str], set[date]] = defaultdict(set)
        self._month_charges: defaultdict[tuple[str, str, str | None, str | None, bool], int] = (
            defaultdict(int)
        )
        self._unpriced_models: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        self._tool_units = 0
        self._quality: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        # day x department x customer x workflow x model: the workbook's roll-up of a large period
        self._detail: defaultdict[
            tuple[date, str | None, str | None, str | None, str], list[int]
        ] = defaultdict(lambda: [0, 0, 0, 0])
        # The same cells' first events (time, id), when events come one by one: what a finding
        # about a day of a department, customer, workflow or model points to.
        self._ids: dict[
            tuple[date, str | None, str | None, str | None, str], list[tuple[int, str]]
        ] = {}
        # Unattributed spend by where it came from (provider, API key, project, workspace): what
        # to chase. Only events counted one by one carry these.
        self._unowned: dict[tuple[str, str | None, str | None, str | None], list[int]] = {}

    @classmethod
    def of(cls, config: Config) -> Aggregator:
        """The aggregation *config* asks for: its journal's cost-centre tag, its tag breakdowns."""
        return cls(
            cost_center_tag=config.journal.cost_center_tag,
            tag_breakdowns=config.report.tag_breakdowns,
        )

    def add(self, event: Event) -> None:
        """Count one event into every dimension (see :meth:`add_record`, the fast path)."""
        units = None if event.cost is None else to_units(event.cost)
        self.add_record(event.to_json(), units, micros(event.occurred_at))

    def add_record(self, record: Record, units: int | None, at: int) -> None:
        """Count one event, given as its canonical JSON object, its exact cost units (``None``:
        unpriced) and its time in microseconds since the epoch."""
        day = date.fromordinal(_EPOCH_ORDINAL + at // _DAY_US)
        sums = (1, record["requests"], event_tokens(record), units or 0)
        tool = record.get("tool_cost")
        self._tool_units += 0 if tool is None else to_units(parse_amount(tool))
        tag = None if self._tag is None else (record.get("tags") or {}).get(self._tag)
        self._count(record, day, sums, units is None, (at, at), tag=tag)
        self._first_ids(record, day, at)
        key_id = record.get("api_key_id")
        if key_id is not None:
            self._keyed_day(API_KEY, key_id, day, 1, units or 0)
        event_id = record.get("event_id")
        if event_id is not None:
            for name, value in self._keyed_values(record, key_id):
                first = self._keyed_ids.setdefault((name, value, day), [])
                if len(first) < EVENT_IDS:
                    first.append((at, event_id))
        if record["department"] is None:
            where = (record["provider"], record.get("api_key_id"), record.get("provider_project_id"),
                     record.get("workspace_id"))  # fmt: skip
            unowned = self._unowned.setdefault(where, [0, 0])
            unowned[0] += 1
            unowned[1] += units or 0

    def _keyed_values(self, record: Record, key_id: str | None) -> Iterator[tuple[str, str]]:
        if key_id is not None:
            yield API_KEY, key_id
        for name, value_of in self._tagged:
            value = value_of(record)
            if value is not None:
                yield name, value

    def _keyed_day(self, name: str, value: str, day: date, events: int, units: int) -> None:
        cell = self._keyed.setdefault((name, value), {}).setdefault(day, [0, 0])
        cell[0] += units
        cell[1] += events

    def _first_ids(self, record: Record, day: date, at: int) -> None:
        # Not a figure: which events a finding points to (a roll-up group has no ids).
        event_id = record.get("event_id")
        if event_id is None:
            return
        cell = (day, record["department"], record["customer"], record["workflow"],
                f"{record['provider']}/{record['model']}")  # fmt: skip
        first = self._ids.get(cell)
        if first is None:
            self._ids[cell] = [(at, event_id)]
        elif len(first) < EVENT_IDS:
            first.append((at, event_id))

    def add_group(self, group: Group) -> None:
        """Count a group of events from the ledger's roll-up (:func:`p402.ledger.rollup.rollup`)
        exactly as if they had been added one by one: the summary is the same."""
        sums = (group.events, group.requests, group.tokens, group.cost_units)
        self._tool_units += group.tool_cost_units
        record = group.record()
        if self.tag_names:
            named = zip(self.tag_names, group.tags, strict=True)
            record["tags"] = {name: value for name, value in named if value is not None}
        tag = None if self._tag is None else record["tags"].get(self._tag)
        self._count(
            record, group.day, sums, group.unpriced, (group.first_us, group.last_us), tag=tag
        )

    def _count(
        self,
        record: Record,
        day: date,
        sums: tuple[int, int, int, int],
        unpriced: bool,
        span: tuple[int, int],
        *,
        tag: str | None = None,
    ) -> None:
        # sums: events, requests, tokens, cost units of events that share every field
        # aggregation reads (one event, or a roll-up group); span: their first and last times.
        events, requests, tokens, cost = sums
        for name, key in self._dimensions.items():
            cell = self._cells[name][key(record)]
            cell[0] += events
            cell[1] += requests
            cell[2] += tokens
            cell[3] += cost
        counts = self._counts
        decision = record["policy_decision"]
        if unpriced:
            counts["unpriced"] += events
            counts["unpriced_tokens"] += tokens
            if record["cost_source"] == "tier_unpriced":
                counts["tier_unpriced"] += events
        if record["quality"]:
            for code in record["quality"].split(","):
                kept = self._quality[code]
                kept[0] += events
                kept[1] += cost
        if decision in {"flag", "deny"}:
            counts[decision] += events
        if record["outcome"] == "error":
            counts["error"] += events
        elif record["outcome"] == "success":
            self._succeeded(record, events)
        for name, value_of in self._tagged:
            value = value_of(record)
            if value is not None:
                self._keyed_day(name, value, day, events, cost)
        first, last = span
        if self._first is None or first < self._first:
            self._first = first
        if self._last is None or last > self._last:
            self._last = last
        self._time(record, day, sums, unpriced, tag=tag)

    def _succeeded(self, record: Record, events: int) -> None:
        for name in UNIT_DIMENSIONS:
            value = DIMENSIONS[name](record)
            if value is not None:
                self._successes[(name, value)] += events

    def _time(
        self,
        record: Record,
        day: date,
        sums: tuple[int, int, int, int],
        unpriced: bool,
        *,
        tag: str | None,
    ) -> None:
        events, requests, tokens, cost = sums
        provider, department = record["provider"], record["department"]
        label = f"{day.year:04d}-{day.month:02d}"
        self._daily[(day, provider)] += cost
        month = self._months[(provider, label)]
        month[0] += events
        month[1] += cost
        if unpriced:
            month[2] += events
            month[3] += tokens
            unpriced_model = self._unpriced_models[f"{provider}/{record['model']}"]
            unpriced_model[0] += events
            unpriced_model[1] += tokens
        self._month_days[(provider, label)].add(day)
        detail = self._detail[
            (
                day,
                department,
                record["customer"],
                record["workflow"],
                f"{provider}/{record['model']}",
            )
        ]
        detail[0] += events
        detail[1] += requests
        detail[2] += tokens
        detail[3] += cost
        facing = record["customer"] is not None
        self._month_charges[(provider, label, department, tag, facing)] += cost
        if record["policy_decision"] != "allow":
            finding = self._findings[
                (
                    record["policy_decision"],
                    record["policy"] or "(unnamed)",
                    department or UNATTRIBUTED,
                )
            ]
            finding[0] += events
            finding[1] += cost

    def extend(self, events: Iterable[Event]) -> None:
        """Count many events."""
        for event in events:
            self.add(event)

    def _breakdown(self, name: str) -> Breakdown:
        cells = self._cells[name]
        order = sorted(cells, key=lambda key: (key is None, -cells[key][3], key or ""))
        total, cents = allocate_cents([cells[key][3] for key in order])
        rows = []
        for key, amount in zip(order, cents, strict=True):
            events, requests, tokens, units = cells[key]
            rows.append(
                Row(
                    key or _empty_label(name),
                    key is not None,
                    events,
                    requests,
                    tokens,
                    units,
                    amount,
                )
            )
        return Breakdown(name, tuple(rows), total)

    def _series(
        self,
    ) -> tuple[
        dict[tuple[str, str], dict[date, tuple[int, int]]],
        dict[tuple[str, str, date], tuple[str, ...]],
    ]:
        """Daily cost and events per value of each :data:`SERIES` dimension, and their first
        events' ids."""
        series: dict[tuple[str, str], dict[date, tuple[int, int]]] = {}
        ids: dict[tuple[str, str, date], list[tuple[int, str]]] = {}
        for key, (events, _, _, units) in self._detail.items():
            day, department, customer, workflow, model = key
            values = (department or UNATTRIBUTED, workflow or UNATTRIBUTED, customer, model)
            for dimension, value in zip(SERIES, values, strict=True):
                if value is None:  # no customer: internal use, not a customer's series
                    continue
                by_day = series.setdefault((dimension, value), {})
                cost, count = by_day.get(day, (0, 0))
                by_day[day] = (cost + units, count + events)
                if key in self._ids:
                    ids.setdefault((dimension, value, day), []).extend(self._ids[key])
        for (dimension, value), days in self._keyed.items():
            if dimension != API_KEY:
                series[(dimension, value)] = {day: (u, n) for day, (u, n) in days.items()}
        for cell, found in self._keyed_ids.items():
            ids.setdefault(cell, []).extend(found)
        first = {
            cell: tuple(i for _, i in sorted(found)[:EVENT_IDS]) for cell, found in ids.items()
        }
        return series, first

    def _month_cents(self, providers: Breakdown) -> dict[tuple[str, str], Decimal]:
        """Each provider's row of By Provider split across its months."""
        rows = {row.label: row.cost for row in providers.rows}
        keys: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
        for key in sorted(self._months):
            keys[key[0]].append(key)
        cents: dict[tuple[str, str], Decimal] = {}
        for provider, months in keys.items():
            parts = allocate_to(rows[provider], [self._months[key][1] for key in months])
            cents.update(zip(months, parts, strict=True))
        return cents

    def _daily_summary(
        self, start: date | None, end: date | None, months: Mapping[tuple[str, str], Decimal]
    ) -> Daily:
        """Each provider-month's cents split across its days: a provider's column of the Daily
        sheet sums to its months, and so to its row of By Provider."""
        days_of: defaultdict[tuple[str, str], list[date]] = defaultdict(list)
        for day, provider in sorted(self._daily):
            days_of[(provider, f"{day.year:04d}-{day.month:02d}")].append(day)
        cells: dict[tuple[date, str], Decimal] = {}
        for (provider, month), days in days_of.items():
            parts = [self._daily[(day, provider)] for day in days]
            for day, amount in zip(
                days, allocate_to(months[(provider, month)], parts), strict=True
            ):
                cells[(day, provider)] = amount
        if start is None or end is None:
            return Daily((), (), cells, dict(self._daily))
        frame = tuple(date.fromordinal(n) for n in range(start.toordinal(), end.toordinal() + 1))
        providers = tuple(sorted({provider for _, provider in self._daily}))
        return Daily(frame, providers, cells, dict(self._daily))

    def _findings_summary(self) -> tuple[Finding, ...]:
        ordered = sorted(
            self._findings.items(), key=lambda item: (item[0][0] != "deny", -item[1][1], item[0])
        )
        return tuple(Finding(*key, events, units) for key, (events, units) in ordered)

    def _provider_months(
        self, cents: Mapping[tuple[str, str], Decimal]
    ) -> tuple[ProviderMonth, ...]:
        charges: defaultdict[tuple[str, str], list[Charge]] = defaultdict(list)
        for (provider, month, department, tag, facing), units in self._month_charges.items():
            charges[(provider, month)].append(Charge(department, tag, facing, units))
        months = []
        for key, (events, units, unpriced, tokens) in sorted(self._months.items()):
            held = sorted(
                charges[key],
                key=lambda c: (c.department is None, -c.units, c.department or "", c.tag or "", c.customer_facing),
            )  # fmt: skip
            departments: dict[str | None, int] = {}
            for charge in held:
                departments[charge.department] = (
                    departments.get(charge.department, 0) + charge.units
                )
            by_department = sorted(
                departments.items(), key=lambda cell: (cell[0] is None, -cell[1], cell[0] or "")
            )
            months.append(
                ProviderMonth(
                    *key,
                    events,
                    units,
                    unpriced,
                    tokens,
                    frozenset(self._month_days[key]),
                    tuple(by_department),
                    cents[key],
                    tuple(held),
                )
            )
        return tuple(months)

    def _detail_rows(self, daily: Daily) -> tuple[DetailRow, ...]:
        """The roll-up's rows, each provider-day's cents of the Daily sheet split across them."""
        keys = sorted(self._detail, key=lambda k: (k[0], *(part or "" for part in k[1:])))
        within: defaultdict[tuple[date, str], list[int]] = defaultdict(list)
        for index, key in enumerate(keys):
            within[(key[0], key[4].split("/", 1)[0])].append(index)
        cents: list[Decimal] = [Decimal("0.00")] * len(keys)
        for cell, indexes in within.items():
            parts = [self._detail[keys[i]][3] for i in indexes]
            for i, amount in zip(indexes, allocate_to(daily.cells[cell], parts), strict=True):
                cents[i] = amount
        rows = []
        for key, amount in zip(keys, cents, strict=True):
            day, department, customer, workflow, model = key
            events, requests, tokens, units = self._detail[key]
            rows.append(
                DetailRow(
                    day,
                    department,
                    customer,
                    workflow,
                    model,
                    events,
                    requests,
                    tokens,
                    amount,
                    units,
                )
            )
        return tuple(rows)

    def summary(self, *, start: date | None = None, end: date | None = None) -> Summary:
        """The totals so far; *start* and *end* (both included) frame the daily series, which
        otherwise spans the first to the last event."""
        breakdowns = {name: self._breakdown(name) for name in self._dimensions}
        cents = self._month_cents(breakdowns["provider"])
        first = None if self._first is None else moment(self._first)
        last = None if self._last is None else moment(self._last)
        series, ids = self._series()
        daily = self._daily_summary(
            start or (first.date() if first else None),
            end or (last.date() if last else None),
            cents,
        )
        by_provider = self._cells["provider"].values()
        units = sum(cell[3] for cell in by_provider)
        # The department breakdown's own Unattributed row, and the rest: what By Department shows.
        unattributed = sum(
            (row.cost for row in breakdowns["department"].rows if not row.attributed),
            Decimal("0.00"),
        )
        attributed = breakdowns["department"].total - unattributed
        return Summary(
            events=sum(cell[0] for cell in by_provider),
            requests=sum(cell[1] for cell in by_provider),
            tokens=sum(cell[2] for cell in by_provider),
            cost_units=units,
            total=round_cents(units),
            attributed=attributed,
            unattributed=unattributed,
            unpriced_events=self._counts["unpriced"],
            unpriced_tokens=self._counts["unpriced_tokens"],
            flagged=self._counts["flag"],
            denied=self._counts["deny"],
            errors=self._counts["error"],
            first=first,
            last=last,
            breakdowns=breakdowns,
            daily=daily,
            findings=self._findings_summary(),
            provider_months=self._provider_months(cents),
            tool_cost=round_cents(self._tool_units),
            tier_unpriced_events=self._counts["tier_unpriced"],
            quality=tuple(
                (code, events, round_cents(units))
                for code, (events, units) in sorted(
                    self._quality.items(), key=lambda item: (-item[1][0], item[0])
                )
            ),
            detail=self._detail_rows(daily),
            series=series,
            event_ids=ids,
            successes=dict(self._successes),
            key_series={
                key: {day: (units, count) for day, (units, count) in days.items()}
                for key, days in self._keyed.items()
                if key[0] == API_KEY
            },
            unowned=tuple(
                Unowned(*where, events, units)
                for where, (events, units) in sorted(
                    self._unowned.items(),
                    key=lambda item: (-item[1][1], tuple(p or "" for p in item[0])),
                )
            ),
            unpriced_models=tuple(
                sorted(
                    (
                        (model, events, tokens)
                        for model, (events, tokens) in self._unpriced_models.items()
                    ),
                    key=lambda m: (-m[2], m[0]),
                )
            ),
        )
