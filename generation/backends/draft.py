"""The offline backend: a storyboard panel instead of a painting, for authors without a key.

It shows what the real call would get (the reference images as numbered thumbnails, the scene
text) under a large "DRAFT" mark, at the requested size and format, so a whole book can be laid
out before any money is spent. Rendering is deterministic (Pillow's bundled font, no clock, no
randomness): the same request gives the same bytes, which the tests rely on.
"""

from __future__ import annotations

import io
import textwrap
from functools import lru_cache

import anyio.to_thread
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

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
    thumb.thumbnail((box, box))
    return thumb


def _draw_references(
    canvas: Image.Image, draw: ImageDraw.ImageDraw, refs: list[ReferenceImage], top: int, margin: int
) -> int:
    """Lay the references out in one row of squares; return the y below the row."""
    width = canvas.width
    count = len(refs)
    gap = max(4, margin // 3)
    box = min(width // 4, (width - 2 * margin - gap * (count - 1)) // count, canvas.height // 4)
    box = max(box, 16)
    label_size = max(10, box // 8)
    label = _font(label_size)
    for index, ref in enumerate(refs):
        x = margin + index * (box + gap)
        draw.rectangle((x, top, x + box, top + box), outline=MUTED, width=2)
        thumb = _decode_thumbnail(ref, box - 4)
        if thumb is not None:
            canvas.paste(thumb, (x + (box - thumb.width) // 2, top + (box - thumb.height) // 2))
        else:
            draw.text((x + 6, top + box // 2), "unreadable", fill=MUTED, font=label)
        caption = f"#{ref.number} " + ", ".join(ref.character_names)
        draw.text((x, top + box + 4), caption.strip(), fill=INK, font=label)
    return top + box + 4 + label_size + gap


def _render(request: BackendRequest, width: int, height: int, index: int) -> bytes:
    canvas = Image.new("RGB", (width, height), TINTS[index % len(TINTS)])
    draw = ImageDraw.Draw(canvas)
    short = min(width, height)
    margin = max(8, short // 32)

    title_size = max(12, short // 24)
    title = _font(title_size)
    header = f"DRAFT  ·  panel {index + 1}/{request.params.n}  ·  {request.model}  ·  {width}x{height}"
    draw.text((margin, margin), header, fill=DRAFT_RED, font=title)
    y = margin + title_size + margin

    if request.references:
        y = _draw_references(canvas, draw, request.references, y, margin)

    body_size = max(10, short // 40)
    body = _font(body_size)
    sample = "the quick brown fox jumps over a lazy dog "
    char_width = draw.textlength(sample, font=body) / len(sample)
    chars_per_line = max(10, int((width - 2 * margin) / max(char_width, 1.0)))
    text = request.scene if request.scene is not None else request.prompt
    lines = textwrap.wrap(" ".join(text.split()), chars_per_line) or [""]
    max_lines = max(1, (height - y - margin) // (body_size + 4))
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: chars_per_line - 1] + "…"]
    for line in lines:
        draw.text((margin, y), line, fill=INK, font=body)
        y += body_size + 4

    # The mark: large, bottom right, upright, so it never hides the scene text.
    mark_font = _font(max(16, short // 6))
    bbox = draw.textbbox((0, 0), "DRAFT", font=mark_font)
    mark_w, mark_h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    position = (width - mark_w - margin - bbox[0], height - mark_h - margin - bbox[1])
    draw.text(position, "DRAFT", fill=DRAFT_RED, font=mark_font)
    draw.rectangle((0, 0, width - 1, height - 1), outline=DRAFT_RED, width=max(2, short // 128))

    return _encode(canvas, request.params.output_format, request.params.output_compression)


def _encode(canvas: Image.Image, output_format: str, compression: int | None) -> bytes:
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
