"""p402: an AI spend audit.

Every AI call is recorded as a metadata-only economic event; an audit turns a period of the
ledger into PDF and XLSX reports and a signed bundle that an auditor verifies offline::

    $ p402 audit --demo --out out/
    $ p402 verify out/p402-audit-demo-2026-10.zip --key out/keys/p402-signing.pub
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
