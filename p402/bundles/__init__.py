"""Bundles: seal a period's ledger, sign it, zip it with the reports, and verify it offline.

Usage::

    from p402.bundles import load_public_key, verify_bundle

    outcome = verify_bundle(Path("audit.zip"), load_public_key(Path("p402-signing.pub")))
    if not outcome.valid:
        print(*outcome.problems, sep="\\n")

Nothing here imports the ledger: an auditor has only the zip and a public key.
"""

from __future__ import annotations

from p402.bundles.signing import (
    KeyFileError,
    PublicKey,
    SigningKey,
    create_keys,
    load_public_key,
    load_signing_key,
)
from p402.bundles.verify import BundleInvalid, Limits, Verification, verify_bundle

__all__ = [
    "BundleInvalid",
    "KeyFileError",
    "Limits",
    "PublicKey",
    "SigningKey",
    "Verification",
    "create_keys",
    "load_public_key",
    "load_signing_key",
    "verify_bundle",
]
