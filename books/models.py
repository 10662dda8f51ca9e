"""Tables of a storybook: a book with one look, and its ordered pages.

Pages keep contiguous positions 0..N-1 (every insert, move and delete renumbers), so a page's
number is its position + 1 without a count. A page points at its latest generation job; its
status (queued, running, failed) is that job's, so there is one truth for a page's progress.
Candidates and the chosen picture are library numbers: deleting a book or page never touches
the library.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from storage.timeutil import timestamp_column, utcnow


class Book(SQLModel, table=True):
    __table_args__ = (Index("ix_book_workspace_created", "workspace_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    title: str = Field(max_length=200)
    trim: str = Field(default="8.5x8.5", max_length=16)
    # The style lock: one style for every page, plus library numbers shown as style references.
    style: str | None = Field(default=None, max_length=4000)
    style_images: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Character ids, in the author's order (a deleted character simply drops out).
    cast: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    chain: str = Field(default="first", max_length=16)
    text_position: str = Field(default="bottom", max_length=16)
    model: str | None = Field(default=None, max_length=64)
    quality: str = Field(default="auto", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class Page(SQLModel, table=True):
    __tablename__ = "book_page"
    __table_args__ = (Index("ix_book_page_book_position", "book_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    book_id: int = Field(foreign_key="book.id", ondelete="CASCADE")
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    position: int
    text: str = Field(default="", max_length=8000)
    scene: str | None = Field(default=None, max_length=8000)
    characters: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reference_images: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    image: int | None = None
    candidates: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    generation_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
