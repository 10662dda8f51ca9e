"""The HTTP surface: security headers on every answer, complete Allow lists, deep JSON refused."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.imagegen import png, upload

EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _check_headers(response_headers: object, path: str) -> None:
    headers = dict(response_headers)  # type: ignore[call-overload]
    for name, value in EXPECTED.items():
        assert headers.get(name) == value, (path, name, headers.get(name))
    csp = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, (path, csp)


def test_every_kind_of_answer_carries_the_security_headers(client: TestClient, auth: dict[str, str]) -> None:
    upload(client, auth, png(1))
    image = client.get("/images/0", headers=auth).json()
    thumb_path = image["thumbnail_url"].removeprefix("http://testserver")
    for path, headers in [
        ("/health", {}),
        ("/images", auth),
        ("/images/0/file", auth),
        (thumb_path, {}),
        ("/images", {}),  # 401
        ("/nope", {}),  # 404
        ("/ui/login", {}),
        ("/static/app.js", {}),
        ("/openapi.json", {}),
        ("/docs", {}),
    ]:
        response = client.get(path, headers=headers)
        assert response.status_code < 500
        _check_headers(response.headers, path)


def test_pages_allow_only_our_own_scripts_and_styles(client: TestClient) -> None:
    csp = client.get("/ui/login").headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split("; ")}
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["default-src"] == ["'none'"]


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/images", {"GET", "POST", "OPTIONS"}),
        ("/images/3", {"GET", "DELETE", "OPTIONS"}),
        ("/health", {"GET", "OPTIONS"}),
        ("/static/app.js", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_options_and_405_name_every_allowed_method(client: TestClient, path: str, methods: set[str]) -> None:
    response = client.options(path)
    assert response.status_code == 204
    assert {m.strip() for m in response.headers["allow"].split(",")} == methods
    _check_headers(response.headers, path)
    refused = client.put(path)
    assert refused.status_code == 405
    assert {m.strip() for m in refused.headers["allow"].split(",")} == methods
    assert refused.json()["error"]["code"] == "method_not_allowed"


def test_options_on_an_unknown_path_is_404(client: TestClient) -> None:
    assert client.options("/no/such/thing").status_code == 404


@pytest.mark.parametrize("depth", [10_000, 200_000])
def test_deeply_nested_json_is_400_not_500(client: TestClient, auth: dict[str, str], depth: int) -> None:
    character = client.post("/characters", headers=auth, json={"name": "Ada", "description": "a girl"}).json()
    body = '{"image_base64": ' + "[" * depth + "]" * depth + "}"
    response = client.post(
        f"/characters/{character['id']}/references",
        headers={**auth, "content-type": "application/json"},
        content=body,
    )
    assert response.status_code == 400, response.text[:200]
    assert response.json()["error"]["code"] == "malformed_json"
    nested = client.post(
        "/characters", headers={**auth, "content-type": "application/json"}, content="[" * depth + "]" * depth
    )
    assert nested.status_code == 400
