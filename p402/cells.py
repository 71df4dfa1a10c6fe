"""Text cells no spreadsheet evaluates: what every CSV p402 writes does with its texts.

A text from the ledger (an attribution value any holder of a tenant key may send) that starts
like a formula would run as one in the spreadsheet a controller opens a CSV with (OWASP, CSV
injection). :func:`neutralised` marks it, :func:`restored` reads it back exactly.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FORMULA_STARTS", "neutralised", "restored"]


FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet opening a CSV takes for the start of a formula (OWASP, CSV injection)."""


def neutralised(text: str) -> str:
    """A text cell no spreadsheet evaluates: one that starts like a formula (or with the quote
    that marks one neutralised) gets a leading ``'``, as OWASP advises; :func:`restored` takes
    it off again, so ``p402 import events`` reads back exactly what was exported."""
    return f"'{text}" if text.startswith((*FORMULA_STARTS, "'")) else text


def restored(text: str) -> str:
    """The text :func:`neutralised` was given."""
    return (
        text[1:] if text.startswith("'") and text[1:].startswith((*FORMULA_STARTS, "'")) else text
    )
