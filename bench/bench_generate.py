"""Benchmark POST /generate-image against the fake OpenAI upstream with a fixed 1 s latency.

Run: `.venv/bin/python -m bench.bench_generate` (about 30 s). Three processes, so the server's
peak RSS is its own: the fake upstream (tests/fake_openai.py, 1024x1024 PNGs after `--latency`
seconds) under uvicorn, the Storyloom app under uvicorn (IMAGE_BACKEND=openai pointed at the
fake), and this driver.

1. Overhead: `--samples` sequential sync requests with two reference images (the multipart
   edit path), n=1; p50(end to end) minus the upstream latency. Target <= 60 ms.
2. Concurrency: `--requests` simultaneous requests with GENERATION_CONCURRENCY=`--concurrency`;
   makespan against ceil(requests / concurrency) x latency (target within 15 %), errors (target
   0) and the server's peak RSS, VmHWM from /proc (target <= 400 MB).

The sub-commands `fake` and `app` are the two servers; each prints `PORT <n>` when listening.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

OVERHEAD_TARGET_MS = 60.0
MAKESPAN_TOLERANCE = 0.15
RSS_TARGET_MB = 400.0


def _listen() -> socket.socket:
    # IPPROTO_TCP so asyncio turns on TCP_NODELAY for accepted connections (see tests/servers.py).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _serve(app: object) -> None:
    sock = _listen()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=2048)
    uvicorn.Server(config).run(sockets=[sock])


def run_fake(latency: float) -> None:
    from tests.fake_openai import FakeOpenAI

    _serve(FakeOpenAI(latency=latency).app)


def run_app(data_dir: Path, upstream: str, concurrency: int) -> None:
    from api_server import create_app
    from config import Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        secret_key="bench-secret",
        public_base_url="http://127.0.0.1",
        image_backend="openai",
        openai_api_key="sk-bench-not-a-real-key",
        openai_base_url=upstream,
        generation_concurrency=concurrency,
        rate_limit_per_minute=0,
        generations_per_minute=0,
        max_active_jobs_per_workspace=0,
        log_level=os.environ.get("BENCH_APP_LOG_LEVEL", "WARNING"),
        log_format="text",
    )
    _serve(create_app(settings))


@contextmanager
def subprocess_server(
    log: Path, *args: str, module: str = "bench.bench_generate"
) -> Iterator[tuple[str, int]]:
    """Start `python -m <module> <args>`, stderr to `log`; yields (base URL, pid)."""
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server {args[0]} did not start: {line!r}")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        deadline = time.monotonic() + 30
        while True:  # PORT is printed before uvicorn listens: wait until it answers
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def cpu_seconds(pid: int, part: str = "both") -> float:
    """User and/or system CPU time of a process so far (from /proc/<pid>/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    ticks = {"user": user, "system": system, "both": user + system}[part]
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def make_key(data_dir: Path, database_url: str | None = None) -> str:
    """A key in workspace `bench`, made on the app's database (migrating it first if new)."""
    from accounts.service import create_key
    from storage.db import open_database, write_session

    engine = open_database(database_url or f"sqlite:///{data_dir / 'storyloom.db'}")
    with write_session(engine) as session:
        _, key = create_key(session, name="bench", workspace="bench")
    engine.dispose()
    return key


def upload_references(url: str, headers: dict[str, str]) -> list[int]:
    from tests.imagegen import png

    files = [("files", (f"ref{i}.png", png(i, (1024, 1024)), "image/png")) for i in (1, 2)]
    response = httpx.post(f"{url}/images", headers=headers, files=files, timeout=60)
    response.raise_for_status()
    return [image["number"] for image in response.json()["images"]]


def scene(index: int, references: list[int]) -> dict[str, object]:
    return {
        "prompt": f"Scene {index}: Mia opens an umbrella",
        "reference_images": references,
        "size": "1024x1024",
    }


def measure_overhead(url: str, headers: dict[str, str], refs: list[int], samples: int) -> list[float]:
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        client.post("/generate-image", json=scene(-1, refs)).raise_for_status()  # warm-up
        times = []
        for index in range(samples):
            started = time.perf_counter()
            response = client.post("/generate-image", json=scene(index, refs))
            times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"overhead request failed: {response.status_code} {response.text}")
    return times


async def measure_concurrency(
    url: str, headers: dict[str, str], refs: list[int], requests: int
) -> tuple[float, list[int]]:
    limits = httpx.Limits(max_connections=requests + 10, max_keepalive_connections=requests + 10)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:

        async def one(index: int) -> int:
            try:
                response = await client.post("/generate-image", json=scene(1000 + index, refs))
            except httpx.HTTPError:
                return 0
            return response.status_code

        started = time.perf_counter()
        statuses = await asyncio.gather(*(one(i) for i in range(requests)))
        return time.perf_counter() - started, list(statuses)


def drive(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="storyloom-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        logs = Path(args.logs) if args.logs else Path(tmp)
        headers = {"Authorization": f"Bearer {make_key(data_dir)}"}
        with subprocess_server(logs / "fake.log", "fake", "--latency", str(args.latency)) as (
            fake_url,
            fake_pid,
        ):
            app_args = ("app", "--data-dir", str(data_dir), "--upstream", f"{fake_url}/v1")
            app_args += ("--concurrency", str(args.concurrency))
            with subprocess_server(logs / "app.log", *app_args) as (url, pid):
                refs = upload_references(url, headers)
                times = measure_overhead(url, headers, refs, args.samples)
                sys_before = cpu_seconds(pid, "system")
                cpu_before = cpu_seconds(pid), cpu_seconds(fake_pid), time.process_time()
                makespan, statuses = asyncio.run(measure_concurrency(url, headers, refs, args.requests))
                cpu_after = cpu_seconds(pid), cpu_seconds(fake_pid), time.process_time()
                app_sys = cpu_seconds(pid, "system") - sys_before
                rss = peak_rss_mb(pid)
    app_cpu, fake_cpu, driver_cpu = (
        after - before for after, before in zip(cpu_after, cpu_before, strict=True)
    )

    p50_ms = statistics.median(times) * 1000
    overhead_ms = p50_ms - args.latency * 1000
    ideal = math.ceil(args.requests / args.concurrency) * args.latency
    errors = sum(1 for status in statuses if status != 200)
    ok = overhead_ms <= OVERHEAD_TARGET_MS and makespan <= ideal * (1 + MAKESPAN_TOLERANCE) and errors == 0
    ok = ok and rss <= RSS_TARGET_MB
    print(f"upstream latency {args.latency:.2f} s, 1024x1024 PNG answers, references {refs}")
    print(
        f"1. overhead: p50 {p50_ms:.1f} ms end to end over {args.samples} sync requests "
        f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}) -> overhead {overhead_ms:.1f} ms "
        f"(target <= {OVERHEAD_TARGET_MS:.0f} ms)"
    )
    print(
        f"2. concurrency: {args.requests} requests, GENERATION_CONCURRENCY={args.concurrency}: makespan "
        f"{makespan:.2f} s vs ideal {ideal:.2f} s ({(makespan / ideal - 1) * 100:+.1f} %, target within "
        f"{MAKESPAN_TOLERANCE * 100:.0f} %), errors {errors} (statuses {sorted(set(statuses))})"
    )
    print(f"   server peak RSS (VmHWM) {rss:.0f} MB (target <= {RSS_TARGET_MB:.0f} MB)")
    print(
        f"   CPU during phase 2: app {app_cpu:.2f} s ({app_sys:.2f} s of it in the kernel), "
        f"fake upstream {fake_cpu:.2f} s, driver {driver_cpu:.2f} s, on {os.cpu_count()} cores"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    fake = sub.add_parser("fake")
    fake.add_argument("--latency", type=float, default=1.0)
    app = sub.add_parser("app")
    app.add_argument("--data-dir", type=Path, required=True)
    app.add_argument("--upstream", required=True)
    app.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--logs", help="keep the two servers' stderr in this folder")
    args = parser.parse_args()
    if args.command == "fake":
        run_fake(args.latency)
        return 0
    if args.command == "app":
        run_app(args.data_dir, args.upstream, args.concurrency)
        return 0
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
