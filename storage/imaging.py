"""Upload processing: accept only real PNG/JPEG/WebP, refuse bombs, normalise, thumbnail, hash.

The order matters for safety and speed: the type is sniffed from magic bytes (names and
declared content types lie), the pixel count is read from the header before any pixel is
decoded (a 50 kB PNG can claim 20000×20000; a 95 kB one 1×49,000,000), and the pixels are
decoded exactly once. The
stored bytes keep the upload's format and compressed data: metadata is cut out byte by byte
(storage/metadata.py) and the image is re-encoded only when its EXIF orientation must be
applied to the pixels, because that is the one case where the bytes cannot stay as they are.

Memory: a decoded image costs width × height × bytes per pixel (200 MB for 50 M RGBA pixels),
so sides and aspect ratio are bounded from the header, JPEGs decode reduced (draft mode), and
the thumbnail is made band by band (`_reduce_in_bands`), so converting and premultiplying never
copies the full-size image. How many decodes run at once is bounded by storage/decode_gate.py.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import imagehash
from PIL import Image, ImageOps, JpegImagePlugin

from errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from storage.metadata import MalformedImage, strip_metadata

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
THUMBNAIL_FORMAT = "webp"
ORIENTATION_TAG = 0x0112
# Rows per band when thumbnailing: a band of a 12,000-pixel-wide RGBA image is ~12 MB.
BAND_ROWS = 256

# Everything Pillow raises on bytes that look like an image but are broken somewhere inside.
_BROKEN = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, KeyError)


@dataclass(frozen=True)
class ProcessedImage:
    """What the library stores for one upload; plain data, so workers and tests can use it too."""

    format: str  # "png" | "jpeg" | "webp"
    width: int
    height: int
    sha256: str  # of `data`, the bytes actually stored
    phash: str  # 16 hex digits
    phash_int: int  # the same 64 bits as a signed int64, for SQL and numpy
    data: bytes
    thumbnail: bytes
    reencoded: bool  # True only when the EXIF orientation had to be applied

    @property
    def byte_count(self) -> int:
        return len(self.data)


def sniff_format(data: bytes) -> str | None:
    """The format by magic bytes alone."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def phash_to_int(phash_hex: str) -> int:
    value = int(phash_hex, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _label(name: str) -> str:
    return repr(name[:100])


def _invalid(name: str, field: str, why: str) -> InvalidInput:
    return InvalidInput(f"{_label(name)} is not a valid image: {why}", field=field, code="invalid_image")


def _too_large(name: str, field: str, width: int | None, height: int | None, limit: int) -> PayloadTooLarge:
    size = f"{width}×{height} pixels" if width and height else "too many pixels"
    return PayloadTooLarge(
        f"{_label(name)} has {size}; the limit is {limit:,} pixels", field=field, code="image_too_large"
    )


def _check_shape(
    name: str, field: str, width: int, height: int, *, max_pixels: int, max_side: int, max_aspect: float
) -> None:
    """Refuse from the header alone what would cost too much memory to decode."""
    if width <= 0 or height <= 0:
        raise _invalid(name, field, "it has no pixels")
    if width * height > max_pixels:
        raise _too_large(name, field, width, height, max_pixels)
    if max(width, height) > max_side:
        raise PayloadTooLarge(
            f"{_label(name)} is {width}×{height} pixels; no side may exceed {max_side:,}",
            field=field,
            code="image_too_large",
        )
    if max(width, height) > max_aspect * min(width, height):
        raise InvalidInput(
            f"{_label(name)} is {width}×{height} pixels; the longer side may be at most"
            f" {max_aspect:g} times the shorter",
            field=field,
            code="image_aspect_ratio",
        )


# Bytes a decode may hold per pixel of each mode, and how many copies each format's decoder
# keeps (Pillow's WebP path: libwebp's canvas, a bytes copy and the image, measured 3.8x).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 4, "PA": 4, "I;16": 2, "I": 4, "F": 4}
_DECODER_COPIES = {"png": 1, "jpeg": 1, "webp": 4}


def decode_cost(fmt: str, width: int, height: int, mode: str) -> int:
    """A generous estimate of the bytes decoding this image takes (RGB counts as 4 per pixel)."""
    per_pixel = 4 if fmt == "webp" else _MODE_BYTES.get(mode, 4)
    return width * height * per_pixel * _DECODER_COPIES[fmt]


def _no_gate(_cost: int) -> AbstractContextManager[None]:
    return nullcontext()


def process_image(
    data: bytes,
    *,
    max_pixels: int,
    thumbnail_size: int,
    max_side: int = 12_000,
    max_aspect: float = 20.0,
    name: str = "image",
    field: str = "files",
    admit: Callable[[int], AbstractContextManager[None]] = _no_gate,
) -> ProcessedImage:
    """Validate and normalise one upload. Raises 415/413/422 domain errors naming `name`.

    `admit(cost_bytes)` is entered after the header checks and before any pixel is decoded:
    the caller's bound on concurrent decodes (storage/decode_gate.py).
    """
    if not data:
        raise _invalid(name, field, "the file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedMediaType(
            f"{_label(name)} is not a PNG, JPEG or WebP image", field=field, code="unsupported_media_type"
        )
    with _refusals(name, field, max_pixels):
        header = Image.open(io.BytesIO(data), formats=[PIL_FORMATS[fmt]])
        width, height = header.size
        _check_shape(
            name, field, width, height, max_pixels=max_pixels, max_side=max_side, max_aspect=max_aspect
        )
    with admit(decode_cost(fmt, width, height, header.mode)), _refusals(name, field, max_pixels):
        return _decode(data, fmt, header, thumbnail_size)


@contextmanager
def _refusals(name: str, field: str, max_pixels: int) -> Iterator[None]:
    """Pillow's and the stripper's exceptions as the API's refusals, naming the file."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise _too_large(name, field, None, None, max_pixels) from exc
    except MalformedImage as exc:
        raise _invalid(name, field, str(exc)) from exc
    except _BROKEN as exc:
        raise _invalid(name, field, f"it is truncated or corrupt ({type(exc).__name__})") from exc


def _decode(data: bytes, fmt: str, header: Image.Image, thumbnail_size: int) -> ProcessedImage:
    width, height = header.size
    orientation = header.getexif().get(ORIENTATION_TAG, 1)
    if orientation in range(2, 9):
        image = ImageOps.exif_transpose(header)
        assert image is not None
        stored = strip_metadata(fmt, _encode(image, fmt, header, data))
        reencoded = True
    else:
        stored = strip_metadata(fmt, data)
        # Decode once, from the bytes as received: stripping metadata never touches pixels.
        # (For a PNG, getexif() above has already decoded it: an eXIf chunk may follow the
        # pixel data. load() is then a no-op.)
        image = header
        if fmt == "jpeg":
            # DCT scaling: decode at 1/2..1/8 size when only a thumbnail is needed. libjpeg
            # still consumes every byte, so truncated files are still refused.
            image.draft(None, (thumbnail_size, thumbnail_size))
        image.load()
        reencoded = False
    width, height = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    thumb = _thumbnail(image, thumbnail_size)
    phash_hex = str(imagehash.phash(thumb))
    out = io.BytesIO()
    # method=2: a gallery thumbnail does not need WebP's slowest search (method 4 costs ~3x here).
    thumb.save(out, format=PIL_FORMATS[THUMBNAIL_FORMAT], quality=80, method=2)
    return ProcessedImage(
        format=fmt,
        width=width,
        height=height,
        sha256=hashlib.sha256(stored).hexdigest(),
        phash=phash_hex,
        phash_int=phash_to_int(phash_hex),
        data=stored,
        thumbnail=out.getvalue(),
        reencoded=reencoded,
    )


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _thumbnail(image: Image.Image, size: int) -> Image.Image:
    """A small RGB(A) copy; also the input of the perceptual hash, so hashes are always comparable."""
    mode = "RGBA" if _has_alpha(image) else "RGB"
    width, height = image.size
    factor = max(1, min(width // size, height // size))
    if factor > 1 or image.mode != mode:
        image = _reduce_in_bands(image, mode, factor)
    # The rest (at most 2x the target) in one go: Lanczos, premultiplied for RGBA by Pillow.
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    return image


def _to_mode(piece: Image.Image, mode: str) -> Image.Image:
    if piece.mode == mode:
        return piece
    try:
        return piece.convert(mode)
    except ValueError:  # e.g. 16-bit greyscale: go through 8-bit first
        return piece.convert("L").convert(mode)


def _reduce_in_bands(image: Image.Image, mode: str, factor: int) -> Image.Image:
    """Convert and box-shrink by `factor`, BAND_ROWS rows at a time.

    Converting or premultiplying a whole 50 M-pixel image at once would copy all of it (another
    200 MB for RGBA); band by band, only the shrunk result and one band are alive. Bands start
    on multiples of `factor`, so every output pixel averages the same input pixels as one
    whole-image reduce would. RGBA is averaged premultiplied (RGBa), so transparent pixels do
    not bleed their colour into the edges.
    """
    width, height = image.size
    work = "RGBa" if mode == "RGBA" else mode
    out = Image.new(work, (-(-width // factor), -(-height // factor)))
    rows = max(factor, BAND_ROWS // factor * factor)
    for top in range(0, height, rows):
        piece = _to_mode(image.crop((0, top, width, min(height, top + rows))), mode)
        if work != mode:
            piece = piece.convert(work)
        out.paste(piece.reduce(factor) if factor > 1 else piece, (0, top // factor))
    return out.convert(mode) if work != mode else out


def _encode(image: Image.Image, fmt: str, original: Image.Image, data: bytes) -> bytes:
    """Re-encode after rotation, keeping the ICC profile and as much quality as the format allows."""
    out = io.BytesIO()
    options: dict[str, object] = {}
    icc = original.info.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    if fmt == "jpeg":
        options["quality"] = 95
        sampling = JpegImagePlugin.get_sampling(original)
        if sampling >= 0:
            options["subsampling"] = sampling
    elif fmt == "webp":
        lossless = b"VP8L" in data[12:64]
        options.update({"lossless": True} if lossless else {"quality": 95})
        options["exact"] = True
    elif fmt == "png" and "transparency" in original.info:
        options["transparency"] = original.info["transparency"]
    image.save(out, format=PIL_FORMATS[fmt], **options)
    return out.getvalue()
