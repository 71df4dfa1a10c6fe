"""The bridge from the ledger to what was billed: each provider-month's reconciling items.

The ledger holds what p402 priced; the invoice is what is owed. Between them, per provider and
month, the bridge names every item, so ``ledger + items = billed`` to the cent:

- billed on days with no usage in the ledger (priced from the imported billed lines): charged
  to the default cost centre, the usage behind it being unknown;
- the rest of the difference, when the month reconciles (or it is no larger than
  ``[journal] suspense_threshold``): spread over the month's departments in proportion to
  their usage, as an immaterial difference is;
- the rest of the difference, when the month does not reconcile: unexplained, so posted to the
  suspense account for the controller to clear, never spread over departments' cost centres.

A month with no invoice and no billed lines is accrued at the ledger's figure: no item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from p402.config import JournalSettings
from p402.reporting.reconciliation import Reconciliation

__all__ = ["SHARED", "SPREAD", "SUSPENSE", "Bridge", "BridgeItem", "bridge"]

SPREAD = "spread by usage"
SUSPENSE = "to suspense"
SHARED = "to the default cost centre"
_ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class BridgeItem:
    """One reconciling item: what it is, its amount (billed minus ledger) and how it posts."""

    description: str
    amount: Decimal
    treatment: str


@dataclass(frozen=True, slots=True)
class Bridge:
    """One provider-month from the ledger to the amount accrued."""

    provider: str
    month: str
    ledger: Decimal
    items: tuple[BridgeItem, ...]
    accrued: Decimal
    """What the journal credits: the billed amount, or the ledger's when nothing was billed."""
    basis: str

    def amount(self, treatment: str) -> Decimal:
        """The items' amount of one treatment."""
        return sum((i.amount for i in self.items if i.treatment == treatment), _ZERO)


def _items(row: Reconciliation, billed: Decimal, settings: JournalSettings) -> list[BridgeItem]:
    items = []
    if row.uncaptured:
        items.append(
            BridgeItem("billed on days with no usage in the ledger", row.uncaptured, SHARED)
        )
    rest = billed - row.ledger - row.uncaptured
    if not rest:
        return items
    if row.reconciled:
        items.append(BridgeItem("difference within the reconciliation tolerance", rest, SPREAD))
    elif abs(rest) <= settings.suspense_threshold:
        items.append(BridgeItem("difference at or under the suspense threshold", rest, SPREAD))
    else:
        why = "; ".join(row.causes)
        items.append(BridgeItem(f"unexplained difference ({why})", rest, SUSPENSE))
    return items


def bridge(rows: Sequence[Reconciliation], settings: JournalSettings) -> list[Bridge]:
    """The bridge of every reconciled provider-month, in the reconciliation's order."""
    bridges = []
    for row in rows:
        if row.billed is None:
            bridges.append(Bridge(row.provider, row.month, row.ledger, (), row.ledger,
                                  "ledger; no invoice given"))  # fmt: skip
            continue
        items = tuple(_items(row, row.billed, settings))
        bridges.append(Bridge(row.provider, row.month, row.ledger, items, row.billed,
                              str(row.billed_source)))  # fmt: skip
    return bridges
