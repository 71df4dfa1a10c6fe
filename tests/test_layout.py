"""The floor plan holds: each stage imports only what is upstream of it, the database layer
stays inside ``ledger/``, and each third-party library sits behind its one adapter.

Read from the source (every ``import``, at any depth, since heavy imports are deferred into
functions), so a seam cannot be crossed by a lazy import either. The verifier's own seam is
checked at run time too, in ``test_bundle_tamper.py``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "p402"
STAGES = ("ingest", "ledger", "reporting", "bundles", "audit", "serve", "cli")
SHARED = ("errors", "money", "period", "config", "archive", "progress", "cells")
"""Small modules beside the stages, which any stage may use and which use no stage."""

FORBIDDEN = {
    "ledger": {"ingest", "reporting", "bundles", "audit", "serve", "cli"},
    "ingest": {"reporting", "bundles", "audit", "serve", "cli"},
    "reporting": {"ingest", "bundles", "audit", "serve", "cli"},
    "bundles": {"ledger", "ingest", "reporting", "audit", "serve", "cli"},
    "audit": {"serve", "cli"},
    "serve": {"cli"},
    "cli": set(),
}
"""What each stage must not import. Data flows one way: ingest -> ledger -> audit (which has
reporting render and bundles seal) -> serve and cli, the two doors."""

ADAPTERS = {
    "sqlalchemy": ("ledger/",),
    "alembic": ("ledger/",),
    "psycopg": ("ledger/",),
    "weasyprint": ("reporting/pdf.py",),
    "openpyxl": ("reporting/xlsx.py",),
    "cryptography": ("bundles/signing.py",),
    "fastapi": ("serve/",),
    "starlette": ("serve/",),
    "pyarrow": ("ledger/export.py",),
}
"""Each third-party library, and the only places that may import it."""


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@cache
def _imports(path: Path) -> frozenset[str]:
    """Every module name *path* imports, anywhere in it (``from a import b`` gives ``a``, and
    ``a.b`` too, since ``b`` may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            assert node.module is not None
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _stage(path: Path) -> str | None:
    first = _relative(path).split("/")[0]
    if first == "__main__.py":  # python -m p402: the command line's other door
        return "cli"
    return first if first in STAGES else None


def _reaches(names: frozenset[str], package: str) -> list[str]:
    return sorted(n for n in names if n == package or n.startswith(f"{package}."))


def test_the_tree_has_the_stages_and_nothing_loose() -> None:
    top = sorted(path.name for path in PACKAGE.iterdir() if not path.name.startswith("__py"))
    expected = {f"{name}.py" for name in SHARED} | set(STAGES)
    expected |= {"__init__.py", "__main__.py", "py.typed", "templates"}
    assert set(top) == expected


@pytest.mark.parametrize("path", _modules(), ids=_relative)
def test_a_stage_imports_only_what_is_upstream_of_it(path: Path) -> None:
    stage = _stage(path)
    names = _imports(path)
    forbidden = set(STAGES) if stage is None else FORBIDDEN[stage]  # shared: uses no stage
    crossed = [name for other in sorted(forbidden) for name in _reaches(names, f"p402.{other}")]
    assert crossed == [], f"{_relative(path)} ({stage or 'shared'}) imports {crossed}"


@pytest.mark.parametrize("library", sorted(ADAPTERS))
def test_each_library_sits_behind_its_adapter(library: str) -> None:
    allowed = ADAPTERS[library]
    users = [
        _relative(path)
        for path in _modules()
        if _reaches(_imports(path), library) and not _relative(path).startswith(allowed)
    ]
    assert users == [], f"{library} is imported outside {allowed}: {users}"


def test_reporting_reads_only_the_ledger_records() -> None:
    """Reporting aggregates events and roll-up groups; it never reaches the store itself."""
    reached = {
        name
        for path in (PACKAGE / "reporting").rglob("*.py")
        for name in _reaches(_imports(path), "p402.ledger")
    }
    assert reached <= {"p402.ledger.events", "p402.ledger.events.Event", "p402.ledger.events.Group"}


def test_the_ledger_records_need_no_database() -> None:
    assert _reaches(_imports(PACKAGE / "ledger" / "events.py"), "sqlalchemy") == []
    assert _reaches(_imports(PACKAGE / "ledger" / "events.py"), "p402.ledger") == []


def test_a_planted_crossing_is_caught(tmp_path: Path) -> None:
    """The checks can fail: an import hidden in a function still counts."""
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from p402.ledger.store import Ledger\n    return Ledger\n")
    assert _reaches(_imports(planted), "p402.ledger") == [
        "p402.ledger.store",
        "p402.ledger.store.Ledger",
    ]


SEAMS = {
    # openpyxl 3.1 writes every number through "%.16g" ($0.07 as 0.07000000000000001): this
    # is the one place a Decimal's own digits can be written. openpyxl is pinned in
    # constraints.txt, and tests/test_bundle_reports.py fails if the seam stops working.
    ("reporting/xlsx.py", "openpyxl.cell._writer"),
    # openpyxl writes every formula with an empty cached value, which readers that do not
    # calculate (data_only, pandas, previewers) read as a blank total: its sheets write cells
    # through this module's write_cell, the one place to add the value. tests/test_report.py
    # reads the totals with data_only and pandas, so it fails if the seam stops working.
    ("reporting/xlsx.py", "openpyxl.worksheet._writer"),
}
"""Private modules of a library reached on purpose, each with why (nothing else may)."""


@pytest.mark.parametrize("path", _modules(), ids=_relative)
def test_private_modules_stay_inside_their_package(path: Path) -> None:
    """A ``_name.py`` module is its package's own; what another package needs is public."""
    here = "p402." + ".".join(path.relative_to(PACKAGE).parent.parts)
    reached = []
    for name in _imports(path):
        parts = name.split(".")
        private = next((i for i, part in enumerate(parts) if part.startswith("_")), None)
        if private is None or parts[private].startswith("__"):
            continue
        owner = ".".join(parts[:private])
        outside = here.rstrip(".") != owner and not here.startswith(f"{owner}.")
        if outside and (_relative(path), name) not in SEAMS:
            reached.append(name)
    assert reached == [], f"{_relative(path)} reaches into {reached}"


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "cli"])
def test_each_stage_shows_its_production_path_and_names_its_surface(stage: str) -> None:
    """Each stage's ``__init__`` has a usage example and an ``__all__`` whose every name loads
    (lazily loaded names included)."""
    import importlib

    package = importlib.import_module(f"p402.{stage}")
    assert package.__doc__ is not None and "Usage" in package.__doc__
    assert package.__all__ == sorted(package.__all__, key=lambda n: (not n.isupper(), n))
    for name in package.__all__:
        assert getattr(package, name) is not None, f"p402.{stage}.{name}"
