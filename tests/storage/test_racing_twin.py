"""A lost unique-key race on PostgreSQL: the loser's insert waits for the winner, fails, and the
"racing twin" read that follows (generation/service.py, books/illustrate.py) finds the winner.

PostgreSQL aborts a transaction at its first error and refuses every later statement in it,
so this only works because `write_transaction` rolls back before the exception leaves it.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from accounts.service import get_or_create_workspace
from cluster.postgres import PostgresCluster
from generation import jobs
from generation.models import Generation
from storage.db import make_engine, write_session, write_transaction
from tests.conftest import postgres_database


def _job(workspace_id: int, key: str) -> Generation:
    return Generation(
        id=jobs.new_generation_id(),
        workspace_id=workspace_id,
        scene="a boat",
        prompt="a boat",
        backend="draft",
        model="gpt-image-2.5-flare",
        idempotency_key=key,
        request_hash="same-body",
    )


def _waiting_on_a_lock(engine, deadline: float) -> bool:  # type: ignore[no-untyped-def]
    sql = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(sql).scalar():
                return True
        time.sleep(0.01)
    return False


def test_the_loser_of_an_idempotency_key_race_reads_the_winner(postgres: PostgresCluster) -> None:
    engine = make_engine(postgres_database(postgres))
    try:
        with write_session(engine) as session:
            workspace_id = get_or_create_workspace(session, "alpha").id
        winner, loser = _job(workspace_id, "key-1"), _job(workspace_id, "key-1")
        seen: list[object] = []

        def lose() -> None:
            with Session(engine, expire_on_commit=False) as session:
                try:
                    with write_transaction(session):
                        jobs.add_job(session, loser)  # waits on the winner's uncommitted row
                    seen.append("inserted")
                except IntegrityError:
                    seen.append(jobs.racing_twin(session, loser))

        with Session(engine, expire_on_commit=False) as session, write_transaction(session):
            jobs.add_job(session, winner)
            racer = threading.Thread(target=lose)
            racer.start()
            assert _waiting_on_a_lock(engine, time.monotonic() + 10), "the loser never waited"
        racer.join(10)
        assert len(seen) == 1 and isinstance(seen[0], Generation), seen
        assert seen[0].id == winner.id
    finally:
        engine.dispose()
