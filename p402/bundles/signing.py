"""Ed25519 keys and signatures. The only module that imports ``cryptography``.

``p402 keys create`` writes the private key as PKCS#8 PEM with mode 0600 (never over an
existing file) and the public key as SubjectPublicKeyInfo PEM, the form ``openssl pkeyutl``
reads. A key's id is the SHA-256 of its public key in DER, in hex.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p402.errors import P402Error

__all__ = [
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "KeyFileError",
    "PublicKey",
    "SigningKey",
    "create_keys",
    "load_public_key",
    "load_signing_key",
]

PRIVATE_KEY_NAME = "p402-signing.key"
PUBLIC_KEY_NAME = "p402-signing.pub"


class KeyFileError(P402Error):
    """A key file is missing, is not an Ed25519 key, or would be overwritten."""


def _spki(public: Any, *, pem: bool) -> bytes:
    """The public key as SubjectPublicKeyInfo, in PEM or DER."""
    from cryptography.hazmat.primitives import serialization

    encoding = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    data: bytes = public.public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A public key that checks signatures, and its id."""

    key: Any
    key_id: str

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether *signature* is this key's Ed25519 signature of *data*."""
        from cryptography.exceptions import InvalidSignature

        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        """The key as SubjectPublicKeyInfo PEM."""
        return _spki(self.key, pem=True)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key that signs, with its public half."""

    key: Any
    public: PublicKey

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of *data* (deterministic, RFC 8032)."""
        signature: bytes = self.key.sign(data)
        return signature


def _public(key: Any) -> PublicKey:
    return PublicKey(key, hashlib.sha256(_spki(key, pem=False)).hexdigest())


def generate() -> SigningKey:
    """A new random key, in memory only."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return SigningKey(key, _public(key.public_key()))


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; p402 never overwrites a key") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def create_keys(directory: Path) -> tuple[Path, Path, SigningKey]:
    """Write a new key pair into *directory* (created if needed); returns both paths and the key.

    Raises:
        KeyFileError: either file already exists.
    """
    from cryptography.hazmat.primitives import serialization

    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; p402 never overwrites a key")
    signing = generate()
    private_pem = signing.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, signing.public.pem(), 0o644)
    return private_path, public_path, signing


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key {path}: {exc.strerror}") from None


def load_signing_key(path: Path) -> SigningKey:
    """Read a PKCS#8 PEM Ed25519 private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return SigningKey(key, _public(key.public_key()))


def load_public_key(path: Path) -> PublicKey:
    """Read an Ed25519 public key from PEM (a private key file gives its public half)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read(path)
    if b"PRIVATE KEY" in data:
        return load_signing_key(path).public
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} is not an Ed25519 public key")
    return _public(key)
