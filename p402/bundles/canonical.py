"""Canonical JSON (RFC 8785) for everything that is hashed or signed, and a strict reader.

:func:`dumps` is the reference encoder (the maintained ``rfc8785`` package). :func:`dumps_record`
is the fast path for ledger records, whose values are only strings, integers, booleans, nulls
and flat objects of strings: for those, orjson with sorted keys writes the very same bytes (a
property test holds it to the reference), about twenty times faster. :func:`loads` rejects
duplicate keys, floats and non-finite numbers, so a value has exactly one reading.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
import rfc8785

__all__ = ["CanonicalError", "canonical_lines", "dumps", "dumps_record", "loads"]


class CanonicalError(ValueError):
    """The bytes are not the one canonical JSON reading this format allows."""


def dumps(value: Any) -> bytes:
    """RFC 8785 canonical JSON of *value* (no floats allowed: decimals travel as strings)."""
    return bytes(rfc8785.dumps(value))


def dumps_record(record: Mapping[str, Any]) -> bytes:
    """Canonical JSON of a ledger record, fast. Same bytes as :func:`dumps` for its value types."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CanonicalError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise CanonicalError(f"number {text} is not an integer; amounts are written as strings")


def loads(data: bytes) -> Any:
    """Parse JSON strictly: no duplicate keys, no floats, no NaN or Infinity."""
    try:
        return json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CanonicalError(f"not valid JSON: {exc}") from None


def canonical_lines(
    lines: Iterable[tuple[int, bytes]], member: str, problems: list[str]
) -> Iterator[tuple[str, Any]]:
    """Each numbered line of a JSON Lines *member* with where it is (``member:line``) and its
    value, or ``None`` when the line is not canonical JSON (the problem is then in *problems*)."""
    for number, line in lines:
        where = f"{member}:{number}"
        try:
            value = loads(line)
        except CanonicalError as exc:
            problems.append(f"{where}: {exc}")
            yield where, None
            continue
        if dumps(value) != line:
            problems.append(f"{where}: not in canonical JSON form")
            yield where, None
            continue
        yield where, value
