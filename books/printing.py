"""Print sizes: trims, the pixels a full-bleed page needs, the size to ask the model for, DPI.

KDP's full-bleed rule (design/PRINT.md): bleed of 0.125 in on the outside edge, top and bottom,
none on the gutter, so a page is trim width + 0.125 in by trim height + 0.25 in; pictures
should reach 300 DPI there. Models cannot draw that big, so each book asks for the closest size
the model allows with the page's aspect, and each page reports the DPI its picture really has.
"""

from __future__ import annotations

import math

from generation.capabilities import ModelCapabilities, parse_size

# Trim (width, height) in inches, as printers list them. A4 is 210 x 297 mm.
TRIMS: dict[str, tuple[float, float]] = {
    "8.5x8.5": (8.5, 8.5),
    "8x8": (8.0, 8.0),
    "8x10": (8.0, 10.0),
    "10x8": (10.0, 8.0),
    "8.5x11": (8.5, 11.0),
    "11x8.5": (11.0, 8.5),
    "6x9": (6.0, 9.0),
    "7x10": (7.0, 10.0),
    "a4": (round(210 / 25.4, 3), round(297 / 25.4, 3)),
}
DEFAULT_TRIM = "8.5x8.5"
BLEED_IN = 0.125
PRINT_DPI = 300


def page_inches(trim: str) -> tuple[float, float]:
    """The page with bleed: outside edge on the width, top and bottom on the height."""
    width, height = TRIMS[trim]
    return width + BLEED_IN, height + 2 * BLEED_IN


def print_px(trim: str) -> tuple[int, int]:
    """Pixels a page needs at 300 DPI (8.5x8.5 -> 2588x2625)."""
    width, height = page_inches(trim)
    return math.ceil(width * PRINT_DPI - 1e-9), math.ceil(height * PRINT_DPI - 1e-9)


def _fit(caps: ModelCapabilities, width: float, height: float) -> tuple[int, int]:
    step = caps.size_multiple
    scale = min(1.0, caps.max_edge / max(width, height), math.sqrt(caps.max_pixels / (width * height)))
    w = max(step, round(width * scale / step) * step)
    h = max(step, round(height * scale / step) * step)
    # Rounding up may cross a limit by one step: come back down on the longer side.
    while max(w, h) > caps.max_edge or w * h > caps.max_pixels:
        if w >= h:
            w -= step
        else:
            h -= step
    return w, h


def generate_size(caps: ModelCapabilities, trim: str) -> str:
    """The size to request: print_px rounded to the model's grid and limits, same aspect.

    A model with only standard sizes gets the one whose aspect is nearest the page's.
    """
    width, height = print_px(trim)
    if caps.arbitrary_sizes:
        w, h = _fit(caps, width, height)
        return f"{w}x{h}"
    aspect = width / height

    def distance(size: str) -> float:
        dims = parse_size(size)
        assert dims is not None
        return abs(math.log((dims[0] / dims[1]) / aspect))

    return min(caps.standard_sizes, key=distance)


def effective_dpi(image_width: int, image_height: int, trim: str) -> int:
    """DPI of a picture stretched over the whole page with bleed (the weaker of the two sides)."""
    width, height = page_inches(trim)
    return math.floor(min(image_width / width, image_height / height))
