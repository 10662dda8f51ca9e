"""Workspace caps and the generation rate limit: hit exactly, refused with 429, nothing queued."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from api_server import create_app
from config import Settings
from generation.service import wait_for
from tests.conftest import make_settings, manage_cli, new_key, run_manage
from tests.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
SCENE = "Mia opens an umbrella in the rain"


def openai_settings(data_dir: Path, url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "image_backend": "openai",
        "openai_api_key": "sk-test-not-a-real-key",
        "openai_base_url": f"{url}/v1",
        "openai_max_retries": 0,
        **overrides,
    }
    return make_settings(data_dir, **values)


@contextmanager
def running(settings: Settings) -> Iterator[tuple[TestClient, Callable[..., dict[str, str]]]]:
    app = create_app(settings)
    with TestClient(app) as client:

        def bearer(workspace: str = "alpha", name: str = "test") -> dict[str, str]:
            return {"Authorization": f"Bearer {new_key(app, workspace, name)}"}

        yield client, bearer


class Clock:
    """The app's injectable clock, moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def generate(client: TestClient, auth: dict[str, str], **fields: object) -> tuple[int, dict]:
    response = client.post("/generate-image", headers=auth, json={"prompt": SCENE, **fields})
    return response.status_code, response.json() | {"_headers": dict(response.headers)}


# --- active jobs -------------------------------------------------------------------------------


def test_active_jobs_cap_is_hit_exactly_and_frees_up_when_jobs_finish(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> None:
    settings = openai_settings(
        data_dir, fake_upstream[1], max_active_jobs_per_workspace=2, generation_concurrency=1
    )
    fake.hold()  # the first job stays running, the second queued
    with running(settings) as (client, bearer):
        alpha, beta = bearer("alpha"), bearer("beta")
        first = generate(client, alpha, wait=False)
        second = generate(client, alpha, wait=False)
        assert [first[0], second[0]] == [202, 202]
        status, refused = generate(client, alpha, wait=False)
        assert status == 429
        assert refused["error"]["code"] == "too_many_active_jobs"
        assert int(refused["_headers"]["retry-after"]) >= 1
        assert client.get("/generations", headers=alpha).json()["total"] == 2  # nothing queued
        # Another workspace has its own cap.
        assert generate(client, beta, wait=False)[0] == 202
        fake.release()
        for job_id in (first[1]["id"], second[1]["id"]):  # the cap counts only active jobs
            assert client.portal.call(wait_for, client.app.state.runtime, job_id, 30)  # type: ignore[union-attr]
        assert generate(client, alpha, wait=False)[0] == 202


# --- daily quota -------------------------------------------------------------------------------


def test_daily_quota_refuses_past_the_limit_and_resets_at_utc_midnight(data_dir: Path) -> None:
    settings = make_settings(data_dir, daily_image_quota=3)
    clock = Clock(datetime(2026, 11, 23, 23, 50, tzinfo=UTC))
    with running(settings) as (client, bearer):
        client.app.state.runtime.clock = clock  # type: ignore[attr-defined]
        alpha = bearer("alpha")
        assert generate(client, alpha, n=2)[0] == 200
        status, refused = generate(client, alpha, n=2)
        assert status == 429
        assert refused["error"] == {
            "code": "quota_exceeded",
            "message": "daily image quota reached: 2 of 3 images used today and this request asks for 2; "
            "the quota resets at 00:00 UTC, in 10 min",
            "field": "n",
        }
        assert refused["_headers"]["retry-after"] == "600"
        assert generate(client, alpha, n=1)[0] == 200  # exactly the quota
        assert generate(client, alpha, n=1)[0] == 429
        assert generate(client, bearer("beta"), n=3)[0] == 200  # per workspace

        clock.now = datetime(2026, 11, 24, 0, 0, 30, tzinfo=UTC)
        assert generate(client, alpha, n=3)[0] == 200
        status, refused = generate(client, alpha, n=1)
        assert status == 429
        assert "in 23 h 59 min" in refused["error"]["message"]
        assert refused["_headers"]["retry-after"] == str(24 * 3600 - 30)


def test_failed_jobs_do_not_count_against_the_quota(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> None:
    settings = openai_settings(data_dir, fake_upstream[1], daily_image_quota=2)
    with running(settings) as (client, bearer):
        alpha = bearer()
        fake.fail("server_error")
        status, failed = generate(client, alpha, n=2)
        assert status == 503
        job = client.get(f"/generations/{failed['error']['generation_id']}", headers=alpha).json()
        assert job["status"] == "failed"
        assert job["estimated_cost_usd"] is None
        status, ok = generate(client, alpha, n=2)
        assert status == 200, ok
        assert generate(client, alpha, n=1)[0] == 429


def test_dry_runs_and_idempotent_replays_are_not_charged(data_dir: Path) -> None:
    settings = make_settings(data_dir, daily_image_quota=1, generations_per_minute=0)
    with running(settings) as (client, bearer):
        alpha = bearer()
        for _ in range(3):
            assert generate(client, alpha, dry_run=True)[0] == 200
        replay = {**alpha, "Idempotency-Key": "book-1-page-1"}
        first = client.post("/generate-image", headers=replay, json={"prompt": SCENE})
        again = client.post("/generate-image", headers=replay, json={"prompt": SCENE})
        assert first.status_code == again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        assert generate(client, alpha)[0] == 429


def manage(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return manage_cli(data_dir, *args, DAILY_IMAGE_QUOTA="5")


def test_a_workspace_quota_set_by_the_operator_overrides_the_setting(data_dir: Path) -> None:
    settings = make_settings(data_dir, daily_image_quota=5)
    with running(settings) as (client, bearer):
        alpha = bearer("alpha")
        bearer("beta")
    assert (
        run_manage(
            data_dir, "set-quota", "--workspace", "alpha", "--images", "1", DAILY_IMAGE_QUOTA="5"
        ).returncode
        == 0
    )
    # The operator's real command line once per command; the rest runs in process (same code).
    listed = run_manage(data_dir, "workspaces", DAILY_IMAGE_QUOTA="5").stdout.splitlines()
    assert any(line.split()[1:3] == ["alpha", "1"] for line in listed)
    assert any("beta" in line and "default (5)" in line for line in listed)
    with running(settings) as (client, _):
        assert generate(client, alpha)[0] == 200
        assert generate(client, alpha)[0] == 429
    assert manage(data_dir, "set-quota", "--workspace", "alpha", "--images", "0").returncode == 0
    with running(settings) as (client, _):
        assert all(generate(client, alpha, n=4)[0] == 200 for _ in range(2))  # unlimited
    back = manage(data_dir, "set-quota", "--workspace", "alpha", "--default")
    assert back.stdout.strip() == "workspace 'alpha': daily image quota default (5)"
    with running(settings) as (client, _):
        assert generate(client, alpha)[0] == 429  # 9 used today, the setting allows 5
    missing = manage(data_dir, "set-quota", "--workspace", "nobody", "--images", "3")
    assert missing.returncode == 1
    assert "no workspace named 'nobody'" in missing.stderr


# --- generations rate limit --------------------------------------------------------------------


def test_generation_rate_limit_is_hit_exactly_and_other_keys_are_unaffected(data_dir: Path) -> None:
    settings = make_settings(data_dir, generations_per_minute=2, rate_limit_per_minute=100)
    with running(settings) as (client, bearer):
        spent, same_workspace, other = bearer("alpha"), bearer("alpha", "two"), bearer("beta")
        assert [generate(client, spent)[0] for _ in range(2)] == [200, 200]
        status, refused = generate(client, spent)
        assert status == 429
        assert refused["error"]["code"] == "rate_limited"
        assert "2 generation requests per minute" in refused["error"]["message"]
        headers = refused["_headers"]
        assert headers["ratelimit-limit"] == "2"
        assert headers["ratelimit-remaining"] == "0"
        assert 1 <= int(headers["retry-after"]) <= 60
        assert client.get("/generations", headers=spent).json()["total"] == 2  # nothing queued
        assert generate(client, spent, dry_run=True)[0] == 200  # a preview spends nothing
        assert generate(client, same_workspace)[0] == 200
        assert generate(client, other)[0] == 200
