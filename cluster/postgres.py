"""A throwaway PostgreSQL cluster from Debian's binaries, for `make cluster`, tests and benchmarks.

`initdb` refuses to run as root, so when we are root the cluster belongs to the `postgres`
user (`runuser -u postgres --`), as CI runs it. The cluster listens on 127.0.0.1 only, on a
free port, with trust authentication (loopback, a temp dir, gone when the run ends).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def pg_bindir() -> Path | None:
    """Debian keeps the server binaries (initdb, pg_ctl, postgres) in a versioned folder."""
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for version in sorted(root.iterdir(), key=lambda p: p.name, reverse=True):
            if (version / "bin" / "initdb").exists():
                return version / "bin"
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PostgresCluster:
    datadir: Path
    port: int
    bindir: Path
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname=database, autocommit=True
        ) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]
            return str(cur.fetchall()) if cur.description else ""

    def stop(self) -> None:
        subprocess.run(
            _as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )


def start_cluster(base: Path, *, max_connections: int = 300) -> PostgresCluster:
    """initdb in `base`/pg and start it on a free loopback port (a few seconds)."""
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    datadir = base / "pg"
    datadir.mkdir(parents=True, exist_ok=True)
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(datadir, "postgres")
    subprocess.run(
        _as_owner(
            [str(bindir / "initdb"), "-D", str(datadir), "-U", user, "-A", "trust", "-E", "UTF8", "--no-sync"]
        ),
        capture_output=True,
        check=True,
    )
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={datadir}"
        f" -c max_connections={max_connections} -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off -c shared_buffers=64MB"
    )
    subprocess.run(
        _as_owner(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                options,
                "-l",
                str(datadir / "log"),
                "-w",
                "start",
            ]
        ),
        capture_output=True,
        check=True,
    )
    return PostgresCluster(datadir=datadir, port=port, bindir=bindir, user=user)


@contextlib.contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    base = Path(tempfile.mkdtemp(prefix="storyloom-pg-"))
    os.chmod(base, 0o755)
    cluster = start_cluster(base)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":  # a quick manual check: python -m cluster.postgres
    with running_cluster() as c:
        print(c.url(), c.psql("SELECT version()"))
        time.sleep(0)
