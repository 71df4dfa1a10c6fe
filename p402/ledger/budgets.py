"""Hard budgets shared by every ``p402 serve`` process of one database: calls in flight count.

A hard budget refuses a call once its window's spend *plus what the calls in flight may still
cost* has reached the limit. Both live in the database, so every worker and every host sees the
same figures:

* ``budget_windows``: one row per tenant, budget, matched value and window; the spend of the
  window so far, read from the ledger the first time (and again once it is
  :data:`RESEED_SECONDS` old, so what an import or another channel stored counts within that
  long), and kept up to date by the writer in the very transaction that stores each event.
* ``budget_holds``: what each admitted call may cost (its *estimate*: the input at most one token
  per byte of the request, the output at most its ``max_tokens``, else a configured ceiling),
  reserved at admission and deleted in the transaction that stores the call's event. A hold
  of a process that died counts until it expires (:data:`HOLD_SECONDS`).

Admission (:func:`reserve`) locks the window's row (``SELECT ... FOR UPDATE`` on PostgreSQL;
SQLite has one writer at a time), so two admissions of one window are never decided on the
same figures. The bound this gives: every call admitted saw ``spent + held < limit``; when
estimates are at least the calls' real costs, the window's spend ends below the limit plus the
cost of one call, whatever the number of workers and hosts. A call costing more than its
estimate (no ``max_tokens`` and more output than the ceiling) adds its excess to that bound.

Usage::

    refused = reserve(ledger, [Window(...)], hold_id="h1", now_us=now)
    ...  # forward the call; then, with its event, in the writer's transaction:
    settle(connection, tenant, ["h1"], spent)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from p402.ledger.rollup import exact_sums, exact_total
from p402.ledger.schema import budget_holds_table, budget_windows_table, events_table
from p402.ledger.store import Ledger

__all__ = ["HOLD_SECONDS", "RESEED_SECONDS", "Refusal", "Window", "release", "reserve", "settle"]

RESEED_SECONDS = 30.0
"""How old a window's spend may be before it is summed from the ledger again. Only spend that
bypasses p402 serve's writer (an import) needs it, and the sum is read under the window's
lock, holding up that window's admissions while it scans: so not every few seconds."""
HOLD_SECONDS = 900.0
"""How long a hold counts at most: longer than any call the proxy waits for."""
_MOST = (1 << 63) - 1
"""Spend and holds saturate here (a BIGINT): a window this full refuses every call."""


@dataclass(frozen=True, slots=True)
class Window:
    """One hard budget's window as a call meets it.

    Attributes:
        tenant: whose budget.
        budget: its name in ``p402.toml``.
        field: the event column the budget's scope reads (``department``, ``api_key_id``...).
        value: the call's value of it.
        start_us, end_us: the window (UTC day or calendar month), in µs since the epoch.
        limit_units: the limit, in 10^-12 USD.
        estimate_units: what the call may cost, in 10^-12 USD.
    """

    tenant: str
    budget: str
    field: str
    value: str
    start_us: int
    end_us: int
    limit_units: int
    estimate_units: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        """The window's row: tenant, budget, value, start."""
        return (self.tenant, self.budget, self.value, self.start_us)


@dataclass(frozen=True, slots=True)
class Refusal:
    """The window that refused a call, and its figures when it did (10^-12 USD)."""

    window: Window
    spent_units: int
    held_units: int


def _insert(dialect: str) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(budget_windows_table).on_conflict_do_nothing()


def _where(key: tuple[str, str, str, int]) -> ColumnElement[bool]:
    table = budget_windows_table
    tenant, budget, value, start = key
    return and_(
        table.c.tenant == tenant,
        table.c.budget == budget,
        table.c.value == value,
        table.c.window_start_us == start,
    )


def _ledger_spend(connection: Connection, dialect: str, window: Window) -> int:
    table = events_table
    query = select(*exact_sums(dialect, table.c.cost_units)).where(
        table.c.tenant == window.tenant,
        table.c[window.field] == window.value,
        table.c.occurred_at_us >= window.start_us,
        table.c.occurred_at_us < window.end_us,
    )
    return min(exact_total(connection.execute(query).one()), _MOST)


def reserve(
    ledger: Ledger, windows: Sequence[Window], *, hold_id: str, now_us: int
) -> Refusal | None:
    """Admit a call against every window it meets, holding its estimate in each; or the first
    window whose spend and holds have reached its limit (then nothing is held).

    One transaction: the windows' rows are locked in a fixed order (no two admissions can
    deadlock), their spend read from the ledger when not yet known or older than
    :data:`RESEED_SECONDS`, and expired holds purged."""
    windows = sorted(windows, key=lambda w: w.key)
    table, holds = budget_windows_table, budget_holds_table
    cutoff = now_us - int(RESEED_SECONDS * 1_000_000)
    with ledger.transaction() as connection:
        dialect = ledger.dialect
        figures: list[tuple[Window, int, int]] = []
        for window in windows:
            connection.execute(
                _insert(dialect),
                {"tenant": window.tenant, "budget": window.budget, "value": window.value,
                 "window_start_us": window.start_us, "spent_units": None, "seeded_at_us": None},
            )  # fmt: skip
            row = connection.execute(
                select(table.c.spent_units, table.c.seeded_at_us)
                .where(_where(window.key))
                .with_for_update()
            ).one()
            spent, seeded = row
            if spent is None or seeded is None or seeded < cutoff:
                # Under the row's lock: an event committed since is in this sum, one being
                # committed adds itself to the row after this transaction ends.
                spent = _ledger_spend(connection, dialect, window)
                connection.execute(
                    update(table)
                    .where(_where(window.key))
                    .values(spent_units=spent, seeded_at_us=now_us)
                )
            held = connection.execute(
                select(func.coalesce(func.sum(holds.c.units), 0)).where(
                    holds.c.tenant == window.tenant,
                    holds.c.budget == window.budget,
                    holds.c.value == window.value,
                    holds.c.window_start_us == window.start_us,
                    holds.c.expires_at_us > now_us,
                )
            ).scalar_one()
            figures.append((window, int(spent), int(held)))
        for window, spent, held in figures:
            if spent + held >= window.limit_units:
                return Refusal(window, spent, held)
        connection.execute(holds.delete().where(holds.c.expires_at_us <= now_us))
        expires = now_us + int(HOLD_SECONDS * 1_000_000)
        connection.execute(
            holds.insert(),
            [
                {"hold_id": hold_id, "tenant": w.tenant, "budget": w.budget, "value": w.value,
                 "window_start_us": w.start_us, "units": min(w.estimate_units, _MOST),
                 "expires_at_us": expires}
                for w in windows
            ],
        )  # fmt: skip
    return None


def settle(
    connection: Connection,
    hold_ids: Iterable[str],
    spent: Mapping[tuple[str, str, str, int], int],
) -> None:
    """In the transaction that stores events: release the holds of the calls they record, and
    add each window's share of their cost (*spent*: window row → 10^-12 USD) to rows whose
    spend is known (a row not yet read from the ledger will sum these events itself)."""
    holds, table = budget_holds_table, budget_windows_table
    ids = sorted(set(hold_ids))
    if ids:
        connection.execute(delete(holds).where(holds.c.hold_id.in_(ids)))
    for key in sorted(spent):
        units = spent[key]
        if units <= 0:
            continue
        connection.execute(
            update(table)
            .where(_where(key), table.c.spent_units.is_not(None))
            .values(
                spent_units=func.min(table.c.spent_units, _MOST - units) + units
                if connection.dialect.name == "sqlite"
                else func.least(table.c.spent_units, _MOST - units) + units
            )
        )


def release(ledger: Ledger, hold_id: str) -> None:
    """Release a call's holds when it will record no event (its event was refused)."""
    with ledger.transaction() as connection:
        holds = budget_holds_table
        connection.execute(delete(holds).where(holds.c.hold_id == hold_id))
