"""VERIFY.txt: how an auditor checks the bundle, with p402 or with stock tools only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from p402.bundles.layout import EVENTS, MANIFEST, SIGNATURE

__all__ = ["verify_text"]

_TEXT = """\
HOW TO VERIFY THIS AUDIT BUNDLE
===============================

Tenant: {tenant}
Period: {period} ({start} to {end}, end excluded, UTC)
Events: {count}      Total cost: {total} USD (exact: {exact})
Merkle root (RFC 9162, SHA-256): {root}
Signing key id (SHA-256 of the public key, DER): {key_id}

You need the public key you received from the issuer out of band (p402-signing.pub).
Do not trust a key that came inside this bundle.

1. With p402 (checks everything below, and the ledger, receipts and Merkle root):

     p402 verify THIS-BUNDLE.zip --key p402-signing.pub

2. With stock tools only (OpenSSL 3, sha256sum, unzip):

     mkdir bundle && cd bundle && unzip -q ../THIS-BUNDLE.zip
     # the manifest is signed, byte for byte, with Ed25519:
     openssl pkeyutl -verify -pubin -inkey ../p402-signing.pub -rawin \\
         -in {manifest} -sigfile {signature}
     # every other file is listed in the manifest with its size and SHA-256:
     python3 -c 'import json; [print(f["sha256"], f["path"]) for f in json.load(open("{manifest}"))["files"]]' \\
         | sed 's/ /  /' | sha256sum --check

   {events} holds one event per line in canonical JSON (RFC 8785). Leaf i of the Merkle
   tree is SHA-256(0x00 || line i without its newline); an inner node is
   SHA-256(0x01 || left || right), as in RFC 9162, section 2.1.
"""


def verify_text(manifest: Mapping[str, Any]) -> bytes:
    """The instructions for this bundle's figures (written before the manifest is signed)."""
    return _TEXT.format(
        tenant=manifest["tenant"],
        period=manifest["period"]["label"],
        start=manifest["period"]["start"],
        end=manifest["period"]["end"],
        count=manifest["events"]["count"],
        total=manifest["totals"]["cost_rounded"],
        exact=manifest["totals"]["cost"],
        root=manifest["merkle"]["root"],
        key_id=manifest["key_id"],
        manifest=MANIFEST,
        signature=SIGNATURE,
        events=EVENTS,
    ).encode()
