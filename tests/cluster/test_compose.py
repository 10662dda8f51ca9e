"""compose.yaml runs the processes `make cluster` runs, with the same commands and settings.

Docker is not available here (nor in CI), so compose.yaml is never started by the tests: this
parses it and compares it with cluster/run.py, the launcher that the multi-process tests do run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.processes import api_args, migrate_args, worker_args
from cluster.run import WORKER_CONCURRENCY, cluster_settings

ROOT = Path(__file__).resolve().parents[2]
IMAGE_ROOT = "/app"  # the Dockerfile's WORKDIR


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def services(compose: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in compose["services"].items() if name.startswith(prefix)}


def test_the_topology_has_the_stores_two_apis_two_workers_and_one_migration(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    assert {"postgres", "redis", "minio", "migrate"} <= names
    assert sorted(services(compose, "api")) == ["api1", "api2"]
    assert sorted(services(compose, "worker")) == ["worker1", "worker2"]


def test_commands_are_the_launchers_commands(compose: dict[str, Any]) -> None:
    for spec in services(compose, "api").values():
        assert spec["command"] == ["python", *api_args("0.0.0.0", 8000, IMAGE_ROOT)]
    for spec in services(compose, "worker").values():
        assert spec["command"] == ["python", *worker_args(WORKER_CONCURRENCY, IMAGE_ROOT)]
    assert compose["services"]["migrate"]["command"] == ["python", *migrate_args(IMAGE_ROOT)]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"WORKDIR {IMAGE_ROOT}\n" in dockerfile


def test_every_app_process_gets_the_launchers_settings_and_waits_for_the_migration(
    compose: dict[str, Any],
) -> None:
    names = cluster_settings(database_url="", redis_url="", s3_endpoint="", secret_key="", data_dir=Path())
    wanted = set(names)
    app_services = {**services(compose, "api"), **services(compose, "worker")}
    for name, spec in {**app_services, "migrate": compose["services"]["migrate"]}.items():
        env = spec["environment"]
        assert wanted <= set(env), (name, wanted - set(env))
        assert env["MIGRATE_ON_START"] == "false" and env["API_RUNS_JOBS"] == "false"
        assert env["JOB_QUEUE"] == "procrastinate"
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["RATE_LIMIT_STORAGE"].startswith("redis://")
        assert env["STORAGE_URL"].startswith("s3://")
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # one key, from the operator, never a default
    for name, spec in app_services.items():
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
