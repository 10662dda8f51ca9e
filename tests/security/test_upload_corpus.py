"""The upload corpus as tests (issue 12): every hostile or odd file is generated here, sent through
`POST /images`, and must get its expected status; refused files leave nothing stored, and stored
files carry no metadata."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from config import Settings
from tests.conftest import temp_files
from tests.imagegen import bomb_png, chunk, encode, jpeg, picture, png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def _with_chunk(data: bytes, kind: bytes, payload: bytes) -> bytes:
    """Insert a chunk right after IHDR."""
    ihdr_end = 8 + 12 + 13
    return data[:ihdr_end] + chunk(kind, payload) + data[ihdr_end:]


def tall_png() -> bytes:
    body = zlib.compress(b"\x00\x00" * 49_000_000, 9)
    ihdr = struct.pack(">IIBBBBB", 1, 49_000_000, 1, 0, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def ztxt_bomb() -> bytes:
    """A small PNG whose zTXt chunk inflates to 200 MB."""
    payload = b"Comment\x00\x00" + zlib.compress(b"A" * 200_000_000, 9)
    return _with_chunk(png(1), b"zTXt", payload)


def crc_broken() -> bytes:
    data = bytearray(png(2))
    data[8 + 8 + 13] ^= 0xFF  # IHDR's CRC
    return bytes(data)


def exif_gps_xmp_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 26.0), 3: "W", 4: (0.0, 7.0, 39.0)}  # GPSInfo
    base = encode(picture(3, (64, 48)), "JPEG", quality=90, exif=exif.tobytes())
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><secret>Home address</secret></x:xmpmeta>"
    app1 = b"\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp
    return base[:2] + app1 + base[2:]


def png_with_text_and_exif() -> bytes:
    data = _with_chunk(png(4), b"tEXt", b"Author\x00Jane Doe, 12 Secret Lane")
    return _with_chunk(data, b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta>GPS here</x:xmpmeta>")


def cmyk_jpeg() -> bytes:
    return encode(picture(5).convert("CMYK"), "JPEG", quality=90)


def png_16bit() -> bytes:
    array = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20).astype(np.uint16)
    image = Image.fromarray(array)
    assert image.mode.startswith("I;16")
    return encode(image, "PNG")


def animated_webp() -> bytes:
    frames = [picture(i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, format="WEBP", save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


def animated_png() -> bytes:
    frames = [picture(i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, format="PNG", save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


def palette_alpha_png() -> bytes:
    image = picture(6).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)


def zip_bytes() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("evil.html", "<script>alert(1)</script>")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64

REFUSED: list[tuple[str, Callable[[], bytes], int]] = [
    ("bomb-by-dimensions.png", lambda: bomb_png(20000, 20000), 413),
    ("one-by-49-million.png", tall_png, 413),
    ("ztxt-bomb.png", ztxt_bomb, 422),
    ("truncated.png", lambda: png(7, (300, 200))[:-200], 422),
    ("truncated.jpg", lambda: jpeg(7, (300, 200))[:-300], 422),
    ("crc-broken.png", crc_broken, 422),
    ("zero-byte.png", lambda: b"", 422),
    ("script.svg", lambda: SVG, 415),
    ("image.gif", lambda: encode(picture(1), "GIF"), 415),
    ("image.tiff", lambda: encode(picture(1), "TIFF"), 415),
    ("image.bmp", lambda: encode(picture(1), "BMP"), 415),
    ("image.heic", lambda: HEIC, 415),
    ("html.png", lambda: b"<html><script>alert(1)</script></html>", 415),
]

ACCEPTED: list[tuple[str, Callable[[], bytes]]] = [
    ("cmyk.jpg", cmyk_jpeg),
    ("16-bit.png", png_16bit),
    ("animated.webp", animated_webp),
    ("animated.png", animated_png),
    ("palette-alpha.png", palette_alpha_png),
    ("exif-gps-xmp.jpg", exif_gps_xmp_jpeg),
    ("text-xmp.png", png_with_text_and_exif),
    ("polyglot-html.png", lambda: png(8) + b"<html><script>alert(1)</script></html>"),
    ("polyglot-zip.png", lambda: png(9) + zip_bytes()),
    ("../../../etc/passwd.png", lambda: png(10)),
    ("nul\x00byte.png", lambda: png(11)),
]


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    from tests.conftest import make_settings

    return make_settings(data_dir, rate_limit_per_minute=0)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _send(client: TestClient, auth: dict[str, str], name: str, blob: bytes) -> object:
    return client.post("/images", headers=auth, files=[("files", (name, blob, "image/png"))])


@pytest.mark.parametrize(("name", "make", "status"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_files_get_their_status_and_leave_nothing(
    client: TestClient,
    auth: dict[str, str],
    settings: Settings,
    name: str,
    make: Callable[[], bytes],
    status: int,
) -> None:
    response = _send(client, auth, name, make())
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["field"] == "files" and error["code"]
    assert client.get("/images", headers=auth).json()["total"] == 0
    assert _files(settings.images_dir) == []
    assert temp_files(settings) == []


@pytest.mark.parametrize(("name", "make"), ACCEPTED, ids=[a[0].replace("\x00", "NUL") for a in ACCEPTED])
def test_odd_but_valid_files_are_stored_without_metadata_or_trailers(
    client: TestClient, auth: dict[str, str], settings: Settings, name: str, make: Callable[[], bytes]
) -> None:
    response = _send(client, auth, name, make())
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    stored = client.get("/images/0/file", headers=auth).content
    for secret in (b"SpyCam", b"Secret", b"xmpmeta", b"GPS", b"Jane Doe", b"<script", b"PK\x03\x04", b"Exif"):
        assert secret not in stored, (name, secret)
    with Image.open(io.BytesIO(stored)) as image:
        image.load()
        assert not image.getexif()
    # Files only ever land under images/, named by their hash, whatever the upload's name was.
    for path in _files(settings.data_dir):
        assert path.is_relative_to(settings.data_dir)
        assert "passwd" not in path.name and "\x00" not in path.name


def test_seventeen_files_are_refused_and_nothing_is_stored(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    files = [("files", (f"f{i}.png", png(i), "image/png")) for i in range(17)]
    response = client.post("/images", headers=auth, files=files)
    assert response.status_code == 413 and response.json()["error"]["field"] == "files"
    assert client.get("/images", headers=auth).json()["total"] == 0
    assert _files(settings.images_dir) == []
