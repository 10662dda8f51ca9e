"""`make cluster` / `make cluster-stop` for real: every process up and answering, then all gone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cluster.postgres import free_port
from cluster.processes import ROOT, pid_alive
from tests.cluster.conftest import needs_worker

pytestmark = [pytest.mark.multiprocess, needs_worker]


def launcher(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cluster.run", *args, "--dir", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_start_prints_where_each_listens_and_stop_ends_everything(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    ports = f"{free_port()},{free_port()}"
    try:
        started = launcher(directory, "start", "--api-ports", ports)
        assert started.returncode == 0, started.stdout + started.stderr
        state = json.loads((directory / "state.json").read_text())
        assert sorted(state["pids"]) == ["api1", "api2", "redis", "s3", "worker1", "worker2"]
        for name in ("postgres", "redis", "s3", "api1", "api2"):
            assert name in started.stdout
        assert state["api_key"] in started.stdout
        for port in ports.split(","):
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
            assert health["limiter"] == "redis"
            listed = httpx.get(
                f"http://127.0.0.1:{port}/images",
                headers={"Authorization": f"Bearer {state['api_key']}"},
                timeout=10,
            )
            assert listed.status_code == 200

        again = launcher(directory, "start", "--api-ports", ports)  # idempotent: prints it again
        assert again.returncode == 0 and "already running" in again.stdout
        assert json.loads((directory / "state.json").read_text())["pids"] == state["pids"]
    finally:
        stopped = launcher(directory, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not any(pid_alive(pid) for pid in state["pids"].values())
    assert not Path(state["pg_datadir"]).exists()
    assert "No cluster is running" in launcher(directory, "stop").stdout
