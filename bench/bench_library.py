"""Benchmark the image library at 100,000 images: list and similar p50, and the upload cost.

Run: `.venv/bin/python -m bench.bench_library` (about a minute on 2 cores). Rows are seeded
with one bulk INSERT and random pHashes (list/similar never open files). The upload is timed
against a floor measured in the same run on the same images: one Pillow decode + thumbnail +
WebP save, the least any upload that makes a thumbnail must do.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from accounts.service import create_key
from api_server import create_app
from config import Settings
from storage.db import write_session


def seed(app, workspace: str, count: int) -> str:  # type: ignore[no-untyped-def]
    with write_session(app.state.runtime.engine) as session:
        row, key = create_key(session, name="bench", workspace=workspace)
        workspace_id = row.workspace_id
    rng = random.Random(7)
    rows = []
    for number in range(count):
        phash = rng.getrandbits(64)
        signed = phash - (1 << 64) if phash >= 1 << 63 else phash
        sha = f"{rng.getrandbits(256):064x}"
        rows.append(
            {
                "w": workspace_id,
                "n": number,
                "sha": sha,
                "ph": f"{phash:016x}",
                "pi": signed,
                "fk": f"originals/{sha[:2]}/{sha[2:4]}/{sha}.png",
                "tk": f"thumbs/{sha[:2]}/{sha[2:4]}/{sha}.webp",
            }
        )
    with write_session(app.state.runtime.engine) as session:
        session.execute(
            text(
                "INSERT INTO image (workspace_id, number, kind, format, width, height, bytes, sha256, phash,"
                " phash_int, file_key, thumb_key, created_at) VALUES (:w, :n, 'upload', 'png', 1024, 1024,"
                " 100000, :sha, :ph, :pi, :fk, :tk, CURRENT_TIMESTAMP)"
            ),
            rows,
        )
        session.execute(
            text(
                "UPDATE workspace SET next_image_number = :c, library_version = library_version + 1"
                " WHERE id = :w"
            ),
            {"c": count, "w": workspace_id},
        )
    return key


def p50_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def photo_like_jpeg(seed_value: int, size: int = 2048) -> bytes:
    """Smooth gradients plus grain: compresses like a photo (a few hundred kB), not like noise."""
    rng = np.random.default_rng(seed_value)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    channels = [np.sin(x * rng.uniform(2, 9) + y * rng.uniform(2, 9) + rng.uniform(0, 6)) for _ in range(3)]
    base = (np.stack(channels, axis=-1) * 100 + 128).astype(np.float32)
    grain = rng.normal(0, 6, size=base.shape).astype(np.float32)
    pixels = np.clip(base + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def floor_once(data: bytes, thumb: int) -> None:
    image = Image.open(io.BytesIO(data))
    image.load()
    image.thumbnail((thumb, thumb))
    image.save(io.BytesIO(), "WEBP", quality=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--uploads", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=Path(tmp) / "data",
            secret_key="bench",  # type: ignore[arg-type]
            public_base_url="http://bench",
            rate_limit_per_minute=0,
            log_level="WARNING",
        )
        app = create_app(settings)
        with TestClient(app) as client:
            start = time.perf_counter()
            key = seed(app, "bench", args.images)
            print(f"seeded {args.images:,} images in {time.perf_counter() - start:.1f} s")
            auth = {"Authorization": f"Bearer {key}"}
            rng = random.Random(1)

            def list_page() -> None:
                assert client.get("/images?limit=50", headers=auth).status_code == 200

            def similar() -> None:
                number = rng.randrange(args.images)
                response = client.get(f"/images/{number}/similar?max_distance=10", headers=auth)
                assert response.status_code == 200

            for _ in range(5):
                list_page()
                similar()
            list_ms = p50_ms(list_page, args.runs)
            similar_ms = p50_ms(similar, args.runs)

            jpegs = [photo_like_jpeg(i) for i in range(args.uploads)]
            floor_once(jpegs[0], settings.thumbnail_size)  # warm Pillow's codecs
            floor = statistics.median(
                p50_ms(lambda d=data: floor_once(d, settings.thumbnail_size), 3) for data in jpegs
            )
            upload_times = []
            for data in jpegs:
                files = [("files", ("photo.jpg", data, "image/jpeg"))]
                start = time.perf_counter()
                response = client.post("/images", headers=auth, files=files)
                upload_times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 201, response.text
            upload = statistics.median(upload_times)

    size_kb = statistics.median(len(d) for d in jpegs) / 1024
    print(f"GET /images?limit=50            p50 {list_ms:6.2f} ms   (target < 20 ms, {args.runs} runs)")
    print(f"GET /images/{{n}}/similar         p50 {similar_ms:6.2f} ms   (target < 20 ms, {args.runs} runs)")
    print(f"floor: decode+thumbnail+save   p50 {floor:6.1f} ms   (2048×2048 JPEG, ~{size_kb:.0f} kB)")
    print(
        f"POST /images (one such JPEG)   p50 {upload:6.1f} ms   = {upload / floor:.2f}× floor (target ≤ 2×)"
    )


if __name__ == "__main__":
    main()
