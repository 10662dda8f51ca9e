"""The author's pages at template level: escaping, login, CSRF, logout, workspace isolation."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from accounts.service import authenticate, revoke_key
from storage.db import write_session
from tests.imagegen import near_copy, png

XSS = "<script>alert(1)</script>"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, key: str) -> str:
    """Log in through the form, as a browser would; returns the session's CSRF token."""
    page = client.get("/ui/login")
    response = client.post(
        "/ui/login", data={"api_key": key, "csrf_token": csrf_of(page.text)}, follow_redirects=True
    )
    assert response.status_code == 200
    assert "Log out" in response.text
    return csrf_of(response.text)


def make_character(client: TestClient, key: str, name: str) -> int:
    response = client.post(
        "/characters",
        headers={"Authorization": f"Bearer {key}"},
        json={"name": name, "description": "a small fox in a red scarf"},
    )
    assert response.status_code == 201
    return response.json()["id"]


def test_pages_need_login_and_redirect_to_the_login_page(client: TestClient) -> None:
    for path in ("/ui", "/ui/library", "/ui/scene", "/ui/history", "/ui/characters/1"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=")


def test_wrong_key_shows_a_message_next_to_the_field(client: TestClient) -> None:
    page = client.get("/ui/login")
    response = client.post("/ui/login", data={"api_key": "sl_nope", "csrf_token": csrf_of(page.text)})
    assert response.status_code == 401
    assert 'id="api_key-error"' in response.text
    assert "unknown or revoked" in response.text
    assert client.get("/ui", follow_redirects=False).status_code == 303


def test_session_cookie_is_signed_httponly_lax_and_holds_no_key(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    key = make_key("alpha")
    page = client.get("/ui/login")
    response = client.post(
        "/ui/login", data={"api_key": key, "csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert key not in cookie and key[3:20] not in cookie
    client.cookies.clear()
    client.cookies.set("storyloom_session", "forged.value.sig")
    assert client.get("/ui", follow_redirects=False).status_code == 303


def test_character_named_script_renders_as_text_on_gallery_and_character_page(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    key = make_key("alpha")
    character_id = make_character(client, key, XSS)
    log_in(client, key)
    for path in ("/ui", f"/ui/characters/{character_id}", "/ui/scene", "/ui/library"):
        html = client.get(path).text
        assert XSS not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


def test_create_character_form_shows_per_field_messages(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    key = make_key("alpha")
    token = log_in(client, key)
    response = client.post("/ui/characters", data={"name": "", "description": "", "csrf_token": token})
    assert response.status_code == 422
    assert 'id="name-error"' in response.text and 'id="description-error"' in response.text
    ok = client.post(
        "/ui/characters",
        data={"name": "Mia", "description": "red coat", "csrf_token": token},
        follow_redirects=True,
    )
    assert ok.status_code == 200 and "<h1>Mia</h1>" in ok.text
    again = client.post("/ui/characters", data={"name": "mia", "description": "x", "csrf_token": token})
    assert again.status_code == 422
    assert "already exists" in again.text and 'value="mia"' in again.text


def test_post_without_csrf_token_is_refused_with_403(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    key = make_key("alpha")
    token = log_in(client, key)
    for data in (
        {"name": "Rex", "description": "dog"},
        {"name": "Rex", "description": "dog", "csrf_token": "x"},
    ):
        response = client.post("/ui/characters", data=data)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/plain")
        assert "security token" in response.text
    cross = client.post(
        "/ui/characters",
        data={"name": "Rex", "description": "dog", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "another site" in cross.text
    assert client.get("/characters", headers={"Authorization": f"Bearer {key}"}).json()["total"] == 0
    no_token = client.post("/ui/api/preview", json={"prompt": "a fox"})
    assert no_token.status_code == 403


def test_logout_clears_the_session(client: TestClient, make_key: Callable[..., str]) -> None:
    token = log_in(client, make_key("alpha"))
    response = client.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert client.get("/ui", follow_redirects=False).status_code == 303


def test_revoked_key_closes_its_browser_session(
    client: TestClient, app: FastAPI, make_key: Callable[..., str]
) -> None:
    key = make_key("alpha")
    log_in(client, key)
    with write_session(app.state.runtime.engine) as session:
        revoke_key(session, authenticate(session, key).key_id)
    assert client.get("/ui", follow_redirects=False).status_code == 303


def test_another_workspaces_character_is_a_404_page(client: TestClient, make_key: Callable[..., str]) -> None:
    theirs = make_character(client, make_key("beta"), "Secret Sam")
    log_in(client, make_key("alpha"))
    response = client.get(f"/ui/characters/{theirs}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Secret Sam" not in response.text
    assert "Secret Sam" not in client.get("/ui").text


def test_upload_reorder_and_near_duplicate_warning(client: TestClient, make_key: Callable[..., str]) -> None:
    key = make_key("alpha")
    character_id = make_character(client, key, "Mia")
    token = log_in(client, key)
    files = [("files", ("a.png", png(1), "image/png")), ("files", ("b.png", near_copy(1), "image/png"))]
    response = client.post(
        f"/ui/characters/{character_id}/references",
        data={"csrf_token": token},
        files=files,
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Added images 0, 1." in response.text
    assert "Image 1 looks almost the same as image 0." in response.text
    assert 'alt="Image 0 — Mia"' in response.text
    moved = client.post(
        f"/ui/characters/{character_id}/references/order",
        data={"numbers": "1 0", "csrf_token": token},
        follow_redirects=True,
    )
    assert moved.status_code == 200
    api = client.get(f"/characters/{character_id}", headers={"Authorization": f"Bearer {key}"}).json()
    assert api["reference_images"] == [1, 0]


def test_scene_preview_names_the_bad_field_and_hides_other_workspaces_jobs(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    theirs = make_key("beta")
    job = client.post(
        "/generate-image", headers={"Authorization": f"Bearer {theirs}"}, json={"prompt": "x", "wait": False}
    ).json()["id"]
    token = log_in(client, make_key("alpha"))
    headers = {"X-CSRF-Token": token}
    bad = client.post(
        "/ui/api/preview", headers=headers, json={"prompt": "a fox", "reference_images": "1, x"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "reference_images"
    empty = client.post("/ui/api/preview", headers=headers, json={"prompt": "  "})
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "prompt"
    ok = client.post("/ui/api/preview", headers=headers, json={"prompt": "a fox <b>runs</b>"})
    assert ok.status_code == 200
    assert "a fox &lt;b&gt;runs&lt;/b&gt;" in ok.json()["html"]
    assert client.get(f"/ui/api/generations/{job}").status_code == 404
