"""Property tests for the byte-level metadata stripper (storage/metadata.py), with Hypothesis.

Any valid PNG/JPEG/WebP with random metadata comes out decodable, pixel-identical and without
the metadata; random bytes never crash it: they come back as bytes or raise MalformedImage.
"""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from storage.metadata import MalformedImage, strip_metadata

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.tuples(st.integers(1, 24), st.integers(1, 24))
modes = st.sampled_from(["RGB", "RGBA", "L", "P"])
seeds = st.integers(0, 2**32 - 1)
# A marker that cannot occur by chance in compressed data, so "absent" means "stripped".
tokens = st.binary(min_size=8, max_size=8).map(lambda b: b"SECRET" + b.hex().encode())


def make_image(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA")
    if mode == "P":
        return image.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return image.convert(mode)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA"))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


png_metadata = st.lists(
    st.tuples(st.sampled_from([b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"]), st.binary(max_size=64)),
    min_size=1,
    max_size=5,
)


@SETTINGS
@given(size=sizes, mode=modes, seed=seeds, token=tokens, extra=png_metadata, before_idat=st.booleans())
def test_png_with_random_metadata_comes_out_clean_and_identical(
    size: tuple[int, int],
    mode: str,
    seed: int,
    token: bytes,
    extra: list[tuple[bytes, bytes]],
    before_idat: bool,
) -> None:
    original = encode(make_image(size, mode, seed), "PNG")
    blobs = b"".join(png_chunk(kind, b"k\x00" + token + payload) for kind, payload in extra)
    at = 8 + 25 if before_idat else len(original) - 12  # after IHDR, or before IEND
    data = original[:at] + blobs + original[at:]
    stripped = strip_metadata("png", data)
    assert token not in stripped
    for kind in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"):
        assert kind not in stripped
    assert np.array_equal(pixels(stripped), pixels(original))


jpeg_segments = st.lists(
    st.tuples(st.sampled_from([0xE1, 0xE1, 0xED, 0xFE, 0xE5]), st.binary(max_size=64)), min_size=1, max_size=5
)


@SETTINGS
@given(size=sizes, seed=seeds, token=tokens, segments=jpeg_segments, gray=st.booleans())
def test_jpeg_with_random_app_and_comment_segments_comes_out_clean_and_identical(
    size: tuple[int, int], seed: int, token: bytes, segments: list[tuple[int, bytes]], gray: bool
) -> None:
    original = encode(make_image(size, "L" if gray else "RGB", seed), "JPEG", quality=85)
    inserted = b""
    for marker, payload in segments:
        body = (b"Exif\x00\x00" if marker == 0xE1 else b"") + token + payload
        inserted += bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body
    data = original[:2] + inserted + original[2:]
    stripped = strip_metadata("jpeg", data)
    assert token not in stripped and b"Exif\x00\x00" not in stripped
    assert np.array_equal(pixels(stripped), pixels(original))


@SETTINGS
@given(size=sizes, seed=seeds, token=tokens, exif=st.booleans(), xmp=st.booleans(), alpha=st.booleans())
def test_webp_with_exif_and_xmp_comes_out_clean_and_identical(
    size: tuple[int, int], seed: int, token: bytes, exif: bool, xmp: bool, alpha: bool
) -> None:
    image = make_image(size, "RGBA" if alpha else "RGB", seed)
    original = encode(image, "WEBP", lossless=True)
    options: dict[str, object] = {"lossless": True}
    if exif:
        options["exif"] = b"Exif\x00\x00" + token
    if xmp:
        options["xmp"] = b"<x:xmpmeta>" + token + b"</x:xmpmeta>"
    data = encode(image, "WEBP", **options)
    stripped = strip_metadata("webp", data)
    assert token not in stripped and b"EXIF" not in stripped[12:] and b"XMP " not in stripped
    assert np.array_equal(pixels(stripped), pixels(original))


PREFIXES = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF\x10\x00\x00\x00WEBP"}


@settings(max_examples=300, deadline=None)
@given(fmt=st.sampled_from(["png", "jpeg", "webp"]), tail=st.binary(max_size=300), prefixed=st.booleans())
def test_random_bytes_give_bytes_or_a_clear_error_never_a_crash(
    fmt: str, tail: bytes, prefixed: bool
) -> None:
    data = (PREFIXES[fmt] if prefixed else b"") + tail
    try:
        result = strip_metadata(fmt, data)
    except MalformedImage as exc:
        assert str(exc)
    else:
        assert isinstance(result, bytes)


@settings(max_examples=150, deadline=None)
@given(seed=seeds, cut=st.integers(1, 400), flip=st.integers(0, 10_000))
def test_damaged_real_files_give_bytes_or_a_clear_error(seed: int, cut: int, flip: int) -> None:
    for fmt, data in (
        ("png", encode(make_image((8, 8), "RGB", seed), "PNG")),
        ("jpeg", encode(make_image((8, 8), "RGB", seed), "JPEG")),
        ("webp", encode(make_image((8, 8), "RGB", seed), "WEBP")),
    ):
        damaged = bytearray(data[: max(1, len(data) - cut)])
        damaged[flip % len(damaged)] ^= 0x5A
        with contextlib.suppress(MalformedImage):  # anything else fails the test
            strip_metadata(fmt, bytes(damaged))
