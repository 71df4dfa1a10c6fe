"""Import formats: each provider's own export, read as it comes, into canonical raw rows.

Usage::

    from p402.ingest.formats import get_format

    fmt = get_format("anthropic-usage")      # ConfigError naming the known formats if unknown
    for row in fmt.read(Path("usage.json"), None):
        ...                                   # row.record is a canonical raw event, or None

Each module below defines ``FORMATS``; this registry finds them by name.
"""

from __future__ import annotations

import importlib
from functools import cache

from p402.errors import ConfigError
from p402.ingest.formats._common import (
    Format,
    Parts,
    Progress,
    SourceRow,
    Span,
    span_line_count,
)

__all__ = [
    "MODULES",
    "Format",
    "Parts",
    "Progress",
    "SourceRow",
    "Span",
    "all_formats",
    "get_format",
    "span_line_count",
]

# Each format name and the module that reads it: importing one format loads only its module.
MODULES = {
    "events": "canonical",
    "openai-usage": "openai",
    "openai-usage-csv": "openai",
    "openai-costs": "openai",
    "anthropic-usage": "anthropic",
    "anthropic-costs": "anthropic",
    "bedrock-logs": "bedrock",
    "gemini": "gemini",
    "openrouter": "openrouter",
    "litellm": "litellm",
    "otel": "otel",
}


@cache
def get_format(name: str) -> Format:
    """The format called *name*.

    Raises:
        ConfigError: no format has that name (the message lists them).
    """
    if name not in MODULES:
        raise ConfigError(f"unknown import format {name!r}", hint=f"one of: {', '.join(MODULES)}")
    module = importlib.import_module(f"p402.ingest.formats.{MODULES[name]}")
    found: Format = next(fmt for fmt in module.FORMATS if fmt.name == name)
    return found


def all_formats() -> dict[str, Format]:
    """Every format, by name."""
    return {name: get_format(name) for name in MODULES}
