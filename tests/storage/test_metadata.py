"""Byte-level metadata stripping keeps the compressed image data and drops only metadata."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from storage.metadata import MalformedImage, strip_jpeg, strip_png, strip_webp
from tests.imagegen import encode, picture

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SecretCamCorp"  # Make
    exif[0x0131] = "SecretSoftware"  # Software
    return exif


def _pixels(data: bytes) -> bytes:
    return Image.open(io.BytesIO(data)).convert("RGBA").tobytes()


def test_jpeg_loses_exif_xmp_and_comments_but_keeps_icc_and_scan_data() -> None:
    xmp = b"<x:xmpmeta>SecretXmp</x:xmpmeta>"
    original = encode(picture(1), "JPEG", exif=_exif(), icc_profile=ICC, comment=b"SecretComment", xmp=xmp)
    stripped = strip_jpeg(original)
    for secret in (b"SecretCamCorp", b"SecretComment", b"SecretXmp", b"Exif\x00\x00"):
        assert secret in original and secret not in stripped
    assert Image.open(io.BytesIO(stripped)).info.get("icc_profile") == ICC
    assert _pixels(stripped) == _pixels(original)
    assert len(stripped) < len(original)


def test_jpeg_trailing_bytes_after_eoi_are_dropped() -> None:
    original = encode(picture(2), "JPEG") + b"TRAILING-SECRET"
    stripped = strip_jpeg(original)
    assert stripped.endswith(b"\xff\xd9") and b"TRAILING-SECRET" not in stripped


def test_progressive_jpeg_keeps_all_scans() -> None:
    original = encode(picture(3, (200, 120)), "JPEG", progressive=True, exif=_exif())
    assert _pixels(strip_jpeg(original)) == _pixels(original)


def test_png_loses_text_time_and_exif_chunks_but_keeps_icc() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "SecretAuthor")
    info.add_text("Comment", "SecretZ", zip=True)
    info.add_itxt("Description", "SecretI")
    original = encode(picture(4), "PNG", pnginfo=info, exif=_exif(), icc_profile=ICC)
    stripped = strip_png(original)
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
        assert chunk in original and chunk not in stripped
    assert b"iCCP" in stripped
    assert _pixels(stripped) == _pixels(original)


def test_webp_loses_exif_and_xmp_and_clears_their_flags() -> None:
    original = encode(
        picture(5), "WEBP", exif=_exif(), xmp=b"<x>SecretXmp</x>", icc_profile=ICC, lossless=True
    )
    stripped = strip_webp(original)
    assert b"SecretCamCorp" in original and b"SecretCamCorp" not in stripped
    assert b"SecretXmp" not in stripped
    vp8x_flags = stripped[stripped.index(b"VP8X") + 8]
    assert vp8x_flags & 0x0C == 0 and vp8x_flags & 0x20  # EXIF/XMP flags off, ICC flag on
    assert int.from_bytes(stripped[4:8], "little") == len(stripped) - 8
    assert _pixels(stripped) == _pixels(original)


@pytest.mark.parametrize(
    ("strip", "data"),
    [
        (strip_png, encode(picture(6), "PNG")[:-30]),
        (strip_jpeg, b"\xff\xd8\xff\xe1\x40\x00short"),
        (strip_webp, encode(picture(6), "WEBP")[:20]),
    ],
)
def test_truncated_containers_are_malformed(strip, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MalformedImage):
        strip(data)


def test_png_with_a_corrupt_chunk_is_malformed() -> None:
    data = bytearray(encode(picture(7), "PNG"))
    data[data.index(b"IDAT") + 10] ^= 0xFF
    with pytest.raises(MalformedImage, match="CRC"):
        strip_png(bytes(data))
