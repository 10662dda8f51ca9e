"""One structured log line per request, request ids, and no secrets or base64 in any log."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from services.request_log import configure_logging

B64 = base64.b64encode(bytes(range(256)) * 4).decode()  # 1,368 characters, like a small image


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.fields for r in caplog.records if r.name == "storyloom.request"]  # type: ignore[attr-defined]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_a_sane_request_id_is_echoed_and_logged(
    client: TestClient, auth: dict[str, str], logs: pytest.LogCaptureFixture
) -> None:
    response = client.get("/characters", headers={**auth, "X-Request-ID": "trace-42.a:b"})
    assert response.headers["X-Request-ID"] == "trace-42.a:b"
    assert request_lines(logs)[-1]["request_id"] == "trace-42.a:b"


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "semi;colon", "<script>", ""])
def test_an_unsafe_request_id_is_replaced_by_a_fresh_one(client: TestClient, bad: str) -> None:
    response = client.get("/health", headers={"X-Request-ID": bad})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_a_request_id_is_created_for_each_request_and_errors_carry_it(client: TestClient) -> None:
    first = client.get("/health").headers["X-Request-ID"]
    second = client.get("/characters").headers["X-Request-ID"]  # a 401 in the error shape
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


def test_the_request_id_is_on_request_state_for_routes(app: FastAPI) -> None:
    @app.get("/test-request-id")
    def echo(request: Request) -> dict[str, str]:
        return {"request_id": request.state.request_id}

    with TestClient(app) as client:
        response = client.get("/test-request-id", headers={"X-Request-ID": "abc123"})
    assert response.json() == {"request_id": "abc123"}


def test_one_line_per_request_with_route_template_status_duration_and_workspace(
    client: TestClient, auth: dict[str, str], logs: pytest.LogCaptureFixture
) -> None:
    logs.clear()
    response = client.get("/characters/12345?q=secret-search", headers=auth)
    assert response.status_code == 404
    (line,) = request_lines(logs)
    assert line["method"] == "GET"
    assert line["path"] == "/characters/{character_id}"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["workspace"] == "alpha"
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert "secret-search" not in logs.text


def test_unauthenticated_and_unknown_paths_are_logged_without_a_workspace(
    client: TestClient, logs: pytest.LogCaptureFixture
) -> None:
    logs.clear()
    client.get("/no-such-page")
    (line,) = request_lines(logs)
    assert (line["path"], line["status"], line["workspace"]) == ("/no-such-page", 404, None)


def test_no_key_and_no_base64_reach_the_logs_even_when_requests_carry_them(
    client: TestClient, auth: dict[str, str], logs: pytest.LogCaptureFixture
) -> None:
    key = auth["Authorization"].removeprefix("Bearer ")
    logs.clear()
    client.post(
        "/characters",
        json={"name": "Mia", "description": f"{key} {B64}", "style": "sk-proj-abcdefghijkl"},
        headers=auth,
    )
    client.post(f"/characters/1/references?key={key}", json={"image_base64": B64}, headers=auth)
    client.get(f"/nothing/{B64[:400]}/{key}", headers=auth)
    client.get("/characters", headers={"Authorization": f"Bearer {key}", "X-Request-ID": key})
    client.get("/characters", headers={"Authorization": "Bearer sl_not_a_real_key_but_secret"})

    assert len(request_lines(logs)) == 5
    text = logs.text + json.dumps(request_lines(logs))
    for secret in (key, key[3:], B64[:100], "sl_not_a_real_key_but_secret", "sk-proj-abcdefghijkl"):
        assert secret not in text


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = configure_logging("INFO", "json", stream=buffer)
    yield buffer
    logging.getLogger().removeHandler(handler)


def test_the_scrubber_cleans_messages_arguments_fields_and_tracebacks(stream: io.StringIO) -> None:
    log = logging.getLogger("storyloom.test")
    log.info("calling upstream with %s", "Authorization: Bearer sk-live-abcdef123456")
    log.warning("key %s leaked", "sl_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", extra={"fields": {"body": B64}})
    try:
        raise ValueError(f"bad image {B64}")
    except ValueError:
        log.exception("upload failed")
    output = stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["level"] for line in lines] == ["INFO", "WARNING", "ERROR"]
    assert lines[0]["message"] == "calling upstream with Authorization: Bearer [redacted]"
    assert lines[1]["message"] == "key sl_[redacted] leaked"
    assert lines[1]["body"] == "[base64 redacted]"
    assert "ValueError: bad image [base64 redacted]" in lines[2]["exception"]
    for secret in ("sk-live-abcdef123456", "sl_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", B64[:100]):
        assert secret not in output


def test_short_ids_digests_and_long_paths_are_not_mistaken_for_secrets(stream: io.StringIO) -> None:
    digest = "a" * 64
    path = "/srv/storyloom-data/images/originals/ab/cd/" + "0123456789abcdef" * 4 + ".png"
    logging.getLogger("storyloom.test").info("image %s stored as sl_x for gen_123 in %s", digest, path)
    message = json.loads(stream.getvalue())["message"]
    assert message == f"image {digest} stored as sl_x for gen_123 in {path}"


def test_url_safe_base64_is_scrubbed_too(stream: io.StringIO) -> None:
    blob = base64.urlsafe_b64encode(bytes(range(256)) * 2).decode()
    assert "-" in blob and "_" in blob
    logging.getLogger("storyloom.test").info("blob %s", blob)
    assert json.loads(stream.getvalue())["message"] == "blob [base64 redacted]"


def test_text_format_writes_plain_lines() -> None:
    buffer = io.StringIO()
    handler = configure_logging("INFO", "text", stream=buffer)
    try:
        logging.getLogger("storyloom.test").info("hello %s", "Bearer abc.def")
    finally:
        logging.getLogger().removeHandler(handler)
    assert buffer.getvalue().rstrip().endswith("INFO storyloom.test hello Bearer [redacted]")
