"""The export table: one row per requested export, its files' keys and its warnings.

`fingerprint` is a hash of everything in the book an export shows; when the book no longer
hashes the same, the export is out of date and is discarded (files and row) when next seen.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from storage.timeutil import timestamp_column, utcnow


class ExportStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Export(SQLModel, table=True):
    # AUTOINCREMENT: an id (and so a signed URL) never comes back for a later export.
    __table_args__ = (
        Index("ix_export_book_created", "book_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    book_id: int = Field(foreign_key="book.id", ondelete="CASCADE")
    status: str = Field(default=ExportStatus.QUEUED, max_length=16)
    format: str = Field(max_length=8)
    profile: str = Field(max_length=16)
    paper: str = Field(max_length=16)
    cover_image: int | None = None
    back_image: int | None = None
    fingerprint: str = Field(max_length=64)
    pages: int
    bytes: int | None = None
    cover_bytes: int | None = None
    # The export's own folder under `<exports dir>/<workspace>/`; random, so never reused.
    folder: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=32)
    # Keys in the export blob store (`<workspace>/<folder>/<name>`); set only once the file is in place.
    file_key: str | None = Field(default=None, max_length=200)
    cover_key: str | None = Field(default=None, max_length=200)
    warnings: list[dict[str, object]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    spine_in: float | None = None
    previews: int = 0  # preview-1.webp ... in the folder, thumbnails of the first pages
    error: str | None = Field(default=None, max_length=2000)
    # Which process renders it (its scratch owner id) and until when: it renews the lease while it
    # works, so a start-up resumes only exports whose renderer died (issue 13).
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    finished_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
