"""Finished exports live in the blob store (local folder or S3): any API process on any host serves them."""

from __future__ import annotations

import io

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader

from api_server import create_app
from config import Settings
from services.runtime import Runtime
from tests.api.test_exports import fetch, make_book
from tests.conftest import BLOB_KINDS, new_key


@pytest.fixture(params=BLOB_KINDS)
def blob_kind(request: pytest.FixtureRequest) -> str:
    return request.param


def runtime(app: FastAPI) -> Runtime:
    return app.state.runtime  # type: ignore[no-any-return]


def export_keys(app: FastAPI) -> list[str]:
    return sorted(obj.key for obj in runtime(app).export_store.scan())


def test_an_export_is_stored_in_the_blob_store_and_served_from_it(
    app: FastAPI, client: TestClient, auth: dict[str, str], settings: Settings, blob_kind: str
) -> None:
    book = make_book(client, auth)
    body = {"format": "pdf", "cover": {"image": book["numbers"][3]}}
    export = client.post(f"/books/{book['id']}/exports", headers=auth, json=body).json()
    assert export["status"] == "succeeded", export
    keys = export_keys(app)
    names = sorted(key.rsplit("/", 1)[1] for key in keys)
    assert names == sorted(["interior.pdf", "cover.pdf", *[f"preview-{n}.webp" for n in range(1, 5)]])
    assert len({key.rsplit("/", 1)[0] for key in keys}) == 1  # one folder: <workspace>/<export folder>
    local = (
        [p for p in settings.exports_dir.rglob("*") if p.is_file()] if settings.exports_dir.exists() else []
    )
    assert len(local) == (len(keys) if blob_kind == "local" else 0)
    assert [p for p in settings.tmp_dir.rglob("export-*")] == []  # the scratch folder is gone

    pdf = fetch(client, export["url"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "pip-and-the-river-interior.pdf" in pdf.headers["content-disposition"]
    assert len(pdf.content) == export["bytes"] and len(PdfReader(io.BytesIO(pdf.content)).pages) == 4
    cover = fetch(client, export["cover_url"])
    assert cover.status_code == 200 and len(cover.content) == export["cover_bytes"]
    preview = fetch(client, export["preview_urls"][0])
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/webp"

    assert client.delete(f"/books/{book['id']}/exports/{export['id']}", headers=auth).status_code == 204
    assert export_keys(app) == []


@pytest.mark.parametrize("blob_kind", ["s3"])  # presigning is an object-store feature
def test_a_presigned_export_download_serves_the_zip_from_s3(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"s3_presign": True}))
    with TestClient(app, follow_redirects=False) as client:
        auth = {"Authorization": f"Bearer {new_key(app)}"}
        book = make_book(client, auth, pictures=1)
        export = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "zip"}).json()
        answer = fetch(client, export["url"])
        assert answer.status_code == 307
        direct = httpx.get(answer.headers["location"])
        assert direct.status_code == 200 and len(direct.content) == export["bytes"]
        assert direct.headers["content-type"] == "application/zip"
        assert "pip-and-the-river-book.zip" in direct.headers["content-disposition"]
