"""Read an untrusted zip safely: framing, member names, flags and sizes, before any byte is
inflated; and one reader that turns every way a member can fail to read into a problem.

A verifier must never crash on a hostile archive: zipfile and zlib raise a zoo of exceptions
(``BadZipFile``, ``zlib.error``, ``EOFError``, ``RuntimeError`` for encryption,
``NotImplementedError`` for unknown compression...). They stop here.
"""

from __future__ import annotations

import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

__all__ = [
    "Limits",
    "MemberError",
    "check_archive",
    "check_framing",
    "chunk_lines",
    "member_chunks",
    "member_data",
    "member_lines",
    "member_reader",
    "read_member",
]

_EOCD = b"PK\x05\x06"
_LOCAL = b"PK\x03\x04"
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


ReadAt = Callable[[int, int], bytes]


class MemberError(Exception):
    """A member cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a bundle may hold before it is refused (zip bombs, resource exhaustion)."""

    max_members: int = 64
    max_total_bytes: int = 32 << 30
    max_ratio: int = 200
    max_small_member: int = 64 << 20


def check_framing(path: Path, problems: list[str]) -> None:
    """A bundle is a zip and nothing else: no bytes before its first entry or after its end."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(max(size - 22, 0))
        tail = handle.read(22)
    if head != _LOCAL and not (head == _EOCD and size == 22):  # an empty zip is its directory alone
        problems.append(f"{path.name}: does not start with a zip entry (data before the archive?)")
    if not tail.startswith(_EOCD):
        problems.append(
            f"{path.name}: does not end with the zip directory (data after the archive?)"
        )


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    parts = PurePosixPath(name).parts
    if (
        not parts
        or name.startswith("/")
        or "\\" in name
        or ":" in name
        or ".." in parts
        or "." in name.split("/")
    ):
        return "unsafe member name"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.is_dir():
        return "is a directory"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return f"uses unsupported compression method {info.compress_type}"
    return None


def check_archive(archive: zipfile.ZipFile, limits: Limits, problems: list[str]) -> None:
    """Names unique and plain, no links, no encryption, sizes and ratios within *limits*."""
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        problems.append(
            f"archive: {len(infos)} members, more than the limit of {limits.max_members}"
        )
    seen: set[str] = set()
    total = 0
    for info in infos:
        if info.filename in seen:
            problems.append(f"{info.filename}: appears more than once")
        seen.add(info.filename)
        if reason := _unsafe(info):
            problems.append(f"{info.filename!r}: {reason}")
        total += info.file_size
        if (
            info.file_size > limits.max_ratio * max(info.compress_size, 1)
            and info.file_size > 1 << 16
        ):
            problems.append(
                f"{info.filename}: compression ratio over {limits.max_ratio} (zip bomb?)"
            )
    if total > limits.max_total_bytes:
        problems.append(
            f"archive: unpacks to {total} bytes, more than the limit of {limits.max_total_bytes}"
        )


def member_chunks(archive: zipfile.ZipFile, name: str, size: int = 1 << 20) -> Iterator[bytes]:
    """The member's bytes in chunks. Raises :class:`MemberError` for any way it fails to read."""
    try:
        with archive.open(name) as handle:
            while chunk := handle.read(size):
                yield chunk
    except KeyError:
        raise MemberError(f"{name}: missing") from None
    except _READ_ERRORS as exc:
        raise MemberError(f"{name}: cannot be read ({exc.__class__.__name__}: {exc})") from None


def read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A small member, whole. Raises :class:`MemberError` if unreadable or over *limit* bytes."""
    data = bytearray()
    for chunk in member_chunks(archive, name):
        data += chunk
        if len(data) > limit:
            raise MemberError(f"{name}: larger than {limit} bytes")
    return bytes(data)


def member_lines(archive: zipfile.ZipFile, name: str) -> Iterator[tuple[int, bytes]]:
    """The member's lines, numbered from 1, without their newlines."""
    return chunk_lines(member_chunks(archive, name))


def chunk_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """The lines of a text given in chunks, numbered from 1, without their newlines."""
    pending = b""
    number = 0
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            number += 1
            yield number, line
    if pending:
        yield number + 1, pending


def member_reader(archive: zipfile.ZipFile, handle: IO[bytes], name: str) -> ReadAt:
    """Random access to one member: ``read_at(offset, length)``. A stored member is read
    straight from *handle* (the archive's file), past its local header; any other is inflated
    up to the offset (correct, only slow). Reads past the member's end raise
    :class:`MemberError`. Nothing is checked against the CRC or the manifest: the caller checks
    what it builds from these bytes (a receipt against the signed checkpoint)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise MemberError(f"{name}: missing") from None
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return _inflating_reader(archive, name, info.file_size)
    return _data_reader(handle, info)


def member_data(archive: zipfile.ZipFile, handle: IO[bytes], name: str) -> ReadAt:
    """Random access to one member's data as the zip holds it (compressed, for a deflated
    member): ``read_at(offset, length)`` within its ``compress_size`` bytes. Raises
    :class:`MemberError` if the member is missing or encrypted, or a read falls outside."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise MemberError(f"{name}: missing") from None
    if info.flag_bits & 0x1:
        raise MemberError(f"{name}: is encrypted")
    return _data_reader(handle, info, info.compress_size)


def _data_reader(handle: IO[bytes], info: zipfile.ZipInfo, size: int | None = None) -> ReadAt:
    name = info.filename
    size = info.file_size if size is None else size
    handle.seek(info.header_offset)
    header = handle.read(30)
    if len(header) != 30 or not header.startswith(_LOCAL):
        raise MemberError(f"{name}: no local header where the directory says")
    name_length, extra_length = struct.unpack_from("<HH", header, 26)
    start = info.header_offset + 30 + name_length + extra_length

    def read_at(offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > size:
            raise MemberError(f"{name}: {size} bytes, too short for a read at {offset}")
        handle.seek(start + offset)
        data = handle.read(length)
        if len(data) != length:
            raise MemberError(f"{name}: cut short")
        return data

    return read_at


def _inflating_reader(archive: zipfile.ZipFile, name: str, size: int) -> ReadAt:
    def read_at(offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > size:
            raise MemberError(f"{name}: {size} bytes, too short for a read at {offset}")
        try:
            with archive.open(name) as member:
                member.seek(offset)
                data = member.read(length)
        except _READ_ERRORS as exc:
            raise MemberError(f"{name}: cannot be read ({exc.__class__.__name__}: {exc})") from None
        if len(data) != length:
            raise MemberError(f"{name}: cut short")
        return data

    return read_at
