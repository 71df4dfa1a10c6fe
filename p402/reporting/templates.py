"""The one Jinja environment of p402's templates: the report the PDF is printed from, and the
pages of ``p402 serve``.

Templates are package data (``p402/templates``). Every value is escaped for HTML, and a name a
template uses that the code did not pass is an error (``StrictUndefined``), never a blank: a
missing figure must not print as nothing.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from p402.reporting.filters import FILTERS

__all__ = ["environment", "stylesheet"]


@cache
def environment() -> Environment:
    """The environment, made once per process."""
    made = Environment(
        loader=PackageLoader("p402", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    made.filters.update(FILTERS)
    return made


@cache
def stylesheet() -> str:
    """The report's stylesheet, from package data."""
    return (files("p402") / "templates" / "report.css").read_text(encoding="utf-8")
