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
    "ALLOWED_SIGNERS_NAME",
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "SIGNER_IDENTITY",
    "SSH_NAMESPACE",
    "SSH_PUBLIC_KEY_NAME",
    "KeyFileError",
    "PublicKey",
    "SigningKey",
    "allowed_signers_line",
    "create_keys",
    "load_public_key",
    "load_signing_key",
]

PRIVATE_KEY_NAME = "p402-signing.key"
PUBLIC_KEY_NAME = "p402-signing.pub"
SSH_PUBLIC_KEY_NAME = "p402-signing.ssh.pub"
ALLOWED_SIGNERS_NAME = "allowed_signers"
SSH_NAMESPACE = "p402-audit"
"""The namespace of p402's SSH signatures: they verify for this purpose and no other."""
SIGNER_IDENTITY = "p402"


class KeyFileError(P402Error):
    """A key file is missing, is not an Ed25519 key, or would be overwritten."""

    code = "invalid_key_file"


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

    def raw(self) -> bytes:
        """The 32-byte Ed25519 public key (RFC 8032 encoding)."""
        from cryptography.hazmat.primitives import serialization

        raw: bytes = self.key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return raw

    def openssh(self, comment: str = "p402") -> str:
        """The key as an OpenSSH public key line: ``ssh-ed25519 AAAA... p402``."""
        from cryptography.hazmat.primitives import serialization

        line: bytes = self.key.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        return f"{line.decode()} {comment}"

    def ssh_fingerprint(self) -> str:
        """The key's SSH fingerprint, as ``ssh-keygen -l`` prints it: ``SHA256:...``."""
        import base64

        blob = base64.b64decode(self.openssh().split()[1])
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"


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


def allowed_signers_line(public: PublicKey) -> str:
    """The ``allowed_signers`` line with which ``ssh-keygen -Y verify`` accepts p402 bundles."""
    key_type, key_blob = public.openssh().split()[:2]
    return f'{SIGNER_IDENTITY} namespaces="{SSH_NAMESPACE}" {key_type} {key_blob}\n'


def create_keys(directory: Path) -> tuple[Path, Path, SigningKey]:
    """Write a new key pair into *directory* (created if needed); returns the private and public
    key paths and the key. Beside the PEM public key go its OpenSSH form and an
    ``allowed_signers`` file, for auditors who verify with ``ssh-keygen``.

    Raises:
        KeyFileError: any of the files already exists.
    """
    from cryptography.hazmat.primitives import serialization

    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    ssh_path, signers_path = directory / SSH_PUBLIC_KEY_NAME, directory / ALLOWED_SIGNERS_NAME
    for path in (private_path, public_path, ssh_path, signers_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; p402 never overwrites a key")
    signing = generate()
    private_pem = signing.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, signing.public.pem(), 0o644)
    _write_new(ssh_path, (signing.public.openssh() + "\n").encode(), 0o644)
    _write_new(signers_path, allowed_signers_line(signing.public).encode(), 0o644)
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
