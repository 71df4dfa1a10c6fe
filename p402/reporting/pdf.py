"""Print report HTML to PDF with WeasyPrint. The only module that imports WeasyPrint.

The same HTML gives the same PDF bytes: WeasyPrint takes its dates from the document's
metadata, which the template fixes from the audit, never from the clock.
"""

from __future__ import annotations

__all__ = ["render_pdf"]


def render_pdf(html: str) -> bytes:
    """The PDF of an HTML document whose resources are all inline."""
    import logging

    from weasyprint import HTML  # heavy: imported only when a PDF is made

    # WeasyPrint logs each CSS property it ignores; the report's CSS is ours and tested.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    pdf: bytes = HTML(string=html, base_url=None).write_pdf()
    return pdf
