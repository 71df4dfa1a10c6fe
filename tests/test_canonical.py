"""Canonical JSON: the fast ledger encoder writes exactly RFC 8785, and the reader is strict."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from p402.bundles.canonical import CanonicalError, dumps, dumps_record, loads
from tests.conftest import small_events

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1), st.text()
)
# Keys are ASCII in the ledger; below the surrogates, code point order equals RFC 8785's UTF-16 order.
keys = st.text(alphabet=st.characters(max_codepoint=0xD7FF))
records = st.dictionaries(
    keys, st.one_of(scalars, st.dictionaries(keys, st.text(), max_size=4)), max_size=12
)


@given(records)
def test_fast_record_encoding_is_rfc8785(record: dict[str, Any]) -> None:
    assert dumps_record(record) == bytes(rfc8785.dumps(record))


def test_ledger_records_round_trip() -> None:
    for event in small_events():
        record = event.to_json()
        assert loads(dumps_record(record)) == record
        assert dumps(record) == dumps_record(record)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"cost": 0.1}', "not an integer"),
        (b'{"x": NaN}', "not an integer"),
        (b"\xff", "not valid JSON"),
        (b'{"a": ', "not valid JSON"),
    ],
)
def test_strict_reader_rejects_ambiguous_json(text: bytes, message: str) -> None:
    with pytest.raises(CanonicalError, match=message):
        loads(text)
