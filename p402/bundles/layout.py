"""The bundle's member names and format identifiers, shared by the writer and the verifier."""

from __future__ import annotations

__all__ = [
    "CHECKPOINT",
    "ENTRIES",
    "EVENTS",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "PDF",
    "RECEIPTS",
    "SIGNATURE",
    "SSH_SIGNATURE",
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
RECEIPTS = "receipts/receipts.jsonl"
PDF = "report.pdf"
XLSX = "report.xlsx"
VERIFY_TEXT = "VERIFY.txt"
