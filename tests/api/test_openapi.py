"""What /openapi.json promises, and the defects found by holding the API to it.

Issue 8 asked for an OpenAPI that tells the truth; issue 12 (defects 4 and 12) listed answers
that broke it: 500s from integers past 2^63, `dry_run: 0` read as false, and a PATCH schema
that allowed a null the route refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.imagegen import png

TOO_BIG = 2**63  # one past SQLite's largest integer
HUGE = "99999999999999999999"


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_docs_have_a_bearer_scheme_and_every_keyed_operation_uses_it(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `manage.py create-key`, sent as `Authorization: Bearer <key>`.",
    }
    for method, path, op in operations(spec):
        if path in {"/health", "/metrics"}:
            continue
        assert {"apiKey": []} in op["security"], f"{method} {path}"
        assert "401" in op["responses"], f"{method} {path}"


def test_every_error_is_documented_with_the_error_shape_never_fastapis_detail(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["ErrorDetail"]["required"] == ["code", "message", "field"]
    error_refs = {"#/components/schemas/ErrorBody", "#/components/schemas/GenerationErrorBody"}
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if int(status) >= 400 and (path, status) != ("/health", "503"):  # /health's 503 is a Health
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref in error_refs, f"{method} {path} {status}"
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in op["responses"], f"{method} {path}"


def test_every_json_answer_has_a_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            json_body = response.get("content", {}).get("application/json")
            if json_body is not None:
                assert json_body["schema"], f"{method} {path} {status} has an empty schema"
    answers = {(m, p): op["responses"] for m, p, op in operations(spec)}
    ok = answers[("GET", "/images/{number}")]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ImageRead"}
    accepted = answers[("POST", "/generate-image")]["202"]["content"]["application/json"]["schema"]
    assert accepted == {"$ref": "#/components/schemas/GenerationAccepted"}


def test_upload_routes_document_their_multipart_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/images", "/characters/{character_id}/references"):
        body = spec["paths"][path]["post"]["requestBody"]
        form = body["content"]["multipart/form-data"]["schema"]
        assert form["required"] == ["files"]
        assert form["properties"]["files"]["items"] == {"type": "string", "format": "binary"}
    references = spec["paths"]["/characters/{character_id}/references"]["post"]["requestBody"]
    assert references["content"]["application/json"]["schema"]["required"] == ["image_base64"]


def test_file_routes_document_image_content_types(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    file_ok = spec["paths"]["/images/{number}/file"]["get"]["responses"]["200"]["content"]
    assert sorted(file_ok) == ["image/jpeg", "image/png", "image/webp"]
    thumb_ok = spec["paths"]["/images/{number}/thumbnail"]["get"]["responses"]["200"]["content"]
    assert list(thumb_ok) == ["image/webp"]


@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        ("GET", f"/characters/{TOO_BIG}", "character_id"),
        ("PATCH", f"/characters/{HUGE}", "character_id"),
        ("DELETE", f"/characters/{HUGE}", "character_id"),
        ("GET", f"/characters?offset={TOO_BIG}", "offset"),
        ("GET", f"/images/{HUGE}", "number"),
        ("GET", f"/images/{HUGE}/similar", "number"),
        ("DELETE", f"/images/{TOO_BIG}", "number"),
        ("GET", f"/images/{TOO_BIG}/file", "number"),
        ("GET", f"/images/{TOO_BIG}/thumbnail", "number"),
        ("GET", f"/images?offset={TOO_BIG}", "offset"),
        ("GET", f"/images?character_id={TOO_BIG}", "character_id"),
        ("GET", f"/generations?offset={TOO_BIG}", "offset"),
        ("GET", f"/generations?character_id={TOO_BIG}", "character_id"),
    ],
)
def test_ids_and_offsets_past_int64_are_422_naming_the_field(
    client: TestClient, auth: dict[str, str], method: str, url: str, field: str
) -> None:
    body = {"name": "Mia"} if method == "PATCH" else None
    response = client.request(method, url, headers=auth, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("PUT", "/characters/{id}/references", {"numbers": [TOO_BIG]}, "numbers.0"),
        ("POST", "/generate-image", {"prompt": "rain", "reference_images": [TOO_BIG]}, "reference_images.0"),
        ("POST", "/generate-image", {"prompt": "rain", "characters": [TOO_BIG]}, "characters.0"),
    ],
)
def test_body_ids_past_int64_are_422_naming_the_field(
    client: TestClient, auth: dict[str, str], method: str, url: str, body: dict[str, Any], field: str
) -> None:
    mia = client.post("/characters", json={"name": "Mia", "description": "red umbrella"}, headers=auth).json()
    response = client.request(method, url.format(id=mia["id"]), headers=auth, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].startswith(field.split(".")[0])


def test_upload_character_id_past_int64_is_422(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/images",
        headers=auth,
        data={"character_id": str(TOO_BIG)},
        files=[("files", ("a.png", png(1), "image/png"))],
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "character_id"


@pytest.mark.parametrize(("name", "value"), [("dry_run", 0), ("dry_run", "false"), ("wait", 1)])
def test_booleans_in_a_generation_request_are_strict(
    client: TestClient, auth: dict[str, str], name: str, value: object
) -> None:
    response = client.post("/generate-image", json={"prompt": "rain", name: value}, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == name


def test_patch_null_name_or_description_is_refused_and_the_schema_says_so(
    client: TestClient, auth: dict[str, str]
) -> None:
    spec = client.get("/openapi.json").json()
    update = spec["components"]["schemas"]["CharacterUpdate"]["properties"]
    assert update["description"]["type"] == "string" and "anyOf" not in update["description"]
    assert update["name"]["type"] == "string" and "anyOf" not in update["name"]
    assert {"type": "null"} in update["style"]["anyOf"]  # style may be cleared

    mia = client.post(
        "/characters", json={"name": "Mia", "description": "red umbrella", "style": "ink"}, headers=auth
    ).json()
    for field in ("name", "description"):
        response = client.patch(f"/characters/{mia['id']}", json={field: None}, headers=auth)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == field
    cleared = client.patch(f"/characters/{mia['id']}", json={"style": None}, headers=auth)
    assert cleared.status_code == 200 and cleared.json()["style"] is None


def test_a_utf8_file_name_uploads(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/images", headers=auth, files=[("files", ("ミア.png", png(2), "image/png"))])
    assert response.status_code == 201, response.text


def test_docs_pages_load_their_assets_from_this_server(app: FastAPI, client: TestClient) -> None:
    for page, assets in {
        "/docs": ["/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"],
        "/redoc": ["/docs-assets/redoc.standalone.js"],
    }.items():
        html = client.get(page).text
        assert "cdn." not in html and "fonts.googleapis" not in html
        for asset in assets:
            assert f'"{asset}"' in html
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 10_000
