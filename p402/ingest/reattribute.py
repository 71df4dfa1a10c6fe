"""Re-apply the attribution rules to every stored event of a tenant, history included.

Reads only the columns rules look at (never whole events), decides each event's attribution
from what its *source* gave plus the current rules, writes back only the rows that change,
and reports what moved: events and cost between departments, before → after.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from p402.config import Rule
from p402.ingest.attribution import Attributor
from p402.ledger.events import ATTRIBUTION_FIELDS
from p402.ledger.store import Ledger

__all__ = ["Reattribution", "reattribute"]

_WRITTEN = (*ATTRIBUTION_FIELDS, "attribution_rule")
_BATCH = 5_000


@dataclass(slots=True)
class Reattribution:
    """What re-applying the rules changed (or would change, on a dry run)."""

    events: int = 0
    changed: int = 0
    moves: dict[tuple[str | None, str | None], list[int]] = field(default_factory=dict)
    """(department before, after) → [events, cost units], for events whose department moved."""
    fields: dict[str, int] = field(default_factory=dict)
    """How many events changed in each attribution field."""


def _columns(attributor: Attributor) -> tuple[list[str], list[str]]:
    """The columns to read after the row id: cost, tags and the source's attribution, what a
    rule may write, then the other fields the rules match on; and those last ones."""
    needed = sorted({key for key in attributor.keys if not key.startswith("tag.")} - set(_WRITTEN))
    return ["cost_units", "tags", "source_attribution", *_WRITTEN, *needed], needed


_MEMO_LIMIT = 200_000
_Decision = tuple[dict[str, Any], str, tuple[str, ...], tuple[str | None, str | None] | None]
_MISSING: Any = object()


def _decide(
    attributor: Attributor, key: tuple[Any, ...], needed: list[str], wants_tags: bool
) -> _Decision | None:
    """What the rules make of a row's columns after ``id, cost_units`` (see :func:`_query`):
    the fields to write, the source's own attribution as stored JSON, the fields that change
    and the department move; or ``None`` when nothing changes."""
    tags, source = key[0], key[1]
    current = dict(zip(_WRITTEN, key[2 : 2 + len(_WRITTEN)], strict=True))
    given = orjson.loads(source) if source else {k: v for k, v in current.items() if v is not None}
    values = dict(zip(needed, key[2 + len(_WRITTEN) :], strict=True))
    if wants_tags and tags != "{}":
        values.update({f"tag.{k}": v for k, v in orjson.loads(tags).items()})
    decided = dict(attributor.decide_values(values, given))
    if decided == current:
        return None
    changed = tuple(name for name in _WRITTEN if decided[name] != current[name])
    move = None
    if decided["department"] != current["department"]:
        move = (current["department"], decided["department"])
    # The first time a rule changes a row, what the source said is recorded beside it.
    stored = source or orjson.dumps(given, option=orjson.OPT_SORT_KEYS).decode()
    return decided, stored, changed, move


def reattribute(
    ledger: Ledger,
    *,
    tenant: str,
    rules: tuple[Rule, ...],
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Reattribution:
    """Re-apply *rules* to all of the tenant's events; write the changes unless *dry_run*."""
    attributor = Attributor(rules)
    columns, needed = _columns(attributor)
    outcome = Reattribution()
    moves: defaultdict[tuple[str | None, str | None], list[int]] = defaultdict(lambda: [0, 0])
    fields: defaultdict[str, int] = defaultdict(int)
    pending: list[dict[str, Any]] = []
    wants_tags = any(key.startswith("tag.") for key in attributor.keys)
    # A ledger repeats the same keys, tags and attribution endlessly: what a row's columns
    # decide is worked out once per distinct set of them.
    decisions: dict[tuple[Any, ...], _Decision | None] = {}
    with ledger.transaction(bulk=True) as connection:
        for row in ledger.stream_columns(connection, tenant, columns, chunk=_BATCH):
            outcome.events += 1
            key = tuple(row[2:])
            decision = decisions.get(key, _MISSING)
            if decision is _MISSING:
                decision = _decide(attributor, key, needed, wants_tags)
                if len(decisions) < _MEMO_LIMIT:
                    decisions[key] = decision
            if progress and outcome.events % _BATCH == 0:
                progress(_BATCH)
            if decision is None:
                continue
            decided, source, changed, department_move = decision
            outcome.changed += 1
            for name in changed:
                fields[name] += 1
            if department_move is not None:
                move = moves[department_move]
                move[0] += 1
                move[1] += row[1] or 0
            pending.append({"row_id": row[0], **decided, "source_attribution": source})
            if len(pending) >= _BATCH and not dry_run:
                ledger.update_attribution(connection, pending)
                pending.clear()
        if not dry_run:
            ledger.update_attribution(connection, pending)
    if progress and outcome.events % _BATCH:
        progress(outcome.events % _BATCH)
    outcome.moves = dict(moves)
    outcome.fields = {key: count for key, count in fields.items() if count}
    return outcome
