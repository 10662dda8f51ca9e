"""Serving files and thumbnails: content types, caching headers, and signed URLs."""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi.testclient import TestClient
from PIL import Image

from config import Settings
from services.signing import expiry, sign_query, verify
from tests.imagegen import jpeg, png, upload, webp


def _relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_file_is_served_with_its_content_type_and_etag(client: TestClient, auth: dict[str, str]) -> None:
    images = upload(client, auth, png(1), jpeg(2), webp(3)).json()["images"]
    for image, data, ctype in zip(
        images, (png(1), jpeg(2), webp(3)), ("image/png", "image/jpeg", "image/webp"), strict=True
    ):
        response = client.get(f"/images/{image['number']}/file", headers=auth)
        assert response.status_code == 200
        assert response.headers["content-type"] == ctype and response.content == data
        assert response.headers["etag"] == f'"{image["sha256"]}"'
        assert "max-age" in response.headers["cache-control"]


def test_matching_if_none_match_is_304(client: TestClient, auth: dict[str, str]) -> None:
    image = upload(client, auth, png(1)).json()["images"][0]
    response = client.get("/images/0/file", headers={**auth, "If-None-Match": f'"{image["sha256"]}"'})
    assert response.status_code == 304 and response.content == b""
    assert client.get("/images/0/file", headers={**auth, "If-None-Match": '"other"'}).status_code == 200


def test_thumbnail_is_a_small_webp(client: TestClient, auth: dict[str, str]) -> None:
    upload(client, auth, jpeg(1, (1600, 800)))
    response = client.get("/images/0/thumbnail", headers=auth)
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(response.content)).size == (512, 256)
    etag = response.headers["etag"]
    assert client.get("/images/0/thumbnail", headers={**auth, "If-None-Match": etag}).status_code == 304


def test_signed_urls_work_without_a_header(client: TestClient, auth: dict[str, str]) -> None:
    image = upload(client, auth, png(1)).json()["images"][0]
    file = client.get(_relative(image["url"]))
    assert file.status_code == 200 and file.content == png(1)
    thumb = client.get(_relative(image["thumbnail_url"]))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"


def test_signed_urls_are_stable_within_a_bucket(client: TestClient, auth: dict[str, str]) -> None:
    upload(client, auth, png(1))
    first = client.get("/images/0", headers=auth).json()["url"]
    second = client.get("/images/0", headers=auth).json()["url"]
    assert first == second or int(parse_qs(urlsplit(second).query)["exp"][0]) > time.time()


def test_tampered_signed_urls_are_403(client: TestClient, auth: dict[str, str]) -> None:
    images = upload(client, auth, png(1), png(2)).json()["images"]
    query = parse_qs(urlsplit(images[0]["url"]).query)
    good = {key: values[0] for key, values in query.items()}
    for changed in (
        {"sig": "0" * 64},
        {"exp": str(int(good["exp"]) + 3600)},
        {"w": str(int(good["w"]) + 1)},
        {"sig": good["sig"][:-1]},
    ):
        response = client.get(f"/images/0/file?{urlencode({**good, **changed})}")
        assert response.status_code == 403, changed
        assert response.json()["error"]["code"] == "invalid_signature"
    # A signature for image 0 does not open image 1 (or image 0's thumbnail).
    assert client.get(f"/images/1/file?{urlencode(good)}").status_code == 403
    assert client.get(f"/images/0/thumbnail?{urlencode(good)}").status_code == 403
    assert client.get("/images/0/file").status_code == 401


def test_expired_signed_url_is_403(client: TestClient, auth: dict[str, str], settings: Settings) -> None:
    upload(client, auth, png(1))
    workspace = int(parse_qs(urlsplit(client.get("/images/0", headers=auth).json()["url"]).query)["w"][0])
    old = sign_query(settings.signing_key, workspace, "/images/0/file", ttl=60, now=time.time() - 7200)
    response = client.get(f"/images/0/file?{old}")
    assert response.status_code == 403 and response.json()["error"]["code"] == "signature_expired"


def test_signature_exp_rounds_up_to_a_bucket() -> None:
    assert expiry(3600, now=1000) == expiry(3600, now=1080) == 4680  # 360 s buckets
    query = dict(item.split("=") for item in sign_query(b"k", 7, "/images/3/file", 3600, now=1000).split("&"))
    assert verify(b"k", "/images/3/file", query["w"], query["exp"], query["sig"], now=2000) == 7
