"""Page and cover geometry in PDF points, from the print rules in design/PRINT.md.

Interior (`print`): page = trim + 0.125 in wide and + 0.25 in tall, the bleed on top, bottom and
the outside edge only, so a recto (odd page, right-hand) has its gutter at x = 0 and a verso its
gutter on the right. Cover: 2 x trim width + spine + 0.25 in by trim height + 0.25 in, the spine
being pages x the paper's thickness. Text stays 0.5 in inside the trim and the gutter: KDP asks
0.375 in, IngramSpark 0.5 in, so one file suits both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from books.printing import BLEED_IN, PRINT_DPI, TRIMS

POINTS_PER_INCH = 72.0
SAFE_MARGIN_IN = 0.5
SCREEN_DPI = 150
# KDP premium colour needs at least 24 pages; below 79 pages a spine is too thin for text.
MIN_PRINT_PAGES = 24
SPINE_TEXT_MIN_PAGES = 79
# Inches of spine per page (KDP's paper thicknesses).
PAPER_THICKNESS_IN = {"white": 0.002252, "cream": 0.0025, "premium-colour": 0.002347}


def pt(inches: float) -> float:
    return inches * POINTS_PER_INCH


@dataclass(frozen=True)
class Box:
    """A rectangle in points, origin at the page's bottom-left as PDF has it."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def inset(self, by: float) -> Box:
        return Box(self.x0 + by, self.y0 + by, self.x1 - by, self.y1 - by)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class PageGeometry:
    media: Box
    trim: Box
    safe: Box
    dpi: int

    @property
    def bleed(self) -> Box:
        """The bleed box is the whole page: bleed is only added where the page is trimmed."""
        return self.media

    def pixels_for(self, box: Box) -> tuple[int, int]:
        """Pixels a picture needs to cover `box` at this DPI (rounded up, so never below it)."""
        return (
            math.ceil(round(box.width / POINTS_PER_INCH * self.dpi, 6)),
            math.ceil(round(box.height / POINTS_PER_INCH * self.dpi, 6)),
        )


def trim_inches(trim: str) -> tuple[float, float]:
    return TRIMS[trim]


def page_geometry(trim: str, number: int, profile: str) -> PageGeometry:
    width_in, height_in = trim_inches(trim)
    width, height = pt(width_in), pt(height_in)
    if profile == "screen":
        page = Box(0.0, 0.0, width, height)
        return PageGeometry(media=page, trim=page, safe=page.inset(pt(SAFE_MARGIN_IN)), dpi=SCREEN_DPI)
    bleed = pt(BLEED_IN)
    media = Box(0.0, 0.0, width + bleed, height + 2 * bleed)
    # Odd pages are rectos: the gutter is their left edge, so the outside bleed is on the right.
    x0 = 0.0 if number % 2 == 1 else bleed
    trim_box = Box(x0, bleed, x0 + width, bleed + height)
    return PageGeometry(media=media, trim=trim_box, safe=trim_box.inset(pt(SAFE_MARGIN_IN)), dpi=PRINT_DPI)


def spine_inches(pages: int, paper: str) -> float:
    return round(pages * PAPER_THICKNESS_IN[paper], 4)


@dataclass(frozen=True)
class CoverGeometry:
    media: Box
    trim: Box
    back: Box  # back panel with its bleed (left, top, bottom)
    spine: Box
    front: Box  # front panel with its bleed (right, top, bottom)
    front_safe: Box
    spine_in: float
    spine_text: bool
    dpi: int

    def pixels_for(self, box: Box) -> tuple[int, int]:
        return PageGeometry(self.media, self.trim, self.front_safe, self.dpi).pixels_for(box)


def cover_geometry(trim: str, pages: int, paper: str, profile: str = "print") -> CoverGeometry:
    width_in, height_in = trim_inches(trim)
    spine_in = spine_inches(pages, paper)
    bleed, width, height, spine = pt(BLEED_IN), pt(width_in), pt(height_in), pt(spine_in)
    total_w, total_h = 2 * width + spine + 2 * bleed, height + 2 * bleed
    media = Box(0.0, 0.0, total_w, total_h)
    spine_box = Box(bleed + width, 0.0, bleed + width + spine, total_h)
    front_trim = Box(spine_box.x1, bleed, total_w - bleed, bleed + height)
    return CoverGeometry(
        media=media,
        trim=media.inset(bleed),
        back=Box(0.0, 0.0, spine_box.x0, total_h),
        spine=spine_box,
        front=Box(spine_box.x1, 0.0, total_w, total_h),
        front_safe=front_trim.inset(pt(SAFE_MARGIN_IN)),
        spine_in=spine_in,
        spine_text=pages >= SPINE_TEXT_MIN_PAGES,
        dpi=SCREEN_DPI if profile == "screen" else PRINT_DPI,
    )
