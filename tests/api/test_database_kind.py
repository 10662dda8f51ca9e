"""The API tests really run on both databases: the app's engine is the one the parameter names."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient


def test_app_runs_on_the_parametrised_database(app: FastAPI, client: TestClient, db_kind: str) -> None:
    assert app.state.runtime.engine.dialect.name == db_kind
    assert client.get("/health").status_code == 200
