"""Policy at the moment of a call: budgets and the model allow-list, decided before forwarding.

The routing proxy asks :meth:`Policy.decide` before it forwards a call. A budget
(``[[budgets]]`` in ``p402.toml``) limits the spend of each department, workflow, customer or
p402 API key matching its value, per UTC day or calendar month; the model allow-list
(``[models] allow``) names the model globs that may be called at all. Budgets read the call's
attribution after the rules (and a key's fixed attribution), never the headers alone.

How spend is counted:

* **Hard budgets** are shared by every process of the database (``p402/ledger/budgets.py``):
  admitting a call locks its window's row, refuses the call when the window's spend plus what
  the calls in flight may still cost has reached the limit, and otherwise holds the call's
  estimate there until its event is stored, in the same transaction as the event, with its real
  cost. Every admitted call saw ``spent + held < limit``, so while estimates cover the calls'
  costs a window ends below its limit plus the cost of one call, whatever the number of workers
  and hosts. The estimate is the input at one token per byte of the request at most, and the
  output at the call's ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens``, else
  the budget's ``estimate_output_tokens``: a call without a maximum that writes more than that
  adds its excess to the bound.
* **Soft budgets** only flag, so they keep a running total in memory: read from the ledger with
  one SQL sum the first time, kept up to date with every event this process stores
  (:meth:`Policy.spent`), and read again once it is :data:`REFRESH_SECONDS` old. A soft limit
  flags calls once the spend before them has reached it.

Usage::

    policy = Policy(config, ledger)
    decision = policy.decide("acme", model="gpt-4o", department="Support", estimate=units_for)
    if decision.decision == "deny":
        ...  # answer decision.http_status with decision.message
    # the event carries decision.hold to the writer, which settles it (see hard_spend)
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import translate

from p402.config import Budget, Config
from p402.ledger.budgets import Refusal, Window, reserve
from p402.ledger.events import Event
from p402.ledger.store import Ledger, StoreError
from p402.money import CENT, format_amount, from_units, to_units
from p402.period import micros

__all__ = ["Decision", "Policy", "hard_spend"]

_COLUMNS = {
    "department": "department",
    "workflow": "workflow",
    "customer": "customer",
    "api_key": "api_key_id",
}
"""Budget scope → the event field that carries its value."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What policy says about one call.

    Attributes:
        decision: ``allow``, ``flag`` (let through, marked) or ``deny`` (refused).
        policy: the budget's name, or ``models.allow``; ``None`` when nothing applied.
        http_status: the status a refusal is answered with (403 model, 429 budget), else 200.
        message: one sentence for the caller, when not allowed.
        code: a stable error code (``model_not_allowed``, ``budget_exceeded``,
            ``budget_soft_limit``), when not allowed.
        hold: the id of what the call holds in its hard budgets' windows, to be released
            when its event is stored; ``None`` when it holds nothing.
    """

    decision: str = "allow"
    policy: str | None = None
    http_status: int = 200
    message: str | None = None
    code: str | None = None
    hold: str | None = None


ALLOW = Decision()


def _matcher(pattern: str) -> re.Pattern[str]:
    return re.compile(translate(pattern))


def window_end(window: str, start: datetime) -> datetime:
    """The end (excluded) of the UTC day or calendar month starting at *start*."""
    if window == "day":
        return start + timedelta(days=1)
    return (start + timedelta(days=32)).replace(day=1)


def window_start(window: str, now: datetime) -> datetime:
    """The start of the UTC day or calendar month holding *now*."""
    now = now.astimezone(UTC)
    if window == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class Policy:
    """Budgets and the model allow-list of a configuration, over one ledger's spend."""

    def __init__(self, config: Config, ledger: Ledger | None = None) -> None:
        self.ledger = ledger
        self.budgets = tuple((budget, _matcher(budget.value)) for budget in config.budgets)
        allowed = config.allowed_models
        self._models = None if allowed is None else tuple(_matcher(m) for m in allowed)
        self._lock = threading.Lock()
        # (tenant, scope, value, window, window start in µs) → [spend in storage units, when it
        # was last read from the ledger (time.monotonic)].
        self._totals: dict[tuple[str, str, str, str, int], list[float]] = {}
        shared = ledger is not None
        self._watched = {
            (budget.scope, budget.window)
            for budget in config.budgets
            if budget.mode != "hard" or not shared
        }

    @property
    def active(self) -> bool:
        """Whether anything is configured (else every call is allowed, with no work)."""
        return bool(self.budgets) or self._models is not None

    @property
    def has_budgets(self) -> bool:
        """Whether budgets are configured: deciding needs the call's attribution."""
        return bool(self.budgets)

    def decide(
        self,
        tenant: str,
        *,
        model: str,
        department: str | None = None,
        customer: str | None = None,
        workflow: str | None = None,
        api_key_id: str | None = None,
        now: datetime | None = None,
        estimate: Callable[[int], int] | None = None,
    ) -> Decision:
        """The decision for a call about to be made.

        The model allow-list is checked first (403), then every budget matching the call's
        values: a hard budget whose spend and holds have reached its limit refuses it (429);
        otherwise the call holds *estimate* in each hard budget it meets (``estimate(n)``: what
        the call may cost, in 10^-12 USD, if it writes at most *n* output tokens when it names
        no maximum itself), and any soft limit reached flags it.
        """
        if self._models is not None and not any(test.match(model) for test in self._models):
            return Decision(
                "deny", "models.allow", 403,
                f"model {model!r} is not allowed by this organisation's p402 policy",
                "model_not_allowed",
            )  # fmt: skip
        values = {
            "department": department,
            "customer": customer,
            "workflow": workflow,
            "api_key": api_key_id,
        }
        moment = now or datetime.now(UTC)
        flagged: Decision | None = None
        windows: list[Window] = []
        for budget, test in self.budgets:
            value = values[budget.scope]
            if value is None or not test.match(value):
                continue
            if budget.mode == "hard" and self.ledger is not None:
                opened = window_start(budget.window, moment)
                windows.append(Window(
                    tenant, budget.name, _COLUMNS[budget.scope], value, micros(opened),
                    micros(window_end(budget.window, opened)), to_units(budget.limit),
                    0 if estimate is None else max(estimate(budget.estimate_output_tokens), 0),
                ))  # fmt: skip
                continue
            spent = self.total(tenant, budget.scope, value, budget.window, moment)
            if spent < to_units(budget.limit):
                continue
            message = _message(budget, value, spent)
            if budget.mode == "hard":
                return Decision("deny", budget.name, 429, message, "budget_exceeded")
            flagged = flagged or Decision("flag", budget.name, 200, message, "budget_soft_limit")
        if windows:
            assert self.ledger is not None
            hold = uuid.uuid4().hex
            try:
                refused = reserve(self.ledger, windows, hold_id=hold, now_us=now_us())
            except StoreError:  # a hard limit that cannot be checked is not passed: fail closed
                name = windows[0].budget
                message = f"p402 budget {name!r} could not be checked just now; try again"
                return Decision("deny", name, 503, message, "budget_unavailable")
            if refused is not None:
                budget = next(b for b, _ in self.budgets if b.name == refused.window.budget)
                message = _refusal(budget, refused)
                return Decision("deny", budget.name, 429, message, "budget_exceeded")
            found = flagged or ALLOW
            return Decision(found.decision, found.policy, 200, found.message, found.code, hold)
        return flagged or ALLOW

    def windows_of(self, event: Event) -> list[tuple[str, str, str, int]]:
        """The hard budgets' window rows an event's cost counts in."""
        found = []
        for budget, test in self.budgets:
            if budget.mode != "hard":
                continue
            value = getattr(event, _COLUMNS[budget.scope])
            if value is None or not test.match(value):
                continue
            start = micros(window_start(budget.window, event.occurred_at))
            found.append((event.tenant, budget.name, value, start))
        return found

    def total(self, tenant: str, scope: str, value: str, window: str, now: datetime) -> int:
        """Spend (storage units) of a scope value in the window holding *now*."""
        opened = window_start(window, now)
        start = micros(opened)
        key = (tenant, scope, value, window, start)
        found = self._totals.get(key)
        if found is not None and time.monotonic() - found[1] < REFRESH_SECONDS:
            return int(found[0])
        read_at = time.monotonic()
        seeded = self._seed(tenant, scope, value, opened, window_end(window, opened))
        with self._lock:
            # Windows that have ended are never asked about again.
            for old in [k for k in self._totals if k[3] == window and k[4] < start]:
                del self._totals[old]
            self._totals[key] = [seeded, read_at]
            return seeded

    def spent(self, event: Event) -> None:
        """Count a just-recorded event in the running totals it belongs to (totals not read
        yet are left alone: their first read sums the ledger, this event included)."""
        if not self._watched or not event.cost:
            return
        units = to_units(event.cost)
        with self._lock:
            for scope, window in self._watched:
                value = getattr(event, _COLUMNS[scope])
                if value is None:
                    continue
                start = micros(window_start(window, event.occurred_at))
                key = (event.tenant, scope, value, window, start)
                if key in self._totals:
                    self._totals[key][0] += units

    def _seed(self, tenant: str, scope: str, value: str, start: datetime, end: datetime) -> int:
        if self.ledger is None:
            return 0
        return self.ledger.spend(tenant, field=_COLUMNS[scope], value=value, start=start, end=end)


REFRESH_SECONDS = 5.0
"""How old a soft budget's running total may be before the ledger's sum is read again."""


def now_us() -> int:
    """The time now, in µs since the epoch: when holds expire and spend was last read."""
    return micros(datetime.now(UTC))


def hard_spend(
    policy: Policy | None, events: Iterable[Event]
) -> dict[tuple[str, str, str, int], int]:
    """What stored *events* add to each hard budget's window row (10^-12 USD): for the writer,
    which adds it in the transaction that stores them (``p402.ledger.budgets.settle``)."""
    spent: dict[tuple[str, str, str, int], int] = {}
    if policy is None or policy.ledger is None:
        return spent
    for event in events:
        if not event.cost:
            continue
        units = to_units(event.cost)
        for key in policy.windows_of(event):
            spent[key] = spent.get(key, 0) + units
    return spent


def _refusal(budget: Budget, refused: Refusal) -> str:
    """The message of a call a hard budget refused, with what was spent and what is held."""
    text = _message(budget, refused.window.value, refused.spent_units)
    if refused.held_units:
        held = from_units(refused.held_units).quantize(CENT)
        text += f" and {held:f} USD held by calls in flight"
    return text


def _message(budget: Budget, value: str, spent: int) -> str:
    period = "today (UTC)" if budget.window == "day" else "this month (UTC)"
    what = "API key" if budget.scope == "api_key" else budget.scope
    verb = "reached" if budget.mode == "hard" else "passed its soft limit:"
    return (
        f"p402 budget {budget.name!r}: {what} {value!r} has {verb} {format_amount(budget.limit)} "
        f"USD {period}, with {format_amount(from_units(spent).quantize(CENT))} USD spent"
    )
