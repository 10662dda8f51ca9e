"""Shared fixtures: every test gets a fresh app on its own temp directory and real SQLite file."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from accounts.service import create_key
from api_server import create_app
from cluster.postgres import PostgresCluster, running_cluster
from cluster.redis import RedisServer, running_redis
from cluster.s3 import CREDENTIALS, S3Server, running_s3
from config import Settings
from storage.db import open_database, write_session
from tests.fake_openai import FakeOpenAI
from tests.servers import serve

ROOT = Path(__file__).resolve().parents[1]


# A database already at the newest revision, made once per run (see `_schema_template`).
_schema: list[Path] = []
# The PostgreSQL database of a test's `data_dir` when its `db_kind` is postgresql (see `data_dir`).
_databases: dict[Path, str] = {}
# The S3 bucket settings of a test's `data_dir` when its `blob_kind` is s3 (see `data_dir`).
_blob_stores: dict[Path, dict[str, object]] = {}


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Offline settings on `data_dir`, whose database starts as a copy of the migrated template.

    When `data_dir` is the test's `data_dir` fixture and its `db_kind` is postgresql, the
    database is that test's fresh PostgreSQL database instead (so every app a test starts on
    its data dir, restarts included, uses the parametrised database).

    Migrating a fresh SQLite file costs ~0.1 s of CPU and nearly every test starts an app; the
    copy still goes through `migrate` at start-up (a no-op at head), and the migrations
    themselves run for real once per run and in tests/storage/test_migrations.py.
    """
    if "database_url" not in overrides and Path(data_dir) in _databases:
        # On PostgreSQL jobs go through procrastinate; the test app runs a worker itself.
        overrides = {"database_url": _databases[Path(data_dir)], "api_runs_jobs": True, **overrides}
    overrides = {**_blob_stores.get(Path(data_dir), {}), **overrides}
    database = Path(data_dir) / "storyloom.db"
    if _schema and "database_url" not in overrides and not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_schema[0], database)
    values: dict[str, object] = {
        "data_dir": data_dir,
        "secret_key": "test-secret-key",
        "public_base_url": "http://testserver",
        "openai_api_key": None,
        "openai_base_url": None,
        "image_backend": "draft",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def temp_files(settings: Settings) -> list[Path]:
    """Temp files left under TMP_DIR: every process's scratch folder, not the ownership locks
    (`<owner>.lock`, storage/scratch.py) that live processes hold beside them."""
    root = settings.tmp_dir
    return [p for p in root.rglob("*") if p.is_file() and p.parent != root] if root.exists() else []


@pytest.fixture(scope="session", autouse=True)
def _schema_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    path = tmp_path_factory.mktemp("schema") / "storyloom.db"
    open_database(f"sqlite:///{path}").dispose()  # every migration, from an empty file
    _schema.append(path)
    yield
    _schema.clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster per run, started only when a test asks for it (~2 s)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server per run (per xdist worker), started only when a test asks for it."""
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied first: every test's key ids start at 1 again."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


_pg_template: list[str] = []


def postgres_database(cluster: PostgresCluster) -> str:
    """A fresh database at the newest revision: a copy of one migrated template (CREATE … TEMPLATE)."""
    if not _pg_template:
        url = cluster.create_database("storyloom_template")
        open_database(url).dispose()  # every migration, on PostgreSQL, once per run
        _pg_template.append("storyloom_template")
    name = f"t_{uuid.uuid4().hex[:16]}"
    cluster.psql(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template[0]}"')
    return cluster.url(name)


@pytest.fixture
def db_kind() -> str:
    """Which database the `settings` fixture uses; test folders that must pass on both override it
    with `params=DB_KINDS` (see tests/api/conftest.py)."""
    return "sqlite"


DB_KINDS = ["sqlite", "postgresql"]


def both_databases(request: pytest.FixtureRequest) -> str:
    """A folder's conftest turns this into its `db_kind` so its tests run on each database:
    `db_kind = pytest.fixture(params=DB_KINDS, name="db_kind")(both_databases)`."""
    return request.param


@pytest.fixture
def database_url(request: pytest.FixtureRequest, db_kind: str) -> str | None:
    """None (the SQLite file in DATA_DIR) or a fresh PostgreSQL database of the session cluster."""
    if db_kind == "sqlite":
        return None
    return postgres_database(request.getfixturevalue("postgres"))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One local S3 (moto's server, its own process on 127.0.0.1) per run, only when a test asks.

    boto3 reads credentials from the environment, as in production: moto's throwaway ones are
    set for the run and the previous values put back afterwards."""
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        with running_s3() as server:
            yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def blob_kind() -> str:
    """Which blob store the `settings` fixture uses ("local" files in DATA_DIR or "s3"); the
    library's file tests override it with `params=BLOB_KINDS`, as the API tests do `db_kind`."""
    return "local"


BLOB_KINDS = ["local", "s3"]


@pytest.fixture
def blob_settings(request: pytest.FixtureRequest, blob_kind: str) -> dict[str, object]:
    """No overrides (local files), or a fresh bucket on the session's moto server, under a prefix."""
    if blob_kind == "local":
        return {}
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    server.create_bucket(bucket)
    return {"storage_url": f"s3://{bucket}/storyloom", "s3_endpoint_url": server.url}


@pytest.fixture
def data_dir(tmp_path: Path, database_url: str | None, blob_settings: dict[str, object]) -> Iterator[Path]:
    """The test's DATA_DIR; `make_settings(data_dir, …)` puts its database where `db_kind` says
    and its files where `blob_kind` says."""
    path = tmp_path / "data"
    if database_url:
        _databases[path] = database_url
    if blob_settings:
        _blob_stores[path] = blob_settings
    yield path
    _databases.pop(path, None)
    _blob_stores.pop(path, None)


@pytest.fixture
def settings_with(data_dir: Path) -> Callable[..., Settings]:
    """`make_settings` on this test's data dir (its database and blob store follow `db_kind` and
    `blob_kind`, see `data_dir`), plus overrides."""
    return lambda **overrides: make_settings(data_dir, **overrides)


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def new_key(app: FastAPI, workspace: str = "alpha", name: str = "test") -> str:
    with write_session(app.state.runtime.engine) as session:
        _, key = create_key(session, name=name, workspace=workspace)
    return key


@pytest.fixture
def make_key(app: FastAPI, client: TestClient) -> Callable[..., str]:
    """Create a key in a workspace of the running app (the client fixture starts it)."""
    return lambda workspace="alpha", name="test": new_key(app, workspace, name)


@pytest.fixture
def auth(make_key: Callable[..., str]) -> dict[str, str]:
    """Headers for a key in workspace `alpha`."""
    return {"Authorization": f"Bearer {make_key('alpha')}"}


@pytest.fixture
def other_auth(make_key: Callable[..., str]) -> dict[str, str]:
    """Headers for a key in another workspace, `beta`."""
    return {"Authorization": f"Bearer {make_key('beta')}"}


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[tuple[FakeOpenAI, str]]:
    """One fake OpenAI per test module (starting uvicorn is the slow part); `fake` resets it."""
    fake = FakeOpenAI()
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake(fake_upstream: tuple[FakeOpenAI, str]) -> Iterator[FakeOpenAI]:
    fake_upstream[0].reset()
    yield fake_upstream[0]
    fake_upstream[0].reset()  # never leave a held answer or a fault behind for the next test


@pytest.fixture
def openai_base_url(fake_upstream: tuple[FakeOpenAI, str]) -> str:
    return f"{fake_upstream[1]}/v1"


def manage_env(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """An operator's environment for manage.py on `data_dir` (and the test's database, if PostgreSQL)."""
    database = {"DATABASE_URL": _databases[data_dir]} if data_dir in _databases else {}
    return {"DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin", "SECRET_KEY": "x", **database, **env}


def run_manage(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python manage.py ARGS` as an operator runs it, on `data_dir`, with only these settings.

    A real process costs seconds of start-up: each command keeps one such test; the rest of
    the CLI's behaviour is checked through `manage_cli`.
    """
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=manage_env(data_dir, env),
        cwd=data_dir.parent,
        check=False,
    )


def manage_cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The same command through `manage.main` in this process: same environment, same output."""
    import manage

    environment = manage_env(data_dir, env)
    # Only the settings given here: none of this process's own (OPENAI_API_KEY, PORT, ...).
    names = {name.upper() for name in Settings.model_fields} | set(environment)
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    os.environ.update(environment)
    out, err = io.StringIO(), io.StringIO()
    try:
        with (
            contextlib.chdir(data_dir.parent),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                code = manage.main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for name in environment:
            os.environ.pop(name, None)
        os.environ.update(saved)
    return subprocess.CompletedProcess(["manage.py", *args], code, out.getvalue(), err.getvalue())
