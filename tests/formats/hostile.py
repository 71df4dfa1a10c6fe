"""Hostile input for any format: random and mutated documents must give rows or problems, never
an exception, and an import must land whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from p402.ingest.formats import SourceRow
from p402.ingest.importer import ImportRejected, import_files
from p402.ledger.store import Ledger

HOSTILE = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def json_values(
    fields: Sequence[str], samples: Sequence[str], *, max_leaves: int = 20
) -> st.SearchStrategy[Any]:
    """Random JSON built from a format's own field names and telling values (times, ids, huge
    numbers), so the garbage reaches deep into a reader instead of failing at the first key."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(list(samples)), st.text(max_size=12),
    )  # fmt: skip
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(list(fields)) | st.text(max_size=6), inner, max_size=6
            )
        ),
        max_leaves=max_leaves,
    )


def paths_in(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_in(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_in(item, (*prefix, index))


def mutated(record: Any, where: tuple[Any, ...], value: Any) -> Any:
    """A copy of *record* with the value at *where* replaced."""
    if not where:
        return value
    copy = json.loads(json.dumps(record))
    target = copy
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    return copy


def check_read(read: Callable[[Path, Any], Iterator[SourceRow]], path: Path) -> None:
    """Reading gives rows or problems, one or the other, and never raises."""
    for row in read(path, None):
        assert (row.record is None) == bool(row.problems)


def check_import(tmp_path: Path, path: Path, *, tenant: str, fmt: str) -> None:
    """The file imports, or is rejected with every problem and nothing stored."""
    for stale in tmp_path.glob("fuzz.db*"):
        stale.unlink()
    ledger = Ledger.open(str(tmp_path / "fuzz.db"))
    rejected: ImportRejected | None = None
    try:
        summary = import_files(ledger, [path], tenant=tenant, fmt=fmt)
    except ImportRejected as caught:
        rejected = caught
    stored = ledger.count(tenant)
    ledger.close()
    if rejected is None:
        assert stored == summary.new
    else:
        assert rejected.problems
        assert stored == 0
