"""Shared fixtures: every test gets a fresh app on its own temp directory and real SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api_server import create_app
from config import Settings
from services.auth.service import create_key
from storage.db import write_session


def make_settings(data_dir: Path, **overrides: object) -> Settings:
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


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


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
    with write_session(app.state.engine) as session:
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
