"""Concurrent write transactions all commit, and a failed one never leaves the database locked."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import open_database, write_session


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


def test_a_failed_write_rolls_back_and_leaves_the_database_writable(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), write_session(engine) as session:
        session.execute(text("UPDATE workspace SET next_image_number = 99"))
        raise RuntimeError("boom")
    done = threading.Event()

    def write_again() -> None:
        with write_session(engine) as session:
            session.execute(text("UPDATE workspace SET next_image_number = next_image_number + 1"))
        done.set()

    threading.Thread(target=write_again).start()
    assert done.wait(5), "the database stayed locked after a rollback"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT next_image_number FROM workspace")).scalar() == 1
