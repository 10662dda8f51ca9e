"""Row and key locks for write transactions, per database: what SQLite's write lock gave for free.

On SQLite every write transaction starts with `BEGIN IMMEDIATE` (storage/db.py), so writers run
one at a time and a count read inside one cannot change before it commits: these helpers do
nothing there. PostgreSQL runs writers side by side (READ COMMITTED), so two requests could
both count 9 of 10 images and both insert. Taking the workspace row first serialises every
writer of that workspace; each later statement sees what the previous holder committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_workspace(session: Session, workspace_id: int) -> None:
    """Hold the workspace row until the transaction ends: call FIRST in a write that checks a cap,
    a quota, an Idempotency-Key or a count of the workspace's rows.

    `FOR NO KEY UPDATE`, not `FOR UPDATE`: it queues behind other lockers and behind the
    counters' `UPDATE workspace` (storage/counters.py), but not behind the key-share locks that
    inserts referencing the workspace take, so it cannot deadlock against them.
    """
    if _postgresql(session):
        session.execute(
            text("SELECT id FROM workspace WHERE id = :id FOR NO KEY UPDATE"), {"id": workspace_id}
        )


def lock_row(session: Session, model: Any, row_id: int) -> None:
    """Hold one row (a character, a book) while a list that hangs off it changes: a length cap and
    positions computed from the list as it is stay right. `FOR NO KEY UPDATE` for the reason
    above; SQLAlchemy leaves the clause out on SQLite, where the write lock already serialises.
    """
    session.exec(select(model.id).where(model.id == row_id).with_for_update(key_share=True))


def lock_file_keys(session: Session, keys: Iterable[str]) -> None:
    """Hold a transaction-scoped lock per stored file key (content-addressed, shared by workspaces).

    An upload re-checks its files and inserts its row under these locks, and a delete or sweep
    re-checks that no row names a file before removing it under the same locks, so neither can
    leave a row without its file. Keys are taken sorted, so two callers never wait on each other
    in a cycle. (The one-bigint key space; the migration lock uses the two-int one.)
    """
    if not _postgresql(session):
        return
    for key in sorted(set(keys)):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})
