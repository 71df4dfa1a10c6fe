"""Tags: the caller's own metadata on an event, as short text names and values.

Tags are how attribution rules see what a source says beyond the event's fields (``env``,
``team``, a request tag), so they are held to the same rule as every stored text: metadata,
never content. A tag's name is 1 to :data:`MAX_TAG_NAME` of ``A-Za-z0-9_.:/-``; its value at
most :data:`MAX_TAG_VALUE` printable characters; an event carries at most :data:`MAX_TAGS` of
the caller's, and up to :data:`MAX_OWN_TAGS` more of p402's own, named ``p402.*``
(:data:`OWN_PREFIX`), which the meter and the proxy do not let a caller set.
:func:`tags_from` turns what a source or a proxy header gives into tags that pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from p402.ledger.events import is_content_field

__all__ = [
    "CONTROL",
    "MAX_OWN_TAGS",
    "MAX_TAGS",
    "MAX_TAG_NAME",
    "MAX_TAG_VALUE",
    "OWN_PREFIX",
    "TAG_NAME",
    "tags_from",
]

MAX_TAGS = 32
"""The caller's tags an event may carry."""
OWN_PREFIX = "p402."
"""Tags p402 itself sets (``p402.usage``, ``p402.response_id``, an importer's notes)."""
MAX_OWN_TAGS = 8
MAX_TAG_NAME = 64
MAX_TAG_VALUE = 256
TAG_NAME = re.compile(rf"^[A-Za-z0-9_.:/-]{{1,{MAX_TAG_NAME}}}$")
"""A valid tag name."""
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""A control character: never in a stored text."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/-]")


def tags_from(values: Mapping[str, Any] | None, *, prefix: str = "") -> dict[str, str]:
    """Caller metadata as canonical tags: string, number and boolean values of at most 256
    characters, names made safe (at most 64 of ``A-Za-z0-9_.:/-``). Content-named keys and
    nested or long values are left out: tags are metadata, never a way in for content."""
    tags: dict[str, str] = {}
    for key, value in (values or {}).items():
        if not isinstance(key, str) or is_content_field(key.rsplit(".", 1)[-1]):
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | Decimal | float):
            text = str(value)
        else:
            continue
        name = _UNSAFE.sub("_", f"{prefix}{key}")[:MAX_TAG_NAME]
        if name and text and len(text) <= MAX_TAG_VALUE and not CONTROL.search(text):
            tags[name] = text
    return tags
