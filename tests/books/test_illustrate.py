"""Illustrating books through the real `openai` SDK against the fake upstream over HTTP.

The fake records every request, so these tests check what OpenAI would receive: page 1's
picture (by sha256) attached to the other pages, the book style once per prompt, each present
character's description, and that only the pages that need drawing are ever sent.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config import Settings
from tests.api.test_generate_image import library_file, running, scene_settings
from tests.fake_openai import FakeOpenAI, RecordedRequest
from tests.imagegen import jpeg, png, upload

STYLE = "loose gouache, warm autumn palette, soft edges"
MIA = "a seven-year-old girl with curly red hair and a yellow raincoat"
REX = "a small scruffy terrier with one black ear"
DEADLINE_SECONDS = 90.0
STORY = [
    "Mia wakes before the sun.",
    "Rex is already at the door.",
    "Mia and Rex find the old boat. (PAGE-THREE)",
    "The river is wide and slow.",
    "Rex barks at a heron.",
    "Mia rows them home.",
]


@pytest.fixture
def settings(data_dir: Path, fake_upstream: tuple[FakeOpenAI, str]) -> Settings:
    return book_settings(data_dir, fake_upstream[1])


def book_settings(data_dir: Path, url: str, **overrides: object) -> Settings:
    # Print-sized pages (2592x2624) are slow to encode on a busy CI machine: no SDK timeouts here.
    return scene_settings(data_dir, url, generation_concurrency=8, openai_timeout_seconds=120, **overrides)


@pytest.fixture
def fake(fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI) -> FakeOpenAI:
    fake.distinct_outputs = True  # every page its own bytes, so sha256 tells them apart
    return fake


def make_story(
    client: TestClient, auth: dict[str, str], *, chain: str = "first", pages: list[str] = STORY
) -> int:
    upload(client, auth, png(1), jpeg(2))
    for name, description, number in (("Mia", MIA, 0), ("Rex", REX, 1)):
        response = client.post("/characters", headers=auth, json={"name": name, "description": description})
        assert response.status_code == 201, response.text
        client.put(
            f"/characters/{response.json()['id']}/references", headers=auth, json={"numbers": [number]}
        )
    book = client.post(
        "/books",
        headers=auth,
        json={"title": "The Boat", "style": STYLE, "cast": ["Mia", "Rex"], "chain": chain},
    )
    assert book.status_code == 201, book.text
    book_id = book.json()["id"]
    pasted = client.post(f"/books/{book_id}/manuscript", headers=auth, json={"text": "\n---\n".join(pages)})
    assert pasted.status_code == 201, pasted.text
    return book_id


def illustrate(client: TestClient, auth: dict[str, str], book_id: int, **body: Any) -> dict[str, Any]:
    response = client.post(f"/books/{book_id}/illustrate", headers=auth, json=body)
    assert response.status_code == 202, response.text
    return response.json()


def settled(client: TestClient, auth: dict[str, str], book_id: int) -> dict[str, Any]:
    """GET the book until no page is queued or running; fails after DEADLINE_SECONDS."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        book = client.get(f"/books/{book_id}", headers=auth).json()
        if not book["progress"]["queued"] and not book["progress"]["running"]:
            return book
        assert time.monotonic() < deadline, f"book still busy: {book['progress']}"
        time.sleep(0.05)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def page_of(request: RecordedRequest) -> int:
    """Which page a request drew, from the scene at the end of its prompt."""
    prompt = request.fields["prompt"]
    return next(i for i, text in enumerate(STORY, start=1) if prompt.endswith(text))


def picture_sha(client: TestClient, auth: dict[str, str], book: dict[str, Any], number: int) -> str:
    return sha(library_file(client, auth, book["pages"][number - 1]["image"]))


def test_chain_first_sends_page_ones_picture_to_every_other_page_at_once(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    book_id = make_story(client, auth)
    fake.hold(from_request=1)  # page 1 is answered; every later page waits at the fake
    answer = illustrate(client, auth, book_id)
    assert [j["page"] for j in answer["jobs"]] == [1, 2, 3, 4, 5, 6] and answer["skipped"] == []
    arrived = fake.wait_for_requests(6)  # pages 2-6 are all in flight together
    fake.release()
    book = settled(client, auth, book_id)
    assert len(fake.requests) == 6
    assert page_of(arrived[0]) == 1 and sorted(page_of(r) for r in arrived[1:]) == [2, 3, 4, 5, 6]
    first = picture_sha(client, auth, book, 1)
    assert first not in {sha(i.data) for i in arrived[0].images}
    for request in arrived[1:]:
        assert first in {sha(i.data) for i in request.images}, page_of(request)
    for request in arrived:
        prompt = request.fields["prompt"]
        assert prompt.count(STYLE) == 1
        text = STORY[page_of(request) - 1]
        assert (MIA in prompt) == ("Mia" in text) and (REX in prompt) == ("Rex" in text)
        assert request.fields["size"] == "2592x2624"
    assert [p["status"] for p in book["pages"]] == ["illustrated"] * 6
    assert len({p["image"] for p in book["pages"]}) == 6
    assert book["progress"] == {"pages": 6, "illustrated": 6, "queued": 0, "running": 0, "failed": 0}
    # 2624 px over 8.75 in: 299.9 DPI (the grid of 16 rounds 2625 down)
    assert all(p["effective_dpi"] == 299 and p["candidates"] == [p["image"]] for p in book["pages"])
    # Each picture is tagged with the characters of its page, so it shows under them in the library.
    for page in book["pages"]:
        shown = client.get(f"/images/{page['image']}", headers=auth).json()["characters"]
        assert sorted(shown) == sorted(c["id"] for c in page["characters"]), page["number"]
    listed = client.get(f"/generations?book_id={book_id}", headers=auth).json()
    assert listed["total"] == 6 and sorted(j["page"] for j in listed["items"]) == [1, 2, 3, 4, 5, 6]
    assert all(j["book_id"] == book_id and j["status"] == "succeeded" for j in listed["items"])


def test_chain_previous_sends_each_page_the_one_before(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    book_id = make_story(client, auth, chain="previous", pages=STORY[:4])
    illustrate(client, auth, book_id)
    book = settled(client, auth, book_id)
    assert [page_of(r) for r in fake.requests] == [1, 2, 3, 4]  # in order: each waits for the last
    for k in (2, 3, 4):
        sent = {sha(i.data) for i in fake.requests[k - 1].images}
        assert picture_sha(client, auth, book, k - 1) in sent
        assert all(picture_sha(client, auth, book, j) not in sent for j in range(1, 5) if j != k - 1)
        assert f"is page {k - 1} of this book, for continuity" in fake.requests[k - 1].fields["prompt"]


def test_a_refused_page_fails_alone_and_a_rerun_draws_only_it(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    book_id = make_story(client, auth)
    fake.fail_when("moderation_blocked", "PAGE-THREE")
    illustrate(client, auth, book_id)
    book = settled(client, auth, book_id)
    statuses = [p["status"] for p in book["pages"]]
    assert statuses == ["illustrated", "illustrated", "failed", "illustrated", "illustrated", "illustrated"]
    assert book["pages"][2]["error"]["code"] == "content_policy" and book["pages"][2]["image"] is None
    assert book["progress"]["failed"] == 1 and book["progress"]["illustrated"] == 5
    before = len(fake.requests)
    again = illustrate(client, auth, book_id)
    assert [j["page"] for j in again["jobs"]] == [3] and again["skipped"] == [1, 2, 4, 5, 6]
    book = settled(client, auth, book_id)
    assert [page_of(r) for r in fake.requests[before:]] == [3]
    assert picture_sha(client, auth, book, 1) in {sha(i.data) for i in fake.requests[-1].images}
    assert [p["status"] for p in book["pages"]] == ["illustrated"] * 6


def test_a_batch_the_quota_cannot_cover_is_refused_whole(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> None:
    with running(book_settings(data_dir, fake_upstream[1], daily_image_quota=4)) as (client, auth):
        book_id = make_story(client, auth)
        response = client.post(f"/books/{book_id}/illustrate", headers=auth, json={})
        assert response.status_code == 429, response.text
        error = response.json()["error"]
        assert error["code"] == "quota_exceeded" and "4 image(s) left" in error["message"]
        assert "needs 6" in error["message"] and response.headers["Retry-After"]
        assert client.get(f"/generations?book_id={book_id}", headers=auth).json()["total"] == 0
        partial = illustrate(client, auth, book_id, pages=[1, 2])  # what fits is accepted
        assert [j["page"] for j in partial["jobs"]] == [1, 2]
        settled(client, auth, book_id)
    assert len(fake.requests) == 2


def test_dry_run_shows_every_page_and_the_cost_and_spends_nothing(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    book_id = make_story(client, auth)
    response = client.post(f"/books/{book_id}/illustrate", headers=auth, json={"dry_run": True})
    assert response.status_code == 200, response.text
    plan = response.json()
    assert [p["page"] for p in plan["pages"]] == [1, 2, 3, 4, 5, 6]
    assert plan["estimated_cost_usd"] == pytest.approx(sum(p["estimated_cost_usd"] for p in plan["pages"]))
    assert plan["estimated_cost_usd"] > 0
    assert plan["pages"][0]["waits_for"] is None and plan["pages"][1]["waits_for"] == "page 1"
    assert plan["pages"][0]["reference_images"] == [0]  # Mia's reference
    assert fake.requests == []
    assert client.get(f"/generations?book_id={book_id}", headers=auth).json()["total"] == 0


def test_redo_appends_candidates_and_the_author_picks_another(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    book_id = make_story(client, auth, pages=STORY[:1])
    illustrate(client, auth, book_id)
    first = settled(client, auth, book_id)["pages"][0]
    assert illustrate(client, auth, book_id)["skipped"] == [1]  # done pages are skipped
    illustrate(client, auth, book_id, redo=True, n=2)
    page = settled(client, auth, book_id)["pages"][0]
    assert len(page["candidates"]) == 3 and page["image"] == first["image"]
    url = f"/books/{book_id}/pages/{page['id']}"
    chosen = client.patch(url, headers=auth, json={"image": page["candidates"][2]})
    assert chosen.status_code == 200 and chosen.json()["image"] == page["candidates"][2]
    assert client.patch(url, headers=auth, json={"image": 999}).status_code == 404
    assert len(fake.requests) == 2


def test_same_idempotency_key_queues_the_book_once(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    book_id = make_story(client, auth, pages=STORY[:3])
    headers = {**auth, "Idempotency-Key": "book-run-1"}
    first = client.post(f"/books/{book_id}/illustrate", headers=headers, json={"redo": True})
    second = client.post(f"/books/{book_id}/illustrate", headers=headers, json={"redo": True})
    assert first.status_code == second.status_code == 202
    assert first.json()["jobs"] == second.json()["jobs"]
    other = client.post(f"/books/{book_id}/illustrate", headers=headers, json={"n": 2})
    assert other.status_code == 409
    settled(client, auth, book_id)
    assert len(fake.requests) == 3


def test_a_crash_while_page_one_draws_resumes_the_book_with_no_duplicates(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> None:
    settings = book_settings(data_dir, fake_upstream[1])
    fake.hold()
    with running(settings) as (client, auth):
        book_id = make_story(client, auth)
        illustrate(client, auth, book_id)
        fake.wait_for_requests(1)  # page 1 in flight, pages 2-6 queued waiting for it
    # The server is gone mid-book; page 1's answer never arrived.
    fake.release()
    with running(settings) as (client, auth):
        book = settled(client, auth, book_id)
        first = picture_sha(client, auth, book, 1)
        listed = client.get(f"/generations?book_id={book_id}", headers=auth).json()
    assert [p["status"] for p in book["pages"]] == ["illustrated"] * 6
    assert all(len(p["candidates"]) == 1 for p in book["pages"])
    assert listed["total"] == 6 and all(j["status"] == "succeeded" for j in listed["items"])
    pages = [page_of(r) for r in fake.requests]
    assert pages[:2] == [1, 1] and sorted(pages[2:]) == [2, 3, 4, 5, 6]  # page 1 again, then each once
    assert all(first in {sha(i.data) for i in r.images} for r in fake.requests[2:])


def test_a_crash_with_pages_in_flight_resumes_only_the_unfinished(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> None:
    settings = book_settings(data_dir, fake_upstream[1])
    fake.hold(from_request=1)
    with running(settings) as (client, auth):
        book_id = make_story(client, auth)
        illustrate(client, auth, book_id)
        fake.wait_for_requests(6)
    fake.release()
    with running(settings) as (client, auth):
        book = settled(client, auth, book_id)
    pages = [page_of(r) for r in fake.requests]
    assert pages.count(1) == 1 and len(pages) == 11  # page 1 done before the crash; 2-6 asked again
    assert [p["status"] for p in book["pages"]] == ["illustrated"] * 6
    assert all(len(p["candidates"]) == 1 for p in book["pages"])


def test_a_reference_sheet_from_the_description_becomes_the_main_reference(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    make_story(client, auth, pages=STORY[:1])
    mia = client.get("/characters?q=mia", headers=auth).json()["items"][0]
    plain = client.post(f"/characters/{mia['id']}/reference-sheet", headers=auth, json={})
    assert plain.status_code == 200, plain.text
    assert client.get(f"/characters/{mia['id']}", headers=auth).json()["reference_images"] == [0]
    sheet = client.post(f"/characters/{mia['id']}/reference-sheet", headers=auth, json={"make_main": True})
    assert sheet.status_code == 200, sheet.text
    number = sheet.json()["images"][0]["number"]
    assert client.get(f"/characters/{mia['id']}", headers=auth).json()["reference_images"] == [number, 0]
    sent = fake.requests[-1]
    assert "turnaround" in sent.fields["prompt"] and MIA in sent.fields["prompt"]
    assert "front, three-quarter view, side view and back view" in sent.fields["prompt"]
    assert [sha(i.data) for i in sent.images] == [sha(library_file(client, auth, 0))]
    missing = client.post("/characters/999/reference-sheet", headers=auth, json={})
    assert missing.status_code == 404


def test_cancelling_the_page_others_wait_on_releases_them_as_after_a_failed_source(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI
) -> None:
    book_id = make_story(client, auth, pages=STORY[:3])
    fake.hold()  # page 1 stays in flight; pages 2 and 3 wait for its picture
    answer = illustrate(client, auth, book_id)
    first = next(j["generation_id"] for j in answer["jobs"] if j["page"] == 1)
    fake.wait_for_requests(1)
    cancelled = client.post(f"/generations/{first}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    fake.release()
    book = settled(client, auth, book_id)
    assert [p["status"] for p in book["pages"]] == ["empty", "illustrated", "illustrated"]
    later = [r for r in fake.requests if page_of(r) != 1]
    assert sorted(page_of(r) for r in later) == [2, 3]
    for request in later:  # drawn without a continuity picture from the cancelled page
        assert "for continuity" not in request.fields["prompt"]
    assert client.get(f"/generations/{first}", headers=auth).json()["images"] == []
