"""One tiny random diffusion model per test session (building it is the slow part)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api_server import create_app
from tests.conftest import make_settings, new_key
from tests.tiny_diffusion import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("diffusion") / "tiny-sd")


@pytest.fixture
def local_client(tmp_path: Path, tiny_model: Path) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    """A running app with IMAGE_BACKEND=diffusers on the tiny model: client, auth headers, runtime."""
    settings = make_settings(
        tmp_path / "data",
        image_backend="diffusers",
        diffusers_model=tiny_model,
        diffusers_device="cpu",
        rate_limit_per_minute=0,
        generations_per_minute=0,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {new_key(app)}"}, app.state.runtime


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the backend hands cancellation to its thread through asyncio
