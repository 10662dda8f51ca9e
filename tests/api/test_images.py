"""The image library over HTTP: uploads, duplicates, listing, similar, delete, bad input."""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi.testclient import TestClient

from api_server import create_app
from config import Settings
from tests.conftest import make_settings, temp_files
from tests.imagegen import bomb_png, jpeg, near_copy, noise_png, png, upload, webp


def library_files(settings: Settings) -> list[Path]:
    return [p for p in settings.images_dir.rglob("*") if p.is_file()]


def leftover_temp_files(settings: Settings) -> list[Path]:
    return temp_files(settings)


def make_character(client: TestClient, auth: dict[str, str], name: str = "Mia") -> int:
    response = client.post(
        "/characters", headers=auth, json={"name": name, "description": "a girl in a red coat"}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_upload_several_files_numbers_them_from_zero(client: TestClient, auth: dict[str, str]) -> None:
    response = upload(client, auth, png(1), jpeg(2), webp(3))
    assert response.status_code == 201, response.text
    images = response.json()["images"]
    assert [i["number"] for i in images] == [0, 1, 2]
    assert [i["format"] for i in images] == ["png", "jpeg", "webp"]
    first = images[0]
    assert (first["width"], first["height"], first["kind"], first["duplicate"]) == (64, 48, "upload", False)
    assert first["url"].startswith("http://testserver/images/0/file?")
    assert first["thumbnail_url"].startswith("http://testserver/images/0/thumbnail?")
    assert first["characters"] == [] and first["similar_to"] == [] and first["generation_id"] is None


def test_identical_upload_returns_existing_number(client: TestClient, auth: dict[str, str]) -> None:
    assert upload(client, auth, png(1)).status_code == 201
    again = upload(client, auth, png(1))
    assert again.status_code == 200
    assert again.json()["images"][0]["number"] == 0 and again.json()["images"][0]["duplicate"] is True
    assert client.get("/images", headers=auth).json()["total"] == 1


def test_near_duplicate_is_stored_and_lists_similar_to(client: TestClient, auth: dict[str, str]) -> None:
    upload(client, auth, png(1), png(2))
    response = upload(client, auth, near_copy(1))
    image = response.json()["images"][0]
    assert response.status_code == 201 and image["number"] == 2 and image["similar_to"] == [0]

    similar = client.get("/images/0/similar", headers=auth).json()["items"]
    assert [item["number"] for item in similar] == [2] and similar[0]["distance"] <= 8
    everything = client.get("/images/0/similar?max_distance=64", headers=auth).json()["items"]
    assert {item["number"] for item in everything} == {1, 2}


def test_get_and_list_newest_first_with_filters(client: TestClient, auth: dict[str, str]) -> None:
    upload(client, auth, png(1), png(2), png(3))
    listed = client.get("/images?limit=2", headers=auth).json()
    assert listed["total"] == 3 and [i["number"] for i in listed["items"]] == [2, 1]
    page2 = client.get("/images?limit=2&offset=2", headers=auth).json()
    assert [i["number"] for i in page2["items"]] == [0]
    assert client.get("/images?kind=generated", headers=auth).json() == {"items": [], "total": 0}
    assert client.get("/images/1", headers=auth).json()["number"] == 1
    assert client.get("/images?kind=drawn", headers=auth).status_code == 422


def test_upload_with_character_id_appends_references(client: TestClient, auth: dict[str, str]) -> None:
    mia = make_character(client, auth)
    upload(client, auth, png(1))
    response = upload(client, auth, png(2), png(3), character_id=str(mia))
    assert [i["characters"] for i in response.json()["images"]] == [[mia], [mia]]
    assert client.get(f"/characters/{mia}", headers=auth).json()["reference_images"] == [1, 2]
    listed = client.get(f"/images?character_id={mia}", headers=auth).json()
    assert [i["number"] for i in listed["items"]] == [2, 1] and listed["total"] == 2


def test_upload_to_unknown_character_is_404_and_stores_nothing(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    response = upload(client, auth, png(1), character_id="999")
    assert response.status_code == 404
    assert library_files(settings) == []
    assert upload(client, auth, png(1), character_id="abc").status_code == 422


def test_references_upload_multipart_and_base64(client: TestClient, auth: dict[str, str]) -> None:
    mia = make_character(client, auth)
    multipart = client.post(
        f"/characters/{mia}/references", headers=auth, files=[("files", ("a.png", png(1), "image/png"))]
    )
    assert multipart.status_code == 201 and multipart.json()["images"][0]["characters"] == [mia]
    encoded = base64.b64encode(jpeg(2)).decode()
    as_json = client.post(f"/characters/{mia}/references", headers=auth, json={"image_base64": encoded})
    assert as_json.status_code == 201 and as_json.json()["images"][0]["number"] == 1
    assert client.get(f"/characters/{mia}", headers=auth).json()["reference_images"] == [0, 1]


def test_references_bad_base64_and_bad_json(client: TestClient, auth: dict[str, str]) -> None:
    mia = make_character(client, auth)
    bad = client.post(f"/characters/{mia}/references", headers=auth, json={"image_base64": "not base64!!"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "image_base64"
    text = base64.b64encode(b"hello, I am text").decode()
    not_image = client.post(f"/characters/{mia}/references", headers=auth, json={"image_base64": text})
    assert not_image.status_code == 415 and not_image.json()["error"]["field"] == "image_base64"
    missing = client.post(f"/characters/{mia}/references", headers=auth, json={"image": "x"})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "image_base64"
    malformed = client.post(
        f"/characters/{mia}/references",
        headers={**auth, "Content-Type": "application/json"},
        content=b"{nope",
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    other = client.post("/characters/999/references", headers=auth, json={"image_base64": "aGk="})
    assert other.status_code == 404


def test_text_posing_as_png_is_415(client: TestClient, auth: dict[str, str], settings: Settings) -> None:
    response = upload(client, auth, b"I am plain text", names=["cat.png"])
    assert response.status_code == 415
    assert response.json()["error"] == {
        "code": "unsupported_media_type",
        "message": "'cat.png' is not a PNG, JPEG or WebP image",
        "field": "files",
    }
    assert library_files(settings) == [] and leftover_temp_files(settings) == []


def test_truncated_empty_and_bomb_uploads_are_refused(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    big_png, big_jpeg = png(1, (400, 300)), jpeg(1, (400, 300))
    for blob, status, code in [
        (big_png[:-100], 422, "invalid_image"),
        (big_jpeg[: len(big_jpeg) // 2], 422, "invalid_image"),
        (b"", 422, "invalid_image"),
        (bomb_png(), 413, "image_too_large"),
    ]:
        response = upload(client, auth, blob, names=["broken.png"])
        assert response.status_code == status, response.text
        assert (
            response.json()["error"]["code"] == code and "broken.png" in response.json()["error"]["message"]
        )
    assert library_files(settings) == [] and leftover_temp_files(settings) == []
    assert client.get("/images", headers=auth).json()["total"] == 0


def test_one_bad_file_refuses_the_whole_upload(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    response = upload(client, auth, png(1), b"nope", png(2), names=["a.png", "b.png", "c.png"])
    assert response.status_code == 415 and "b.png" in response.json()["error"]["message"]
    assert library_files(settings) == [] and client.get("/images", headers=auth).json()["total"] == 0
    assert upload(client, auth, png(1)).json()["images"][0]["number"] == 0


def test_upload_over_the_limit_is_413_and_writes_nothing(data_dir: Path) -> None:
    settings = make_settings(data_dir, max_upload_bytes=2000)
    app = create_app(settings)
    with TestClient(app) as client:
        from tests.conftest import new_key

        auth = {"Authorization": f"Bearer {new_key(app)}"}
        big = noise_png((40, 40))
        assert len(big) > 2000
        response = upload(client, auth, png(2, (8, 8)), big)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        assert response.json()["error"]["field"] == "files"
        assert library_files(settings) == [] and leftover_temp_files(settings) == []
        assert client.get("/images", headers=auth).json()["total"] == 0
        declared = client.post(
            "/images",
            headers={
                **auth,
                "Content-Length": str(10**12),
                "Content-Type": "multipart/form-data; boundary=x",
            },
        )
        assert declared.status_code == 413


def test_too_many_files_and_no_files(data_dir: Path) -> None:
    settings = make_settings(data_dir, max_files_per_upload=2)
    app = create_app(settings)
    with TestClient(app) as client:
        from tests.conftest import new_key

        auth = {"Authorization": f"Bearer {new_key(app)}"}
        assert upload(client, auth, png(1), png(2), png(3)).status_code == 413
        none = client.post("/images", headers=auth, data={"character_id": ""}, files=[("other", ("x", b"x"))])
        assert none.status_code == 422 and none.json()["error"]["field"] == "files"
        assert leftover_temp_files(settings) == []


def test_malformed_multipart_is_400(client: TestClient, auth: dict[str, str], settings: Settings) -> None:
    body = b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n' + png(1)
    response = client.post(
        "/images", headers={**auth, "Content-Type": "multipart/form-data; boundary=xyz"}, content=body
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_multipart"
    not_multipart = client.post("/images", headers=auth, json={"files": []})
    assert not_multipart.status_code == 400
    assert leftover_temp_files(settings) == [] and library_files(settings) == []


def test_upload_needs_a_key(client: TestClient) -> None:
    assert upload(client, {}, png(1)).status_code == 401


def test_delete_removes_image_files_and_reference_links(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    mia = make_character(client, auth)
    upload(client, auth, png(1), png(2), character_id=str(mia))
    assert client.delete("/images/0", headers=auth).status_code == 204
    assert client.get("/images/0", headers=auth).status_code == 404
    assert client.get(f"/characters/{mia}", headers=auth).json()["reference_images"] == [1]
    assert len(library_files(settings)) == 2  # image 1's original and thumbnail
    assert client.delete("/images/0", headers=auth).status_code == 404


def test_delete_keeps_a_file_another_workspace_still_uses(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str], settings: Settings
) -> None:
    upload(client, auth, png(1))
    upload(client, other_auth, png(1))
    client.delete("/images/0", headers=auth)
    assert client.get("/images/0/file", headers=other_auth).content == png(1)
    assert len(library_files(settings)) == 2


def test_another_workspaces_numbers_are_404(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    upload(client, auth, png(1))
    for path in ("/images/0", "/images/0/file", "/images/0/thumbnail", "/images/0/similar"):
        assert client.get(path, headers=other_auth).status_code == 404, path
    assert client.delete("/images/0", headers=other_auth).status_code == 404
    assert client.get("/images", headers=other_auth).json()["total"] == 0
    assert upload(client, other_auth, png(2)).json()["images"][0]["number"] == 0


def test_restart_keeps_library_files_and_numbering(data_dir: Path) -> None:
    settings = make_settings(data_dir)
    first = create_app(settings)
    with TestClient(first) as client:
        from tests.conftest import new_key

        auth = {"Authorization": f"Bearer {new_key(first)}"}
        upload(client, auth, png(1), png(2))
        client.delete("/images/1", headers=auth)
        url = client.get("/images/0", headers=auth).json()["url"]
    second = create_app(make_settings(data_dir))
    with TestClient(second) as client:
        assert client.get("/images", headers=auth).json()["total"] == 1
        assert client.get(url.removeprefix("http://testserver")).content == png(1)
        assert upload(client, auth, png(3)).json()["images"][0]["number"] == 2
        items = client.get("/images/0/similar?max_distance=64", headers=auth).json()["items"]
        assert [item["number"] for item in items] == [2]
