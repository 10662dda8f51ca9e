"""The interior PDF: one page per book page, boxes set, picture full bleed, words on a panel."""

from __future__ import annotations

import math
import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reportlab import rl_config
from reportlab.pdfgen.canvas import Canvas

from exports import pictures, textpanel
from exports.geometry import MIN_PRINT_PAGES, POINTS_PER_INCH, Box, PageGeometry, page_geometry
from exports.spec import BookSpec, ExportWarning, PageSpec, RenderResult

# Binary streams: ASCII85 would grow every embedded picture by a quarter for no reader's benefit.
rl_config.useA85 = 0

PAGE_TEXT_START_PT = 22.0
PAGE_PANEL_SHARE = 0.45  # the text panel may take this share of the safe area before text shrinks
# Pages whose pictures are prepared at once: two uses both cores of a small machine and bounds
# memory to two full-size pages (about 2 x 60 MB at 8.5x8.5, 300 DPI).
PICTURE_WORKERS = 2


def new_canvas(out: Path, title: str) -> Canvas:
    """A canvas whose only font is the embedded one (reportlab would otherwise list Helvetica)."""
    font = textpanel.register_font()
    canvas = Canvas(str(out), invariant=1, pageCompression=1, initialFontName=font, initialFontSize=12)
    canvas.setTitle(title)
    canvas.setCreator("Storyloom")
    return canvas


def set_boxes(canvas: Canvas, media: Box, trim: Box) -> None:
    canvas.setPageSize((media.width, media.height))
    canvas.setTrimBox(trim.as_tuple())
    canvas.setBleedBox(media.as_tuple())


def pixel_rect(box: Box, page: Box, pixels: tuple[int, int]) -> pictures.PixelRect:
    """A box in points on `page` as pixels of a picture covering `page` (top-left origin)."""
    sx, sy = pixels[0] / page.width, pixels[1] / page.height
    return pictures.PixelRect(
        left=math.floor((box.x0 - page.x0) * sx),
        top=math.floor((page.y1 - box.y1) * sy),
        right=math.ceil((box.x1 - page.x0) * sx),
        bottom=math.ceil((page.y1 - box.y0) * sy),
    )


def draw_picture(canvas: Canvas, prepared: pictures.PreparedPicture, box: Box) -> None:
    """Embed the prepared file (read now, so the caller may delete it straight after)."""
    canvas.drawImage(str(prepared.path), box.x0, box.y0, box.width, box.height)


def low_resolution(page: int | None, what: str, dpi: float, needed: int) -> ExportWarning:
    return ExportWarning(
        page,
        "low_resolution",
        f"{what} is {dpi:.0f} DPI at print size ({needed} needed); it was enlarged and may print soft.",
    )


def text_warnings(page: int, block: textpanel.TextBlock | None) -> list[ExportWarning]:
    if block is None:
        return []
    if block.cut:
        return [
            ExportWarning(
                page,
                "text_cut",
                f"Page {page}'s text does not fit even at {block.size:g} pt; its last lines were left out.",
            )
        ]
    if block.below_readable:
        return [
            ExportWarning(
                page,
                "small_text",
                f"Page {page}'s text only fits at {block.size:g} pt, below the readable 12 pt; shorten it.",
            )
        ]
    return []


@dataclass(frozen=True)
class PagePlan:
    """A page's geometry and words, laid out before its picture is ready."""

    page: PageSpec
    geo: PageGeometry
    block: textpanel.TextBlock | None


def plan_page(book: BookSpec, page: PageSpec) -> PagePlan:
    geo = page_geometry(book.trim, page.number, book.profile)
    block = textpanel.layout(page.text, geo.safe, book.text_position, PAGE_TEXT_START_PT, PAGE_PANEL_SHARE)
    return PagePlan(page, geo, block)


def prepare_picture(plan: PagePlan, scratch: Path) -> pictures.PreparedPicture | None:
    """The heavy part (decode, resize, panel, encode): Pillow drops the GIL, so pages overlap."""
    if plan.page.picture is None:
        return None
    geo = plan.geo
    pixels = geo.pixels_for(geo.media)
    inches = (geo.media.width / POINTS_PER_INCH, geo.media.height / POINTS_PER_INCH)
    panel = pixel_rect(plan.block.panel, geo.media, pixels) if plan.block else None
    return pictures.prepare(plan.page.picture, pixels, inches, scratch / f"page-{plan.page.number}", panel)


def draw_page(
    canvas: Canvas, plan: PagePlan, prepared: pictures.PreparedPicture | None
) -> list[ExportWarning]:
    number, geo = plan.page.number, plan.geo
    set_boxes(canvas, geo.media, geo.trim)
    warnings = text_warnings(number, plan.block)
    if prepared is None:
        warnings.append(
            ExportWarning(number, "no_picture", f"Page {number} has no chosen picture; it prints text only.")
        )
    else:
        draw_picture(canvas, prepared, geo.media)
        prepared.path.unlink()
        if prepared.effective_dpi < geo.dpi:
            warnings.append(
                low_resolution(number, f"Page {number}'s picture", prepared.effective_dpi, geo.dpi)
            )
    if plan.block is not None:
        textpanel.draw(canvas, plan.block)
    canvas.showPage()
    return warnings


def book_warnings(book: BookSpec) -> list[ExportWarning]:
    if book.profile == "print" and len(book.pages) < MIN_PRINT_PAGES:
        return [
            ExportWarning(
                None,
                "page_count",
                f"The book has {len(book.pages)} pages; premium-colour print needs {MIN_PRINT_PAGES}+.",
            )
        ]
    return []


def render_interior(book: BookSpec, out: Path) -> RenderResult:
    """Write the interior PDF to `out` page by page; at most PICTURE_WORKERS full-size pictures
    are decoded at once, and each is dropped once it is encoded."""
    if not book.pages:
        raise ValueError("a book without pages has no interior")
    canvas = new_canvas(out, book.title)
    warnings = book_warnings(book)
    plans = [plan_page(book, page) for page in book.pages]
    with (
        tempfile.TemporaryDirectory(dir=out.parent, prefix="pages-") as scratch,
        ThreadPoolExecutor(max_workers=PICTURE_WORKERS, thread_name_prefix="export-page") as pool,
    ):
        # A window of PICTURE_WORKERS pages in preparation: pages are drawn in order while the
        # next ones are decoded and resized, and never more than that many are in memory.
        ahead: deque[Future[pictures.PreparedPicture | None]] = deque()
        upcoming = iter(plans)
        for plan in plans:
            while len(ahead) < PICTURE_WORKERS and (nxt := next(upcoming, None)) is not None:
                ahead.append(pool.submit(prepare_picture, nxt, Path(scratch)))
            warnings.extend(draw_page(canvas, plan, ahead.popleft().result()))
    canvas.save()
    return RenderResult(pages=len(book.pages), bytes=out.stat().st_size, warnings=warnings)
