"""Upload processing: content sniffing, bombs, broken files, orientation, thumbnails, hashes."""

from __future__ import annotations

import io

import imagehash
import pytest
from PIL import Image

from errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from storage.imaging import phash_to_int, process_image, sniff_format
from tests.imagegen import bomb_png, encode, jpeg, picture, png, webp

LIMITS = {"max_pixels": 50_000_000, "thumbnail_size": 512}


def process(data: bytes, **overrides: object):  # type: ignore[no-untyped-def]
    return process_image(data, **{**LIMITS, "name": "cat.png", **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(("data", "fmt"), [(png(), "png"), (jpeg(), "jpeg"), (webp(), "webp")])
def test_each_format_is_kept_with_its_bytes_when_there_is_no_metadata(data: bytes, fmt: str) -> None:
    result = process(data)
    assert (result.format, result.width, result.height) == (fmt, 64, 48)
    assert result.data == data and not result.reencoded
    assert Image.open(io.BytesIO(result.thumbnail)).format == "WEBP"
    assert len(result.sha256) == 64 and len(result.phash) == 16


def test_type_is_sniffed_from_content_not_name() -> None:
    assert sniff_format(png()) == "png" and sniff_format(b"hello") is None
    with pytest.raises(UnsupportedMediaType) as caught:
        process(b"just some text, named cat.png")
    assert caught.value.field == "files" and "cat.png" in caught.value.message


def test_empty_file_is_invalid_and_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        process(b"")
    assert caught.value.code == "invalid_image" and "cat.png" in caught.value.message


@pytest.mark.parametrize("data", [png(1, (300, 200)), jpeg(1, (300, 200)), webp(1, (300, 200))])
def test_truncated_files_are_invalid(data: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        process(data[: len(data) * 2 // 3])
    assert caught.value.code == "invalid_image"


def test_truncated_jpeg_is_caught_even_on_the_draft_thumbnail_path() -> None:
    data = jpeg(2, (2048, 1536))
    with pytest.raises(InvalidInput):
        process(data[: len(data) - 200])


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        process(bomb_png())
    assert caught.value.code == "image_too_large"


def test_pixel_limit_comes_from_settings() -> None:
    with pytest.raises(PayloadTooLarge, match="64×48"):
        process(png(), max_pixels=1000)


def test_exif_orientation_is_applied_and_metadata_dropped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "SecretCamCorp"
    source = picture(3, (80, 40))
    result = process(encode(source, "JPEG", exif=exif, quality=95))
    assert (result.width, result.height) == (40, 80) and result.reencoded
    stored = Image.open(io.BytesIO(result.data))
    assert stored.size == (40, 80) and stored.format == "JPEG"
    assert b"SecretCamCorp" not in result.data and not stored.getexif()
    # The top-left of the upright image is the source's bottom-left corner.
    expected = source.transpose(Image.Transpose.ROTATE_270).convert("RGB").getpixel((2, 2))
    got = stored.convert("RGB").getpixel((2, 2))
    assert all(abs(a - b) < 30 for a, b in zip(expected, got, strict=True))  # type: ignore[arg-type]


def test_png_metadata_is_stripped_without_reencoding() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCamCorp"
    result = process(encode(picture(4), "PNG", exif=exif))
    assert not result.reencoded and b"SecretCamCorp" not in result.data


def test_thumbnail_fits_the_long_side_and_keeps_aspect() -> None:
    result = process(jpeg(5, (2000, 1000)), thumbnail_size=256)
    thumb = Image.open(io.BytesIO(result.thumbnail))
    assert max(thumb.size) == 256 and thumb.size[0] == 2 * thumb.size[1]


def test_transparent_png_keeps_alpha_in_its_thumbnail() -> None:
    image = picture(6).convert("RGBA")
    image.putpixel((0, 0), (0, 0, 0, 0))
    thumb = Image.open(io.BytesIO(process(encode(image, "PNG")).thumbnail))
    assert thumb.mode == "RGBA"


def test_phash_is_stable_across_formats_and_close_for_near_copies() -> None:
    a = process(png(7, (256, 192)))
    b = process(jpeg(7, (256, 192)))
    c = process(png(8, (256, 192)))
    distance = imagehash.hex_to_hash(a.phash) - imagehash.hex_to_hash(b.phash)
    assert distance <= 4
    assert imagehash.hex_to_hash(a.phash) - imagehash.hex_to_hash(c.phash) > 8
    assert phash_to_int(a.phash) == int.from_bytes(bytes.fromhex(a.phash), "big", signed=True)
