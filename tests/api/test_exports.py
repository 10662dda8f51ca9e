"""POST /books/{id}/exports end to end: a real app, real SQLite, files read back as a printer would."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.imagegen import encode, picture, upload

STORY = "Pip woke up early.\n\nPip ran to the river.\n\nThe river was wide.\n\nPip went home."


def make_book(
    client: TestClient, auth: dict[str, str], pictures: int = 3, text: str = STORY
) -> dict[str, Any]:
    """A 4-page book whose pages 1, 2 and 4 have a chosen 1024 px picture; page 3 has none."""
    book = client.post("/books", headers=auth, json={"title": "Pip and the River"}).json()
    pages = client.post(f"/books/{book['id']}/manuscript", headers=auth, json={"text": text}).json()["pages"]
    blobs = [encode(picture(seed, (1024, 1024))) for seed in range(pictures + 1)]
    numbers = [item["number"] for item in upload(client, auth, *blobs).json()["images"]]
    for page, number in zip([pages[0], pages[1], pages[3]], numbers, strict=False):
        response = client.patch(
            f"/books/{book['id']}/pages/{page['id']}", headers=auth, json={"image": number}
        )
        assert response.status_code == 200, response.text
    book["numbers"] = numbers
    book["page_ids"] = [p["id"] for p in pages]
    return book


def fetch(client: TestClient, url: str) -> Any:
    """GET a signed URL with no header, as a browser link or print service would."""
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def test_pdf_with_cover_is_made_warned_about_and_downloadable_by_signed_url(
    client: TestClient, auth: dict[str, str]
) -> None:
    book = make_book(client, auth)
    body = {"format": "pdf", "paper": "cream", "cover": {"image": book["numbers"][3]}}
    response = client.post(f"/books/{book['id']}/exports", headers=auth, json=body)
    assert response.status_code == 201, response.text
    export = response.json()
    assert (export["status"], export["format"], export["profile"], export["pages"]) == (
        "succeeded",
        "pdf",
        "print",
        4,
    )
    assert export["spine_in"] == pytest.approx(4 * 0.0025, abs=0.0001)
    found = {(w["page"], w["code"]) for w in export["warnings"]}
    assert found == {
        (None, "page_count"),
        (1, "low_resolution"),
        (2, "low_resolution"),
        (3, "no_picture"),
        (4, "low_resolution"),
        (None, "low_resolution"),  # the cover's front picture
    }

    pdf = fetch(client, export["url"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "pip-and-the-river-interior.pdf" in pdf.headers["content-disposition"]
    assert len(pdf.content) == export["bytes"]
    reader = PdfReader(io.BytesIO(pdf.content))
    assert len(reader.pages) == 4
    assert [float(v) for v in reader.pages[0].trimbox] == pytest.approx([0, 9, 612, 621], abs=0.5)
    assert "Pip ran to the river." in reader.pages[1].extract_text()

    cover = fetch(client, export["cover_url"])
    assert cover.status_code == 200 and cover.headers["content-type"] == "application/pdf"
    width = float(PdfReader(io.BytesIO(cover.content)).pages[0].mediabox.width)
    assert width == pytest.approx((2 * 8.5 + 4 * 0.0025 + 0.25) * 72, abs=0.5)

    assert len(export["preview_urls"]) == 4
    thumb = fetch(client, export["preview_urls"][1])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"

    again = client.get(f"/books/{book['id']}/exports/{export['id']}", headers=auth).json()
    assert again["warnings"] == export["warnings"] and again["url"]
    listed = client.get(f"/books/{book['id']}/exports", headers=auth).json()["items"]
    assert [e["id"] for e in listed] == [export["id"]]


def test_signed_export_url_refuses_tampering(client: TestClient, auth: dict[str, str]) -> None:
    book = make_book(client, auth)
    export = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "pdf"}).json()
    assert export["cover_url"] is None
    tampered = export["url"].replace("/file?", "/cover?")
    assert fetch(client, tampered).status_code == 403
    assert client.get(urlsplit(export["url"]).path).status_code == 401


def test_zip_holds_pictures_text_and_manifest(client: TestClient, auth: dict[str, str]) -> None:
    book = make_book(client, auth)
    export = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "zip"}).json()
    assert export["status"] == "succeeded" and export["warnings"] == []
    response = fetch(client, export["url"])
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == [
            "book.json",
            "page-01.png",
            "page-02.png",
            "page-04.png",
            "text.md",
        ]
        manifest = json.loads(archive.read("book.json"))
        assert "## Page 3\n\nThe river was wide." in archive.read("text.md").decode()
    assert manifest["title"] == "Pip and the River" and manifest["trim"] == "8.5x8.5"
    assert [p["image"] for p in manifest["pages"]] == [*book["numbers"][:2], None, book["numbers"][2]]
    assert manifest["pages"][0]["file"] == "page-01.png" and manifest["pages"][2]["file"] is None


def test_screen_profile_without_waiting_answers_202_then_finishes(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    book = make_book(client, auth)
    body = {"format": "pdf", "profile": "screen", "wait": False}
    response = client.post(f"/books/{book['id']}/exports", headers=auth, json=body)
    assert response.status_code in (201, 202)
    export = response.json()
    if response.status_code == 202:
        assert response.headers["location"] == export["status_url"] and export["url"] is None
        app.state.runtime.exports.submit(export["id"]).result(
            timeout=120
        )  # the runner's own future, no sleeps
    done = client.get(urlsplit(export["status_url"]).path, headers=auth).json()
    assert done["status"] == "succeeded" and done["profile"] == "screen"
    assert "page_count" not in {w["code"] for w in done["warnings"]}


def test_changing_the_book_retires_its_exports_and_the_next_export_deletes_their_files(
    client: TestClient, auth: dict[str, str], settings: Any
) -> None:
    book = make_book(client, auth)
    first = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "zip"}).json()
    (folder,) = (Path(settings.exports_dir) / "1").iterdir()
    assert (folder / "book.zip").is_file()
    page_id = book["page_ids"][2]
    client.patch(f"/books/{book['id']}/pages/{page_id}", headers=auth, json={"text": "A new line."})

    gone = client.get(f"/books/{book['id']}/exports/{first['id']}", headers=auth)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "export_outdated"
    assert fetch(client, first["url"]).status_code == 404
    assert client.get(f"/books/{book['id']}/exports", headers=auth).json()["items"] == []

    second = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "zip"}).json()
    assert second["status"] == "succeeded" and second["id"] != first["id"] and not folder.exists()
    assert len(list(folder.parent.iterdir())) == 1
    assert client.delete(f"/books/{book['id']}/exports/{second['id']}", headers=auth).status_code == 204
    assert list(folder.parent.iterdir()) == []


def test_deleting_the_book_deletes_its_exports(
    client: TestClient, auth: dict[str, str], settings: Any
) -> None:
    book = make_book(client, auth)
    export = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "zip"}).json()
    (folder,) = (Path(settings.exports_dir) / "1").iterdir()
    assert client.delete(f"/books/{book['id']}", headers=auth).status_code == 204
    assert fetch(client, export["url"]).status_code == 404
    other = make_book(client, auth)
    newer = client.post(f"/books/{other['id']}/exports", headers=auth, json={"format": "zip"}).json()
    assert newer["id"] != export["id"], "export ids are never reused"
    assert not folder.exists() and len(list(folder.parent.iterdir())) == 1


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        ({"format": "docx"}, "format", ["pdf", "zip"]),
        ({"format": "pdf", "profile": "web"}, "profile", ["print", "screen"]),
        ({"format": "pdf", "paper": "glossy"}, "paper", ["white", "cream", "premium-colour"]),
    ],
)
def test_unknown_choices_are_422_listing_the_allowed_values(
    client: TestClient, auth: dict[str, str], body: dict[str, Any], field: str, allowed: list[str]
) -> None:
    book = make_book(client, auth, pictures=0)
    response = client.post(f"/books/{book['id']}/exports", headers=auth, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == field and all(value in error["message"] for value in allowed), error


def test_bad_books_and_covers_are_refused(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    empty = client.post("/books", headers=auth, json={"title": "Nothing yet"}).json()
    response = client.post(f"/books/{empty['id']}/exports", headers=auth, json={"format": "pdf"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "pages"

    book = make_book(client, auth, pictures=0)
    for cover, field in (
        ({"image": 999}, "cover.image"),
        ({"image": book["numbers"][0], "back_image": 998}, "cover.back_image"),
    ):
        response = client.post(
            f"/books/{book['id']}/exports", headers=auth, json={"format": "pdf", "cover": cover}
        )
        assert response.status_code == 422 and response.json()["error"]["field"] == field, response.text

    theirs = client.post(f"/books/{book['id']}/exports", headers=other_auth, json={"format": "pdf"})
    assert theirs.status_code == 404
    mine = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "zip"}).json()
    assert client.get(f"/books/{book['id']}/exports/{mine['id']}", headers=other_auth).status_code == 404
    assert client.get(f"/books/{book['id']}/exports/{mine['id']}/file", headers=other_auth).status_code == 404
