"""The offline backend: a storyboard panel instead of a painting, for authors without a key.

It shows what the real call would get (the reference images as numbered thumbnails, the scene
text) under a large "DRAFT" mark, at the requested size and format, so a whole book can be laid
out before any money is spent. Rendering is deterministic (Pillow's bundled font, no clock, no
randomness but a seeded one): the same request gives the same bytes, which the tests rely on.
It honours `seed`: the tint and a scatter of marks come from it, so another seed is another panel.
"""

from __future__ import annotations

import io
import random
import textwrap
from functools import lru_cache

import anyio.to_thread
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from generation.backends.base import BackendRequest, BackendResult, GeneratedImage, ReferenceImage, zero_usage
from generation.capabilities import parse_size

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
INK = (40, 40, 48)
MUTED = (110, 110, 120)
DRAFT_RED = (200, 30, 40)
# Background tints, one per panel, so n > 1 gives visibly different images.
TINTS = ((250, 248, 240), (240, 246, 250), (246, 250, 240), (250, 242, 246))


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _decode_thumbnail(ref: ReferenceImage, box: int) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(ref.data)) as img:
            img.draft("RGB", (box, box))  # JPEG: decode at reduced scale, much faster
            thumb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return ImageOps.contain(thumb, (box, box))  # whole, and enlarged when small


def _fitted_font(
    draw: ImageDraw.ImageDraw, text: str, size: int, width: int
) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, int]:
    """The largest font up to `size` in which `text` fits `width` (header lines never get cut)."""
    while size > 10 and draw.textlength(text, font=_font(size)) > width:
        size -= max(1, size // 10)
    return _font(size), size


def _grid(count: int, width: int, height: int, gap: int, label: int) -> tuple[int, int]:
    """(columns, box side) that make `count` square boxes as large as the area allows."""
    best = (1, 16)
    for columns in range(1, count + 1):
        rows = -(-count // columns)
        side = min((width - gap * (columns - 1)) // columns, (height - rows * (label + gap)) // rows)
        if side > best[1]:
            best = (columns, side)
    return best


def _draw_references(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    refs: list[ReferenceImage],
    top: int,
    bottom: int,
    margin: int,
) -> int:
    """The references as large as the area allows, whole (letterboxed), each captioned with its
    number and whom it shows; returns the y below them."""
    width = canvas.width
    gap = max(6, margin // 2)
    label_size = max(14, min(canvas.width, canvas.height) // 40)
    columns, box = _grid(len(refs), width - 2 * margin, bottom - top, gap, label_size + 6)
    rows = -(-len(refs) // columns)
    used_width = columns * box + (columns - 1) * gap
    left = (width - used_width) // 2
    for index, ref in enumerate(refs):
        row, column = divmod(index, columns)
        x = left + column * (box + gap)
        y = top + row * (box + label_size + 6 + gap)
        draw.rectangle((x, y, x + box, y + box), outline=MUTED, width=2)
        thumb = _decode_thumbnail(ref, box - 4)
        if thumb is not None:
            canvas.paste(thumb, (x + (box - thumb.width) // 2, y + (box - thumb.height) // 2))
        else:
            draw.text((x + 6, y + box // 2), "unreadable", fill=MUTED, font=_font(label_size))
        who = ", ".join(ref.character_names)
        caption = f"image {ref.number} · {who}" if who else f"image {ref.number}"
        label, _ = _fitted_font(draw, caption, label_size, box)
        draw.text((x, y + box + 4), caption, fill=INK, font=label)
    return top + rows * (box + label_size + 6 + gap)


def _tint(request: BackendRequest, index: int) -> tuple[int, int, int]:
    """Without a seed the fixed tints; with one, a pale colour drawn from it (same seed, same panel)."""
    if request.params.seed is None:
        return TINTS[index % len(TINTS)]
    rng = random.Random(request.params.seed * 1009 + index)
    return (rng.randint(225, 255), rng.randint(225, 255), rng.randint(225, 255))


def _scatter(draw: ImageDraw.ImageDraw, request: BackendRequest, width: int, height: int, index: int) -> None:
    """Seeded confetti in the margins: a visible sign that the seed changes the picture."""
    if request.params.seed is None:
        return
    rng = random.Random(request.params.seed * 7919 + index)
    for _ in range(24):
        x, y, r = (
            rng.randrange(width),
            rng.randrange(height),
            rng.randint(2, max(3, min(width, height) // 64)),
        )
        draw.ellipse((x - r, y - r, x + r, y + r), fill=MUTED)


def _render(request: BackendRequest, width: int, height: int, index: int) -> bytes:
    canvas = Image.new("RGB", (width, height), _tint(request, index))
    draw = ImageDraw.Draw(canvas)
    _scatter(draw, request, width, height, index)
    short = min(width, height)
    margin = max(8, short // 32)

    header = f"DRAFT · panel {index + 1}/{request.params.n} · {request.model} · {width}x{height}"
    if request.params.seed is not None:
        header += f" · seed {request.params.seed}"
    if request.mask is not None:
        header += f" · masked edit (mask {request.mask.number})"
    title, title_size = _fitted_font(draw, header, max(12, short // 24), width - 2 * margin)
    draw.text((margin, margin), header, fill=DRAFT_RED, font=title)
    y = margin + title_size + margin

    mark_font = _font(max(16, short // 8))
    bbox = draw.textbbox((0, 0), "DRAFT", font=mark_font)
    mark_w, mark_h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    text_bottom = height - mark_h - 2 * margin  # the scene text stops above the mark

    text = request.scene if request.scene is not None else request.prompt
    words = " ".join(text.split())
    body_size = max(14, short // (22 if not request.references else 30))
    body = _font(body_size)
    if request.references:
        # The references take what the scene text leaves, but at least 55% of the page.
        char_width = draw.textlength("the quick brown fox jumps over a lazy dog ", font=body) / 42
        per_line = max(10, int((width - 2 * margin) / max(char_width, 1.0)))
        text_lines = min(len(textwrap.wrap(words, per_line)) or 1, 8)
        text_top = text_bottom - text_lines * (body_size + 6) - margin
        refs_bottom = max(y + int((text_bottom - y) * 0.55), text_top)
        y = _draw_references(canvas, draw, request.references, y, refs_bottom, margin) + margin // 2

    sample = "the quick brown fox jumps over a lazy dog "
    char_width = draw.textlength(sample, font=body) / len(sample)
    chars_per_line = max(10, int((width - 2 * margin) / max(char_width, 1.0)))
    lines = textwrap.wrap(words, chars_per_line) or [""]
    max_lines = max(1, (text_bottom - y) // (body_size + 6))
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: chars_per_line - 1] + "…"]
    for line in lines:
        draw.text((margin, y), line, fill=INK, font=body)
        y += body_size + 6

    # The mark: bottom right, upright, below the scene text, so it never hides it.
    position = (width - mark_w - margin - bbox[0], height - mark_h - margin - bbox[1])
    draw.text(position, "DRAFT", fill=DRAFT_RED, font=mark_font)
    draw.rectangle((0, 0, width - 1, height - 1), outline=DRAFT_RED, width=max(2, short // 128))

    return encode_picture(canvas, request.params.output_format, request.params.output_compression)


def encode_picture(canvas: Image.Image, output_format: str, compression: int | None) -> bytes:
    buffer = io.BytesIO()
    pil_format = PIL_FORMATS.get(output_format, "PNG")
    if pil_format == "PNG":
        canvas.save(buffer, "PNG", optimize=False, compress_level=6)
    else:
        # OpenAI's output_compression is "how much to keep" (100 = best); Pillow's quality agrees.
        quality = compression if compression is not None else 90
        canvas.save(buffer, pil_format, quality=quality)
    return buffer.getvalue()


def _size_of(size: str) -> tuple[int, int]:
    dims = parse_size(size)
    return dims if dims is not None else (1024, 1024)


def render_panels(request: BackendRequest) -> list[bytes]:
    """All `n` panels, synchronously: call it from a worker thread."""
    width, height = _size_of(request.params.size)
    return [_render(request, width, height, index) for index in range(request.params.n)]


class DraftBackend:
    """Offline, free, deterministic."""

    name = "draft"

    async def generate(self, request: BackendRequest) -> BackendResult:
        panels = await anyio.to_thread.run_sync(render_panels, request)
        return BackendResult(
            images=[GeneratedImage(data=data) for data in panels], usage=zero_usage(), model=request.model
        )

    async def aclose(self) -> None:
        return None
