"""Bounded upload memory (issue 12, defect 1): shape limits from the header, a decode gate, band thumbnails.

The burst figure (8 concurrent worst-case uploads, peak and settled RSS) is a benchmark:
bench/bench_upload_memory.py, recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api_server import create_app
from errors import InvalidInput, PayloadTooLarge
from storage.decode_gate import SLOT_BYTES, DecodeGate, ServiceBusy
from storage.imaging import process_image
from tests.conftest import make_settings, new_key
from tests.imagegen import bomb_png, chunk, encode, png, upload

ROOT = Path(__file__).resolve().parents[2]
LIMITS = {"max_pixels": 50_000_000, "thumbnail_size": 512}


def tall_png(height: int = 49_000_000) -> bytes:
    """The report's ~95 kB 1-bit PNG of 1×49,000,000 pixels (each row: filter byte + one byte)."""
    body = zlib.compress(b"\x00\x00" * height, 9)
    ihdr = struct.pack(">IIBBBBB", 1, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_the_one_by_49_million_png_is_refused_from_its_header() -> None:
    data = tall_png()
    assert len(data) < 200_000
    with pytest.raises(PayloadTooLarge) as refused:
        process_image(data, **LIMITS)  # type: ignore[arg-type]
    assert refused.value.code == "image_too_large" and "12,000" in refused.value.message


@pytest.mark.parametrize(("size", "error"), [((12_001, 100), PayloadTooLarge), ((4000, 199), InvalidInput)])
def test_long_sides_and_extreme_aspect_ratios_are_refused(size: tuple[int, int], error: type) -> None:
    with pytest.raises(error):
        process_image(bomb_png(*size), **LIMITS)  # type: ignore[arg-type]
    # Within the limits the same kind of file is fine: 4000×200 is exactly 1:20.
    assert process_image(bomb_png(4000, 200), **LIMITS).width == 4000  # type: ignore[arg-type]


def test_the_side_and_ratio_are_settings(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "data", max_image_side=1000, max_image_aspect_ratio=2))
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {new_key(app)}"}
        side = upload(client, auth, bomb_png(1001, 600))
        assert side.status_code == 413 and side.json()["error"]["field"] == "files"
        ratio = upload(client, auth, png(1, (300, 100)))
        assert ratio.status_code == 422 and ratio.json()["error"]["code"] == "image_aspect_ratio"
        assert client.get("/images", headers=auth).json()["total"] == 0


def test_uploads_wait_for_a_decode_slot_and_get_503_when_none_frees_up(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "data", image_workers=1, image_wait_seconds=0.2))
    gate = app.state.runtime.decode_gate
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {new_key(app)}"}
        with gate.slot(0):  # another decode holds the only slot
            busy = upload(client, auth, png(1))
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"]["code"] == "busy" and int(busy.headers["retry-after"]) >= 1
        assert client.get("/images", headers=auth).json()["total"] == 0
        assert upload(client, auth, png(1)).status_code == 201  # slot free again


def test_the_gate_never_runs_more_than_its_slots_and_a_huge_decode_runs_alone() -> None:
    gate = DecodeGate(3)
    running, most, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def work(cost: int) -> None:
        with gate.slot(30, cost):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            release.wait(0.05)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=work, args=(0,)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 3
    assert gate.weight(10 * SLOT_BYTES) == 3 and gate.weight(1) == 1
    with gate.slot(0, 10 * SLOT_BYTES), pytest.raises(ServiceBusy), gate.slot(0):
        pass
    assert gate.active == 0


PROBE = """
import resource, sys
sys.path.insert(0, {root!r})
from storage.imaging import process_image
data = open({path!r}, "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = process_image(data, max_pixels=50_000_000, thumbnail_size=512)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024, result.width)
"""


def test_thumbnailing_does_not_copy_the_full_size_image(tmp_path: Path) -> None:
    """A 5000×5000 RGBA PNG decodes to 100 MB; making its thumbnail must not add another 100 MB."""
    path = tmp_path / "big.png"
    image = Image.new("RGBA", (5000, 5000), (10, 200, 30, 128))
    image.paste((250, 0, 0, 255), (0, 0, 5000, 700))
    path.write_bytes(encode(image, "PNG"))
    del image
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(root=str(ROOT), path=str(path))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    grown_mb, width = int(out[0]), int(out[1])
    assert width == 5000
    assert grown_mb < 160, f"processing grew the peak by {grown_mb} MB for 100 MB of pixels"
