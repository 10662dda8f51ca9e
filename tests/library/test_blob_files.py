"""Library files on the local store and on S3: upload, dedupe, thumbnails, serving, ETag, delete,
presigned redirects and the unreferenced-file sweep, all through the real app."""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from api_server import create_app
from cluster.s3 import S3Server
from config import Settings
from library.sweep import sweep_unreferenced
from services.runtime import BlobStoreUnavailable, Runtime
from storage.files import content_key
from storage.imaging import EXTENSIONS
from tests.conftest import make_settings, new_key
from tests.imagegen import jpeg, png, upload, webp


def runtime(app: FastAPI) -> Runtime:
    return app.state.runtime  # type: ignore[no-any-return]


def stored_keys(app: FastAPI) -> list[str]:
    return sorted(obj.key for obj in runtime(app).store.scan())


def test_the_store_is_the_one_configured(app: FastAPI, client: TestClient, blob_kind: str) -> None:
    assert runtime(app).store.kind == blob_kind
    health = client.get("/health").json()
    assert health["blob_store"] == blob_kind and health["storage"] == "ok"


def test_upload_stores_original_and_thumbnail_under_content_keys(
    app: FastAPI, client: TestClient, auth: dict[str, str], blob_kind: str, settings: Settings
) -> None:
    image = upload(client, auth, png(1)).json()["images"][0]
    sha = image["sha256"]
    assert stored_keys(app) == [content_key("originals", sha, "png"), content_key("thumbs", sha, "webp")]
    assert runtime(app).store.read(content_key("originals", sha, "png")) == png(1)
    on_disk = [p for p in settings.images_dir.rglob("*") if p.is_file()]
    assert len(on_disk) == (2 if blob_kind == "local" else 0)  # S3 keeps nothing on local disk


def test_identical_bytes_share_one_set_of_files(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    first = upload(client, auth, png(1)).json()["images"][0]
    again = upload(client, auth, png(1))
    assert again.status_code == 200 and again.json()["images"][0]["duplicate"] is True
    assert again.json()["images"][0]["number"] == first["number"]
    assert len(stored_keys(app)) == 2


def test_files_are_served_with_content_type_etag_and_304(client: TestClient, auth: dict[str, str]) -> None:
    images = upload(client, auth, png(1), jpeg(2), webp(3)).json()["images"]
    for image, data, ctype in zip(
        images, (png(1), jpeg(2), webp(3)), ("image/png", "image/jpeg", "image/webp"), strict=True
    ):
        response = client.get(f"/images/{image['number']}/file", headers=auth)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == ctype and response.content == data
        assert response.headers["content-length"] == str(len(data))
        etag = response.headers["etag"]
        assert etag == f'"{image["sha256"]}"' and "max-age" in response.headers["cache-control"]
        cached = client.get(f"/images/{image['number']}/file", headers={**auth, "If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""


def test_thumbnails_are_small_webps(client: TestClient, auth: dict[str, str]) -> None:
    upload(client, auth, jpeg(1, (1600, 800)))
    response = client.get("/images/0/thumbnail", headers=auth)
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(response.content)).size == (512, 256)
    again = client.get("/images/0/thumbnail", headers={**auth, "If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


def test_signed_urls_serve_from_the_store(client: TestClient, auth: dict[str, str]) -> None:
    image = upload(client, auth, png(1)).json()["images"][0]
    parts = urlsplit(image["url"])
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200 and response.content == png(1)


def test_delete_removes_the_files_from_the_store(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    upload(client, auth, png(1), png(2))
    assert len(stored_keys(app)) == 4
    assert client.delete("/images/0", headers=auth).status_code == 204
    assert len(stored_keys(app)) == 2
    assert client.get("/images/0/file", headers=auth).status_code == 404
    assert client.get("/images/1/file", headers=auth).content == png(2)


def test_a_file_missing_from_the_store_is_a_404_naming_it(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    image = upload(client, auth, png(1)).json()["images"][0]
    runtime(app).store.delete(content_key("originals", image["sha256"], "png"))
    response = client.get("/images/0/file", headers=auth)
    assert response.status_code == 404 and response.json()["error"]["code"] == "file_missing"


def test_sweep_removes_only_old_unnamed_files(app: FastAPI, client: TestClient, auth: dict[str, str]) -> None:
    upload(client, auth, png(1))
    named = stored_keys(app)
    store = runtime(app).store
    orphans = [content_key("originals", "ab" * 32, "png"), content_key("thumbs", "ab" * 32, "webp")]
    for key in orphans:
        store.put(key, b"left behind by a crash")
    with runtime(app).session() as session:
        young = sweep_unreferenced(session, store)  # the default grace: another process may be mid-upload
        assert young.files == 0 and stored_keys(app) == sorted(named + orphans)
        swept = sweep_unreferenced(session, store, grace=timedelta(0))
    assert (swept.files, swept.bytes) == (2, 2 * len(b"left behind by a crash"))
    assert stored_keys(app) == named
    assert client.get("/images/0/file", headers=auth).content == png(1)


@pytest.fixture
def presigned_app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"s3_presign": True}))


def test_s3_presign_redirects_to_a_url_that_serves_the_bytes(presigned_app: FastAPI, blob_kind: str) -> None:
    with TestClient(presigned_app, follow_redirects=False) as client:
        auth = {"Authorization": f"Bearer {new_key(presigned_app)}"}
        image = upload(client, auth, jpeg(4)).json()["images"][0]
        response = client.get("/images/0/file", headers=auth)
        if blob_kind == "local":  # nothing to presign: local files are served as before
            assert response.status_code == 200 and response.content == jpeg(4)
            return
        assert response.status_code == 307, response.text
        location = response.headers["location"]
        assert location.startswith("http://127.0.0.1:") and "X-Amz-Expires=300" in location
        direct = httpx.get(location)  # from the object store itself, no API key
        assert direct.status_code == 200 and direct.content == jpeg(4)
        assert direct.headers["content-type"] == "image/jpeg"
        # The ETag check comes first: a client with the current version gets its 304, no redirect.
        etag = f'"{image["sha256"]}"'
        assert client.get("/images/0/file", headers={**auth, "If-None-Match": etag}).status_code == 304
        thumb = client.get("/images/0/thumbnail", headers=auth)
        assert thumb.status_code == 307 and httpx.get(thumb.headers["location"]).headers["content-type"] == (
            "image/webp"
        )


def test_a_scene_reads_its_references_from_the_store_and_stores_its_picture_there(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    assert upload(client, auth, png(1)).status_code == 201
    body = {"prompt": "Mia opens an umbrella in the rain", "reference_images": [0], "size": "1024x1024"}
    done = client.post("/generate-image", headers=auth, json=body)
    assert done.status_code == 200, done.text
    picture = done.json()["images"][0]
    assert picture["number"] == 1 and len(stored_keys(app)) == 4
    served = client.get("/images/1/file", headers=auth)
    assert served.status_code == 200 and served.content[:8] == b"\x89PNG\r\n\x1a\n"
    inline = client.post("/v1/images/generations", headers=auth, json={"prompt": "A fox in the snow"})
    assert inline.status_code == 200, inline.text
    image = client.get("/images/2", headers=auth).json()
    key = content_key("originals", image["sha256"], EXTENSIONS[image["format"]])
    assert base64.b64decode(inline.json()["data"][0]["b64_json"]) == runtime(app).store.read(key)


@pytest.mark.parametrize("blob_kind", ["s3"])
def test_health_reports_a_bucket_that_stopped_answering(
    app: FastAPI, client: TestClient, settings: Settings, s3_server: S3Server
) -> None:
    assert client.get("/health").json()["storage"] == "ok"
    bucket = urlsplit(str(settings.storage_url)).netloc
    s3_server.client().delete_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    body = client.get("/health").json()
    assert body["status"] == "error" and "storage" in body["failing"]
    assert body["storage"].startswith("error:") and body["blob_store"] == "s3"


def test_a_missing_bucket_stops_start_up_with_a_clear_message(tmp_path: Path, s3_server: S3Server) -> None:
    settings = make_settings(
        tmp_path / "data", storage_url="s3://no-such-bucket", s3_endpoint_url=s3_server.url
    )
    with pytest.raises(BlobStoreUnavailable, match="no-such-bucket"), TestClient(create_app(settings)):
        pass
