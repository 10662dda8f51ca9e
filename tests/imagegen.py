"""Test images built in code with Pillow (no binary fixtures) and small upload helpers."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image


def picture(seed: int = 0, size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A blocky random picture: different seeds give perceptually different images."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST)


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    return encode(picture(seed, size), "PNG")


def jpeg(seed: int = 0, size: tuple[int, int] = (64, 48), **options: Any) -> bytes:
    return encode(picture(seed, size), "JPEG", quality=90, **options)


def webp(seed: int = 0, size: tuple[int, int] = (64, 48), **options: Any) -> bytes:
    return encode(picture(seed, size), "WEBP", **options)


def noise_png(size: tuple[int, int] = (200, 200)) -> bytes:
    """Incompressible pixels: a file of a predictable, large size."""
    data = np.random.default_rng(42).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return encode(Image.fromarray(data), "PNG")


def near_copy(seed: int = 0) -> bytes:
    """Same picture, slightly brighter: different bytes, nearly the same perceptual hash."""
    image = picture(seed).point(lambda v: min(255, v + 3))
    return encode(image, "PNG")


def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid, tiny (tens of kB) 1-bit PNG that decodes to width×height pixels."""
    row = b"\x00" + bytes((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def upload(
    client: TestClient, headers: dict[str, str], *blobs: bytes, names: list[str] | None = None, **form: Any
) -> Any:
    names = names or [f"img{i}.png" for i in range(len(blobs))]
    files = [("files", (name, blob, "image/png")) for name, blob in zip(names, blobs, strict=True)]
    return client.post("/images", headers=headers, files=files, data=form or None)
