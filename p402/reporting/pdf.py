"""Print report HTML to PDF with WeasyPrint. The only module that imports WeasyPrint.

The PDF is PDF/A-3b: archival, fonts embedded, and able to carry the workbook and a summary
as associated files, so the report a controller files is self-contained. The same HTML and
attachments give the same PDF bytes: every date and the document identifier come from the
caller (the audit's data), never from the clock.
"""

from __future__ import annotations

import gc
import io
import warnings
from collections.abc import Sequence
from datetime import datetime

__all__ = ["render_pdf"]


def render_pdf(
    html: str,
    *,
    attachments: Sequence[tuple[str, bytes, str]] = (),
    moment: datetime | None = None,
    identifier: bytes | None = None,
    variant: str | None = "pdf/a-3b",
) -> bytes:
    """The PDF of an HTML document whose resources are all inline.

    Args:
        html: the document.
        attachments: ``(file name, bytes, description)`` embedded as associated files.
        moment: the date stamped on attachments (required with attachments, for determinism).
        identifier: the PDF's file identifier (fixed, for determinism).
        variant: the PDF variant WeasyPrint writes (``pdf/a-3b`` by default).
    """
    import logging

    from weasyprint import HTML, Attachment  # heavy: imported only when a PDF is made

    # WeasyPrint logs each CSS property it ignores; the report's CSS is ours and tested.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    if attachments and moment is None:
        raise ValueError("attachments need a fixed date, or the PDF changes with the clock")
    files = [
        Attachment(file_obj=io.BytesIO(data), name=name, description=description, created=moment,
                   modified=moment, relationship="Data")
        for name, data, description in attachments
    ]  # fmt: skip
    options = {"pdf_variant": variant, "pdf_identifier": identifier} if variant else {}
    with warnings.catch_warnings():
        # WeasyPrint 70 opens its sRGB profile for PDF/A and never closes it; the file is let go
        # when the document is, inside this block (the collection catches it in a cycle too).
        warnings.simplefilter("ignore", ResourceWarning)
        pdf: bytes = HTML(string=html, base_url=None).write_pdf(
            attachments=files or None, **options
        )
        gc.collect()
    return pdf
