"""Optimize: savings priced by re-pricing the period's own events under an alternative.

The figures are computed where the price table is at hand (:mod:`p402.audit.optimize`, which
re-prices events with the same pricer an import uses); this module holds what the reports show.
A saving is a what-if, never a finding about the past: it states its assumption and its risk,
and savings that exclude each other are never added (each concerns other events).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Saving"]


@dataclass(frozen=True, slots=True)
class Saving:
    """What one workflow's events on one model would have cost on a cheaper sibling."""

    kind: str
    """``right-size``: the same provider's smaller model of the family."""
    workflow: str
    department: str
    """The department the workflow's events on the model mostly belong to: who decides."""
    provider: str
    model: str
    alternative: str
    events: int
    requests: int
    cost: Decimal
    """What the events cost, rounded once."""
    alternative_cost: Decimal
    """What the same tokens cost at the alternative's price on each event's day."""
    saving: Decimal
    assumption: str
    risk: str

    @property
    def per_request(self) -> tuple[Decimal, Decimal]:
        """The cost of a request now and on the alternative, to the cent."""
        if not self.requests:
            return Decimal("0.00"), Decimal("0.00")
        cent = Decimal("0.01")
        return (self.cost / self.requests).quantize(cent), (
            self.alternative_cost / self.requests
        ).quantize(cent)
