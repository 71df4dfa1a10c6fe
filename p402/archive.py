"""Deterministic zip archives: the same members give the same bytes, every time, everywhere.

Used for the audit bundle and to re-pack the XLSX (itself a zip that openpyxl stamps with the
wall clock). Members get a fixed timestamp, fixed Unix permissions and no extra fields.

:func:`write_deflated` puts a deflate stream made beforehand (the ledger, flushed in blocks so
that each block inflates on its own) into the zip as an ordinary deflated member. zipfile has
no public way to do that; of the two ways around it, this one hands zipfile's member writer a
stand-in for its compressor (its private ``_compressor`` attribute) that returns the prepared
bytes, piece by piece, while zipfile itself still computes the CRC and both sizes from the text
and writes every header, zip64 included. Writing the member's headers by hand instead would
mean a second zip writer to keep right (zip64 extra fields, the central directory, the
offsets of every later member) for one member. The attribute is checked before it is replaced,
so a Python whose zipfile differs fails loudly at the first audit, and the tests read the
member back with zipfile and with ``unzip``.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise
from typing import IO

__all__ = ["member_info", "repack", "write_deflated"]

_ZIP64_FROM = 1 << 31


def member_info(name: str, moment: datetime, *, stored: bool = False) -> zipfile.ZipInfo:
    """A zip header for *name* with a fixed time, mode 0644 and Unix origin, deflated (or
    *stored* as is, for members read at random offsets straight from the file)."""
    stamp = max(moment.astimezone(UTC), datetime(1980, 1, 1, tzinfo=UTC))  # zip dates start in 1980
    info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


class _Prepared:
    """Stands in for zipfile's compressor: each ``compress`` call returns the next piece of the
    prepared stream (its caller passes the matching piece of text), ``flush`` the rest."""

    def __init__(self, stream: IO[bytes], ends: Sequence[int]) -> None:
        self._stream = stream
        self._ends = iter(ends)
        self._at = 0

    def compress(self, _text: bytes) -> bytes:
        end = next(self._ends)
        data = self._stream.read(end - self._at)
        if len(data) != end - self._at:
            raise ValueError("the prepared deflate stream is shorter than its block table")
        self._at = end
        return data

    def flush(self) -> bytes:
        return self._stream.read()


def write_deflated(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    text: IO[bytes],
    stream: IO[bytes],
    blocks: Sequence[tuple[int, int]],
) -> None:
    """Write *info* (deflated) whose data is the raw deflate *stream* of *text*, prepared in
    pieces: *blocks* holds where each piece starts in *stream* and in *text*, then where the
    stream's closing bytes start and the text's size. The text is read for zipfile's CRC and
    size; *stream* is copied as is, so the member's data is exactly its bytes."""
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise ValueError(f"{info.filename}: a prepared deflate stream needs a deflated member")
    info.file_size = blocks[-1][1] if blocks else 0
    with archive.open(info, "w", force_zip64=info.file_size >= _ZIP64_FROM) as target:
        if not isinstance(getattr(target, "_compressor", None), type(zlib.compressobj())):
            raise RuntimeError(  # zipfile's member writer changed: see this module's docstring
                "zipfile's member writer has no zlib compressor to stand in for"
            )
        # the private hook (see the module docstring)
        target._compressor = _Prepared(stream, [start for start, _ in blocks[1:]])  # type: ignore[attr-defined]
        for (_, start), (_, end) in pairwise(blocks):
            piece = text.read(end - start)
            if len(piece) != end - start:
                raise ValueError(f"{info.filename}: the text is shorter than its block table")
            target.write(piece)


def repack(data: bytes, moment: datetime) -> bytes:
    """The same archive with every member's time and mode fixed, in the original order."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            target.writestr(member_info(entry.filename, moment), source.read(entry))
    return out.getvalue()
