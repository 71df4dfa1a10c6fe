"""VERIFY.txt: how an auditor checks the bundle, with p402 or with stock tools only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from p402.bundles.layout import (
    BLOCKS,
    CHECKPOINT,
    EVENTS,
    INDEX,
    MANIFEST,
    SIGNATURE,
    SSH_SIGNATURE,
    TREE,
)

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

2. With stock tools only (OpenSSL 3, OpenSSH 8.1 or later, sha256sum, unzip):

     mkdir bundle && cd bundle && unzip -q ../THIS-BUNDLE.zip
     # the manifest is signed, byte for byte, with Ed25519:
     openssl pkeyutl -verify -pubin -inkey ../p402-signing.pub -rawin \\
         -in {manifest} -sigfile {signature}
     # and with OpenSSH (allowed_signers comes with the key, from p402 keys create):
     ssh-keygen -Y verify -f ../allowed_signers -I p402 -n p402-audit \\
         -s {ssh_signature} < {manifest}
     # every other file is listed in the manifest with its size and SHA-256:
     python3 -c 'import json; [print(f["sha256"], f["path"]) for f in json.load(open("{manifest}"))["files"]]' \\
         | sed 's/ /  /' | sha256sum --check

   {events} holds one event per line in canonical JSON (RFC 8785). Leaf i of the Merkle
   tree is SHA-256(0x00 || line i without its newline); an inner node is
   SHA-256(0x01 || left || right), as in RFC 9162, section 2.1. {checkpoint} is the
   signed tree head (origin, size, root) in the C2SP checkpoint / signed-note format that
   transparency logs use.

{lookup}
3. One event on its own: p402 receipt THIS-BUNDLE.zip EVENT_ID > receipt.json writes a
   self-contained receipt (the event, its inclusion proof, the signed checkpoint) that a third
   party verifies with: p402 verify-receipt receipt.json --key p402-signing.pub
"""


_LOOKUP = """\
   Three stored members make one receipt a few reads: {tree} (the nodes of that tree
   from level {level} up, level by level, 32 bytes each, an odd last node carried up
   unchanged: node k of level {level} is the root of the leaves of the ledger's block k,
   described below, whose lines give the levels under it), {index} (sorted
   12-byte records: the first 8 bytes of SHA-256(event_id), then the leaf index) and
   {blocks}. The ledger is deflated in blocks of {lines:,} lines, each ended by a full
   flush, so that a block inflates on its own; it is still one ordinary deflate stream.
   {blocks} holds one 16-byte record per block, where it starts in the member's
   compressed data, then in its text, and a last record: where the stream's closing bytes
   start, then the text's size. All integers are big-endian; p402 verify rebuilds the
   tree's stored levels, the index and the text offsets from the ledger.
"""

_PREVIOUS_LOOKUP = """\
   Three stored members make one receipt a few reads: {tree} (every node of that tree,
   level by level from the leaves, 32 bytes each, an odd last node carried up unchanged),
   {index} (sorted 12-byte records: the first 8 bytes of SHA-256(event_id), then the
   leaf index) and {blocks}. The ledger is deflated in blocks of 1,024 lines, each
   ended by a full flush, so that a block inflates on its own; it is still one ordinary
   deflate stream. {blocks} holds one 16-byte record per block, where it starts in the
   member's compressed data, then in its text, and a last record: where the stream's
   closing bytes start, then the text's size. All integers are big-endian; p402 verify
   rebuilds the tree, the index and the text offsets from the ledger.
"""
"""The paragraph of bundles of the previous layout (every level of the tree stored): their
VERIFY.txt still states their manifest."""


def _lookup_text(manifest: Mapping[str, Any]) -> str:
    section = manifest.get("receipts", {})
    level = section.get("tree_from_level") if isinstance(section, Mapping) else None
    if level is None:
        return _PREVIOUS_LOOKUP.format(tree=TREE, index=INDEX, blocks=BLOCKS)
    return _LOOKUP.format(tree=TREE, index=INDEX, blocks=BLOCKS, level=level, lines=1 << level)


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
        ssh_signature=SSH_SIGNATURE,
        checkpoint=CHECKPOINT,
        events=EVENTS,
        lookup=_lookup_text(manifest),
    ).encode()
