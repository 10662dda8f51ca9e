"""Characters API: create, list, read, update, delete, scoped to the caller's workspace."""

from __future__ import annotations

from fastapi.testclient import TestClient

MIA = {
    "name": "Mia",
    "description": "A seven-year-old girl with short curly red hair, freckles, a yellow raincoat.",
    "style": "soft watercolour, warm light",
}


def create(client: TestClient, auth: dict[str, str], **fields: object) -> dict:
    response = client.post("/characters", json={**MIA, **fields}, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_character_returns_it_with_empty_references(client: TestClient, auth: dict[str, str]) -> None:
    body = create(client, auth)
    assert body["name"] == "Mia"
    assert body["description"] == MIA["description"]
    assert body["style"] == MIA["style"]
    assert body["reference_images"] == []
    assert body["created_at"].endswith("Z")
    assert client.get(f"/characters/{body['id']}", headers=auth).json() == body


def test_name_is_unique_per_workspace_regardless_of_case(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    create(client, auth)
    response = client.post("/characters", json={**MIA, "name": "  mIA "}, headers=auth)
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "conflict",
        "message": "a character named 'Mia' already exists",  # as the existing one is spelled
        "field": "name",
    }
    # Another workspace has its own names.
    assert client.post("/characters", json=MIA, headers=other_auth).status_code == 201


def test_description_is_required_and_not_blank(client: TestClient, auth: dict[str, str]) -> None:
    missing = client.post("/characters", json={"name": "Rex"}, headers=auth)
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "description"
    blank = client.post("/characters", json={"name": "Rex", "description": "   "}, headers=auth)
    assert blank.status_code == 422
    assert blank.json()["error"]["field"] == "description"


def test_oversize_and_unknown_fields_are_refused_by_name(client: TestClient, auth: dict[str, str]) -> None:
    long_name = client.post("/characters", json={**MIA, "name": "x" * 101}, headers=auth)
    assert long_name.status_code == 422 and long_name.json()["error"]["field"] == "name"
    long_desc = client.post("/characters", json={**MIA, "description": "d" * 4001}, headers=auth)
    assert long_desc.status_code == 422 and long_desc.json()["error"]["field"] == "description"
    extra = client.post("/characters", json={**MIA, "colour": "red"}, headers=auth)
    assert extra.status_code == 422 and extra.json()["error"]["field"] == "colour"
    wrong_type = client.post("/characters", json={**MIA, "name": 12}, headers=auth)
    assert wrong_type.status_code == 422 and wrong_type.json()["error"]["field"] == "name"


def test_malformed_json_is_400(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/characters", content=b'{"name": "Mia", ', headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_list_searches_by_name_and_paginates(client: TestClient, auth: dict[str, str]) -> None:
    for name in ["Mia", "Rex", "Maximilian", "Tom_1", "Tom%2"]:
        create(client, auth, name=name)
    everyone = client.get("/characters", headers=auth).json()
    assert everyone["total"] == 5
    assert [c["name"] for c in everyone["items"]] == ["Maximilian", "Mia", "Rex", "Tom%2", "Tom_1"]
    search = client.get("/characters", params={"q": "MI"}, headers=auth).json()
    assert [c["name"] for c in search["items"]] == ["Maximilian", "Mia"] and search["total"] == 2
    # LIKE wildcards in the query are literal characters.
    assert [c["name"] for c in client.get("/characters?q=_", headers=auth).json()["items"]] == ["Tom_1"]
    page = client.get("/characters", params={"limit": 2, "offset": 2}, headers=auth).json()
    assert [c["name"] for c in page["items"]] == ["Rex", "Tom%2"] and page["total"] == 5
    bad = client.get("/characters", params={"limit": 0}, headers=auth)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "limit"


def test_update_changes_only_the_given_fields(client: TestClient, auth: dict[str, str]) -> None:
    mia = create(client, auth)
    response = client.patch(f"/characters/{mia['id']}", json={"style": "pencil sketch"}, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["style"] == "pencil sketch"
    assert body["name"] == "Mia" and body["description"] == MIA["description"]
    assert body["updated_at"] >= mia["updated_at"]


def test_update_refuses_null_description_and_taken_names(client: TestClient, auth: dict[str, str]) -> None:
    mia = create(client, auth)
    create(client, auth, name="Rex")
    null = client.patch(f"/characters/{mia['id']}", json={"description": None}, headers=auth)
    assert null.status_code == 422 and null.json()["error"]["field"] == "description"
    taken = client.patch(f"/characters/{mia['id']}", json={"name": "REX"}, headers=auth)
    assert taken.status_code == 409 and taken.json()["error"]["field"] == "name"
    # Renaming to a different case of its own name is fine.
    assert (
        client.patch(f"/characters/{mia['id']}", json={"name": "MIA"}, headers=auth).json()["name"] == "MIA"
    )


def test_delete_character_then_it_is_gone(client: TestClient, auth: dict[str, str]) -> None:
    mia = create(client, auth)
    assert client.delete(f"/characters/{mia['id']}", headers=auth).status_code == 204
    assert client.get(f"/characters/{mia['id']}", headers=auth).status_code == 404
    assert client.delete(f"/characters/{mia['id']}", headers=auth).status_code == 404
    # The name is free again.
    create(client, auth)


def test_other_workspace_sees_404_for_every_character_route(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    mia = create(client, auth)
    url = f"/characters/{mia['id']}"
    assert client.get(url, headers=other_auth).status_code == 404
    assert client.patch(url, json={"style": "x"}, headers=other_auth).status_code == 404
    assert client.put(f"{url}/references", json={"numbers": []}, headers=other_auth).status_code == 404
    assert client.delete(url, headers=other_auth).status_code == 404
    assert client.get("/characters", headers=other_auth).json() == {"items": [], "total": 0}
    assert client.get(url, headers=auth).status_code == 200


def test_set_references_names_an_unknown_number(client: TestClient, auth: dict[str, str]) -> None:
    mia = create(client, auth)
    response = client.put(f"/characters/{mia['id']}/references", json={"numbers": [7]}, headers=auth)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_image"
    assert error["field"] == "numbers.0"
    assert "image 7" in error["message"]
    negative = client.put(f"/characters/{mia['id']}/references", json={"numbers": [-1]}, headers=auth)
    assert negative.status_code == 422 and negative.json()["error"]["field"] == "numbers.0"


def test_characters_survive_a_restart(tmp_path, data_dir) -> None:  # type: ignore[no-untyped-def]
    from api_server import create_app
    from tests.conftest import make_settings, new_key

    settings = make_settings(data_dir)
    with TestClient(create_app(settings)) as first:
        key = {"Authorization": f"Bearer {new_key(first.app)}"}  # type: ignore[arg-type]
        created = create(first, key)
    with TestClient(create_app(make_settings(data_dir))) as second:
        assert second.get(f"/characters/{created['id']}", headers=key).json() == created


def test_a_deleted_characters_id_is_never_given_to_a_new_one(
    client: TestClient, auth: dict[str, str]
) -> None:
    # Generations name characters by id: a reused id would make old jobs name the wrong one.
    create(client, auth)
    rex = create(client, auth, name="Rex")
    assert client.delete(f"/characters/{rex['id']}", headers=auth).status_code == 204
    tom = create(client, auth, name="Tom")
    assert tom["id"] > rex["id"]
