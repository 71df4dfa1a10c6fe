"""Policy at the moment of a call: budgets and the model allow-list, decided before forwarding.

The routing proxy asks :meth:`Policy.decide` before it forwards a call, and tells
:meth:`Policy.spent` about every event it records. A budget (``[[budgets]]`` in ``p402.toml``)
limits the spend of each department, workflow, customer or p402 API key matching its value, per
UTC day or calendar month; the model allow-list (``[models] allow``) names the model globs that
may be called at all.

How spend is counted, and the approximation it makes:

* The first time a scope value and window is checked, its spend so far is read from the ledger
  with one SQL sum over ``cost_units`` (every event of the tenant in the window, whatever its
  source). Between reads a running total in memory is kept up to date, under a lock, with every
  event this server process stores (proxy and meter alike), and the sum is read again once it
  is :data:`REFRESH_SECONDS` old, so what reaches the ledger from elsewhere (another worker of
  ``--workers N``, another host, an import) counts within that long.
* A call is checked against the spend *before* it: its own cost is known only once the provider
  has answered. So the call that crosses a hard limit goes through and the next one is refused;
  concurrent calls may each pass before any has been recorded. This is how every budget gate
  works; size limits with one call's worth of margin.
* A soft limit flags calls once the spend before them has reached it.

Usage::

    policy = Policy(config, ledger)
    decision = policy.decide("acme", model="gpt-4o", department="Support")
    if decision.decision == "deny":
        ...  # answer decision.http_status with decision.message
    policy.spent(stored_event)
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import translate

from p402.config import Budget, Config
from p402.ledger.events import Event
from p402.ledger.store import Ledger
from p402.money import CENT, format_amount, from_units, to_units
from p402.period import micros

__all__ = ["Decision", "Policy"]

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
    """

    decision: str = "allow"
    policy: str | None = None
    http_status: int = 200
    message: str | None = None
    code: str | None = None


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
        self._watched = {(budget.scope, budget.window) for budget in config.budgets}

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
    ) -> Decision:
        """The decision for a call about to be made, from the spend before it.

        The model allow-list is checked first (403), then every budget matching the call's
        values: any hard limit reached refuses it (429); otherwise any soft limit reached flags it.
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
        for budget, test in self.budgets:
            value = values[budget.scope]
            if value is None or not test.match(value):
                continue
            spent = self.total(tenant, budget.scope, value, budget.window, moment)
            if spent < to_units(budget.limit):
                continue
            message = _message(budget, value, spent)
            if budget.mode == "hard":
                return Decision("deny", budget.name, 429, message, "budget_exceeded")
            flagged = flagged or Decision("flag", budget.name, 200, message, "budget_soft_limit")
        return flagged or ALLOW

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
"""How old a running total may be before the ledger's sum is read again."""


def _message(budget: Budget, value: str, spent: int) -> str:
    period = "today (UTC)" if budget.window == "day" else "this month (UTC)"
    what = "API key" if budget.scope == "api_key" else budget.scope
    verb = "reached" if budget.mode == "hard" else "passed its soft limit:"
    return (
        f"p402 budget {budget.name!r}: {what} {value!r} has {verb} {format_amount(budget.limit)} "
        f"USD {period}, with {format_amount(from_units(spent).quantize(CENT))} USD spent"
    )
