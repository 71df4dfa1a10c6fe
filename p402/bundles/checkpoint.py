"""The signed checkpoint: the Merkle tree head as a C2SP signed note (c2sp.org/tlog-checkpoint,
c2sp.org/signed-note), the form transparency logs publish.

Text::

    <origin>
    <tree size>
    <base64 root hash>

    — <key name> <base64(4-byte key ID || Ed25519 signature of the text)>

The key ID is ``SHA-256(key name || 0x0A || 0x01 || public key)[:4]``; the key name is
``p402/<first 16 hex digits of the key id>`` (no spaces or plus signs, as the spec asks).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from p402.bundles.signing import PublicKey, SigningKey

__all__ = ["Checkpoint", "CheckpointError", "key_name", "open_checkpoint", "sign_checkpoint"]

_DASH = "\u2014"
_ED25519 = b"\x01"


class CheckpointError(ValueError):
    """The note is malformed or not signed by a trusted key."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: which log, how many leaves, which root."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """The note text (what is signed)."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def key_name(public: PublicKey) -> str:
    """The name of a key in signed notes."""
    return f"p402/{public.key_id[:16]}"


def _key_id(name: str, public: PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public.raw()).digest()[:4]


def sign_checkpoint(checkpoint: Checkpoint, keys: list[SigningKey]) -> str:
    """The signed note of *checkpoint*, with one signature line per key."""
    if "\n" in checkpoint.origin or not checkpoint.origin:
        raise ValueError("a checkpoint origin is one non-empty line")
    text = checkpoint.text()
    lines = []
    for key in keys:
        name = key_name(key.public)
        signature = _key_id(name, key.public) + key.sign(text.encode())
        lines.append(f"{_DASH} {name} {base64.b64encode(signature).decode()}\n")
    return text + "\n" + "".join(lines)


def _parse_text(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointError(
            "a checkpoint needs an origin, a size and a root, each on its own line"
        )
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise CheckpointError("a checkpoint needs an origin and a decimal tree size")
    try:
        digest = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise CheckpointError("the root hash is not base64") from None
    if len(digest) != 32:
        raise CheckpointError("the root hash is not 32 bytes")
    return Checkpoint(origin, int(size), digest)


def open_checkpoint(note: str, trusted: list[PublicKey]) -> Checkpoint:
    """The checkpoint in *note* if a trusted key signed it (and no trusted key's signature fails).

    Raises:
        CheckpointError: the note is malformed, or no trusted key's signature verifies.
    """
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise CheckpointError("a signed note has no control characters but newlines")
    text, separator, signatures = note.rpartition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise CheckpointError("a signed note is its text, a blank line, then signature lines")
    text += "\n"
    verified = False
    for line in signatures[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if dash != _DASH or not name or not encoded:
            raise CheckpointError(f"not a signature line: {line!r}")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError(f"signature of {name} is not base64") from None
        for public in trusted:
            if key_name(public) == name and _key_id(name, public) == blob[:4]:
                if not public.verify(blob[4:], text.encode()):
                    raise CheckpointError(f"the signature of trusted key {name} does not verify")
                verified = True
    if not verified:
        raise CheckpointError("no trusted key signed the checkpoint")
    return _parse_text(text)
