"""Setting a page's words: an embedded TrueType font, wrapped and shrunk to fit a panel.

The panel sits inside the safe area at the book's text position and takes at most a share of it,
so the picture stays the page's subject; the size shrinks from the starting size to 12 pt, and
only when the words still do not fit does it go smaller (with a warning naming the page), down
to a floor below which lines are cut (also a warning).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import reportlab
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from exports.geometry import Box

FONT_NAME = "StoryloomSans"
# Debian's fonts-dejavu-core covers accents, Greek and Cyrillic; reportlab's own Vera is the fallback.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path(reportlab.__file__).parent / "fonts" / "Vera.ttf",
)
MIN_READABLE_PT = 12.0
FLOOR_PT = 7.0
STEP_PT = 0.5
LEADING = 1.3
TEXT_RGB = (0.11, 0.11, 0.13)


@cache
def register_font() -> str:
    """Register the text font once per process; reportlab embeds (subsets) it in every PDF."""
    for path in FONT_CANDIDATES:
        if path.is_file():
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(path)))
            return FONT_NAME
    raise RuntimeError("no TrueType font found for export text")  # reportlab always ships Vera


@dataclass(frozen=True)
class TextBlock:
    lines: tuple[str, ...]
    size: float
    panel: Box
    padding: float
    cut: bool = False

    @property
    def below_readable(self) -> bool:
        return self.size < MIN_READABLE_PT


def _width(text: str, size: float) -> float:
    return pdfmetrics.stringWidth(text, FONT_NAME, size)


def wrap(text: str, size: float, width: float) -> list[str]:
    """Greedy word wrap keeping the author's line breaks; a word wider than the line is split."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if _width(candidate, size) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while _width(word, size) > width and len(word) > 1:
                cut = max(1, next((i for i in range(len(word), 0, -1) if _width(word[:i], size) <= width), 1))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _text_height(lines: int, size: float) -> float:
    ascent, descent = pdfmetrics.getAscentDescent(FONT_NAME, size)
    return (ascent - descent) + (lines - 1) * size * LEADING


def _sizes(start: float, stop: float) -> list[float]:
    count = round((start - stop) / STEP_PT)
    return [start - i * STEP_PT for i in range(count + 1)]


def layout(text: str, area: Box, position: str, start_pt: float, max_share: float) -> TextBlock | None:
    """Fit `text` in a panel at the top or bottom of `area`; None when there is nothing to set."""
    register_font()
    if position == "none" or not text.strip():
        return None
    padding = min(area.width, area.height) * 0.04 + 6
    inner_w = area.width - 2 * padding
    tries = [(s, area.height * max_share) for s in _sizes(start_pt, MIN_READABLE_PT)]
    tries += [(s, area.height) for s in _sizes(MIN_READABLE_PT, FLOOR_PT)]
    for size, max_h in tries:
        lines = wrap(text, size, inner_w)
        if _text_height(len(lines), size) + 2 * padding <= max_h:
            return _place(lines, size, area, position, padding, cut=False)
    lines = wrap(text, FLOOR_PT, inner_w)
    while len(lines) > 1 and _text_height(len(lines), FLOOR_PT) + 2 * padding > area.height:
        lines.pop()
    return _place(lines, FLOOR_PT, area, position, padding, cut=True)


def _place(lines: list[str], size: float, area: Box, position: str, padding: float, cut: bool) -> TextBlock:
    width = max(_width(line, size) for line in lines) + 2 * padding
    height = _text_height(len(lines), size) + 2 * padding
    x0 = area.x0 + (area.width - width) / 2
    y0 = area.y1 - height if position == "top" else area.y0
    return TextBlock(tuple(lines), size, Box(x0, y0, x0 + width, y0 + height), padding, cut)


def draw(canvas: Canvas, block: TextBlock) -> None:
    """Centred lines from the panel's top, in the embedded font."""
    ascent, _ = pdfmetrics.getAscentDescent(FONT_NAME, block.size)
    canvas.setFillColorRGB(*TEXT_RGB)
    canvas.setFont(FONT_NAME, block.size)
    centre = (block.panel.x0 + block.panel.x1) / 2
    baseline = block.panel.y1 - block.padding - ascent
    for line in block.lines:
        canvas.drawCentredString(centre, baseline, line)
        baseline -= block.size * LEADING
