"""The cover PDF: back, spine and front on one page, with bleed all round.

The front is the chosen picture with the title on a panel; the back is `back` or, without one,
a plain colour taken from the front picture, which also fills the spine. The title goes on the
spine only from 79 pages, below which the spine is too thin for printers to place text on it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from exports import pictures, textpanel
from exports.geometry import POINTS_PER_INCH, Box, CoverGeometry, cover_geometry
from exports.interior import draw_picture, low_resolution, new_canvas, pixel_rect, set_boxes
from exports.spec import BookSpec, ExportWarning, Picture, RenderResult

TITLE_START_PT = 40.0
TITLE_PANEL_SHARE = 0.35
SPINE_MARGIN_PT = 0.0625 * POINTS_PER_INCH  # KDP: keep spine text this far from each fold


def _inches(box: Box) -> tuple[float, float]:
    return (box.width / POINTS_PER_INCH, box.height / POINTS_PER_INCH)


def _contrast(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 0.55
    return (0.1, 0.1, 0.12) if light else (1.0, 1.0, 1.0)


def _spine_title(canvas: Canvas, geo: CoverGeometry, title: str, rgb: tuple[float, float, float]) -> None:
    size = min(geo.spine.width * 0.55, 18.0)
    room = geo.trim.height - 2 * SPINE_MARGIN_PT * 4
    while len(title) > 1 and pdfmetrics.stringWidth(title, textpanel.FONT_NAME, size) > room:
        title = title[:-2] + "…"
    canvas.saveState()
    canvas.setFillColorRGB(*_contrast(rgb))
    canvas.setFont(textpanel.FONT_NAME, size)
    centre_x = (geo.spine.x0 + geo.spine.x1) / 2
    canvas.translate(centre_x, (geo.trim.y0 + geo.trim.y1) / 2)
    canvas.rotate(-90)  # reads top to bottom, as US spines do
    canvas.drawCentredString(0, -size * 0.35, title)
    canvas.restoreState()


def _picture_on(
    canvas: Canvas, geo: CoverGeometry, picture: Picture, box: Box, panel: Box | None, what: str, stem: Path
) -> list[ExportWarning]:
    pixels = geo.pixels_for(box)
    rect = pixel_rect(panel, box, pixels) if panel is not None else None
    prepared = pictures.prepare(picture, pixels, _inches(box), stem, rect)
    draw_picture(canvas, prepared, box)
    prepared.path.unlink()
    if prepared.effective_dpi < geo.dpi:
        return [low_resolution(None, what, prepared.effective_dpi, geo.dpi)]
    return []


def render_cover(book: BookSpec, out: Path) -> RenderResult:
    if book.cover is None:
        raise ValueError("no cover was asked for")
    geo = cover_geometry(book.trim, len(book.pages), book.paper, book.profile)
    canvas = new_canvas(out, f"{book.title} (cover)")
    set_boxes(canvas, geo.media, geo.trim)
    title = textpanel.layout(book.title, geo.front_safe, "top", TITLE_START_PT, TITLE_PANEL_SHARE)
    red, green, blue = pictures.mean_colour(book.cover.front)
    rgb = (red / 255, green / 255, blue / 255)
    canvas.setFillColorRGB(*rgb)
    canvas.rect(0, 0, geo.media.width, geo.media.height, stroke=0, fill=1)
    warnings: list[ExportWarning] = []
    with tempfile.TemporaryDirectory(dir=out.parent, prefix="cover-") as scratch:
        if book.cover.back is not None:
            what = "The back cover picture"
            warnings += _picture_on(
                canvas, geo, book.cover.back, geo.back, None, what, Path(scratch) / "back"
            )
        panel = title.panel if title else None
        what = "The front cover picture"
        warnings += _picture_on(
            canvas, geo, book.cover.front, geo.front, panel, what, Path(scratch) / "front"
        )
    if title is not None:
        textpanel.draw(canvas, title)
    if geo.spine_text:
        _spine_title(canvas, geo, book.title, rgb)
    canvas.showPage()
    canvas.save()
    return RenderResult(pages=1, bytes=out.stat().st_size, warnings=warnings, spine_in=geo.spine_in)
