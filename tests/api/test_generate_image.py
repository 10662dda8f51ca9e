"""POST /generate-image through the real app, the real `openai` SDK and the fake upstream over HTTP.

The fake (tests/fake_openai.py) records exactly what the SDK sent, so these tests check what
OpenAI would receive: the composed prompt, every reference image byte for byte, the
parameters, and that a refused request never leaves the server.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api_server import create_app
from config import Settings
from generation.capabilities import MODELS
from generation.procrastinate_queue import SHUTDOWN_GRACE_SECONDS
from tests.conftest import make_settings, new_key
from tests.fake_openai import FakeOpenAI
from tests.imagegen import jpeg, png, upload
from tests.servers import serve

KEY = "sk-test-secret"
SCENE = "Mia opens an umbrella in the rain while Rex shakes himself dry"
DEADLINE_SECONDS = 15.0


def scene_settings(data_dir: Path, upstream_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "image_backend": "openai",
        "openai_api_key": KEY,
        "openai_base_url": f"{upstream_url}/v1",
        "openai_max_retries": 2,
        "openai_timeout_seconds": 10,
        "rate_limit_per_minute": 0,
        "generations_per_minute": 0,
        "max_active_jobs_per_workspace": 0,
    }
    values.update(overrides)
    return make_settings(data_dir, **values)


@pytest.fixture
def settings(data_dir: Path, fake_upstream: tuple[FakeOpenAI, str]) -> Settings:
    """Overrides conftest's: the `app`, `client` and `auth` fixtures use the OpenAI backend."""
    return scene_settings(data_dir, fake_upstream[1])


@contextmanager
def running(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A fresh app on `settings` (a restart when the data_dir is reused), with a key for alpha."""
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {new_key(app)}"}


def character(client: TestClient, auth: dict[str, str], name: str, description: str, **extra: Any) -> int:
    response = client.post(
        "/characters", headers=auth, json={"name": name, "description": description, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def set_references(client: TestClient, auth: dict[str, str], character_id: int, numbers: list[int]) -> None:
    response = client.put(f"/characters/{character_id}/references", headers=auth, json={"numbers": numbers})
    assert response.status_code == 200, response.text


def uploaded(client: TestClient, auth: dict[str, str], *blobs: bytes) -> list[dict[str, Any]]:
    response = upload(client, auth, *blobs)
    assert response.status_code == 201, response.text
    return response.json()["images"]


def library_file(client: TestClient, auth: dict[str, str], number: int) -> bytes:
    image = client.get(f"/images/{number}", headers=auth).json()
    response = client.get(image["url"])
    assert response.status_code == 200, response.text
    return response.content


def poll(client: TestClient, auth: dict[str, str], job_id: str, until: set[str]) -> dict[str, Any]:
    """GET the job until its status is in `until`; fails after DEADLINE_SECONDS."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        job = client.get(f"/generations/{job_id}", headers=auth).json()
        if job["status"] in until:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.02)


def mia_and_rex(client: TestClient, auth: dict[str, str]) -> tuple[int, int]:
    """Mia with reference #0 (PNG), Rex with reference #1 (JPEG)."""
    uploaded(client, auth, png(1), jpeg(2))
    mia = character(
        client, auth, "Mia", "curly red hair, yellow raincoat, green boots", style="thick ink outlines"
    )
    rex = character(client, auth, "Rex", "a small scruffy terrier with one black ear")
    set_references(client, auth, mia, [0])
    set_references(client, auth, rex, [1])
    return mia, rex


# --- what reaches the upstream --------------------------------------------------------------


def test_scene_sends_descriptions_the_one_style_scene_and_every_reference(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    mia, _ = mia_and_rex(client, auth)
    response = client.post(
        "/generate-image",
        headers=auth,
        json={"prompt": SCENE, "characters": [mia, "rex"], "style": "soft watercolour, muted palette"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    assert sent.endpoint == "edits" and sent.authorization == f"Bearer {KEY}"
    prompt = sent.fields["prompt"]
    for part in (
        "curly red hair, yellow raincoat, green boots",
        "a small scruffy terrier with one black ear",
        "soft watercolour, muted palette",
        SCENE,
    ):
        assert part in prompt
    # One style per prompt: the request's style wins over Mia's own "thick ink outlines".
    assert "thick ink outlines" not in prompt
    assert body["prompt"] == prompt and body["scene"] == SCENE
    assert body["reference_images"] == [0, 1] and body["backend"] == "openai"
    assert [(c["id"], c["name"]) for c in body["characters"]] == [(mia, "Mia"), (mia + 1, "Rex")]
    assert [(i.filename, i.content_type) for i in sent.images] == [
        ("image-0.png", "image/png"),
        ("image-1.jpg", "image/jpeg"),
    ]
    assert [i.data for i in sent.images] == [library_file(client, auth, 0), library_file(client, auth, 1)]
    assert sent.fields["model"] == "gpt-image-2.5-flare" and sent.fields["n"] == "1"


EXPECTED_FIDELITY = {"gpt-image-2.5-flare": None, "gpt-image-2": None, "gpt-image-1.5": "high"}


@pytest.mark.parametrize("model", sorted(EXPECTED_FIDELITY))
def test_input_fidelity_only_where_the_capability_table_says(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI, model: str
) -> None:
    # The app's clock, not the calendar: gpt-image-1.5 is live on this day whenever the test runs.
    client.app.state.runtime.clock = lambda: datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    assert MODELS[model].edit_input_fidelity == EXPECTED_FIDELITY[model]
    uploaded(client, auth, png(1))
    response = client.post(
        "/generate-image", headers=auth, json={"prompt": SCENE, "reference_images": [0], "model": model}
    )
    assert response.status_code == 200, response.text
    assert fake.requests[0].endpoint == "edits" and fake.requests[0].fields["model"] == model
    assert fake.requests[0].fields.get("input_fidelity") == EXPECTED_FIDELITY[model]


def test_a_model_is_refused_from_its_shutdown_day_by_the_apps_clock(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    body = {"prompt": SCENE, "model": "gpt-image-1.5"}
    client.app.state.runtime.clock = lambda: datetime(2026, 11, 30, 23, 59, tzinfo=UTC)  # type: ignore[attr-defined]
    assert client.post("/generate-image", headers=auth, json=body).status_code == 200
    client.app.state.runtime.clock = lambda: datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    refused = client.post("/generate-image", headers=auth, json={**body, "dry_run": True})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "model"
    assert "2026-12-01" in refused.json()["error"]["message"]
    assert len(fake.requests) == 1


def test_plain_prompt_alone_generates_without_references(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    response = client.post("/generate-image", headers=auth, json={"prompt": "A lighthouse at dusk"})
    assert response.status_code == 200, response.text
    body = response.json()
    sent = fake.requests[0]
    assert sent.endpoint == "generations" and sent.images == []
    assert sent.fields["prompt"] == "A lighthouse at dusk" and "input_fidelity" not in sent.fields
    assert body["status"] == "succeeded" and body["reference_images"] == []
    assert body["image_url"] == body["images"][0]["url"] and body["images"][0]["b64_json"] is None
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0


# --- results in the library --------------------------------------------------------------------


def test_outputs_join_the_library_and_serve_as_the_next_reference(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    uploaded(client, auth, png(1))
    mia = character(client, auth, "Mia", "curly red hair")
    set_references(client, auth, mia, [0])
    first = client.post("/generate-image", headers=auth, json={"prompt": SCENE, "characters": [mia], "n": 2})
    assert first.status_code == 200, first.text
    job = first.json()
    assert [i["number"] for i in job["images"]] == [1, 2]
    for number in (1, 2):
        image = client.get(f"/images/{number}", headers=auth).json()
        assert image["kind"] == "generated" and image["generation_id"] == job["id"]
        assert image["prompt"] == job["prompt"]
    assert client.get("/images?kind=generated", headers=auth).json()["total"] == 2

    set_references(client, auth, mia, [2])
    second = client.post("/generate-image", headers=auth, json={"prompt": "Mia waves", "characters": ["Mia"]})
    assert second.status_code == 200, second.text
    assert second.json()["reference_images"] == [2]
    sent = fake.requests[1]
    assert [i.data for i in sent.images] == [library_file(client, auth, 2)]


def test_b64_json_answer_decodes_to_the_library_file(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    response = client.post(
        "/generate-image", headers=auth, json={"prompt": "A fox", "response_format": "b64_json"}
    )
    assert response.status_code == 200, response.text
    image = response.json()["images"][0]
    assert base64.b64decode(image["b64_json"]) == library_file(client, auth, image["number"])


# --- refused before anything is spent ----------------------------------------------------------


def test_invalid_requests_never_reach_upstream(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    uploaded(client, auth, *(png(seed) for seed in range(16)))
    uploaded(client, auth, png(16))
    mia = character(client, auth, "Mia", "curly red hair")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"size": "1000x1000"}, "size", "size"),
        ({"size": "huge"}, "size", "size"),
        ({"n": 0}, "n", "between"),
        ({"n": 11}, "n", "between"),
        ({"reference_images": list(range(17))}, "reference_images", "at most 16"),
        ({"characters": [mia + 100]}, "characters.0", ""),
        ({"characters": ["Nobody"]}, "characters.0", ""),
        ({"reference_images": [99]}, "reference_images.0", "99"),
        ({"model": "gpt-image-1"}, "model", "gpt-image-2.5-flare"),
        ({"quality": "ultra"}, "quality", "quality"),
    ]
    for extra, field, words in cases:
        response = client.post("/generate-image", headers=auth, json={"prompt": SCENE, **extra})
        assert response.status_code == 422, (extra, response.text)
        error = response.json()["error"]
        assert error["field"] == field and words in error["message"], (extra, error)

    missing = client.post("/generate-image", headers=auth, json={"characters": [mia]})
    assert missing.status_code == 422 and "prompt" in missing.json()["error"]["field"]
    malformed = client.post(
        "/generate-image", headers={**auth, "Content-Type": "application/json"}, content=b'{"prompt": '
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"

    assert fake.requests == []
    assert client.get("/generations", headers=auth).json()["total"] == 0


def test_dry_run_previews_and_creates_nothing(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    mia, rex = mia_and_rex(client, auth)
    response = client.post(
        "/generate-image",
        headers=auth,
        json={"prompt": SCENE, "characters": [mia, rex], "size": "1536x1024", "dry_run": True},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True and body["endpoint"] == "edit"
    assert body["reference_images"] == [0, 1] and SCENE in body["prompt"]
    assert "curly red hair" in body["prompt"]
    assert body["parameters"]["model"] == "gpt-image-2.5-flare" and body["parameters"]["size"] == "1536x1024"
    assert fake.requests == []
    assert client.get("/generations", headers=auth).json() == {"items": [], "total": 0}
    assert client.get("/images?kind=generated", headers=auth).json()["total"] == 0


# --- upstream faults, as the author sees them ----------------------------------------------


def test_moderation_block_is_422_content_policy_with_upstream_message(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    fake.fail("moderation_blocked")
    response = client.post("/generate-image", headers=auth, json={"prompt": SCENE})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "content_policy"
    assert error["message"] == "Your request was rejected as a result of our safety system."
    job = client.get(f"/generations/{error['generation_id']}", headers=auth).json()
    assert job["status"] == "failed" and job["error"]["code"] == "content_policy"
    assert len(fake.requests) == 1


def test_refused_key_is_502_that_never_shows_the_key(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    fake.fail("unauthorized")
    response = client.post("/generate-image", headers=auth, json={"prompt": SCENE})
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_auth" and "OpenAI API key was refused" in error["message"]
    assert KEY not in response.text
    assert KEY not in client.get(f"/generations/{error['generation_id']}", headers=auth).text
    assert KEY in fake.requests[0].authorization  # the fake did echo it; we did not pass it on


@pytest.mark.parametrize("kind", ["rate_limit", "server_error"])
def test_upstream_busy_after_retries_is_503_with_retry_after(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI, kind: str
) -> None:
    fake.fail(kind, times=3)  # openai_max_retries=2: three attempts, all refused
    response = client.post("/generate-image", headers=auth, json={"prompt": SCENE})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert response.headers["Retry-After"] == "1"  # upstream said 1 ms; we round up to whole seconds
    assert len(fake.requests) == 3


def test_one_rate_limit_is_retried_and_succeeds(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    fake.fail("rate_limit", times=1)
    response = client.post("/generate-image", headers=auth, json={"prompt": SCENE})
    assert response.status_code == 200, response.text
    assert [r.status for r in fake.requests] == [429, 200]
    assert response.json()["status"] == "succeeded"


def test_slow_upstream_is_504(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> None:
    fake.latency = 5.0
    settings = scene_settings(data_dir, fake_upstream[1], openai_timeout_seconds=0.3, openai_max_retries=0)
    with running(settings) as (client, auth):
        response = client.post("/generate-image", headers=auth, json={"prompt": SCENE})
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert len(fake.requests) == 1


# --- idempotency -------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_is_one_job_and_one_upstream_call(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    headers = {**auth, "Idempotency-Key": "scene-7"}
    first = client.post("/generate-image", headers=headers, json={"prompt": SCENE})
    again = client.post("/generate-image", headers=headers, json={"prompt": SCENE, "wait": False})
    assert first.status_code == 200 and again.status_code == 202, again.text
    assert first.json()["id"] == again.json()["id"]
    assert len(fake.requests) == 1

    other = client.post("/generate-image", headers=headers, json={"prompt": "A different scene"})
    assert other.status_code == 409, other.text
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert len(fake.requests) == 1
    assert client.get("/generations", headers=auth).json()["total"] == 1


def test_concurrent_requests_with_one_idempotency_key_make_one_job(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> None:
    """Eight clients race over real HTTP; the unique key in the table picks one winner."""
    fake.latency = 0.2
    app = create_app(scene_settings(data_dir, fake_upstream[1]))
    with serve(app) as url:
        headers = {"Authorization": f"Bearer {new_key(app)}", "Idempotency-Key": "race-1"}
        start = threading.Barrier(8)

        def post(_: int) -> httpx.Response:
            with httpx.Client(base_url=url, timeout=30) as http:
                start.wait()
                return http.post("/generate-image", headers=headers, json={"prompt": SCENE})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(8)))
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        listed = httpx.get(f"{url}/generations", headers=headers).json()
    assert listed["total"] == 1
    assert len(fake.requests) == 1


# --- asynchronous jobs -------------------------------------------------------------------------


def test_wait_false_answers_202_and_the_job_can_be_polled(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str], fake: FakeOpenAI
) -> None:
    fake.latency = 0.2
    first = client.post("/generate-image", headers=auth, json={"prompt": "first", "wait": False})
    assert first.status_code == 202, first.text
    accepted = first.json()
    assert accepted["status"] in ("queued", "running")
    assert accepted["status_url"] == f"http://testserver/generations/{accepted['id']}"
    assert first.headers["Location"] == accepted["status_url"]

    done = poll(client, auth, accepted["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded" and done["attempts"] == 1 and len(done["images"]) == 1

    second = client.post("/generate-image", headers=auth, json={"prompt": "second", "wait": False}).json()
    poll(client, auth, second["id"], {"succeeded"})
    listed = client.get("/generations", headers=auth).json()
    assert [job["id"] for job in listed["items"]] == [second["id"], accepted["id"]]
    assert client.get(f"/generations/{accepted['id']}", headers=other_auth).status_code == 404
    assert client.get("/generations", headers=other_auth).json()["total"] == 0


# --- crashes ----------------------------------------------------------------------------------


def test_job_running_when_the_server_stops_is_resumed_at_next_start(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> None:
    # The held upstream call must outlast the stop: on procrastinate a stopping worker gives a
    # running job SHUTDOWN_GRACE_SECONDS (10 s) before aborting it. With the module's 10 s upstream
    # timeout the call (started first) timed out first and the job ended `failed` instead of
    # being resumed (seen under load on the shared machine).
    settings = scene_settings(data_dir, fake_upstream[1], openai_timeout_seconds=SHUTDOWN_GRACE_SECONDS * 3)
    fake.hold()
    with running(settings) as (client, auth):
        job_id = client.post("/generate-image", headers=auth, json={"prompt": SCENE, "wait": False}).json()[
            "id"
        ]
        fake.wait_for_requests(1)
        job = client.get(f"/generations/{job_id}", headers=auth).json()
        assert job["status"] == "running" and job["attempts"] == 1
    # The app is gone mid-call: the job row still says running.
    fake.release()
    with running(settings) as (client, auth):
        done = poll(client, auth, job_id, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2 and len(done["images"]) == 1
    assert len(fake.requests) == 2


def test_job_interrupted_max_attempts_times_fails_as_abandoned(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> None:
    settings = scene_settings(data_dir, fake_upstream[1], max_job_attempts=2)
    fake.hold()
    with running(settings) as (client, auth):
        job_id = client.post("/generate-image", headers=auth, json={"prompt": SCENE, "wait": False}).json()[
            "id"
        ]
        fake.wait_for_requests(1)
    with running(settings):
        fake.wait_for_requests(2)  # resumed: attempt 2, and stopped again mid-call
    with running(settings) as (client, auth):
        done = poll(client, auth, job_id, {"succeeded", "failed"})
    assert done["status"] == "failed" and done["error"]["code"] == "job_abandoned", done
    assert done["attempts"] == 2
    assert len(fake.requests) == 2


# --- secrets -----------------------------------------------------------------------------------


def test_openai_key_never_appears_in_logs_or_answers(
    client: TestClient,
    auth: dict[str, str],
    fake: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [client.post("/generate-image", headers=auth, json={"prompt": SCENE})]
    fake.fail("unauthorized")
    answers.append(client.post("/generate-image", headers=auth, json={"prompt": SCENE}))
    fake.fail("rate_limit", times=3)
    answers.append(client.post("/generate-image", headers=auth, json={"prompt": SCENE}))
    answers.append(client.get("/generations", headers=auth))
    answers.append(client.get("/health"))
    assert [a.status_code for a in answers] == [200, 502, 503, 200, 200]
    assert len(caplog.records) > 0  # the capture works: the backend logs each upstream call
    assert KEY not in caplog.text
    assert all(KEY not in str(record.__dict__) for record in caplog.records)
    for answer in answers:
        assert KEY not in answer.text and KEY not in str(answer.headers)
    captured = capsys.readouterr()
    assert KEY not in captured.out and KEY not in captured.err
