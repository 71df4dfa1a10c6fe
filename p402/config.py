"""``p402.toml``: the tenant, attribution rules, negotiated prices, invoices, journal accounts,
and for ``p402 serve``'s routing proxy its budgets, model allow-list and upstreams.

One file, validated as a whole: every unknown key, wrong type or bad value is reported with its
line, so a typo never silently changes a report. ``--config`` names it; otherwise
``./p402.toml`` is read when present, and a missing file means no rules and no overrides.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from p402.errors import ConfigError, Problem

__all__ = [
    "Budget",
    "Config",
    "ConfigProblems",
    "Credit",
    "Invoice",
    "JournalSettings",
    "PriceOverride",
    "ReportSettings",
    "Rule",
    "TenantConfig",
    "Upstream",
    "load_config",
]

DEFAULT_PATH = Path("p402.toml")
RULE_FIELDS = ("owner", "department", "employee", "customer", "workflow", "project", "feature")
MATCH_FIELDS = (
    "provider",
    "model",
    "api_key_id",
    "provider_project_id",
    "workspace_id",
    "user_id",
    *RULE_FIELDS,
)
PRICE_BUCKETS = ("input", "cache_read", "cache_write", "cache_write_1h", "output")
BUDGET_SCOPES = ("department", "workflow", "customer", "api_key")
BUDGET_WINDOWS = ("day", "month")
BUDGET_MODES = ("hard", "soft")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class TenantConfig:
    """The ``[tenant]`` table."""

    id: str
    name: str | None = None
    retention_days: int | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One attribution rule: when every ``match`` holds (exact value or glob), ``set`` fields.

    ``match`` keys are event fields (see ``MATCH_FIELDS``) or ``tag.<name>``.
    """

    name: str
    match: tuple[tuple[str, str], ...]
    set: tuple[tuple[str, str], ...]
    override: bool = False


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A negotiated rate, USD per million tokens per bucket, for a provider and a model glob."""

    name: str
    provider: str
    model: str
    rates: tuple[tuple[str, Decimal], ...]
    effective_from: date | None = None


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice total, per provider and month, for reconciliation."""

    provider: str
    period: str
    amount: Decimal
    currency: str = "USD"
    source: str = "p402.toml"
    """Where the total comes from, as the reconciliation names it."""


CREDIT_KINDS = ("prepaid", "grant", "commitment")


@dataclass(frozen=True, slots=True)
class Credit:
    """A prepaid balance, a credit grant or a committed spend with one provider.

    ``prepaid`` and ``grant`` are drawn down by the provider's spend from *start* until
    *expiry*; a ``commitment`` is an amount the organisation agreed to spend by *expiry*.
    """

    name: str
    provider: str
    amount: Decimal
    start: date
    expiry: date | None = None
    kind: str = "prepaid"


ESTIMATE_OUTPUT_TOKENS = 4_096
"""The output a hard budget holds for a call that names no maximum of its own."""


@dataclass(frozen=True, slots=True)
class Budget:
    """A spending limit the routing proxy enforces at the moment of a call.

    It applies to each value of its scope that matches *value* (exact or glob) on its own:
    ``scope = "department", value = "*"`` gives every department the same limit. ``hard``
    refuses calls once the spend of the window (UTC day or calendar month) has reached
    *limit* (USD); ``soft`` lets them through, flagged. A hard budget counts the calls in
    flight at what they may cost: their output at most their ``max_tokens`` (or
    ``max_completion_tokens``, ``max_output_tokens``), else *estimate_output_tokens*.
    """

    name: str
    scope: str
    value: str
    window: str
    limit: Decimal
    mode: str = "hard"
    estimate_output_tokens: int = ESTIMATE_OUTPUT_TOKENS


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the routing proxy forwards a provider's calls, and which environment variable holds
    the key it uses when the caller sends none of its own (never the key itself)."""

    provider: str
    base_url: str
    api_key_env: str | None = None

    def api_key(self) -> str | None:
        """The configured key, read from the environment now, or ``None``."""
        return os.environ.get(self.api_key_env) or None if self.api_key_env else None


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """``[report]``: what the reports add to their standard breakdowns."""

    breakdowns: tuple[str, ...] = ()
    """Extra breakdowns, each ``tag.<name>``: spend by the value of an event tag."""

    @property
    def tag_breakdowns(self) -> tuple[str, ...]:
        """The tag names of :attr:`breakdowns`."""
        return tuple(name.removeprefix("tag.") for name in self.breakdowns)


@dataclass(frozen=True, slots=True)
class JournalSettings:
    """``[journal]``: the close journal's accounts (number and name apart, as an ERP imports
    them), where each line's cost centre comes from, the entity and whether accruals reverse,
    and the threshold above which an unexplained invoice difference goes to suspense. The
    defaults are a typical chart of accounts."""

    expense_account: str = "6150"
    expense_account_name: str = "AI and machine learning services"
    """Operating expense: internal use (no customer named on the events)."""
    cogs_account: str = "5150"
    cogs_account_name: str = "AI services, cost of revenue"
    """Cost of revenue: customer-facing use (events that name a customer)."""
    liability_account: str = "2150"
    liability_account_name: str = "Accrued AI services"
    suspense_account: str = "2199"
    suspense_account_name: str = "AI invoice differences, suspense"
    default_cost_center: str = "SHARED"
    """Where usage with no department (and no cost-centre tag) is charged."""
    cost_centers: Mapping[str, str] = field(default_factory=dict)
    """Department name to cost-centre code."""
    cost_center_tag: str | None = None
    """An event tag whose value, where an event carries it, is the line's cost centre (before
    ``cost_centers``)."""
    entity: str | None = None
    """The legal entity (subsidiary, company) the journal posts to; the tenant id when unset."""
    currency: str = "USD"
    suspense_threshold: Decimal = Decimal("0.00")
    """An unexplained difference of a month that does not reconcile goes to the suspense
    account when it is larger than this (USD); at or under it, it is spread like a reconciled
    month's difference."""
    reverse_accruals: bool = False
    """Whether each accrual carries an auto-reversal date: the first day of the next month."""
    journal_code: str = "GJ"
    """The journal (symbol) entries are imported into, where the ERP asks (Sage Intacct)."""
    tax_rate: str = "Tax Exempt"
    """The tax rate's name every line carries, where the ERP asks for one (Xero)."""


JOURNAL_ACCOUNTS = (
    "expense_account", "expense_account_name", "cogs_account", "cogs_account_name",
    "liability_account", "liability_account_name", "suspense_account", "suspense_account_name",
    "default_cost_center", "cost_center_tag", "entity", "currency", "journal_code", "tax_rate",
)  # fmt: skip
_ACCOUNTS = ("expense_account", "cogs_account", "liability_account", "suspense_account")
_JOURNAL_KEYS = (*JOURNAL_ACCOUNTS, "cost_centers", "suspense_threshold", "reverse_accruals")


DEFAULT_UPSTREAMS = (
    Upstream("anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    Upstream("openai", "https://api.openai.com", "OPENAI_API_KEY"),
)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. The empty one is valid: no rules, no overrides."""

    tenant: TenantConfig | None = None
    rules: tuple[Rule, ...] = ()
    prices: tuple[PriceOverride, ...] = ()
    invoices: tuple[Invoice, ...] = ()
    journal: JournalSettings = field(default_factory=JournalSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    path: str | None = None
    budgets: tuple[Budget, ...] = ()
    credits: tuple[Credit, ...] = ()
    """Prepaid balances, credit grants and commitments (``[[credits]]``)."""
    allowed_models: tuple[str, ...] | None = None
    """Model globs the proxy lets through (``[models] allow``); ``None``: every model."""
    upstreams: tuple[Upstream, ...] = DEFAULT_UPSTREAMS

    def upstream(self, provider: str) -> Upstream:
        """The upstream of *provider* (``openai`` or ``anthropic``)."""
        return next(item for item in self.upstreams if item.provider == provider)

    @property
    def rules_version(self) -> str:
        """A short hash of the rules, recorded with an audit so a reader knows which rules ran."""
        text = repr([(r.name, r.match, r.set, r.override) for r in self.rules]).encode()
        return hashlib.sha256(text).hexdigest()[:16]


class _Reader:
    """Collects every problem of a file, each with the line where the key stands."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()
        self.problems: list[Problem] = []

    def line_of(self, key: str, after: int = 0) -> int | None:
        pattern = re.compile(rf"(^|[{{,\s]){re.escape(key)}\s*=")
        for number, line in enumerate(self.lines[after:], start=after + 1):
            if pattern.search(line.split("#", 1)[0]):
                return number
        return None

    def header_line(self, name: str) -> int:
        """The line of a ``[name]`` table header (0 when it is written inline or absent)."""
        header = f"[{name}]"
        return next((n for n, line in enumerate(self.lines, 1) if line.strip() == header), 0)

    def table_line(self, name: str, index: int) -> int:
        headers = [n for n, line in enumerate(self.lines, start=1) if line.strip() == f"[[{name}]]"]
        return headers[index] if index < len(headers) else 0

    def error(self, message: str, key: str | None = None, after: int = 0) -> None:
        line = self.line_of(key, after) if key else None
        self.problems.append(Problem(str(self.path), line or None, None, message))

    def keys(
        self, table: Mapping[str, Any], allowed: tuple[str, ...], where: str, after: int = 0
    ) -> None:
        for key in table:
            if key not in allowed:
                self.error(
                    f"unknown key {key!r} in {where} (known: {', '.join(allowed)})", key, after
                )


def _text(
    reader: _Reader, table: Mapping[str, Any], key: str, where: str, after: int, *, required: bool
) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            reader.error(f"{where} needs {key}", None, after)
        return None
    if not isinstance(value, str) or not value.strip():
        reader.error(f"{where}: {key} must be a non-empty string", key, after)
        return None
    return value.strip()


def _decimal(reader: _Reader, value: Any, key: str, where: str, after: int) -> Decimal | None:
    if isinstance(value, float | bool):
        reader.error(
            f'{where}: {key} must be a quoted decimal ("2.50"): TOML floats are binary', key, after
        )
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        reader.error(f"{where}: {key} = {value!r} is not a decimal", key, after)
        return None
    if not amount.is_finite() or amount < 0:
        reader.error(f"{where}: {key} must be a decimal of at least 0", key, after)
        return None
    return amount


def _tenant(reader: _Reader, data: Mapping[str, Any]) -> TenantConfig | None:
    table = data.get("tenant")
    if table is None:
        return None
    if not isinstance(table, dict):
        reader.error("[tenant] must be a table", "tenant")
        return None
    reader.keys(table, ("id", "name", "retention_days"), "[tenant]")
    tenant_id = _text(reader, table, "id", "[tenant]", 0, required=True)
    days = table.get("retention_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 1):
        reader.error(
            "[tenant]: retention_days must be a whole number of days, at least 1", "retention_days"
        )
        days = None
    return (
        TenantConfig(tenant_id, _text(reader, table, "name", "[tenant]", 0, required=False), days)
        if tenant_id
        else None
    )


def _pairs(
    reader: _Reader, value: Any, key: str, where: str, *, after: int, allowed: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not value:
        reader.error(
            f'{where}: {key} must be a non-empty table like {{ department = "Sales" }}', key, after
        )
        return ()
    pairs = []
    for name, item in value.items():
        if name not in allowed and not (
            key == "match" and name.startswith("tag.") and len(name) > 4
        ):
            reader.error(f"{where}: {key} cannot use {name!r} (use one of: {', '.join(allowed)}"
                         f"{', tag.<name>' if key == 'match' else ''})", name, after)  # fmt: skip
        elif not isinstance(item, str) or not item:
            reader.error(f"{where}: {key}.{name} must be a non-empty string", name, after)
        else:
            pairs.append((name, item))
    return tuple(pairs)


def _rules(reader: _Reader, data: Mapping[str, Any]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    names: set[str] = set()
    for index, table in enumerate(data.get("rules", [])):
        after = reader.table_line("rules", index)
        where = f"[[rules]] #{index + 1}"
        reader.keys(table, ("name", "match", "set", "override"), where, after)
        name = _text(reader, table, "name", where, after, required=True) or f"rule {index + 1}"
        if name in names:
            reader.error(f"{where}: another rule is already called {name!r}", "name", after)
        names.add(name)
        match = _pairs(
            reader, table.get("match"), "match", where, after=after, allowed=MATCH_FIELDS
        )
        sets = _pairs(reader, table.get("set"), "set", where, after=after, allowed=RULE_FIELDS)
        override = table.get("override", False)
        if not isinstance(override, bool):
            reader.error(f"{where}: override must be true or false", "override", after)
            override = False
        rules.append(Rule(name, match, sets, override))
    return tuple(rules)


def _prices(reader: _Reader, data: Mapping[str, Any]) -> tuple[PriceOverride, ...]:
    prices: list[PriceOverride] = []
    for index, table in enumerate(data.get("prices", [])):
        after = reader.table_line("prices", index)
        where = f"[[prices]] #{index + 1}"
        reader.keys(
            table, ("name", "provider", "model", *PRICE_BUCKETS, "effective_from"), where, after
        )
        provider = _text(reader, table, "provider", where, after, required=True)
        model = _text(reader, table, "model", where, after, required=True)
        rates = tuple(
            (bucket, rate) for bucket in PRICE_BUCKETS if bucket in table
            if (rate := _decimal(reader, table[bucket], bucket, where, after)) is not None
        )  # fmt: skip
        if not any(bucket == "input" for bucket, _ in rates) or not any(
            bucket == "output" for bucket, _ in rates
        ):
            reader.error(
                f"{where} needs at least input and output (USD per million tokens)", None, after
            )
        start = table.get("effective_from")
        if start is not None and not isinstance(start, date):
            reader.error(
                f"{where}: effective_from must be a date like 2026-10-01", "effective_from", after
            )
            start = None
        if provider and model:
            name = str(table.get("name") or f"{provider}/{model}")
            prices.append(PriceOverride(name, provider.lower(), model, rates, start))
    return tuple(prices)


def _invoices(reader: _Reader, data: Mapping[str, Any]) -> tuple[Invoice, ...]:
    invoices: list[Invoice] = []
    for index, table in enumerate(data.get("invoices", [])):
        after = reader.table_line("invoices", index)
        where = f"[[invoices]] #{index + 1}"
        reader.keys(table, ("provider", "period", "amount", "currency"), where, after)
        provider = _text(reader, table, "provider", where, after, required=True)
        period = _text(reader, table, "period", where, after, required=True)
        amount = _decimal(reader, table.get("amount", ""), "amount", where, after)
        currency = (_text(reader, table, "currency", where, after, required=False) or "USD").upper()
        if currency != "USD":
            reader.error(f"{where}: only USD invoices are supported", "currency", after)
        if amount is not None and amount != amount.quantize(Decimal("0.01")):
            reader.error(
                f'{where}: amount is an invoice total in cents, like "1234.56"', "amount", after
            )
            amount = None
        if period and not re.fullmatch(r"\d{4}-\d{2}", period):
            reader.error(f"{where}: period must be a month like 2026-10", "period", after)
        if provider and period and amount is not None:
            invoices.append(Invoice(provider.lower(), period, amount, currency))
    return tuple(invoices)


def _choice(
    reader: _Reader,
    table: Mapping[str, Any],
    key: str,
    where: str,
    after: int,
    *,
    choices: tuple[str, ...],
    default: str | None = None,
) -> str | None:
    value = _text(reader, table, key, where, after, required=default is None)
    if value is None:
        return default
    if value not in choices:
        reader.error(
            f"{where}: {key} must be one of {', '.join(choices)}, got {value!r}", key, after
        )
        return None
    return value


def _budgets(reader: _Reader, data: Mapping[str, Any]) -> tuple[Budget, ...]:
    budgets: list[Budget] = []
    names: set[str] = set()
    for index, table in enumerate(data.get("budgets", [])):
        after = reader.table_line("budgets", index)
        where = f"[[budgets]] #{index + 1}"
        reader.keys(
            table,
            ("name", "scope", "value", "window", "limit", "mode", "estimate_output_tokens"),
            where, after,
        )  # fmt: skip
        name = _text(reader, table, "name", where, after, required=True)
        if name in names:
            reader.error(f"{where}: another budget is already called {name!r}", "name", after)
        names.add(name or "")
        scope = _choice(reader, table, "scope", where, after, choices=BUDGET_SCOPES)
        value = _text(reader, table, "value", where, after, required=True)
        window = _choice(reader, table, "window", where, after, choices=BUDGET_WINDOWS)
        mode = _choice(reader, table, "mode", where, after, choices=BUDGET_MODES, default="hard")
        if "limit" not in table:
            reader.error(f'{where} needs limit (USD, quoted: "100.00")', None, after)
        limit = _decimal(reader, table.get("limit", ""), "limit", where, after)
        ceiling = table.get("estimate_output_tokens", ESTIMATE_OUTPUT_TOKENS)
        if type(ceiling) is not int or not 1 <= ceiling <= 10_000_000:
            reader.error(
                f"{where}: estimate_output_tokens must be a whole number of tokens, 1 to "
                "10000000", "estimate_output_tokens", after,
            )  # fmt: skip
            ceiling = ESTIMATE_OUTPUT_TOKENS
        if name and scope and value and window and mode and limit is not None:
            budgets.append(Budget(name, scope, value, window, limit, mode, ceiling))
    return tuple(budgets)


def _day(reader: _Reader, value: Any, key: str, where: str, after: int) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    reader.error(f"{where}: {key} must be a date (2026-09-01)", key, after)
    return None


def _credits(reader: _Reader, data: Mapping[str, Any]) -> tuple[Credit, ...]:
    found: list[Credit] = []
    for index, table in enumerate(data.get("credits", [])):
        after = reader.table_line("credits", index)
        where = f"[[credits]] #{index + 1}"
        reader.keys(table, ("name", "provider", "amount", "start", "expiry", "kind"), where, after)
        name = _text(reader, table, "name", where, after, required=True)
        provider = _text(reader, table, "provider", where, after, required=True)
        kind = _choice(reader, table, "kind", where, after, choices=CREDIT_KINDS, default="prepaid")
        if "amount" not in table:
            reader.error(f'{where} needs amount (USD, quoted: "500.00")', None, after)
        amount = _decimal(reader, table.get("amount", ""), "amount", where, after)
        if "start" not in table:
            reader.error(
                f"{where} needs start (the day the credit begins: 2026-09-01)", None, after
            )
        start = _day(reader, table["start"], "start", where, after) if "start" in table else None
        expiry = (
            _day(reader, table["expiry"], "expiry", where, after) if "expiry" in table else None
        )
        if start and expiry and expiry < start:
            reader.error(f"{where}: expiry {expiry} is before start {start}", "expiry", after)
        elif name and provider and kind and amount is not None and start:
            found.append(Credit(name, provider, amount, start, expiry, kind))
    return tuple(found)


def _models(reader: _Reader, data: Mapping[str, Any]) -> tuple[str, ...] | None:
    table = data.get("models")
    if table is None:
        return None
    after = reader.header_line("models")
    if not isinstance(table, dict):
        reader.error("[models] must be a table", "models")
        return None
    reader.keys(table, ("allow",), "[models]", after)
    allow = table.get("allow")
    if allow is None:
        return None
    if (
        not isinstance(allow, list)
        or not allow
        or not all(isinstance(item, str) and item.strip() for item in allow)
    ):
        reader.error(
            '[models]: allow must be a list of model globs like ["gpt-4o*"]', "allow", after
        )
        return None
    return tuple(item.strip() for item in allow)


def _upstreams(reader: _Reader, data: Mapping[str, Any]) -> tuple[Upstream, ...]:
    table = data.get("upstreams")
    if table is None:
        return DEFAULT_UPSTREAMS
    start = reader.header_line("upstreams")
    if not isinstance(table, dict):
        reader.error("[upstreams] must be a table", "upstreams")
        return DEFAULT_UPSTREAMS
    known = tuple(item.provider for item in DEFAULT_UPSTREAMS)
    reader.keys(table, known, "[upstreams]", start)
    found = []
    for default in DEFAULT_UPSTREAMS:
        entry = table.get(default.provider)
        if entry is None:
            found.append(default)
            continue
        where = f"[upstreams] {default.provider}"
        after = reader.header_line(f"upstreams.{default.provider}") or start
        if not isinstance(entry, dict):
            reader.error(
                f'{where} must be a table like {{ base_url = "https://..." }}',
                default.provider,
                after,
            )
            continue
        if "api_key" in entry:
            reader.error(f"{where}: a key is never written in the file; name the environment "
                         "variable that holds it with api_key_env", "api_key", after)  # fmt: skip
        reader.keys({k: v for k, v in entry.items() if k != "api_key"},
                    ("base_url", "api_key_env"), where, after)  # fmt: skip
        base = _text(reader, entry, "base_url", where, after, required=False) or default.base_url
        if not base.startswith(("http://", "https://")):
            reader.error(
                f"{where}: base_url must start with http:// or https://", "base_url", after
            )
        env = _text(reader, entry, "api_key_env", where, after, required=False)
        if env is not None and not _ENV_NAME.fullmatch(env):
            reader.error(
                f"{where}: api_key_env must be an environment variable name", "api_key_env", after
            )
        found.append(Upstream(default.provider, base.rstrip("/"), env or default.api_key_env))
    return tuple(found)


def _journal_options(
    reader: _Reader, table: Mapping[str, Any], where: str, after: int
) -> dict[str, Any]:
    """``[journal]``'s accounts, names and options, each checked: the settings' keywords."""
    texts: dict[str, Any] = {
        key: text for key in JOURNAL_ACCOUNTS if key in table
        if (text := _text(reader, table, key, where, after, required=False)) is not None
    }  # fmt: skip
    for account in _ACCOUNTS:  # "6150 AI and machine learning services": number, then name
        number, _, name = texts.get(account, "").partition(" ")
        if name and f"{account}_name" not in texts:
            texts[account], texts[f"{account}_name"] = number, name.strip()
    checks = {
        "cost_center_tag": (r"[A-Za-z0-9_.:/-]{1,64}", "a tag name (A-Z a-z 0-9 _ . : / -)"),
        "currency": (r"[A-Z]{3}", 'an ISO 4217 code such as "USD"'),
    }
    for key, (pattern, what) in checks.items():
        if key in texts and not re.fullmatch(pattern, texts[key]):
            reader.error(f"{where}: {key} must be {what}", key, after)
            del texts[key]
    if "suspense_threshold" in table:
        threshold = _decimal(
            reader, table["suspense_threshold"], "suspense_threshold", where, after
        )
        if threshold is not None:
            texts["suspense_threshold"] = threshold
    if "reverse_accruals" in table:
        if isinstance(table["reverse_accruals"], bool):
            texts["reverse_accruals"] = table["reverse_accruals"]
        else:
            reader.error(
                f"{where}: reverse_accruals must be true or false", "reverse_accruals", after
            )
    return texts


def _report(reader: _Reader, data: Mapping[str, Any]) -> ReportSettings:
    table = data.get("report")
    if table is None:
        return ReportSettings()
    after = reader.header_line("report")
    if not isinstance(table, dict):
        reader.error("[report] must be a table", "report")
        return ReportSettings()
    reader.keys(table, ("breakdowns",), "[report]", after)
    names = table.get("breakdowns", [])
    if not isinstance(names, list):
        reader.error('[report]: breakdowns must be a list such as ["tag.env"]', "breakdowns", after)
        return ReportSettings()
    found = []
    for name in names:
        if isinstance(name, str) and re.fullmatch(r"tag\.[A-Za-z0-9_.:/-]{1,64}", name):
            found.append(name)
        else:
            reader.error(f"[report]: breakdowns: {name!r} is not tag.<name> (a tag name: A-Z a-z 0-9 _ . : / -)",
                         "breakdowns", after)  # fmt: skip
    return ReportSettings(tuple(dict.fromkeys(found)))


def _journal(reader: _Reader, data: Mapping[str, Any]) -> JournalSettings:
    table = data.get("journal")
    if table is None:
        return JournalSettings()
    if not isinstance(table, dict):
        reader.error("[journal] must be a table", "journal")
        return JournalSettings()
    after = reader.header_line("journal")
    where = "[journal]"
    reader.keys(table, _JOURNAL_KEYS, where, after)
    texts = _journal_options(reader, table, where, after)
    centers = table.get("cost_centers", {})
    if not isinstance(centers, dict):
        reader.error(
            f'{where}: cost_centers must be a table of department = "code"', "cost_centers", after
        )
        centers = {}
    codes = {}
    for department, code in centers.items():
        if not isinstance(code, str) or not code.strip():
            reader.error(f"{where}: cost_centers.{department} must be a non-empty string",
                         department, after)  # fmt: skip
        else:
            codes[str(department)] = code.strip()
    return JournalSettings(**texts, cost_centers=codes)


def load_config(path: Path | None = None) -> Config:
    """Read and check the configuration; ``./p402.toml`` when *path* is None and it exists.

    Raises:
        ConfigError: the file is missing (when named), not TOML, or has problems (all listed).
    """
    if path is None:
        if not DEFAULT_PATH.is_file():
            return Config()
        path = DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    reader = _Reader(path, text)
    sections = (
        "tenant",
        "rules",
        "prices",
        "invoices",
        "journal",
        "report",
        "budgets",
        "credits",
        "models",
        "upstreams",
    )
    reader.keys(data, sections, "the file")
    for key in ("rules", "prices", "invoices", "budgets", "credits"):
        if not isinstance(data.get(key, []), list):
            reader.error(f"{key} must be written [[{key}]]", key)
            data[key] = []
    config = Config(
        tenant=_tenant(reader, data), rules=_rules(reader, data), prices=_prices(reader, data),
        invoices=_invoices(reader, data), journal=_journal(reader, data), path=str(path),
        budgets=_budgets(reader, data), allowed_models=_models(reader, data),
        upstreams=_upstreams(reader, data), report=_report(reader, data), credits=_credits(reader, data),
    )  # fmt: skip
    if reader.problems:
        raise ConfigProblems(reader.problems)
    return config


class ConfigProblems(ConfigError):
    """The configuration file has problems; all of them are listed."""

    code = "invalid_configuration"

    def __init__(self, problems: list[Problem]) -> None:
        noun = "problem" if len(problems) == 1 else "problems"
        path = problems[0].source
        details = [str(problem) for problem in problems]
        super().__init__(f"{len(problems)} {noun} in {path}; nothing was done", details=details)
        self.problems = problems
