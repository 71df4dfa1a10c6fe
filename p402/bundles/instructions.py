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
    VERIFIER,
)

__all__ = ["verify_text"]

_PREVIOUS_TEXT = """\
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


_TEXT = """\
HOW TO VERIFY THIS AUDIT BUNDLE
===============================

Tenant: {tenant}
Period: {period} ({start} to {end}, end excluded, UTC)
Events: {count}      Total cost: {total} USD (exact: {exact})
Merkle root (RFC 9162, SHA-256): {root}
Signing key id (SHA-256 of the public key, DER): {key_id}

WHAT "VALID" PROVES, AND WHAT IT DOES NOT

A valid bundle proves, in plain words:
  - integrity: not one byte of it changed since it was signed;
  - origin: it was signed by the holder of the key you trust (so check the key id above
    against the one the issuer gave you);
  - that the figures come from these events: the count, the total, the Merkle root and the
    reports' headline figures are recomputed from ledger/events.jsonl and agree.
It does NOT prove that every AI call was captured. Events never recorded are not in the
ledger, and no signature can show them. That is what the completeness-and-accuracy pack,
ledger/imports.jsonl, is for: one record per import of the period, with the rows read,
stored, already stored, repeated and skipped, and whether they tie. Compare those records
with the providers' own invoices and exports.

You need the issuer's public key, received out of band: p402-signing.pub (PEM, for
verify_bundle.py and openssl) or p402-signing.ssh.pub (OpenSSH, for ssh-keygen). Both
come from p402 keys create. Do not trust a key that came inside this bundle.

1. With the standalone verifier (Python 3.11 or later, standard library only). It checks
   the signature, every member, the Merkle root, the count, the totals, the checkpoint, the
   key id, the control records and the reports' figures, and prints one line:

     unzip -p THIS-BUNDLE.zip verify_bundle.py > verify_bundle.py
     python3 verify_bundle.py THIS-BUNDLE.zip --key p402-signing.pub

   Exit 0 is valid, 1 invalid. verify_bundle.py came inside the bundle: read it (one short
   file) or use a copy you kept, before you trust what it says. With p402 installed,
   p402 verify THIS-BUNDLE.zip --key p402-signing.pub checks the same and more.

2. With stock tools only (unzip, OpenSSL 3, OpenSSH 8.1 or later, sha256sum, sort, diff,
   python3). These prove the signature and the files' hashes, not the figures: a manifest
   re-signed by the key holder with a made-up total passes them. Run from the folder that
   holds the zip and both key files:

     mkdir bundle && cd bundle && unzip -q ../THIS-BUNDLE.zip
     # the manifest is signed, byte for byte, with Ed25519:
     openssl pkeyutl -verify -pubin -inkey ../p402-signing.pub -rawin \\
         -in {manifest} -sigfile {signature}
     # and with OpenSSH: allowed_signers, made with one echo from the OpenSSH key:
     echo "p402 namespaces=\\"p402-audit\\" $(cat ../p402-signing.ssh.pub)" > ../allowed_signers
     ssh-keygen -Y verify -f ../allowed_signers -I p402 -n p402-audit \\
         -s {ssh_signature} < {manifest}
     # the zip holds exactly the members the manifest lists (no output: none extra or missing):
     python3 -c 'import json; [print(f["path"]) for f in json.load(open("{manifest}"))["files"]]' \\
         | LC_ALL=C sort > ../listed.txt
     unzip -Z1 ../THIS-BUNDLE.zip | grep -vx 'manifest\\.json\\(\\.sig\\|\\.sshsig\\)\\?' \\
         | LC_ALL=C sort | diff - ../listed.txt
     # each listed member has the manifest's SHA-256:
     python3 -c 'import json; [print(f["sha256"], f["path"]) for f in json.load(open("{manifest}"))["files"]]' \\
         | sed 's/ /  /' | sha256sum --check

3. One event on its own: p402 receipt THIS-BUNDLE.zip EVENT_ID > receipt.json writes a
   self-contained receipt (the event, its inclusion proof, the signed checkpoint) that a third
   party verifies with: p402 verify-receipt receipt.json --key p402-signing.pub

HOW IT IS BUILT (for those who check by hand)

   {events} holds one event per line in canonical JSON (RFC 8785). Leaf i of the Merkle
   tree is SHA-256(0x00 || line i without its newline); an inner node is
   SHA-256(0x01 || left || right), as in RFC 9162, section 2.1. {checkpoint} is the
   signed tree head (origin, size, root) in the C2SP checkpoint / signed-note format that
   transparency logs use.

{lookup}"""
"""The text of bundles that ship ``verify_bundle.py``: what a valid bundle proves first, the
commands next, the internals last."""


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


def verify_text(manifest: Mapping[str, Any], *, standalone: bool | None = None) -> bytes:
    """The instructions for this bundle's figures (written before the manifest is signed).

    Bundles that ship the standalone verifier (*standalone*, by default whether the manifest
    lists ``verify_bundle.py``) get the current text; older ones keep the text they were
    written with, so that they still verify."""
    if standalone is None:
        files = manifest.get("files", [])
        standalone = any(isinstance(f, Mapping) and f.get("path") == VERIFIER for f in files)
    return (
        (_TEXT if standalone else _PREVIOUS_TEXT)
        .format(
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
        )
        .encode()
    )
