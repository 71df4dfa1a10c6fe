"""SSH signatures (OpenSSH's PROTOCOL.sshsig) of the manifest, for ``ssh-keygen -Y verify``.

An auditor who trusts SSH tooling more than ours checks the bundle with::

    ssh-keygen -Y verify -f allowed_signers -I p402 -n p402-audit \\
        -s manifest.json.sshsig < manifest.json

The signed data is ``"SSHSIG" || string(namespace) || string("") || string("sha512") ||
string(SHA-512(message))``, signed with Ed25519; the blob carries the public key, and the
armour is base64 in lines of 70 characters.
"""

from __future__ import annotations

import base64
import hashlib
import struct

from p402.bundles.signing import SSH_NAMESPACE, PublicKey, SigningKey

__all__ = ["sign_sshsig", "verify_sshsig"]

_MAGIC = b"SSHSIG"
_VERSION = 1
_HASH = "sha512"
_KEY_TYPE = b"ssh-ed25519"
_BEGIN, _END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _signed_data(message: bytes, namespace: str) -> bytes:
    digest = hashlib.sha512(message).digest()
    return (
        _MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(_HASH.encode())
        + _string(digest)
    )


def _public_blob(public: PublicKey) -> bytes:
    return _string(_KEY_TYPE) + _string(public.raw())


def sign_sshsig(message: bytes, key: SigningKey, namespace: str = SSH_NAMESPACE) -> bytes:
    """The armoured SSH signature of *message* under *namespace*."""
    signature = key.sign(_signed_data(message, namespace))
    blob = (
        _MAGIC + struct.pack(">I", _VERSION) + _string(_public_blob(key.public)) + _string(namespace.encode())
        + _string(b"") + _string(_HASH.encode()) + _string(_string(_KEY_TYPE) + _string(signature))
    )  # fmt: skip
    text = base64.b64encode(blob).decode()
    lines = [text[i : i + 70] for i in range(0, len(text), 70)]
    return ("\n".join([_BEGIN, *lines, _END]) + "\n").encode()


def _read_string(blob: bytes, at: int) -> tuple[bytes, int]:
    if at + 4 > len(blob):
        raise ValueError("truncated")
    (length,) = struct.unpack(">I", blob[at : at + 4])
    end = at + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[at + 4 : end], end


def _unarmour(armoured: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes] | str:
    """(public key blob, namespace, hash algorithm, key type, signature), or why not."""
    try:
        lines = armoured.decode("ascii").strip().splitlines()
        if not lines or lines[0] != _BEGIN or lines[-1] != _END:
            return "not an armoured SSH signature"
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
        if blob[:6] != _MAGIC or struct.unpack(">I", blob[6:10])[0] != _VERSION:
            return "not an SSHSIG version 1 signature"
        public, at = _read_string(blob, 10)
        namespace, at = _read_string(blob, at)
        _reserved, at = _read_string(blob, at)
        hash_name, at = _read_string(blob, at)
        wrapped, at = _read_string(blob, at)
        key_type, inner = _read_string(wrapped, 0)
        signature, _ = _read_string(wrapped, inner)
    except (UnicodeDecodeError, ValueError, struct.error):
        return "not a readable SSH signature"
    return (
        "has trailing data"
        if at != len(blob)
        else (public, namespace, hash_name, key_type, signature)
    )


def verify_sshsig(
    armoured: bytes, message: bytes, key: PublicKey, namespace: str = SSH_NAMESPACE
) -> str | None:
    """``None`` if *armoured* is *key*'s SSH signature of *message* under *namespace*; else why not."""
    parts = _unarmour(armoured)
    if isinstance(parts, str):
        return parts
    public, signed_namespace, hash_name, key_type, signature = parts
    if signed_namespace != namespace.encode():
        return f"is for namespace {signed_namespace.decode(errors='replace')!r}, not {namespace!r}"
    if public != _public_blob(key) or key_type != _KEY_TYPE or hash_name != _HASH.encode():
        return "is not by the trusted key"
    return None if key.verify(signature, _signed_data(message, namespace)) else "does not verify"
