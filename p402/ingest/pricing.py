"""The price stage: give every event a cost and say where it came from.

A cost the source reported is kept (``cost_source = provider``). Otherwise the event is priced
from the pinned `genai-prices` table at the event's own time, for each token bucket, with the
unit prices written into ``price_ref`` so anyone can redo the sum. A model the table does not
know stays ``unpriced`` with no cost: a gap the reports show, never a silent zero.

Looking prices up in the table is slow (~100 µs), so a resolved quote is cached per provider,
model, day and context; pricing an event is then a few exact Decimal multiplications.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from fnmatch import fnmatchcase
from functools import cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from p402.config import PriceOverride
from p402.ingest.supplement import long_context_rate, multiplier, tool_rate
from p402.ledger.events import Event

if TYPE_CHECKING:
    from genai_prices.types import ModelPrice, TieredPrices

__all__ = ["PRICE_TABLE", "Pricer", "Quote"]

PRICE_TABLE = "genai-prices"
_PER = Decimal(1_000_000)
# Our provider names where they differ from the table's provider ids.
_TABLE_PROVIDER = {"bedrock": "aws", "gemini": "google", "vertex": "google", "vertex_ai": "google"}
# Our token buckets and the table's price keys for them, first key present wins.
_BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("input_tokens", ("input_mtok",)),
    ("cache_read_tokens", ("cache_read_mtok", "input_mtok")),
    ("cache_write_tokens", ("cache_write_5m_mtok", "cache_write_mtok", "input_mtok")),
    ("cache_write_1h_tokens", ("cache_write_1h_mtok", "cache_write_mtok", "input_mtok")),
    ("output_tokens", ("output_mtok",)),
)
_SHORT = {
    "input_tokens": "in",
    "cache_read_tokens": "cache_read",
    "cache_write_tokens": "cache_write",
    "cache_write_1h_tokens": "cache_write_1h",
    "output_tokens": "out",
}


@cache
def table_version() -> str:
    """The pinned price data's name and version, as recorded in every ``price_ref``."""
    from importlib.metadata import version

    return f"{PRICE_TABLE} {version('genai-prices')}"


@dataclass(frozen=True, slots=True)
class Quote:
    """Unit prices (USD per million tokens) for each bucket of one model on one day.

    A tiered price (long-context rates) keeps its tiers; the tier is chosen per event from the
    average input of one request, as the provider bills each request on its own.
    """

    provider: str
    model_id: str
    day: date
    context: str
    prices: tuple[tuple[str, Decimal | TieredPrices | None], ...]
    """Per bucket; ``None`` where the table has no price (embeddings have no output price)."""
    factor: Decimal = Decimal(1)
    """Applied to every rate: 0.5 for a published batch discount the table does not carry."""
    label: str | None = None
    """What the quote is, for ``price_ref``; the table's name and version when ``None``."""
    web_search_kcount: Decimal | None = None
    """The table's USD per 1,000 web searches for this model, where it has one."""
    tier_missing: str | None = None
    """A service tier the call was billed at that the table has no rate for on this day: the
    quote's rates are the standard ones, which must not be applied under the tier's name."""
    long_context: tuple[int, Quote] | None = None
    """Where the table prices the model flat but the provider bills requests above a prompt
    size at other rates: that size and the quote of those rates (from the supplement)."""

    def rates(self, event: Event) -> tuple[tuple[str, Decimal], ...] | None:
        """The unit price of each bucket *event* has tokens in, or ``None`` when one of them
        has no price in the table."""
        return self._rates(_TOKENS(event), event.requests, event.tags)

    def _rates(
        self, tokens: tuple[int, ...], requests: int, tags: tuple[tuple[str, str], ...]
    ) -> tuple[tuple[str, Decimal], ...] | None:
        prompt: int | None = None
        used: list[tuple[str, Decimal]] = []
        for (bucket, unit_price), count in zip(self.prices, tokens, strict=True):
            if count:
                if unit_price is None:
                    return None
                if not isinstance(unit_price, Decimal) and prompt is None:
                    prompt = _prompt_of(tokens, requests, tags)
                used.append((bucket, _rate(unit_price, prompt or 0) * self.factor))
        return tuple(used)

    def reference(self, rates: tuple[tuple[str, Decimal], ...]) -> str:
        """The ``price_ref`` for these rates: what the figure was computed from."""
        context = f" {self.context}" if self.context else ""
        used = " ".join(f"{_SHORT[bucket]}={rate.normalize():f}" for bucket, rate in rates)
        text = f"{used} USD/MTok" if used else "no billable tokens"
        origin = self.label or f"{table_version()} {self.provider}/{self.model_id}"
        return f"{origin} {self.day.isoformat()}{context}: {text}"

    def price(self, event: Event) -> tuple[Decimal, str] | None:
        """The exact cost of *event* at these prices and the ``price_ref`` that explains it, or
        ``None`` when the event has tokens in a bucket the table has no price for."""
        rates = self.rates(event)
        if rates is None:
            return None
        return _cost(event, rates), self.reference(rates)


def _cost(event: Event, rates: tuple[tuple[str, Decimal], ...]) -> Decimal:
    total = sum((rate * getattr(event, bucket) for bucket, rate in rates), Decimal(0))
    return total / _PER


# Anthropic's usage report says which context window a bucket was billed in, when grouped by it.
_CONTEXT_WINDOW_PROMPT = {"0-200k": 0, "200k-1M": 200_001}
_TOKENS = attrgetter(*(bucket for bucket, _ in _BUCKETS))
"""An event's token counts, in the order of :data:`_BUCKETS`."""


def _prompt_size(event: Event) -> int:
    """The prompt tokens of one request, which choose a long-context tier: what the source says
    of its context window, else the average over the event's requests."""
    return _prompt_of(_TOKENS(event), event.requests, event.tags)


def _prompt_of(tokens: tuple[int, ...], requests: int, tags: tuple[tuple[str, str], ...]) -> int:
    for key, value in tags:
        if key == "context_window" and value in _CONTEXT_WINDOW_PROMPT:
            return _CONTEXT_WINDOW_PROMPT[value]
    return (tokens[0] + tokens[1] + tokens[2] + tokens[3]) // max(requests, 1)


def _rate(price: Decimal | TieredPrices, prompt_tokens: int) -> Decimal:
    if isinstance(price, Decimal):
        return price
    rate: Decimal = price.base
    for tier in price.tiers:
        if prompt_tokens > tier.start:
            rate = tier.price
    return rate


class Pricer:
    """Prices events: negotiated overrides first, else the pinned table at the event's date.

    A cost the source reported is kept; every priced event also carries the table's price of
    the same tokens as ``list_cost``, so reported and negotiated costs can be compared with
    list. Quotes are cached per provider, model, day and context.
    """

    def __init__(self, overrides: Sequence[PriceOverride] = ()) -> None:
        self._overrides = tuple(overrides)
        self._quotes: dict[tuple[str, str, date, bool, str | None], Quote | None] = {}
        self._override_quotes: dict[tuple[str, str, date, bool, str | None], Quote | None] = {}
        self._references: dict[tuple[int, tuple[tuple[str, Decimal], ...]], str] = {}
        # Per quote and set of buckets with tokens, for quotes without tiers: the rates that
        # apply, by bucket index, and their price_ref (or None: a bucket has no price).
        self._flat: dict[int, bool] = {}
        self._plans: dict[tuple[int, tuple[bool, ...]], _Plan | None] = {}

    def apply(self, event: Event) -> Event:
        """Return *event* with its cost basis: reported, negotiated, listed, or unpriced."""
        changes = self._basis(
            (
                event.provider,
                event.model,
                event.occurred_at.date(),
                event.batch,
                event.service_tier,
            ),
            event.cost,
            event.list_cost,
            (_TOKENS(event), event.requests, event.tags),
            tools=(event.web_search_calls, event.file_search_calls),
            quality=event.quality,
        )
        return event if changes is None else event.evolve(**changes)

    def basis(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """:meth:`apply` for an event still in pieces (the field values :func:`check_row` gives,
        defaults left out): the fields to change, or ``None`` when the event keeps its own."""
        get = values.get
        return self._basis(
            (values["provider"], values["model"], values["occurred_at"].date(),
             get("batch", False), get("service_tier")),
            get("cost"),
            get("list_cost"),
            (tuple([get(bucket, 0) for bucket, _ in _BUCKETS]), get("requests", 1), get("tags", ())),
            tools=(get("web_search_calls", 0), get("file_search_calls", 0)),
            quality=get("quality"),
        )  # fmt: skip

    def _basis(
        self,
        key: tuple[str, str, date, bool, str | None],
        cost: Decimal | None,
        list_cost: Decimal | None,
        usage: tuple[tuple[int, ...], int, tuple[tuple[str, str], ...]],
        *,
        tools: tuple[int, int] = (0, 0),
        quality: str | None = None,
    ) -> dict[str, Any] | None:
        if cost is not None and list_cost is not None:
            return None  # reported with its list cost: nothing to add
        table = self._quotes.get(key, _UNKNOWN)
        if table is _UNKNOWN:
            table = self._quotes[key] = _resolve(*key)
        if table is not None and table.tier_missing is not None:
            if cost is not None:
                return None  # reported: kept, with no list cost at a basis that was not billed
            if key not in self._override_quotes:
                self._override_quotes[key] = self._override(key, table)
            if self._override_quotes[key] is None:
                reference = (
                    f"{table_version()} {table.provider}/{table.model_id} {table.day.isoformat()}: "
                    f"no {table.tier_missing!r} tier rate for this day"
                )
                return _changes(None, "tier_unpriced", reference, None)
        if cost is None and table is not None and ("speed", "fast") in usage[2]:
            # Anthropic's fast mode is billed at premium rates the table does not carry.
            reference = (
                f"{table_version()} {table.provider}/{table.model_id} {table.day.isoformat()}: "
                "no 'fast' speed rate"
            )
            return _changes(None, "tier_unpriced", reference, None)
        if table is not None and table.long_context is not None:
            start, above = table.long_context
            if _prompt_of(*usage) > start:
                table = above
        changes = self._token_basis(key, table, cost, usage)
        if changes is not None and usage[2]:
            model_id = key[1] if table is None else table.model_id
            changes = _with_multipliers(changes, (key[0], model_id, key[2]), usage[2])
        if changes is None or not any(tools):
            return changes
        return _with_tools(changes, (key[0], key[2]), table, tools, quality)

    def _token_basis(
        self,
        key: tuple[str, str, date, bool, str | None],
        table: Quote | None,
        cost: Decimal | None,
        usage: tuple[tuple[int, ...], int, tuple[tuple[str, str], ...]],
    ) -> dict[str, Any] | None:
        listed = None if table is None else self._priced(table, usage)
        list_cost = None if listed is None else listed[0]
        if cost is not None:
            return None if list_cost is None else {"list_cost": list_cost}
        if key not in self._override_quotes:
            self._override_quotes[key] = self._override(key, table)
        override = self._override_quotes[key]
        negotiated = None if override is None else self._priced(override, usage)
        if negotiated is not None:
            return _changes(negotiated[0], "override", negotiated[1], list_cost)
        if listed is None:
            return _changes(None, "unpriced", None, None)
        return _changes(listed[0], "price_table", listed[1], list_cost)

    def _priced(
        self, quote: Quote, usage: tuple[tuple[int, ...], int, tuple[tuple[str, str], ...]]
    ) -> tuple[Decimal, str] | None:
        tokens = usage[0]
        flat = self._flat.get(id(quote))
        if flat is None:
            flat = self._flat[id(quote)] = all(
                price is None or isinstance(price, Decimal) for _, price in quote.prices
            )
        if flat:
            # Without tiers the rates depend only on which buckets have tokens.
            plan_key = (id(quote), tuple([count != 0 for count in tokens]))
            plan = self._plans.get(plan_key, _UNKNOWN)
            if plan is _UNKNOWN:
                plan = self._plans[plan_key] = self._plan(quote, tokens, usage)
            if plan is None:
                return None
            total = sum((rate * tokens[index] for index, rate in plan[0]), Decimal(0))
            return total / _PER, plan[1]
        rates = quote._rates(*usage)
        if rates is None:
            return None
        return _cost_of(tokens, rates), self._reference(quote, rates)

    def _plan(
        self,
        quote: Quote,
        tokens: tuple[int, ...],
        usage: tuple[tuple[int, ...], int, tuple[tuple[str, str], ...]],
    ) -> _Plan | None:
        rates = quote._rates(*usage)
        if rates is None:
            return None
        indexed = tuple((_INDEX[bucket], rate) for bucket, rate in rates)
        return indexed, self._reference(quote, rates)

    def _reference(self, quote: Quote, rates: tuple[tuple[str, Decimal], ...]) -> str:
        # The same quote and rates give the same reference text: build it once.
        ref_key = (id(quote), rates)
        reference = self._references.get(ref_key)
        if reference is None:
            reference = self._references[ref_key] = quote.reference(rates)
        return reference

    def quote(
        self, provider: str, model: str, moment: datetime, batch: bool, service_tier: str | None
    ) -> Quote | None:
        """The table's quote for a model at a moment, or ``None`` when the table does not know it."""
        key = (provider, model, moment.date(), batch, service_tier)
        if key not in self._quotes:
            self._quotes[key] = _resolve(*key)
        return self._quotes[key]

    def _override(
        self, key: tuple[str, str, date, bool, str | None], table: Quote | None
    ) -> Quote | None:
        provider, model, day, batch, _ = key
        found: PriceOverride | None = None
        for rule in self._overrides:
            if rule.provider != provider or not fnmatchcase(model, rule.model):
                continue
            if rule.effective_from is not None and rule.effective_from > day:
                continue
            if found is None or (rule.effective_from or date.min) > (
                found.effective_from or date.min
            ):
                found = rule
        if found is None:
            return None
        rates = dict(found.rates)
        from_table = dict(table.prices) if table is not None else {}
        prices: list[tuple[str, Decimal | TieredPrices | None]] = []
        for bucket, name in _OVERRIDE_BUCKETS:
            # A bucket the contract does not name is billed at the table's rate, else at input.
            prices.append((bucket, rates.get(name, from_table.get(bucket) or rates["input"])))
        since = f" from {found.effective_from.isoformat()}" if found.effective_from else ""
        context = "batch" if batch else ""
        return Quote(
            provider, model, day, context, tuple(prices), label=f"override {found.name!r}{since}"
        )


_Plan = tuple[tuple[tuple[int, Decimal], ...], str]
"""The rates of one quote for one set of buckets with tokens, by bucket index, and its price_ref."""
_INDEX = {bucket: index for index, (bucket, _) in enumerate(_BUCKETS)}
_UNKNOWN: Any = object()
"""Not looked up yet (``None`` is an answer: no price)."""


_TOOLS = ("web_search_calls", "file_search_calls")


def _with_multipliers(
    changes: dict[str, Any], where: tuple[str, str, date], tags: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """Apply the supplement's factors for the event's tags (US-only inference) to its token
    cost at list: the table's cost and the list cost, never a negotiated or reported one."""
    provider, model_id, day = where
    for tag, value in tags:
        found = multiplier(provider, model_id, tag, value, day)
        if found is None:
            continue
        changes = dict(changes)
        if changes.get("cost_source") == "price_table" and changes.get("cost") is not None:
            changes["cost"] *= found.factor
            changes["price_ref"] = (
                f"{changes['price_ref']} x{found.factor.normalize():f} for {tag}={value} "
                f"(p402 supplement, {found.source}, read {found.read})"
            )
        if changes.get("list_cost") is not None:
            changes["list_cost"] *= found.factor
    return changes


def _with_tools(
    changes: dict[str, Any],
    where: tuple[str, date],
    table: Quote | None,
    tools: tuple[int, int],
    quality: str | None,
) -> dict[str, Any]:
    """Add the tool calls' charges to a priced event: the table's rate where it has one (web
    searches), else the supplement's; calls with neither are marked ``tool_unpriced``."""
    if changes.get("cost_source") not in ("price_table", "override") or changes.get("cost") is None:
        return changes
    provider, day = where
    charged, notes, unpriced = Decimal(0), [], False
    for name, calls in zip(_TOOLS, tools, strict=True):
        if not calls:
            continue
        if name == "web_search_calls" and table is not None and table.web_search_kcount is not None:
            rate, origin = table.web_search_kcount, f"{table_version()}"
        elif (found := tool_rate(provider, name, day)) is not None:
            rate, origin = (
                found.per_thousand,
                f"p402 supplement ({found.source}, read {found.read})",
            )
        else:
            unpriced = True
            notes.append(f"{name}={calls} have no published rate (not in cost)")
            continue
        charged += rate * calls / 1000
        notes.append(f"{name}={calls} at {rate.normalize():f} USD/1k calls ({origin})")
    changes = dict(changes)
    changes["cost"] += charged
    if changes.get("list_cost") is not None:
        changes["list_cost"] += charged
    changes["tool_cost"] = charged
    changes["price_ref"] = f"{changes['price_ref']}; tools: {'; '.join(notes)}"
    if unpriced:
        codes = set(filter(None, (quality or "").split(","))) | {"tool_unpriced"}
        changes["quality"] = ",".join(sorted(codes))
    return changes


def _changes(
    cost: Decimal | None, cost_source: str, price_ref: str | None, list_cost: Decimal | None
) -> dict[str, Any]:
    return {
        "cost": cost,
        "cost_source": cost_source,
        "price_ref": price_ref,
        "list_cost": list_cost,
    }


def _cost_of(tokens: tuple[int, ...], rates: tuple[tuple[str, Decimal], ...]) -> Decimal:
    total = sum((rate * tokens[_INDEX[bucket]] for bucket, rate in rates), Decimal(0))
    return total / _PER


_OVERRIDE_BUCKETS = (
    ("input_tokens", "input"),
    ("cache_read_tokens", "cache_read"),
    ("cache_write_tokens", "cache_write"),
    ("cache_write_1h_tokens", "cache_write_1h"),
    ("output_tokens", "output"),
)
# Providers that bill batch jobs at a published 50 % of list, applied when the table has no
# batch price of its own for the day.
_BATCH_DISCOUNT = {"openai": Decimal("0.5"), "anthropic": Decimal("0.5")}
_STANDARD_TIERS = frozenset({"default", "standard", "auto", "standard_only", "on_demand", "batch"})
"""Service tier names that mean the standard rates (batch is priced by its own flag)."""


def _resolve(
    provider: str, model: str, day: date, batch: bool, service_tier: str | None
) -> Quote | None:
    from genai_prices import data_snapshot

    # Tables change at day boundaries; pricing at noon keeps one quote valid for the whole day.
    when = datetime.combine(day, time(12), tzinfo=UTC)
    context: dict[str, Any] = {}
    if batch:
        context["processing"] = "batch"
    if service_tier:
        context["service_tier"] = service_tier
    try:
        found_provider, info = data_snapshot.get_snapshot().find_provider_model(
            model, None, _TABLE_PROVIDER.get(provider, provider), None
        )
    except LookupError:
        return None
    table: ModelPrice = info.get_prices(when, context or None)
    factor = Decimal(1)
    label = " ".join(f"{name}={value}" for name, value in sorted(context.items()))
    if (
        batch
        and provider in _BATCH_DISCOUNT
        and table
        == info.get_prices(when, {k: v for k, v in context.items() if k != "processing"} or None)
    ):
        factor = _BATCH_DISCOUNT[provider]
        label = f"{label} (published batch discount {100 - int(factor * 100)} %: the table has no batch price)"
    prices: list[tuple[str, Decimal | TieredPrices | None]] = []
    for bucket, keys in _BUCKETS:
        found = (getattr(table, key) for key in keys if getattr(table, key) is not None)
        prices.append((bucket, next(found, None)))
    if prices[0][1] is None:
        return None  # no input price: the table does not really price this model
    missing = None
    if service_tier and service_tier.lower() not in _STANDARD_TIERS:
        standard = info.get_prices(
            when, {k: v for k, v in context.items() if k != "service_tier"} or None
        )
        if table == standard:
            # The table has no rate of this tier for the day (genai-prices knows a tier's rates
            # only from the day it verified them): the standard rates are not the tier's.
            missing = service_tier
    searches = getattr(table, "web_searches_kcount", None)
    kcount = searches if isinstance(searches, Decimal) else None
    long_context = None
    supplement = long_context_rate(found_provider.id, info.id, day)
    if supplement is not None and all(
        price is None or isinstance(price, Decimal) for _, price in prices
    ):
        rates = dict(supplement.rates)
        above = Quote(
            found_provider.id, info.id, day, label,
            tuple((bucket, rates.get(bucket, price)) for bucket, price in prices), factor,
            label=(
                f"p402 supplement ({supplement.source}, read {supplement.read}) "
                f"{found_provider.id}/{info.id} prompt > {supplement.start:,} tokens"
            ),
            web_search_kcount=kcount,
        )  # fmt: skip
        long_context = (supplement.start, above)
    return Quote(
        found_provider.id, info.id, day, label, tuple(prices), factor,
        web_search_kcount=kcount, tier_missing=missing, long_context=long_context,
    )  # fmt: skip
