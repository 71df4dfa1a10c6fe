"""Deterministic zip archives: the same members give the same bytes, every time, everywhere.

Used for the audit bundle and to re-pack the XLSX (itself a zip that openpyxl stamps with the
wall clock). Members get a fixed timestamp, fixed Unix permissions and no extra fields.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

__all__ = ["member_info", "repack"]


def member_info(name: str, moment: datetime, *, stored: bool = False) -> zipfile.ZipInfo:
    """A zip header for *name* with a fixed time, mode 0644 and Unix origin, deflated (or
    *stored* as is, for members read at random offsets straight from the file)."""
    stamp = max(moment.astimezone(UTC), datetime(1980, 1, 1, tzinfo=UTC))  # zip dates start in 1980
    info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


def repack(data: bytes, moment: datetime) -> bytes:
    """The same archive with every member's time and mode fixed, in the original order."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            target.writestr(member_info(entry.filename, moment), source.read(entry))
    return out.getvalue()
