"""Benchmark what auth + rate limiting add to a cheap request: `GET /characters`, target ≤ 1 ms.

Run: `.venv/bin/python -m bench.bench_ratelimit` (about 20 s). In one run:

1. Through the whole app (every middleware, routing, dependencies, the sync route in the
   thread pool, JSON), driven by httpx's ASGI transport, two apps on the same code: the
   limiter on (RATE_LIMIT_PER_MINUTE=60, memory://) and off (0). Requests alternate between
   the two, so drift in the machine hits both alike; p50 of each and the difference.
   Not over loopback TCP: in the sandbox this was written in, every uvicorn round trip took
   ~44 ms even for a bare FastAPI app (a socket-level delay, not the app), which would drown
   a sub-millisecond difference.
   Requests rotate over enough keys that no key passes 60 a minute: every request is admitted
   and the moving window holds a realistic ≤ 60 entries per key.
2. In process, the two steps themselves, p50 of each: `authenticate()` (a fresh session and one
   indexed SELECT, as the dependency does) and `KeyRateLimiter.check()`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlmodel import Session

from accounts.service import authenticate, create_key
from api_server import create_app
from config import Settings
from services.ratelimit import KeyRateLimiter
from storage.db import open_database, write_session

PER_MINUTE = 60


def make_app(data_dir: Path, per_minute: int):  # type: ignore[no-untyped-def]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        secret_key="bench",
        rate_limit_per_minute=per_minute,
        log_level="WARNING",
    )
    return create_app(settings)


def keys_for(app, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    with write_session(app.state.runtime.engine) as session:
        return [create_key(session, name=f"bench{i}", workspace="bench")[1] for i in range(count)]


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


async def _asgi_samples(requests: int, warmup: int = 50) -> dict[str, list[float]]:
    keys_needed = (requests + warmup) // (PER_MINUTE - 10) + 1
    with tempfile.TemporaryDirectory() as tmp:
        apps = {"on": make_app(Path(tmp) / "on", PER_MINUTE), "off": make_app(Path(tmp) / "off", 0)}
        clients, keys = {}, {}
        for label, app in apps.items():
            app.state.runtime.engine = open_database(app.state.runtime.settings.resolved_database_url)
            keys[label] = keys_for(app, keys_needed)
            clients[label] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            )
        samples: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(requests + warmup):  # the first rounds warm up, not recorded
            for label in ("on", "off") if i % 2 else ("off", "on"):  # neither always goes first
                headers = {"Authorization": f"Bearer {keys[label][i % len(keys[label])]}"}
                start = time.perf_counter()
                response = await clients[label].get("/characters", headers=headers)
                elapsed = time.perf_counter() - start
                assert response.status_code == 200, response.text
                if i >= warmup:
                    samples[label].append(elapsed)
        for label, app in apps.items():
            await clients[label].aclose()
            app.state.runtime.engine.dispose()
    return samples


def asgi_run(requests: int) -> dict[str, float]:
    samples = asyncio.run(_asgi_samples(requests))
    on, off = p50_ms(samples["on"]), p50_ms(samples["off"])
    return {"http_p50_on_ms": on, "http_p50_off_ms": off, "http_added_ms": on - off}


def inprocess_run(repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), PER_MINUTE)
        app.state.runtime.engine = open_database(app.state.runtime.settings.resolved_database_url)
        key = keys_for(app, 1)[0]

        def auth() -> None:
            with Session(app.state.runtime.engine, expire_on_commit=False) as session:
                authenticate(session, key)

        limiter = KeyRateLimiter({"api": 10**9}, "memory://")
        key_ids = iter(range(10**9))
        # A fresh key id every `PER_MINUTE` calls keeps each window at a realistic size.
        state = {"n": 0, "id": next(key_ids)}

        def check() -> None:
            state["n"] += 1
            if state["n"] % PER_MINUTE == 0:
                state["id"] = next(key_ids)
            limiter.check(state["id"], "api")

        timed(auth, 200)
        auth_p50 = p50_ms(timed(auth, repeat))
        check_p50 = p50_ms(timed(check, repeat))
        app.state.runtime.engine.dispose()
    return {"auth_p50_ms": auth_p50, "check_p50_ms": check_p50, "auth_plus_check_ms": auth_p50 + check_p50}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="HTTP requests per app")
    parser.add_argument("--repeat", type=int, default=5000, help="in-process calls per step")
    args = parser.parse_args()
    results = {**asgi_run(args.requests), **inprocess_run(args.repeat)}
    print(f"GET /characters through the whole ASGI app, {args.requests} requests per app, p50:")
    print(f"  limiter on  {results['http_p50_on_ms']:.3f} ms")
    print(f"  limiter off {results['http_p50_off_ms']:.3f} ms")
    print(f"  added       {results['http_added_ms']:.3f} ms (target <= 1 ms)")
    print(f"In process, {args.repeat} calls each, p50:")
    print(f"  authenticate()         {results['auth_p50_ms']:.3f} ms")
    print(f"  KeyRateLimiter.check() {results['check_p50_ms']:.3f} ms")
    print(f"  auth + rate limit      {results['auth_plus_check_ms']:.3f} ms (target <= 1 ms)")


if __name__ == "__main__":
    main()
