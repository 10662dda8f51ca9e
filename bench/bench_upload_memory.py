"""Memory of worst-case uploads: peak and settled RSS of a real server process (issue 12, defect 1).

Run: `.venv/bin/python -m bench.bench_upload_memory` (about a minute on 2 cores; options
`--uploads`, `--kind`). A real `uvicorn api_server:app` runs in a child process on 127.0.0.1
with its own data directory; the bench sends `--uploads` concurrent `POST /images`, each one
worst-case file under the limits (default: a 7071×7071 RGBA PNG — 50 M pixels at 4 bytes each,
~200 kB on the wire because it is flat), and reads the server's VmRSS / VmHWM from /proc.
Targets: peak RSS < 1.5 GB during the burst, back under 400 MB within 60 s after it.
`--kind webp` sends that picture as a lossless WebP (the costliest decoder), `--kind tall` the
1×49,000,000 1-bit PNG of the original report (refused from its header now).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def peak_mb(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


def flat_rgba_png(side: int) -> bytes:
    """A side×side RGBA PNG with a few coloured stripes: tiny on disk, `side²×4` bytes decoded."""
    stripe = Image.new("RGBA", (side, 64), (200, 120, 40, 255))
    image = Image.new("RGBA", (side, side), (30, 60, 90, 200))
    for y in range(0, side, side // 8):
        image.paste(stripe, (0, y))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=9)
    return out.getvalue()


def flat_rgba_webp() -> bytes:
    """The same picture as a lossless WebP: Pillow's WebP decoder holds ~4 copies of the pixels."""
    out = io.BytesIO()
    Image.open(io.BytesIO(flat_rgba_png(7071))).save(out, format="WEBP", lossless=True, quality=0, method=0)
    return out.getvalue()


def tall_1bit_png(height: int = 49_000_000) -> bytes:
    """The report's 1×49M 1-bit PNG (~95 kB)."""
    import struct

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    compressor = zlib.compressobj(9)
    body = compressor.compress(b"\x00\x00" * height) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", 1, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=8)
    parser.add_argument("--kind", choices=["rgba", "webp", "tall"], default="rgba")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait for RSS to fall")
    args = parser.parse_args()

    blob = {"rgba": lambda: flat_rgba_png(7071), "webp": flat_rgba_webp, "tall": tall_1bit_png}[args.kind]()
    print(f"file: {args.kind}, {len(blob) / 1024:.0f} kB; {args.uploads} concurrent uploads")
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATA_DIR": str(Path(tmp) / "data"),
            "SECRET_KEY": "bench",
            "RATE_LIMIT_PER_MINUTE": "0",
            "IMAGE_BACKEND": "draft",
            "LOG_LEVEL": "WARNING",
        }
        key = (
            subprocess.run(
                [sys.executable, "manage.py", "create-key", "--workspace", "bench", "--name", "bench"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api_server:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("server did not start")
                time.sleep(0.2)
            idle = rss_mb(server.pid)
            print(f"server RSS before: {idle:.0f} MB")
            statuses: list[int] = []
            samples: list[float] = []
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    samples.append(rss_mb(server.pid))
                    done.wait(0.05)

            def send(i: int) -> None:
                files = {"files": (f"worst-{i}.png", blob, "image/png")}
                response = httpx.post(
                    f"{base}/images", headers={"Authorization": f"Bearer {key}"}, files=files, timeout=600
                )
                statuses.append(response.status_code)

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.monotonic()
            threads = [threading.Thread(target=send, args=(i,)) for i in range(args.uploads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            done.set()
            sampler.join()
            peak = peak_mb(server.pid)
            after = rss_mb(server.pid)
            print(f"statuses: {sorted(statuses)} in {elapsed:.1f} s")
            print(f"peak RSS (VmHWM): {peak:.0f} MB  (sampled max {max(samples):.0f} MB); target < 1536 MB")
            print(f"RSS right after the burst: {after:.0f} MB")
            settle_deadline = time.monotonic() + args.settle
            settled_at = None
            while time.monotonic() < settle_deadline:
                if rss_mb(server.pid) < 400:
                    settled_at = time.monotonic() - (settle_deadline - args.settle)
                    break
                time.sleep(0.5)
            final = rss_mb(server.pid)
            when = (
                f"after {settled_at:.1f} s" if settled_at is not None else f"not within {args.settle:.0f} s"
            )
            print(f"RSS settled: {final:.0f} MB ({when}); target < 400 MB within 60 s")
            ok = peak < 1536 and settled_at is not None
            print("PASS" if ok else "FAIL")
            return 0 if ok else 1
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
