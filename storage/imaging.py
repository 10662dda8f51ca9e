"""Upload processing: accept only real PNG/JPEG/WebP, refuse bombs, normalise, thumbnail, hash.

The order matters for safety and speed: the type is sniffed from magic bytes (names and
declared content types lie), the pixel count is read from the header before any pixel is
decoded (a 50 kB PNG can claim 20000×20000), and the pixels are decoded exactly once. The
stored bytes keep the upload's format and compressed data: metadata is cut out byte by byte
(storage/metadata.py) and the image is re-encoded only when its EXIF orientation must be
applied to the pixels, because that is the one case where the bytes cannot stay as they are.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
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


def process_image(
    data: bytes,
    *,
    max_pixels: int,
    thumbnail_size: int,
    name: str = "image",
    field: str = "files",
) -> ProcessedImage:
    """Validate and normalise one upload. Raises 415/413/422 domain errors naming `name`."""
    if not data:
        raise _invalid(name, field, "the file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedMediaType(
            f"{_label(name)} is not a PNG, JPEG or WebP image", field=field, code="unsupported_media_type"
        )
    try:
        header = Image.open(io.BytesIO(data), formats=[PIL_FORMATS[fmt]])
        width, height = header.size
        if width <= 0 or height <= 0:
            raise _invalid(name, field, "it has no pixels")
        if width * height > max_pixels:
            raise _too_large(name, field, width, height, max_pixels)
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
    except Image.DecompressionBombError as exc:
        raise _too_large(name, field, None, None, max_pixels) from exc
    except MalformedImage as exc:
        raise _invalid(name, field, str(exc)) from exc
    except _BROKEN as exc:
        raise _invalid(name, field, f"it is truncated or corrupt ({type(exc).__name__})") from exc

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
    if image.mode != mode:
        try:
            image = image.convert(mode)
        except ValueError:  # e.g. 16-bit greyscale: go through 8-bit first
            image = image.convert("L").convert(mode)
    # Same mode: resize the decoded image in place (the caller is done with it), saving a copy.
    # reducing_gap=1.0: shrink by whole factors with a cheap box filter first, then Lanczos for the
    # rest; ~4x faster than Lanczos all the way on a 1024² image, and just as good at 512 px.
    image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=1.0)
    return image


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
