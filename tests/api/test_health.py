from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient


def test_health_reports_each_part_ok(client: TestClient, db_kind: str) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["database_kind"] == db_kind
    assert body["storage"] == "ok"
    assert body["backend"] == "draft"
    assert body["version"]


def test_health_names_storage_when_data_dir_is_not_writable(client: TestClient, data_dir: Path) -> None:
    tmp = data_dir / "tmp"
    tmp.rename(data_dir / "tmp-moved")
    tmp.write_text("a file where a directory should be")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failing"] == ["storage"]
