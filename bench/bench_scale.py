"""Benchmark the scaled topology against the embedded one (issue 13): 100 scenes, 16 at a time.

Run: `.venv/bin/python -m bench.bench_scale` (about a minute; `--only embedded|scaled`).
The fake OpenAI upstream (1 s latency, 1024x1024 PNG answers) runs in its own process, as in
bench/bench_generate.py, whose driver parts this reuses (servers, key, references, scenes).

(a) embedded: one process on SQLite, the in-process pool, GENERATION_CONCURRENCY=16.
(b) scaled: a PostgreSQL cluster (cluster/postgres.py), one API process that runs no jobs
    (`API_RUNS_JOBS=false`, `JOB_QUEUE=procrastinate`) and two `manage.py worker --concurrency 8`
    processes: 16 upstream calls at once in all, in processes of their own.

Each: `--requests` simultaneous sync `POST /generate-image` (two reference images, n=1);
makespan until the last answer, against ceil(requests / 16) x latency; errors; and `GET /images`
latency, p50 with the app idle before the run and p50 while the run is going (a sequential
reader). Targets for (b): makespan <= 1.10 x ideal, zero errors, p50(during) <= 2 x p50(idle).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import httpx

from bench.bench_generate import (
    cpu_seconds,
    make_key,
    measure_concurrency,
    subprocess_server,
    upload_references,
)
from cluster.postgres import free_port, running_cluster
from cluster.processes import api_args, child_env, spawn, stop_process, wait_healthy, worker_args

MAKESPAN_TOLERANCE = 0.10
LISTING_SLOWDOWN = 2.0
IDLE_SAMPLES = 30


def scaled_env(data_dir: Path, database_url: str, upstream: str, concurrency: int) -> dict[str, str]:
    return child_env(
        {
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "MIGRATE_ON_START": "false",
            "JOB_QUEUE": "procrastinate",
            "API_RUNS_JOBS": "false",
            "SECRET_KEY": "bench-secret",
            "PUBLIC_BASE_URL": "http://127.0.0.1",
            "IMAGE_BACKEND": "openai",
            "OPENAI_API_KEY": "sk-bench-not-a-real-key",
            "OPENAI_BASE_URL": upstream,
            "GENERATION_CONCURRENCY": str(concurrency),
            "RATE_LIMIT_PER_MINUTE": "0",
            "GENERATIONS_PER_MINUTE": "0",
            "MAX_ACTIVE_JOBS_PER_WORKSPACE": "0",
            "LOG_LEVEL": os.environ.get("BENCH_APP_LOG_LEVEL", "WARNING"),
            "LOG_FORMAT": "text",
        },
        inherit=False,
    )


@contextmanager
def embedded(tmp: Path, upstream: str, concurrency: int) -> Iterator[tuple[str, str, list[int]]]:
    """(API URL, key, pids) of one process on SQLite: bench_generate's `app`."""
    data_dir = tmp / "embedded"
    key = make_key(data_dir)
    args = ("app", "--data-dir", str(data_dir), "--upstream", upstream, "--concurrency", str(concurrency))
    with subprocess_server(tmp / "embedded.log", *args) as (url, pid):
        yield url, key, [pid]


@contextmanager
def scaled(tmp: Path, upstream: str, concurrency: int, workers: int) -> Iterator[tuple[str, str, list[int]]]:
    """(API URL, key, pids) of one API process and `workers` workers on a fresh PostgreSQL."""
    with ExitStack() as stack:
        cluster = stack.enter_context(running_cluster())
        database_url = cluster.create_database("bench")
        data_dir = tmp / "scaled"
        key = make_key(data_dir, database_url)  # migrates: `manage.py migrate`'s work, done once
        env = scaled_env(data_dir, database_url, upstream, concurrency)
        port = free_port()
        api = spawn(api_args("127.0.0.1", port), env, tmp / "scaled-api.log", cwd=tmp)
        stack.callback(stop_process, api)
        per_worker = math.ceil(concurrency / workers)
        pids = [api.pid]
        for i in range(workers):
            worker = spawn(worker_args(per_worker), env, tmp / f"scaled-worker{i}.log", cwd=tmp)
            stack.callback(stop_process, worker)
            pids.append(worker.pid)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, api, timeout=120)
        yield url, key, pids


async def listing_latencies(
    url: str, headers: dict[str, str], stop: asyncio.Event | None, n: int
) -> list[float]:
    """`GET /images` one after another: `n` times, or until `stop` is set."""
    times: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        while (stop is None and len(times) < n) or (stop is not None and not stop.is_set()):
            started = time.perf_counter()
            response = await client.get("/images", params={"limit": 50})
            times.append(time.perf_counter() - started)
            response.raise_for_status()
    return times


async def run_with_reader(
    url: str, headers: dict[str, str], refs: list[int], requests: int
) -> tuple[float, list[int], list[float]]:
    stop = asyncio.Event()
    reader = asyncio.create_task(listing_latencies(url, headers, stop, 0))
    try:
        makespan, statuses = await measure_concurrency(url, headers, refs, requests)
    finally:
        stop.set()
    return makespan, statuses, await reader


def job_makespan(url: str, headers: dict[str, str], count: int) -> float:
    """First job accepted to last job finished, from the rows: the run without the waiters' polling."""
    from datetime import datetime

    rows = httpx.get(f"{url}/generations", headers=headers, params={"limit": count}, timeout=60).json()
    created = [datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")) for r in rows["items"]]
    finished = [datetime.fromisoformat(r["finished_at"].replace("Z", "+00:00")) for r in rows["items"]]
    return (max(finished) - min(created)).total_seconds()


def measure(
    name: str, topology: AbstractContextManager[tuple[str, str, list[int]]], args: argparse.Namespace
) -> bool:
    with topology as (url, key, pids):
        headers = {"Authorization": f"Bearer {key}"}
        refs = upload_references(url, headers)
        httpx.post(f"{url}/generate-image", headers=headers, json={"prompt": "warm-up"}, timeout=120)
        idle = asyncio.run(listing_latencies(url, headers, None, IDLE_SAMPLES))
        cpu_before = [cpu_seconds(pid) for pid in pids]
        makespan, statuses, during = asyncio.run(run_with_reader(url, headers, refs, args.requests))
        cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
        jobs_makespan = job_makespan(url, headers, args.requests)
    ideal = math.ceil(args.requests / args.concurrency) * args.latency
    errors = sum(1 for status in statuses if status != 200)
    idle_p50, during_p50 = statistics.median(idle) * 1000, statistics.median(during) * 1000
    ok = makespan <= ideal * (1 + MAKESPAN_TOLERANCE) and errors == 0
    ok = ok and during_p50 <= LISTING_SLOWDOWN * idle_p50
    print(
        f"{name}: {args.requests} scenes, 16 at a time: makespan {makespan:.2f} s vs ideal {ideal:.2f} s "
        f"({(makespan / ideal - 1) * 100:+.1f} %, target <= +{MAKESPAN_TOLERANCE * 100:.0f} %), "
        f"errors {errors} (statuses {sorted(set(statuses))})"
    )
    print(f"   jobs alone (first accepted to last finished, from the rows): {jobs_makespan:.2f} s")
    print(
        f"   GET /images p50: idle {idle_p50:.1f} ms ({len(idle)} samples), during the run "
        f"{during_p50:.1f} ms ({len(during)} samples; x{during_p50 / idle_p50:.2f}, target <= "
        f"x{LISTING_SLOWDOWN:.0f}); p90 during {statistics.quantiles(during, n=10)[-1] * 1000:.1f} ms"
    )
    print(f"   CPU during the run (s): {', '.join(f'{c:.2f}' for c in cpu)} (API first, then workers)")
    print(f"   load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"   {'PASS' if ok else 'FAIL'}", flush=True)
    return ok


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=["embedded", "scaled"])
    parser.add_argument("--logs", help="keep the processes' logs in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="storyloom-bench-scale-") as scratch:
        tmp = Path(args.logs).resolve() if args.logs else Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        with subprocess_server(tmp / "fake.log", "fake", "--latency", str(args.latency)) as (fake_url, _):
            upstream = f"{fake_url}/v1"
            print(f"upstream latency {args.latency:.2f} s, on {os.cpu_count()} cores", flush=True)
            results = []
            if args.only in (None, "embedded"):
                topology = embedded(tmp, upstream, args.concurrency)
                results.append(measure("(a) embedded, SQLite", topology, args))
            if args.only in (None, "scaled"):
                topology = scaled(tmp, upstream, args.concurrency, args.workers)
                name = f"(b) scaled, PostgreSQL, 1 API + {args.workers} workers"
                results.append(measure(name, topology, args))
    # The target is (b)'s; (a) is the baseline it is compared with.
    return 0 if results[-1] else 1


if __name__ == "__main__":
    sys.exit(main())
