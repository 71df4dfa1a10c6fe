"""The bundle's member names and format identifiers, shared by the writer and the verifier."""

from __future__ import annotations

__all__ = [
    "BLOCKS",
    "CHECKPOINT",
    "ENTRIES",
    "EVENTS",
    "FORMAT",
    "FORMAT_VERSION",
    "IMPORTS",
    "INDEX",
    "MANIFEST",
    "OFFSETS",
    "PDF",
    "RECEIPTS",
    "SIGNATURE",
    "SSH_SIGNATURE",
    "STORED",
    "TREE",
    "VERIFIER",
    "VERIFY_TEXT",
    "XLSX",
]

FORMAT = "p402-audit-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SSH_SIGNATURE = "manifest.json.sshsig"
CHECKPOINT = "ledger/checkpoint"
EVENTS = "ledger/events.jsonl"
ENTRIES = "ledger/entries.jsonl"
"""Signed ledger entries (retention purges) that touch the period: why events are missing."""
IMPORTS = "ledger/imports.jsonl"
"""The control records of the imports whose events fall in the period: what was read, stored,
already stored, repeated or skipped, file by file (the completeness-and-accuracy evidence)."""
RECEIPTS = "receipts/receipts.jsonl"
PDF = "report.pdf"
XLSX = "report.xlsx"
VERIFY_TEXT = "VERIFY.txt"
VERIFIER = "verify_bundle.py"
"""The stand-alone verifier (Python standard library only), shipped so an auditor can read
what is checked and run it with nothing but ``python3``: :mod:`p402.bundles.standalone`."""
TREE = "merkle/tree.bin"
"""Every node of the period's Merkle tree, level by level from the leaves, 32 bytes each."""
INDEX = "receipts/index.bin"
"""Sorted (first 8 bytes of SHA-256(event_id), leaf index): an event's leaf without a scan."""
BLOCKS = "ledger/blocks.bin"
"""Where each block of the deflated ledger starts, compressed and not (big-endian 64-bit)."""
OFFSETS = "ledger/offsets.bin"
"""Bundles of one earlier layout only (stored ledger): where each line of the ledger starts."""
STORED = frozenset({TREE, INDEX, BLOCKS})
"""Members written uncompressed, so one receipt is a few reads at known offsets in the zip.
The ledger is deflated, in blocks that can be inflated on their own (see :mod:`lookup`)."""
