"""p402: an AI spend audit.

Every AI call is recorded as a metadata-only economic event; an audit turns a period of the
ledger into PDF and XLSX reports and a signed bundle that an auditor verifies offline::

    $ p402 audit --demo --out out/
    $ p402 verify out/p402-audit-demo-2026-10.zip --key out/keys/p402-signing.pub
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "lazy_names"]


def lazy_names(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` that imports each name from its module on first use
    (*homes*: name -> module within *package*), so importing the package stays cheap."""

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module hook PEP 562 names)
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return __getattr__
