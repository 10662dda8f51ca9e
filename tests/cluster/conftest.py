"""Real processes for the scale-out tests (issue 13): API servers (and workers) as subprocesses.

Each process is started with the command line `make cluster` uses (cluster/processes.py), a
bare environment holding only the settings given (never the developer's `.env`: the working
directory is the test's temp dir), and is stopped by the fixture, whatever the test did.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from accounts.service import create_key
from cluster.postgres import free_port
from cluster.processes import api_args, child_env, spawn, stop_process, wait_healthy, worker_args
from storage.db import open_database, write_session
from tests.conftest import _schema

SECRET = "one-secret-for-every-process"
ROOT = Path(__file__).resolve().parents[2]

# The "jobs" part of issue 13 brings `manage.py worker`; until that branch is in, the tests
# that need workers say so instead of failing.
needs_worker = pytest.mark.skipif(
    'add_parser("worker"' not in (ROOT / "manage.py").read_text(),
    reason="needs `manage.py worker` (the procrastinate worker of issue 13's jobs part)",
)


@dataclass
class Proc:
    process: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    def client(self, key: str) -> httpx.Client:
        assert self.url is not None
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self) -> None:
        """Starting several processes first and then waiting for each overlaps their start-up."""
        try:
            wait_healthy(self.url or "", self.process, timeout=120)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log_text()[-3000:]}") from None


def base_settings(data_dir: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    """What every process of one test shares: one database, one data dir, one SECRET_KEY."""
    settings = {
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": SECRET,
        "PUBLIC_BASE_URL": "http://127.0.0.1",
        "IMAGE_BACKEND": "draft",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        **extra,
    }
    if database_url:
        settings["DATABASE_URL"] = database_url
    return settings


def prepare_database(data_dir: Path, database_url: str | None) -> None:
    """Migrate before any process starts (the explicit step of a multi-process deployment)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if database_url is None and _schema:
        (data_dir / "storyloom.db").write_bytes(_schema[0].read_bytes())
    open_database(database_url or f"sqlite:///{data_dir / 'storyloom.db'}").dispose()


def make_key(database_url: str | None, data_dir: Path, workspace: str = "alpha") -> str:
    engine = open_database(database_url or f"sqlite:///{data_dir / 'storyloom.db'}")
    try:
        with write_session(engine) as session:
            _, key = create_key(session, name="multiprocess", workspace=workspace)
    finally:
        engine.dispose()
    return key


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[Callable[[dict[str, str]], Proc], Callable[..., Proc]]]:
    """(start_api(settings), start_worker(settings, concurrency=…)); every one is stopped at the end."""
    started: list[Proc] = []

    def start_api(settings: dict[str, str], *, wait: bool = True) -> Proc:
        port = free_port()
        log = tmp_path / f"api-{len(started)}.log"
        process = spawn(api_args("127.0.0.1", port), child_env(settings, inherit=False), log, cwd=tmp_path)
        proc = Proc(process, log, f"http://127.0.0.1:{port}")
        started.append(proc)
        if wait:
            proc.wait_healthy()
        return proc

    def start_worker(settings: dict[str, str], concurrency: int = 4) -> Proc:
        log = tmp_path / f"worker-{len(started)}.log"
        process = spawn(worker_args(concurrency), child_env(settings, inherit=False), log, cwd=tmp_path)
        proc = Proc(process, log)
        started.append(proc)
        return proc

    yield start_api, start_worker
    for proc in started:
        stop_process(proc.process)
