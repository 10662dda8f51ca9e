from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import manage_cli, run_manage

ROOT = Path(__file__).resolve().parents[2]


def test_missing_key_is_401_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/characters")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["field"] == "Authorization"


def test_unknown_key_is_401(client: TestClient) -> None:
    response = client.get("/characters", headers={"Authorization": "Bearer sl_nope"})
    assert response.status_code == 401


def test_non_bearer_scheme_is_401(client: TestClient, auth: dict[str, str]) -> None:
    token = auth["Authorization"].split()[1]
    response = client.get("/characters", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401


def test_unknown_route_uses_the_error_shape(client: TestClient) -> None:
    response = client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_manage_create_list_revoke_key_round_trip(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = run_manage(data_dir, "create-key", "--name", "laptop", "--workspace", "books")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sl_") and len(key) > 40

    listed = run_manage(data_dir, "list-keys")
    assert "laptop" in listed.stdout and "books" in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout  # only a prefix is ever shown again
    assert key not in (data_dir / "storyloom.db").read_bytes().decode("latin-1")

    revoked = run_manage(data_dir, "revoke-key", "1")
    assert revoked.returncode == 0
    assert "revoked" in manage_cli(data_dir, "list-keys").stdout

    missing = manage_cli(data_dir, "revoke-key", "99")
    assert missing.returncode == 1 and "no API key with id 99" in missing.stderr


def test_first_key_creates_only_when_none_exists(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = run_manage(data_dir, "first-key")
    assert first.stdout.strip().splitlines()[-1].startswith("sl_")
    again = manage_cli(data_dir, "first-key")
    assert "already exists" in again.stdout
