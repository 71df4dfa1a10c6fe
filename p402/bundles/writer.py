"""Write the audit bundle: a deterministic zip of the ledger, receipts, reports and the signed manifest.

The manifest lists every other member's path, size and SHA-256, passes the verifier's own check
of its shape (a manifest the verifier would refuse is never signed), and is signed over its exact
canonical bytes twice, with the same Ed25519 key: raw (64 bytes, ``manifest.json.sig``, for
``openssl pkeyutl``) and as an SSH signature (``manifest.json.sshsig``, for ``ssh-keygen -Y``). Members are sorted by
name with a fixed time and mode, so the same ledger, period and key give the same bytes.
The lookup members (:data:`~p402.bundles.layout.STORED`) are stored uncompressed, so that a
receipt reads them at known offsets; the rest is deflated, the ledger as the sealer deflated it
(in blocks that inflate on their own, see :mod:`p402.bundles.lookup`).
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from p402.archive import member_info, write_deflated
from p402.bundles import standalone
from p402.bundles.canonical import dumps
from p402.bundles.instructions import verify_text
from p402.bundles.layout import (
    EVENTS,
    MANIFEST,
    SIGNATURE,
    SSH_SIGNATURE,
    STORED,
    VERIFIER,
    VERIFY_TEXT,
)
from p402.bundles.manifest import Manifest, manifest_problems
from p402.bundles.seal import Sealed, file_digest
from p402.bundles.signing import SigningKey
from p402.bundles.sshsig import sign_sshsig

__all__ = ["verifier_source", "write_bundle"]

_ZIP64_FROM = 1 << 31


def verifier_source() -> bytes:
    """The stand-alone verifier's source, as the bundle carries it (``verify_bundle.py``)."""
    return Path(standalone.__file__).read_bytes()


def write_bundle(
    path: Path,
    *,
    sealed: Sealed,
    members: Mapping[str, bytes],
    manifest: Manifest,
    key: SigningKey,
    moment: datetime,
) -> dict[str, Any]:
    """Write the bundle at *path* and return the manifest as signed.

    Args:
        path: the zip to write (replaced if it exists).
        sealed: the sealed ledger (its spooled events, receipts and lookup members become
            members).
        members: other members, by name (the reports); ``VERIFY.txt`` (with the manifest's
            figures) and the stand-alone verifier are added.
        manifest: what the manifest says, but its files.
        key: the signing key.
        moment: the fixed time stamped on every member.

    Raises:
        ValueError: the manifest would not pass the verifier's check of its shape (a bug of
            whatever built it); nothing is written.
    """
    fields = manifest.to_json()
    members = {
        **members,
        VERIFY_TEXT: verify_text(fields, standalone=True),
        VERIFIER: verifier_source(),
    }
    files: dict[str, tuple[int, str]] = {
        name: (len(data), hashlib.sha256(data).hexdigest()) for name, data in members.items()
    }
    spooled = sealed.members()
    files.update((name, file_digest(source)) for name, source in spooled.items())
    listing = [
        {"path": name, "sha256": digest, "size": size}
        for name, (size, digest) in sorted(files.items())
    ]
    signed = {**fields, "files": listing}
    if problems := manifest_problems(signed):
        raise ValueError(f"refusing to sign a manifest the verifier would refuse: {problems}")
    manifest_bytes = dumps(signed)
    contents: dict[str, bytes | Path] = {
        **members,
        **spooled,
        MANIFEST: manifest_bytes,
        SIGNATURE: key.sign(manifest_bytes),
        SSH_SIGNATURE: sign_sshsig(manifest_bytes, key),
    }
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name in sorted(contents):
            content = contents[name]
            info = member_info(name, moment, stored=name in STORED)
            if isinstance(content, bytes):
                archive.writestr(info, content)
                continue
            if name == EVENTS:
                with content.open("rb") as text, sealed.deflated_path.open("rb") as stream:
                    write_deflated(archive, info, text, stream, sealed.blocks)
                continue
            info.file_size = content.stat().st_size
            with (
                content.open("rb") as source,
                archive.open(info, "w", force_zip64=info.file_size >= _ZIP64_FROM) as target,
            ):
                shutil.copyfileobj(source, target, 1 << 20)
    partial.replace(path)  # a reader never sees half a bundle
    return signed
