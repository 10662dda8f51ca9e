"""The scaled topology's own processes: their command lines, and starting/stopping them.

The command lines are defined once here: `make cluster` (cluster/run.py), the multi-process
tests, the benchmark and compose.yaml (checked by tests/cluster/test_compose.py) all run these.
Processes start with `cwd` outside the checkout on purpose when the caller says so, so that a
developer's `.env` never leaks into a test's settings.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def api_args(host: str, port: int, root: Path | str = ROOT) -> list[str]:
    """One API process (after the interpreter): uvicorn, one worker process, no access log
    (the request log middleware writes one JSON line per request)."""
    return [
        "-m",
        "uvicorn",
        "--app-dir",
        str(root),
        "api_server:app",
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
    ]


def worker_args(concurrency: int, root: Path | str = ROOT) -> list[str]:
    """One job worker process (the "jobs" part of issue 13: `manage.py worker`)."""
    return [str(Path(root) / "manage.py"), "worker", "--concurrency", str(concurrency)]


def migrate_args(root: Path | str = ROOT) -> list[str]:
    """The explicit migration step of a multi-process deployment, run once before the others."""
    return [str(Path(root) / "manage.py"), "migrate"]


def create_key_args(name: str, workspace: str, root: Path | str = ROOT) -> list[str]:
    return [str(Path(root) / "manage.py"), "create-key", "--name", name, "--workspace", workspace]


def child_env(settings: Mapping[str, str], *, inherit: bool = True) -> dict[str, str]:
    """The environment of a child: ours (or a bare PATH) plus `settings`, which win."""
    base = dict(os.environ) if inherit else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return {**base, **settings}


def spawn(
    args: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    detach: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `python ARGS` with stdout+stderr appended to `log_path`.

    `detach` gives it its own session so it outlives the launcher (`make cluster`); it is then
    ended by pid (`stop_pid`), never by name.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, *args],
            env=dict(env),
            cwd=cwd or ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )


def wait_healthy(
    base_url: str, process: subprocess.Popen[bytes] | None = None, *, timeout: float = 60.0
) -> None:
    """Poll `GET /health` until it answers (any status: 503 still means the server is up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{base_url}: the process exited with {process.returncode} before answering")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base_url} did not answer /health within {timeout:.0f} s")
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, *, timeout: float = 15.0) -> bool:
    """SIGTERM one process (a graceful stop: uvicorn and the worker finish cleanly), SIGKILL after
    `timeout`. Returns whether it was running."""
    if not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:  # reap it if it is our child, else poll for it to go
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            if not pid_alive(pid):
                return True
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return True


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
