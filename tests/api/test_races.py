"""Caps, quotas, Idempotency-Keys and unique names hold under racing requests, on both databases.

SQLite serialises writers with its database lock; PostgreSQL (READ COMMITTED) runs them side by
side, so these guarantees rest on the workspace row lock (storage/locks.py). Each test fires
its requests over real HTTP (uvicorn on 127.0.0.1) from threads released together by a barrier.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import Session, select

from api_server import create_app
from config import Settings
from generation.capabilities import MAX_CHARACTER_REFERENCES
from generation.models import Generation
from tests.conftest import make_settings, new_key
from tests.fake_openai import FakeOpenAI
from tests.imagegen import png
from tests.servers import serve

SCENE = "Mia opens an umbrella in the rain"
# No per-key request limits: these tests are about the database, not the rate limiter.
UNLIMITED = {"rate_limit_per_minute": 0, "generations_per_minute": 0}


@contextmanager
def served(settings: Settings) -> Iterator[tuple[str, dict[str, str], Any]]:
    """The app under uvicorn: its base URL, a key's headers (workspace alpha) and its runtime."""
    app = create_app(settings)
    with serve(app) as url:
        yield url, {"Authorization": f"Bearer {new_key(app)}"}, app.state.runtime


def at_once(count: int, send: Callable[[httpx.Client, int], httpx.Response]) -> list[httpx.Response]:
    """`count` requests from `count` threads, each with its own connection, released together."""
    barrier = threading.Barrier(count)
    answers: list[httpx.Response | BaseException | None] = [None] * count

    def run(index: int) -> None:
        try:
            with httpx.Client(timeout=60) as client:
                barrier.wait(timeout=30)
                answers[index] = send(client, index)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(isinstance(a, httpx.Response) for a in answers), answers
    return answers  # type: ignore[return-value]


def jobs_in_database(runtime: Any) -> int:
    with Session(runtime.engine) as session:
        return session.exec(select(func.count()).select_from(Generation)).one()


def outcome(response: httpx.Response) -> str:
    if response.status_code in (200, 201, 202):
        return "admitted"
    return f"{response.status_code} {response.json()['error']['code']}"


def test_daily_quota_of_10_admits_exactly_10_of_30_racing_generations(
    data_dir: Path,
) -> None:
    settings = make_settings(data_dir, daily_image_quota=10, **UNLIMITED)
    with served(settings) as (url, auth, runtime):
        answers = at_once(
            30,
            lambda client, _: client.post(
                f"{url}/generate-image", headers=auth, json={"prompt": SCENE, "wait": False}
            ),
        )
        assert Counter(map(outcome, answers)) == {"admitted": 10, "429 quota_exceeded": 20}
        assert jobs_in_database(runtime) == 10


def test_active_jobs_cap_admits_exactly_the_cap_of_racing_generations(
    data_dir: Path, fake: FakeOpenAI, openai_base_url: str
) -> None:
    settings = make_settings(
        data_dir,
        image_backend="openai",
        openai_api_key="sk-test-not-a-real-key",
        openai_base_url=openai_base_url,
        openai_max_retries=0,
        max_active_jobs_per_workspace=5,
        **UNLIMITED,
    )
    fake.hold()  # admitted jobs stay queued or running while the others arrive
    try:
        with served(settings) as (url, auth, runtime):
            answers = at_once(
                30,
                lambda client, _: client.post(
                    f"{url}/generate-image", headers=auth, json={"prompt": SCENE, "wait": False}
                ),
            )
            assert Counter(map(outcome, answers)) == {"admitted": 5, "429 too_many_active_jobs": 25}
            assert jobs_in_database(runtime) == 5
            fake.release()
    finally:
        fake.release()


def test_one_idempotency_key_sent_ten_times_at_once_makes_one_job(
    data_dir: Path,
) -> None:
    with served(make_settings(data_dir, **UNLIMITED)) as (url, auth, runtime):
        headers = {**auth, "Idempotency-Key": "race-key-1"}
        answers = at_once(
            10,
            lambda client, _: client.post(
                f"{url}/generate-image", headers=headers, json={"prompt": SCENE, "wait": False}
            ),
        )
        assert {r.status_code for r in answers} <= {200, 202}, [r.text for r in answers]
        assert len({r.json()["id"] for r in answers}) == 1
        assert jobs_in_database(runtime) == 1


def test_racing_creates_of_one_character_name_make_one_character(
    data_dir: Path,
) -> None:
    with served(make_settings(data_dir, **UNLIMITED)) as (url, auth, _):
        answers = at_once(
            10,
            lambda client, i: client.post(
                f"{url}/characters",
                headers=auth,
                json={"name": "Mia" if i % 2 else "MIA", "description": "a girl in a yellow coat"},
            ),
        )
        assert Counter(r.status_code for r in answers) == {201: 1, 409: 9}, [r.text for r in answers]
        assert {r.json()["error"]["field"] for r in answers if r.status_code == 409} == {"name"}
        listed = httpx.get(f"{url}/characters", headers=auth).json()
        assert listed["total"] == 1


def test_racing_page_adds_and_reference_uploads_keep_their_lists_in_order(data_dir: Path) -> None:
    """A book's page positions and a character's reference list are computed from the list as it
    is: 20 racing page adds get positions 1..20 once each; 20 racing uploads to one character
    keep exactly the cap of references and refuse the rest whole (422, nothing stored)."""
    with served(make_settings(data_dir, **UNLIMITED)) as (url, auth, _):
        book = httpx.post(f"{url}/books", headers=auth, json={"title": "The boat"}).json()["id"]
        pages_url = f"{url}/books/{book}/pages"
        answers = at_once(20, lambda client, i: client.post(pages_url, headers=auth, json={"text": f"p{i}"}))
        assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
        pages = httpx.get(f"{url}/books/{book}", headers=auth).json()["pages"]
        assert sorted(p["number"] for p in pages) == list(range(1, 21))
        assert sorted(p["text"] for p in pages) == sorted(f"p{i}" for i in range(20))

        mia = httpx.post(f"{url}/characters", headers=auth, json={"name": "Mia", "description": "a girl"})
        refs = f"{url}/characters/{mia.json()['id']}/references"
        count = MAX_CHARACTER_REFERENCES + 4
        answers = at_once(
            count,
            lambda client, i: client.post(
                refs, headers=auth, files=[("files", (f"r{i}.png", png(200 + i), "image/png"))]
            ),
        )
        assert Counter(outcome(r) for r in answers) == {
            "admitted": MAX_CHARACTER_REFERENCES,
            "422 too_many_references": 4,
        }, [r.text for r in answers]
        kept = httpx.get(f"{url}/characters/{mia.json()['id']}", headers=auth).json()["reference_images"]
        assert len(kept) == len(set(kept)) == MAX_CHARACTER_REFERENCES
