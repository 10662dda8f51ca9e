"""Thumbnails of an interior PDF's first pages, drawn from the PDF itself (PDFium via pypdfium2).

Drawn from the finished file, not from the pictures, so the author sees what the printer will:
the crop, the panel and the words as set. Small WebP files next to the PDF.
"""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium

PREVIEW_PAGES = 4
PREVIEW_WIDTH_PX = 240


def preview_name(index: int) -> str:
    return f"preview-{index + 1}.webp"


def render_previews(pdf_path: Path, out_dir: Path, pages: int = PREVIEW_PAGES) -> int:
    """Write `preview-1.webp`, ... for the first `pages` pages; answers how many were written."""
    document = pdfium.PdfDocument(pdf_path)
    try:
        count = min(pages, len(document))
        for index in range(count):
            page = document[index]
            try:
                scale = PREVIEW_WIDTH_PX / page.get_width()
                image = page.render(scale=scale).to_pil()
                image.convert("RGB").save(out_dir / preview_name(index), format="WEBP", quality=80)
            finally:
                page.close()
        return count
    finally:
        document.close()
