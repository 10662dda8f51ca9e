"""Start-up migrations under a lock: four processes migrating one fresh database at the same moment
all succeed, and the schema is at head once (issue 13: "the server failed to start in 4 of 6
cold starts" when two processes migrated together). With MIGRATE_ON_START=false a process
refuses a schema that is not at head and names the command that fixes it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from cluster.postgres import PostgresCluster
from services.runtime import build_runtime
from storage.db import SchemaNotReady, head_revision
from tests.conftest import ROOT, make_settings, run_manage

PROCESSES = 4

# Each process says it is ready, waits for the go file (all start migrating within a poll of
# each other), migrates, and prints the revision it found afterwards.
RACER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from storage.db import current_revision, make_engine, migrate
url, ready, go = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
engine = make_engine(url)
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.001)
migrate(engine)
with engine.connect() as connection:
    print(current_revision(connection))
"""


def _race(url: str, work: Path) -> list[subprocess.CompletedProcess[str]]:
    go = work / "go"
    readies = [work / f"ready-{i}" for i in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(ROOT), url, str(ready), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ready in readies
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(ready.exists() for ready in readies):
            assert time.monotonic() < deadline, "the racers never got ready"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_processes_migrating_one_fresh_database_at_once_all_succeed(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database()
    results = _race(url, tmp_path)
    head = head_revision()
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip() == head
        assert "Traceback" not in result.stderr
    assert _versions(url) == [head]
    engine = create_engine(url)
    try:
        assert {"workspace", "image", "generation", "character"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_without_migrate_on_start_an_unmigrated_database_is_refused_until_manage_migrate(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data_dir = tmp_path / "data"
    if kind == "sqlite":
        url = f"sqlite:///{data_dir / 'fresh.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database()
    settings = make_settings(data_dir, database_url=url, migrate_on_start=False)
    env = {"DATABASE_URL": url, "MIGRATE_ON_START": "false"}

    runtime = build_runtime(settings)
    with pytest.raises(SchemaNotReady) as refused:
        asyncio.run(runtime.start())
    runtime.engine.dispose()
    assert "manage.py migrate" in str(refused.value)
    assert "MIGRATE_ON_START" in str(refused.value)

    migrated = run_manage(data_dir, "migrate", **env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"to {head_revision()}" in migrated.stdout
    again = run_manage(data_dir, "migrate", **env)
    assert again.returncode == 0 and "nothing to do" in again.stdout

    runtime = build_runtime(settings)
    asyncio.run(_start_and_stop(runtime))


async def _start_and_stop(runtime) -> None:  # type: ignore[no-untyped-def]
    await runtime.start()
    await runtime.stop()
