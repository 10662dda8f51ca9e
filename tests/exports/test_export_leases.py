"""Only one process renders an export: a claim with a lease; start-up resumes only dead renderers' exports."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from api_server import create_app
from config import Settings
from exports.models import Export, ExportStatus
from exports.runner import ExportWork, claim, resumable_ids, run_export
from services.runtime import Runtime
from storage.db import write_session
from storage.timeutil import utcnow
from tests.api.test_exports import make_book
from tests.conftest import DB_KINDS


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    """The claim is one conditional UPDATE: on PostgreSQL its row lock, on SQLite the write lock."""
    return request.param


def runtime(app: FastAPI) -> Runtime:
    return app.state.runtime  # type: ignore[no-any-return]


def _set(app: FastAPI, export_id: int, **values: object) -> None:
    with write_session(runtime(app).engine) as session:
        export = session.get(Export, export_id)
        assert export is not None
        for name, value in values.items():
            setattr(export, name, value)
        session.add(export)


def _row(app: FastAPI, export_id: int) -> Export:
    with Session(runtime(app).engine) as session:
        export = session.get(Export, export_id)
        assert export is not None
        return export


def _work(app: FastAPI, owner: str) -> ExportWork:
    rt = runtime(app)
    return ExportWork(rt.engine, rt.settings, rt.store, rt.export_store, rt.scratch.path, owner)


def test_only_one_process_claims_an_export_and_a_dead_owners_lease_can_be_taken_over(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    book = make_book(client, auth, pictures=1)
    export_id = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "zip"}).json()["id"]
    _set(app, export_id, status=ExportStatus.QUEUED, lease_owner=None, lease_until=None)

    assert claim(_work(app, "process-a"), export_id) is True
    assert claim(_work(app, "process-b"), export_id) is False  # A's lease is live
    row = _row(app, export_id)
    assert (row.status, row.lease_owner) == (ExportStatus.RUNNING, "process-a")

    _set(app, export_id, lease_until=utcnow() - timedelta(seconds=1))  # A died: nobody renewed it
    assert claim(_work(app, "process-b"), export_id) is True
    assert _row(app, export_id).lease_owner == "process-b"


def test_start_up_resumes_exports_of_dead_renderers_but_not_of_live_ones(
    app: FastAPI, client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    book = make_book(client, auth, pictures=1)
    ids = [
        client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "zip"}).json()["id"]
        for _ in range(2)
    ]
    held, abandoned = ids
    live_until = utcnow() + timedelta(minutes=5)
    _set(app, held, status=ExportStatus.RUNNING, lease_owner="live-process", lease_until=live_until)
    expired = utcnow() - timedelta(seconds=5)
    _set(app, abandoned, status=ExportStatus.RUNNING, lease_owner="dead-process", lease_until=expired)

    second = create_app(settings)  # another API process on the same database and store starts
    with TestClient(second) as other:  # its start-up resumes what no live process holds
        runtime(second).exports.submit(abandoned).result(timeout=120)  # joins the resumed render
        polled = other.get(f"/books/{book['id']}/exports/{held}", headers=auth)  # a poll resumes nothing
        assert polled.status_code == 200 and polled.json()["status"] == "running"
    taken_over = _row(app, abandoned)
    assert taken_over.status == ExportStatus.SUCCEEDED and taken_over.lease_owner is None
    untouched = _row(app, held)
    assert (untouched.status, untouched.lease_owner) == (ExportStatus.RUNNING, "live-process")
    assert untouched.lease_until == live_until


def test_racing_claims_have_exactly_one_winner(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    book = make_book(client, auth, pictures=1)
    export_id = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "zip"}).json()["id"]
    _set(app, export_id, status=ExportStatus.QUEUED, lease_owner=None, lease_until=None)
    racers = 8
    start = threading.Barrier(racers)

    def race(n: int) -> bool:
        start.wait(timeout=30)
        return claim(_work(app, f"process-{n}"), export_id)

    with ThreadPoolExecutor(racers) as pool:
        won = list(pool.map(race, range(racers)))
    assert won.count(True) == 1
    assert _row(app, export_id).lease_owner == f"process-{won.index(True)}"


def test_a_long_render_renews_its_lease_so_nobody_takes_it_over(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    # Eight pages, each with a 300 DPI picture: seconds of rendering, several leases long.
    text = "\n\n".join(f"Page {n}: Pip walks on." for n in range(1, 9))
    book = make_book(client, auth, pictures=3, text=text)
    for page_id in book["page_ids"]:
        client.patch(f"/books/{book['id']}/pages/{page_id}", headers=auth, json={"image": book["numbers"][0]})
    export_id = client.post(f"/books/{book['id']}/exports", headers=auth, json={"format": "pdf"}).json()["id"]
    _set(app, export_id, status=ExportStatus.QUEUED, lease_owner=None, lease_until=None)
    work = _work(app, "renderer")
    work.lease_seconds = 1.0  # renewed every 0.25 s: 0.75 s of slack on a busy machine
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        render = pool.submit(run_export, work, export_id)
        deadline = started + 60
        while _row(app, export_id).lease_owner != "renderer":  # its claim is the first thing it does
            assert time.monotonic() < deadline and not render.done()
            wait([render], timeout=0.02)
        checked_late = False
        while not render.done():
            # What a starting process or a status poll would resume: never this export.
            assert export_id not in resumable_ids(runtime(app).engine)
            if not checked_late and time.monotonic() - started > 2 * work.lease_seconds:
                assert claim(_work(app, "intruder"), export_id) is False  # past the first lease
                checked_late = True
            wait([render], timeout=0.05)  # a poll with a deadline, leaving the CPU to the render
        render.result()
    assert checked_late, "the render ended within two leases: the test proved nothing"
    row = _row(app, export_id)
    assert (row.status, row.lease_owner) == (ExportStatus.SUCCEEDED, None)
