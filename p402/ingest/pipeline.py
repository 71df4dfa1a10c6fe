"""The one pipeline every entry takes: validate -> price -> stamp retention -> attribute.

Files (:mod:`p402.ingest.importer`), the meter API and the routing proxy (:mod:`p402.serve`)
all turn a raw row into the values of an event here, so an event is checked, priced and
attributed the same way whichever door it came in by.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from p402.config import Config
from p402.errors import FieldProblems
from p402.ingest.attribution import Attributor
from p402.ingest.pricing import Pricer
from p402.ingest.validation import check_row
from p402.ledger.events import Event
from p402.money import MAX_EVENT_COST

__all__ = ["Pipeline"]


class Pipeline:
    """validate → price → attribute, for one tenant and source; the same for every entry point."""

    def __init__(
        self,
        *,
        tenant: str,
        source: str,
        config: Config | None = None,
        retention_days: int | None = None,
        client_retention: bool = True,
    ) -> None:
        config = config or Config()
        self.tenant, self.source = tenant, source
        self.config = config
        self.retention = self.retention_of(retention_days)
        self.client_retention = client_retention
        """Whether a row may name its own shorter ``retention_until`` (the meter asks the
        tenant; an operator's import may)."""
        self.pricer = Pricer(config.prices)
        self.attributor = Attributor(config.rules)

    def __reduce__(self) -> tuple[Any, ...]:
        # A worker process builds its own pricer and attributor from the same settings.
        days = None if self.retention is None else self.retention.days
        return (_pipeline, (self.tenant, self.source, self.config, days, self.client_retention))

    def retention_of(self, retention_days: int | None) -> timedelta | None:
        """How long this tenant's events are kept: the registered tenant's retention, else the
        configuration's ``[tenant]`` one when it names this tenant, else no limit."""
        config = self.config
        if retention_days is None and config.tenant is not None and config.tenant.id == self.tenant:
            retention_days = config.tenant.retention_days
        return None if retention_days is None else timedelta(days=retention_days)

    def event(self, raw: dict[str, object]) -> tuple[Event | None, FieldProblems, int]:
        """The stored form of one raw row, or its problems; and how many content fields were dropped."""
        values, problems, dropped = self.values(raw)
        return (None if values is None else Event.assemble(values)), problems, dropped

    def values(self, raw: dict[str, object]) -> tuple[dict[str, Any] | None, FieldProblems, int]:
        """:meth:`event` in pieces: the field values ``Event.assemble`` makes the event of (the
        importer turns them straight into a row), or the problems; and how many content fields
        were dropped."""
        # What validate, Pricer.apply, a retention stamp and Attributor.apply would give,
        # without building an event at each stage.
        values, problems, dropped_content = check_row(raw, tenant=self.tenant, source=self.source)
        dropped = len(dropped_content)
        if values is None:
            return None, problems, dropped
        changes = self.pricer.basis(values)
        if changes is not None:
            values.update(changes)
        for name in ("cost", "list_cost"):
            amount = values.get(name)
            if amount is not None and amount > MAX_EVENT_COST:
                # Only absurd token counts get here; stored units would overflow 64 bits.
                message = f"its tokens price at {amount:.2f} USD, beyond the {MAX_EVENT_COST} an event may hold"
                return None, [(name, message)], dropped
        until = values.get("retention_until")
        if until is not None and (problem := self._retention_problem(values)) is not None:
            return None, [("retention_until", problem)], dropped
        if self.retention is not None and until is None:
            values["retention_until"] = values["occurred_at"] + self.retention
        self.attributor.attribute(values)
        return values, [], dropped

    def _retention_problem(self, values: dict[str, Any]) -> str | None:
        """Why a row's own ``retention_until`` cannot be kept: retention is the tenant's policy;
        a row may ask for less only where the tenant lets it, and never for a date before the
        event itself."""
        until, at = values["retention_until"], values["occurred_at"]
        if until < at:
            return (
                f"is before occurred_at ({_until(at)}): an event is kept at least until it happened"
            )
        if self.retention is not None and until > at + self.retention:
            return (
                f"is beyond the tenant's retention of {self.retention.days} days "
                f"(until {_until(at + self.retention)})"
            )
        if not self.client_retention:
            return "is the tenant's to set: this tenant does not let clients shorten retention"
        return None


def _until(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _pipeline(
    tenant: str, source: str, config: Config, retention_days: int | None, client_retention: bool
) -> Pipeline:
    return Pipeline(
        tenant=tenant, source=source, config=config, retention_days=retention_days,
        client_retention=client_retention,
    )  # fmt: skip
