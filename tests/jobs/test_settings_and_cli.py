"""Choosing the job engine, and `manage.py worker`/`migrate` refusing or doing the right thing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.postgres import PostgresCluster
from tests.conftest import make_settings, manage_cli


def test_auto_picks_the_pool_on_sqlite_and_procrastinate_on_postgresql(tmp_path: Path) -> None:
    assert make_settings(tmp_path).resolved_job_queue == "local"
    pg = make_settings(tmp_path, database_url="postgresql+psycopg://u@127.0.0.1:1/db")
    assert pg.resolved_job_queue == "procrastinate"
    local_on_pg = make_settings(
        tmp_path, database_url="postgresql+psycopg://u@127.0.0.1:1/db", job_queue="local"
    )
    assert local_on_pg.resolved_job_queue == "local"
    with pytest.raises(ValueError, match="JOB_QUEUE=procrastinate needs a PostgreSQL DATABASE_URL"):
        _ = make_settings(tmp_path, job_queue="procrastinate").resolved_job_queue


def test_a_worker_on_sqlite_is_refused_with_a_reason(tmp_path: Path) -> None:
    done = manage_cli(tmp_path / "data", "worker")
    assert done.returncode == 2
    assert "workers need PostgreSQL" in done.stderr
    bad = manage_cli(
        tmp_path / "data", "worker", "--concurrency", "0", DATABASE_URL="postgresql+psycopg://u@h/d"
    )
    assert bad.returncode == 2 and "--concurrency must be 1 or more" in bad.stderr


def test_migrate_brings_postgresql_to_head_with_procrastinate_s_tables(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    url = postgres.create_database()  # empty: no template
    done = manage_cli(tmp_path / "data", "migrate", DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert "database migrated from empty to" in done.stdout
    name = url.rsplit("/", 1)[1]
    assert (
        postgres.psql("SELECT to_regclass('procrastinate_jobs')::text", database=name)
        == "[('procrastinate_jobs',)]"
    )
    again = manage_cli(tmp_path / "data", "migrate", DATABASE_URL=url)  # at head: nothing to do
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
