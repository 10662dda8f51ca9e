"""A throwaway `redis-server` on 127.0.0.1, for `make cluster`, tests and benchmarks.

Shared rate limits are its only use, and a limit window is worth nothing after a restart, so
it keeps no snapshot and no append-only file: it lives in a temp dir and dies with the run.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cluster.postgres import free_port


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def redis_ping(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """A raw PING (no client library): used before `redis` is needed and by the launcher."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_redis(workdir: Path, *, port: int | None = None, detach: bool = False) -> RedisServer:
    """Start redis-server on a free loopback port (or `port`) and wait until it answers PING.

    `detach` puts it in its own session so it outlives the launcher (`make cluster`).
    """
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server not found (apt-get install redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = open(workdir / "redis.log", "ab")  # noqa: SIM115 - the child keeps writing to it
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=detach,
    )
    log.close()
    server = RedisServer(process, port, workdir)
    deadline = time.monotonic() + 15
    while not redis_ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = (workdir / "redis.log").read_text(errors="replace")[-500:]
            raise RuntimeError(f"redis-server did not start on 127.0.0.1:{port}: {tail}")
        time.sleep(0.02)
    return server


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    workdir = Path(tempfile.mkdtemp(prefix="storyloom-redis-"))
    server = start_redis(workdir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":  # a quick manual check: python -m cluster.redis
    with running_redis() as r:
        print(r.url, redis_ping(r.port))
