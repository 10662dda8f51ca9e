"""Lossless metadata stripping: drop EXIF/XMP/text/comments byte by byte, never re-encoding.

Re-encoding a JPEG to drop its EXIF would cost quality and time; these functions copy the
compressed image data untouched and leave out only the segments/chunks that carry metadata
(camera, GPS, software, timestamps). ICC profiles stay: they are part of what the pixels mean.
Anything structurally broken raises `MalformedImage` so the caller can answer 422.
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"

# PNG ancillary chunks that only describe the file, never the pixels.
PNG_DROP = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"})
# WebP chunks holding metadata; VP8X flag bits announcing them.
WEBP_DROP = frozenset({b"EXIF", b"XMP "})
VP8X_EXIF_FLAG = 0x08
VP8X_XMP_FLAG = 0x04


class MalformedImage(ValueError):
    """The container structure is broken (truncated, bad lengths): not an image we can store."""


# ---- JPEG -------------------------------------------------------------------------------------

# Markers without a length field.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _keep_jpeg_segment(marker: int, payload: bytes) -> bool:
    if marker == 0xFE:  # COM
        return False
    if 0xE0 <= marker <= 0xEF:  # APPn
        if marker == 0xE0:  # JFIF/JFXX: density and such, no personal data
            return payload.startswith((b"JFIF\x00", b"JFXX\x00"))
        if marker == 0xE2:  # ICC profile (possibly split across several APP2)
            return payload.startswith(b"ICC_PROFILE\x00")
        # APP14 "Adobe" says how to interpret the colour channels (YCCK/CMYK): pixels depend on it.
        return marker == 0xEE and payload.startswith(b"Adobe")
    return True


def strip_jpeg(data: bytes) -> bytes:
    """Copy a JPEG without APPn metadata (EXIF, XMP, IPTC, MPF) and COM segments.

    Walks the marker segments; inside entropy-coded data a 0xFF is followed by 0x00 (stuffing)
    or a restart marker, so the next real marker is found by skipping those. Data after EOI
    (such as the preview images of an MPF file) is dropped too.
    """
    if not data.startswith(JPEG_SOI):
        raise MalformedImage("not a JPEG stream")
    out = bytearray(JPEG_SOI)
    pos = 2
    size = len(data)
    while True:
        # Skip fill bytes, then read a marker.
        if pos >= size or data[pos] != 0xFF:
            raise MalformedImage("JPEG marker expected")
        while pos < size and data[pos] == 0xFF:
            pos += 1
        if pos >= size:
            raise MalformedImage("JPEG ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            out += b"\xff\xd9"
            return bytes(out)
        if marker in _STANDALONE:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > size:
            raise MalformedImage("JPEG segment header truncated")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        end = pos + length
        if length < 2 or end > size:
            raise MalformedImage("JPEG segment runs past the end of the file")
        payload = data[pos + 2 : end]
        if _keep_jpeg_segment(marker, payload):
            out += bytes((0xFF, marker)) + data[pos:end]
        pos = end
        if marker == 0xDA:  # SOS: entropy-coded data follows until the next real marker
            scan_end = _end_of_scan(data, pos)
            out += data[pos:scan_end]
            pos = scan_end
            if pos >= size:
                # No EOI: keep what there is and let the decoder judge whether it is complete.
                return bytes(out)


def _end_of_scan(data: bytes, pos: int) -> int:
    size = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= size:
            return size
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1
            continue
        return pos


# ---- PNG --------------------------------------------------------------------------------------


def strip_png(data: bytes) -> bytes:
    """Copy a PNG without text, EXIF and time chunks; checks every chunk's length and CRC."""
    if not data.startswith(PNG_SIGNATURE):
        raise MalformedImage("not a PNG stream")
    out = bytearray(PNG_SIGNATURE)
    pos = len(PNG_SIGNATURE)
    size = len(data)
    while True:
        if pos + 8 > size:
            raise MalformedImage("PNG is truncated (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > size:
            raise MalformedImage(f"PNG chunk {kind!r} runs past the end of the file")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            raise MalformedImage(f"PNG chunk {kind!r} is corrupt (CRC mismatch)")
        if kind not in PNG_DROP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)


# ---- WebP -------------------------------------------------------------------------------------


def strip_webp(data: bytes) -> bytes:
    """Copy a WebP without EXIF/XMP chunks, clearing their VP8X flags and fixing the RIFF size."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MalformedImage("not a WebP stream")
    (riff_size,) = struct.unpack("<I", data[4:8])
    size = riff_size + 8
    if size > len(data) or riff_size < 4:
        raise MalformedImage("WebP is truncated")
    chunks: list[bytes] = []
    pos = 12
    while pos < size:
        if pos + 8 > size:
            raise MalformedImage("WebP chunk header truncated")
        fourcc = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + length + (length & 1)
        if pos + 8 + length > size:
            raise MalformedImage(f"WebP chunk {fourcc!r} runs past the end of the file")
        chunk = data[pos:end].ljust(end - pos, b"\x00")  # a missing final pad byte is common
        if fourcc == b"VP8X" and length >= 10:
            flags = chunk[8] & ~(VP8X_EXIF_FLAG | VP8X_XMP_FLAG)
            chunk = chunk[:8] + bytes((flags,)) + chunk[9:]
        if fourcc not in WEBP_DROP:
            chunks.append(chunk)
        pos = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


STRIPPERS = {"jpeg": strip_jpeg, "png": strip_png, "webp": strip_webp}


def strip_metadata(fmt: str, data: bytes) -> bytes:
    return STRIPPERS[fmt](data)
