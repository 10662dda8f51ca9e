"""Writers queue fairly in-process, and a failed transaction never leaves the gate shut."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import open_database, write_session
from storage.fairlock import FairLock


def test_fair_lock_hands_over_in_arrival_order() -> None:
    lock = FairLock()
    assert lock.acquire(timeout=1)
    order: list[int] = []
    queued = [threading.Event() for _ in range(5)]
    threads = []
    for i in range(5):

        def take(i: int = i) -> None:
            queued[i].set()
            assert lock.acquire(timeout=5)
            order.append(i)
            lock.release()

        thread = threading.Thread(target=take)
        thread.start()
        queued[i].wait()
        deadline = time.monotonic() + 5
        while len(lock._waiters) < i + 1:  # wait until it is really queued behind the others
            assert time.monotonic() < deadline, "thread never queued"
            threading.Event().wait(0.001)
        threads.append(thread)
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_fair_lock_times_out_and_leaves_the_queue() -> None:
    lock = FairLock()
    assert lock.acquire(timeout=1)
    assert lock.acquire(timeout=0.01) is False
    lock.release()
    assert lock.acquire(timeout=0.01)  # nobody stale is left in the queue
    lock.release()


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = open_database(f"sqlite:///{tmp_path / 'gate.db'}")
    with write_session(engine) as session:
        session.execute(
            text(
                "INSERT INTO workspace(name, next_image_number, library_version, created_at)"
                " VALUES ('w', 0, 0, '2026-01-01')"
            )
        )
    yield engine
    engine.dispose()


def test_concurrent_writers_all_commit(engine) -> None:  # type: ignore[no-untyped-def]
    def bump() -> None:
        for _ in range(25):
            with write_session(engine) as session:
                session.execute(text("UPDATE workspace SET next_image_number = next_image_number + 1"))

    threads = [threading.Thread(target=bump) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT next_image_number FROM workspace")).scalar() == 400


def test_a_failed_write_rolls_back_and_releases_the_gate(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), write_session(engine) as session:
        session.execute(text("UPDATE workspace SET next_image_number = 99"))
        raise RuntimeError("boom")
    done = threading.Event()

    def write_again() -> None:
        with write_session(engine) as session:
            session.execute(text("UPDATE workspace SET next_image_number = next_image_number + 1"))
        done.set()

    threading.Thread(target=write_again).start()
    assert done.wait(5), "the gate stayed shut after a rollback"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT next_image_number FROM workspace")).scalar() == 1
