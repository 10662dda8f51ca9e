"""The workspace's counters, in SQL: image numbers handed out once, and the library's version.

Both live on the `workspace` row and change by one UPDATE inside the caller's write transaction
(`storage.db.write_transaction`), so racing writers queue on the row (SQLite's write lock; the
row lock the UPDATE takes on PostgreSQL) and never see the same value. `UPDATE … RETURNING` is
what makes it one statement; it is the database-specific part, kept here, in storage/.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session


def take_image_number(session: Session, workspace_id: int) -> tuple[int, int]:
    """The next image number (never reused) and the library version this insert makes."""
    next_number, version = session.execute(
        text(
            "UPDATE workspace SET next_image_number = next_image_number + 1,"
            " library_version = library_version + 1 WHERE id = :id"
            " RETURNING next_image_number, library_version"
        ),
        {"id": workspace_id},
    ).one()
    return int(next_number) - 1, int(version)


def bump_library_version(session: Session, workspace_id: int) -> None:
    """Mark every cached copy of the workspace's library stale (after a delete)."""
    session.execute(
        text("UPDATE workspace SET library_version = library_version + 1 WHERE id = :id"),
        {"id": workspace_id},
    )


def library_version(session: Session, workspace_id: int) -> int:
    row = session.execute(
        text("SELECT library_version FROM workspace WHERE id = :id"), {"id": workspace_id}
    ).first()
    return int(row[0]) if row else 0
