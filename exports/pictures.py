"""Pictures for print: cover-fit to the pixels a box needs, the text panel flattened in, encoded.

One picture is decoded, resized and encoded at a time and then dropped, so an export's memory is
one full-size page, not the book. The text panel is blended into the pixels (not drawn with PDF
transparency) because printers ask for flattened transparency; for the same reason a picture
with an alpha channel is flattened onto white and kept lossless instead of going to JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from exports.spec import Picture

JPEG_QUALITY = 92
PANEL_OPACITY = 0.8  # share of white over the picture under the text panel
PANEL_RADIUS_FRACTION = 0.12  # corner radius as a share of the panel's shorter side


@dataclass(frozen=True)
class PixelRect:
    left: int
    top: int
    right: int
    bottom: int


@dataclass(frozen=True)
class PreparedPicture:
    """An encoded picture on disk, ready for the PDF: `.jpg`, or `.png` when kept lossless.

    A file, not bytes: reportlab embeds a JPEG file's bytes as they are, where an in-memory image
    would be decoded again and hashed whole just to name it.
    """

    path: Path
    size: tuple[int, int]
    effective_dpi: float
    mean_rgb: tuple[int, int, int]


def effective_dpi(source: tuple[int, int], inches: tuple[float, float]) -> float:
    """Source pixels per printed inch once cover-fitted: the tighter axis decides."""
    return min(source[0] / inches[0], source[1] / inches[1])


def cover_fit_box(source: tuple[int, int], target: tuple[int, int]) -> tuple[float, float, float, float]:
    """The centred source region with the target's proportions: cropped, never stretched."""
    scale = max(target[0] / source[0], target[1] / source[1])
    width, height = target[0] / scale, target[1] / scale
    left, top = (source[0] - width) / 2, (source[1] - height) / 2
    return (left, top, left + width, top + height)


def _open_rgb(picture: Picture) -> tuple[Image.Image, bool]:
    """The picture as RGB and whether it had any transparent pixel (flattened onto white)."""
    with Image.open(picture.path) as raw:
        raw.load()
        has_alpha = raw.mode in ("RGBA", "LA", "PA") or "transparency" in raw.info
        if not has_alpha:
            return raw.convert("RGB"), False
        rgba = raw.convert("RGBA")
    alpha_min = rgba.getchannel("A").getextrema()[0]
    if alpha_min == 255:
        return rgba.convert("RGB"), False
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat, True


def mean_colour(picture: Picture) -> tuple[int, int, int]:
    """The picture's average colour, from a small draft decode (cheap even for a large JPEG)."""
    with Image.open(picture.path) as raw:
        raw.draft("RGB", (64, 64))
        small = raw.convert("RGB")
        small.thumbnail((64, 64))
    red, green, blue = small.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))  # type: ignore[misc]
    return (int(red), int(green), int(blue))


def blend_panel(image: Image.Image, rect: PixelRect) -> None:
    """Lighten a rounded rectangle of the picture in place so dark text reads over any picture."""
    rect = PixelRect(
        max(rect.left, 0), max(rect.top, 0), min(rect.right, image.width), min(rect.bottom, image.height)
    )
    if rect.right <= rect.left or rect.bottom <= rect.top:
        return
    size = (rect.right - rect.left, rect.bottom - rect.top)
    mask = Image.new("L", size, 0)
    radius = int(min(size) * PANEL_RADIUS_FRACTION)
    ImageDraw.Draw(mask).rounded_rectangle(
        (0, 0, size[0] - 1, size[1] - 1), radius, fill=round(255 * PANEL_OPACITY)
    )
    image.paste((255, 255, 255), (rect.left, rect.top, rect.right, rect.bottom), mask)


def prepare(
    picture: Picture,
    target: tuple[int, int],
    inches: tuple[float, float],
    out_stem: Path,
    panel: PixelRect | None = None,
) -> PreparedPicture:
    """Cover-fit `picture` to exactly `target` pixels (Lanczos, up or down), add the panel, encode
    to `out_stem` + `.jpg` (or `.png`)."""
    image, transparent = _open_rgb(picture)
    source = image.size
    try:
        fitted = image.resize(target, Image.Resampling.LANCZOS, box=cover_fit_box(source, target))
    finally:
        image.close()
    mean = fitted.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    if panel is not None:
        blend_panel(fitted, panel)
    dpi = effective_dpi(source, inches)
    mean_rgb = (int(mean[0]), int(mean[1]), int(mean[2]))  # type: ignore[index]
    path = out_stem.with_suffix(".png" if transparent else ".jpg")
    try:
        if transparent:
            fitted.save(path, format="PNG", compress_level=1)
        else:
            fitted.save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    finally:
        fitted.close()
    return PreparedPicture(path=path, size=target, effective_dpi=dpi, mean_rgb=mean_rgb)
