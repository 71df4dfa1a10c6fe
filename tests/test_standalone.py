"""The stand-alone verifier shipped in every bundle (``verify_bundle.py``): Python's standard
library only, run as an auditor runs it, with the verdicts of ``p402 verify``.

The whole tamper suite (tests/test_bundle_tamper.py) runs it beside ``p402 verify`` through its
``invalid`` and ``valid`` helpers; these tests cover its own parts: Ed25519 in pure Python,
the command line, and the attack the stock tools cannot see.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from p402.audit import AuditResult
from p402.bundles import standalone
from p402.bundles.canonical import dumps, loads
from p402.bundles.layout import MANIFEST, VERIFIER
from p402.bundles.signing import PUBLIC_KEY_NAME, SSH_PUBLIC_KEY_NAME, SigningKey
from p402.bundles.writer import verifier_source
from tests.test_bundle_tamper import read_members, resign, write_zip

# RFC 8032, section 7.1: TEST 1, TEST 2, TEST 3 (secret key, public key, message, signature).
RFC_8032 = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


def test_rfc_8032_vectors_verify_and_altered_ones_do_not() -> None:
    for public, message, signature in RFC_8032:
        key, data, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
        assert standalone.ed25519_verify(key, data, sig)
        assert not standalone.ed25519_verify(key, data + b"x", sig)
        assert not standalone.ed25519_verify(key, data, sig[:-1] + bytes([sig[-1] ^ 1]))
        assert not standalone.ed25519_verify(key, data, sig[:32] + (2**253).to_bytes(32, "little"))


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=200), st.integers(0, 511))
def test_ed25519_agrees_with_cryptography(seed: bytes, message: bytes, bit: int) -> None:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes_raw()
    signature = private.sign(message)
    assert standalone.ed25519_verify(public, message, signature)
    flipped = bytearray(signature)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not standalone.ed25519_verify(public, message, bytes(flipped))


def test_the_shipped_file_imports_nothing_but_the_standard_library() -> None:
    tree = ast.parse(verifier_source())
    names = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names


def _run(bundle: Path, key: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``python3 verify_bundle.py BUNDLE --key KEY`` with the file from the bundle itself, in a
    fresh interpreter that sees no p402 (``-I``: isolated, no site packages or PYTHONPATH)."""
    script = tmp_path / VERIFIER
    with zipfile.ZipFile(bundle) as archive:
        script.write_bytes(archive.read(VERIFIER))
    return subprocess.run(
        [sys.executable, "-I", str(script), str(bundle), "--key", str(key)],
        capture_output=True, text=True, check=False, cwd=tmp_path, env={},
    )  # fmt: skip


def test_an_auditor_runs_it_on_a_good_bundle(small_bundle: AuditResult, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    for name in (PUBLIC_KEY_NAME, SSH_PUBLIC_KEY_NAME):
        run = _run(small_bundle.bundle, keys / name, tmp_path)
        assert (run.returncode, run.stderr) == (0, "")
        assert run.stdout.startswith(f"valid: {small_bundle.bundle}: 24 events of tenant 'acme'")


def test_a_resigned_manifest_claiming_another_total_is_invalid_in_one_line(
    small_bundle: AuditResult, signing_key: SigningKey, tmp_path: Path
) -> None:
    # What openssl, ssh-keygen and sha256sum all accept: the attacker holds the key, re-signs.
    members = read_members(small_bundle.bundle.read_bytes())

    def claim(manifest: dict[str, object]) -> None:
        totals = manifest["totals"]
        assert isinstance(totals, dict)
        totals.update(cost="11999.99", cost_rounded="11999.99")

    forged = write_zip(tmp_path / "forged.zip", list(resign(members, signing_key, claim).items()))
    assert loads(read_members(forged.read_bytes())[MANIFEST])["totals"]["cost"] == "11999.99"
    run = _run(forged, tmp_path / "keys" / PUBLIC_KEY_NAME, tmp_path)
    assert run.returncode == 1
    assert run.stdout.count("\n") == 1
    assert run.stdout.startswith(f"invalid: {forged}: ledger/events.jsonl: costs sum to ")


def test_another_key_and_a_missing_file_are_told_apart(
    small_bundle: AuditResult, tmp_path: Path
) -> None:
    other = tmp_path / "other.pub"
    private = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    other.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    run = _run(small_bundle.bundle, other, tmp_path)
    assert run.returncode == 1 and "manifest.json.sig: not a signature" in run.stdout
    run = _run(small_bundle.bundle, tmp_path / "no-such.pub", tmp_path)
    assert run.returncode == 2 and run.stderr.startswith("error: ")
    assert "Traceback" not in run.stderr


def test_canonical_json_sorts_keys_by_utf16_code_units() -> None:
    # U+1F600 is D83D DE00 in UTF-16, below U+FB01: RFC 8785 puts it first; Python's sort_keys
    # (by code point) would not.
    value = {"\ufb01": 1, "\U0001f600": 2, "a": [True, None, "x\n"]}
    assert standalone.canonical(value) == dumps(value).decode()
