"""The attribute stage: ordered rules give events an owner, department, customer, workflow...

First match wins. A rule matches on provider, model, source identifiers, attribution fields
the source set, and tags (``tag.<name>``), each an exact value or a glob (``key_support*``).
It sets attribution fields the source left empty; with ``override = true`` it replaces what
the source said too. Rules always start from what the *source* gave (kept on the event), so
re-applying them to history (``p402 attribute``) is exact and repeatable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import translate
from typing import Any

from p402.config import Rule
from p402.ledger.events import ATTRIBUTION_FIELDS, Event

__all__ = ["Attributor"]

_SOURCE_KEYS = (*ATTRIBUTION_FIELDS, "attribution_rule")


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    tests: tuple[tuple[str, re.Pattern[str] | str], ...]

    def matches(self, values: dict[str, Any]) -> bool:
        for key, test in self.tests:
            value = values.get(key)
            if value is None:
                return False
            if isinstance(test, str):
                if value != test:
                    return False
            elif not test.match(value):
                return False
        return True


def _compile(rule: Rule) -> _Compiled:
    tests: list[tuple[str, re.Pattern[str] | str]] = []
    for key, pattern in rule.match:
        glob = any(ch in pattern for ch in "*?[")
        tests.append((key, re.compile(translate(pattern)) if glob else pattern))
    return _Compiled(rule, tuple(tests))


def source_values(event: Event) -> dict[str, str]:
    """What the source itself said about attribution (before any rule)."""
    if event.source_attribution is not None:
        return dict(event.source_attribution)
    return {key: value for key in _SOURCE_KEYS if (value := getattr(event, key)) is not None}


class Attributor:
    """Applies the rules to events; remembers decisions per distinct set of inputs, because a
    ledger repeats the same keys, models and tags millions of times."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = tuple(_compile(rule) for rule in rules)
        self._keys = tuple(sorted({key for rule in rules for key, _ in rule.match}))
        self._memo: dict[tuple[Any, ...], tuple[tuple[str, str | None], ...]] = {}

    @property
    def keys(self) -> tuple[str, ...]:
        """The event fields (and ``tag.<name>``) the rules look at."""
        return self._keys

    def decide(self, event: Event) -> tuple[tuple[str, str | None], ...]:
        """The attribution fields and ``attribution_rule`` the event should have, in order."""
        tags = dict(event.tags)
        fields = {
            key: tags.get(key[4:]) if key.startswith("tag.") else getattr(event, key, None)
            for key in self._keys
        }
        return self.decide_values(fields, source_values(event))

    def decide_values(
        self, fields: dict[str, Any], given: dict[str, str]
    ) -> tuple[tuple[str, str | None], ...]:
        """:meth:`decide` from plain values: *fields* holds each of :attr:`keys` (tags as
        ``tag.<name>``), *given* the source's attribution."""
        inputs = {
            key: given.get(key) if key in ATTRIBUTION_FIELDS else fields.get(key)
            for key in self._keys
        }
        memo_key = (tuple(inputs.values()), tuple(sorted(given.items())))
        if (decided := self._memo.get(memo_key)) is None:
            decided = self._decide(inputs, given)
            if len(self._memo) < 1_000_000:
                self._memo[memo_key] = decided
        return decided

    def _decide(
        self, inputs: dict[str, Any], given: dict[str, str]
    ) -> tuple[tuple[str, str | None], ...]:
        result: dict[str, str | None] = {key: given.get(key) for key in _SOURCE_KEYS}
        for compiled in self._rules:
            if not compiled.matches(inputs):
                continue
            changed = False
            for key, value in compiled.rule.set:
                if compiled.rule.override or result[key] is None:
                    changed |= result[key] != value
                    result[key] = value
            if changed:
                result["attribution_rule"] = compiled.rule.name
            break
        return tuple(result.items())

    def apply(self, event: Event) -> Event:
        """The event attributed by the rules (unchanged when no rule applies)."""
        if not self._rules and event.source_attribution is None:
            return event
        decided = dict(self.decide(event))
        if all(getattr(event, key) == value for key, value in decided.items()):
            return event
        given = tuple(sorted(source_values(event).items()))
        return event.evolve(**decided, source_attribution=given)

    def attribute(self, values: dict[str, Any]) -> None:
        """:meth:`apply` for an event still in pieces (its field values, defaults left out, as
        :func:`~p402.ingest.validation.check_row` gives them): what the rules decide is set in
        *values*, which then assemble into the event :meth:`apply` would give."""
        held = values.get("source_attribution")
        if not self._rules and held is None:
            return
        if held is not None:
            given = dict(held)
        else:
            given = {key: value for key in _SOURCE_KEYS if (value := values.get(key)) is not None}
        tags = dict(values.get("tags") or ())
        fields = {
            key: tags.get(key[4:]) if key.startswith("tag.") else values.get(key)
            for key in self._keys
        }
        decided = self.decide_values(fields, given)
        if all(values.get(key) == value for key, value in decided):
            return
        values.update(decided)
        values["source_attribution"] = tuple(sorted(given.items()))
