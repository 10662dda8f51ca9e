"""Schemathesis over every operation of /openapi.json, through the ASGI app (no network).

Each operation gets a bounded number of generated requests (valid and invalid), sent with a real
key in a workspace that holds a character and an image, so the answers cover the happy paths
as well as the 4xx ones. Every answer must be documented: no 5xx, a status code the operation
lists, a content type it lists, and a body that matches the listed schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis (requirements-dev.txt)")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api_server import create_app  # noqa: E402
from tests.conftest import make_settings, new_key  # noqa: E402
from tests.imagegen import png  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation and mode: enough to reach every documented status, few enough for make test.
EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 5}
HEADERS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app on a temp directory, its schema loaded (which starts its lifespan), and seed data."""
    data_dir = tmp_path_factory.mktemp("contract") / "data"
    app = create_app(make_settings(data_dir, rate_limit_per_minute=0, sync_wait_seconds=5))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    key = new_key(app, "alpha", "contract")
    HEADERS["Authorization"] = f"Bearer {key}"
    seed = TestClient(app, headers=HEADERS)
    mia = seed.post("/characters", json={"name": "Mia", "description": "a girl with a red umbrella"})
    assert mia.status_code == 201, mia.text
    upload = seed.post("/images", files=[("files", ("mia.png", png(1), "image/png"))])
    assert upload.status_code == 201, upload.text
    yield schema


def run_operation(operation: Any, mode: GenerationMode) -> str | None:
    """A bounded number of cases for one operation: its first failure (shrunk), or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=HEADERS, checks=CHECKS)

    try:
        check()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (GET /health has no inputs)
    except Exception as exc:  # noqa: BLE001 - any failure is reported with its operation
        return f"{operation.label}: {exc}"
    return None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(api_schema: Any, mode: GenerationMode) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 19
    failures = [f for f in (run_operation(op, mode) for op in operations) if f is not None]
    assert not failures, "\n\n".join(failures)
