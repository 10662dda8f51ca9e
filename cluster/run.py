"""`make cluster` / `make cluster-stop`: the scaled topology on one machine, without Docker.

    python -m cluster.run start [--dir .cluster] [--api-ports 8001,8002] [--workers 2]
    python -m cluster.run stop  [--dir .cluster]
    python -m cluster.run status [--dir .cluster]

`start` runs, all on 127.0.0.1: a PostgreSQL cluster in a temp dir (Debian's binaries),
`redis-server` (shared rate limits), moto's S3 server (the blob store), `manage.py migrate`
once, two API processes (uvicorn) and two job workers (`manage.py worker`), then prints where
each listens and an API key. Every pid, log and the settings they share live in the state
directory; `stop` ends them all by pid (and the PostgreSQL cluster by `pg_ctl`). Both are
idempotent: `start` on a running cluster prints it again, `stop` with nothing running says so.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cluster.postgres import PostgresCluster, pg_bindir, start_cluster
from cluster.processes import (
    ROOT,
    api_args,
    child_env,
    create_key_args,
    migrate_args,
    pid_alive,
    spawn,
    stop_pid,
    wait_healthy,
    worker_args,
)
from cluster.redis import redis_server_binary, start_redis
from cluster.s3 import LOCAL_CREDENTIALS, create_bucket, moto_available, start_s3

DEFAULT_DIR = ROOT / ".cluster"
DATABASE = "storyloom"
BUCKET = "storyloom"
WORKER_CONCURRENCY = 4


def cluster_settings(
    *, database_url: str, redis_url: str, s3_endpoint: str, secret_key: str, data_dir: Path
) -> dict[str, str]:
    """The settings every API and worker process of the cluster shares (compose.yaml sets the same
    names; tests/cluster/test_compose.py checks it). One SECRET_KEY for all: signed URLs and
    sessions made by one process are checked by another."""
    return {
        "DATABASE_URL": database_url,
        "MIGRATE_ON_START": "false",  # `manage.py migrate` ran once before anything started
        "JOB_QUEUE": "procrastinate",
        "API_RUNS_JOBS": "false",
        "RATE_LIMIT_STORAGE": redis_url,
        "STORAGE_URL": f"s3://{BUCKET}/data",
        "S3_ENDPOINT_URL": s3_endpoint,
        **LOCAL_CREDENTIALS,
        "SECRET_KEY": secret_key,
        "DATA_DIR": str(data_dir),
    }


@dataclass
class State:
    """What `stop` needs and `start` prints; written after each step so a half start is stoppable."""

    pids: dict[str, int] = field(default_factory=dict)
    listens: dict[str, str] = field(default_factory=dict)
    pg_datadir: str | None = None
    pg_base: str | None = None
    pg_bindir: str | None = None
    api_key: str | None = None

    @classmethod
    def load(cls, directory: Path) -> State | None:
        path = directory / "state.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "state.json").write_text(json.dumps(asdict(self), indent=2))


def missing_binaries() -> list[str]:
    """What is not installed, each with the command that installs it."""
    missing = []
    if pg_bindir() is None:
        missing.append("PostgreSQL server binaries (apt-get install postgresql)")
    if redis_server_binary() is None:
        missing.append("redis-server (apt-get install redis-server)")
    if not moto_available():
        missing.append("moto's S3 server (make install-dev)")
    return missing


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def running(state: State) -> dict[str, bool]:
    alive = {name: pid_alive(pid) for name, pid in state.pids.items()}
    if state.pg_datadir:
        alive["postgres"] = Path(state.pg_datadir, "postmaster.pid").exists()
    return alive


def print_summary(state: State, directory: Path) -> None:
    print("Storyloom cluster (all on 127.0.0.1):")
    for name, where in state.listens.items():
        pid = state.pids.get(name)
        print(f"  {name:<9} {where}" + (f"  (pid {pid})" if pid else ""))
    for name, pid in state.pids.items():
        if name not in state.listens:
            print(f"  {name:<9} pid {pid}")
    if state.api_key:
        print(f"API key (workspace 'default'): {state.api_key}")
    print(f"Logs and state: {directory}/  ·  stop everything: make cluster-stop")


def start(directory: Path, api_ports: list[int], workers: int) -> int:
    state = State.load(directory)
    if state is not None:
        alive = running(state)
        if alive and all(alive.values()):
            print("The cluster is already running.")
            print_summary(state, directory)
            return 0
        print("A previous cluster is partly running; stopping what is left of it first.")
        stop(directory)
    missing = missing_binaries()
    if missing:
        print("make cluster needs:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    busy = [port for port in api_ports if not port_free(port)]
    if busy:
        print(f"port(s) {busy} on 127.0.0.1 are taken: make cluster API_PORTS=…", file=sys.stderr)
        return 2
    directory.mkdir(parents=True, exist_ok=True)
    logs = directory / "logs"
    state = State()
    try:
        _start_all(directory, logs, state, api_ports, workers)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        state.save(directory)
        print(f"make cluster failed: {exc}\nLogs: {logs}/ — stopping what started.", file=sys.stderr)
        stop(directory, quiet=True)
        return 1
    print_summary(state, directory)
    return 0


def _start_all(directory: Path, logs: Path, state: State, api_ports: list[int], workers: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="storyloom-cluster-pg-"))
    base.chmod(0o755)
    state.pg_base = str(base)
    state.save(directory)
    pg: PostgresCluster = start_cluster(base)
    state.pg_datadir, state.pg_bindir = str(pg.datadir), str(pg.bindir)
    database_url = pg.create_database(DATABASE)
    state.listens["postgres"] = database_url
    state.save(directory)

    redis = start_redis(directory / "redis", detach=True)
    state.pids["redis"], state.listens["redis"] = redis.pid, redis.url
    state.save(directory)

    s3 = start_s3(directory / "s3", detach=True)
    state.pids["s3"], state.listens["s3"] = s3.pid, f"{s3.endpoint} (bucket {BUCKET})"
    state.save(directory)
    create_bucket(s3.endpoint, BUCKET)

    secret_file = directory / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    env = child_env(
        cluster_settings(
            database_url=database_url,
            redis_url=redis.url,
            s3_endpoint=s3.endpoint,
            secret_key=secret_file.read_text().strip(),
            data_dir=directory / "data",
        )
    )
    migrated = subprocess.run(
        [sys.executable, *migrate_args()], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    (logs / "migrate.log").parent.mkdir(parents=True, exist_ok=True)
    (logs / "migrate.log").write_text(migrated.stdout + migrated.stderr)
    if migrated.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed: {migrated.stderr.strip()[-500:]}")

    apis = []
    for i, port in enumerate(api_ports, start=1):
        env_i = {**env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
        process = spawn(api_args("127.0.0.1", port), env_i, logs / f"api{i}.log", detach=True)
        state.pids[f"api{i}"], state.listens[f"api{i}"] = process.pid, f"http://127.0.0.1:{port}"
        apis.append((process, f"http://127.0.0.1:{port}"))
        state.save(directory)
    worker_processes = []
    for i in range(1, workers + 1):
        process = spawn(worker_args(WORKER_CONCURRENCY), env, logs / f"worker{i}.log", detach=True)
        state.pids[f"worker{i}"] = process.pid
        worker_processes.append((f"worker{i}", process))
        state.save(directory)
    for process, url in apis:
        wait_healthy(url, process, timeout=120)
    for name, process in worker_processes:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: see {logs / (name + '.log')}")

    key = subprocess.run(
        [sys.executable, *create_key_args("cluster", "default")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    state.api_key = key.stdout.strip().splitlines()[-1]
    state.save(directory)


def stop(directory: Path, *, quiet: bool = False) -> int:
    state = State.load(directory)
    if state is None:
        if not quiet:
            print(f"No cluster is running (no {directory / 'state.json'}).")
        return 0
    # Clients of the database and the stores first, then the stores, then the database.
    order = sorted(state.pids, key=lambda name: (not name.startswith(("worker", "api")), name))
    for name in order:
        was_running = stop_pid(state.pids[name])
        if not quiet:
            print(f"  {name:<9} {'stopped' if was_running else 'was not running'}")
    if state.pg_datadir and state.pg_bindir:
        PostgresCluster(Path(state.pg_datadir), 0, Path(state.pg_bindir), "postgres").stop()
        if not quiet:
            print("  postgres  stopped")
    if state.pg_base:
        shutil.rmtree(state.pg_base, ignore_errors=True)
    (directory / "state.json").unlink(missing_ok=True)
    return 0


def status(directory: Path) -> int:
    state = State.load(directory)
    if state is None:
        print("No cluster is running.")
        return 1
    for name, alive in running(state).items():
        print(f"  {name:<9} {'running' if alive else 'NOT running'}")
    print_summary(state, directory)
    return 0 if all(running(state).values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state directory (pids, logs)")
    parser.add_argument("--api-ports", default="8001,8002", help="comma-separated, one API process each")
    parser.add_argument("--workers", type=int, default=2, help="job worker processes")
    args = parser.parse_args(argv)
    directory = args.dir.resolve()
    if args.command == "start":
        ports = [int(p) for p in args.api_ports.split(",") if p.strip()]
        return start(directory, ports, args.workers)
    if args.command == "stop":
        return stop(directory)
    return status(directory)


if __name__ == "__main__":
    sys.exit(main())
