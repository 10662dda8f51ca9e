"""The Generation table: every scene request is a persisted job, so no accepted job is lost."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.timeutil import timestamp_column, utcnow


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    # Stopped by its author (POST /generations/{id}/cancel): terminal, never charged.
    cancelled = "cancelled"


class Generation(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key", name="uq_generation_idempotency"),
        Index("ix_generation_workspace_created", "workspace_id", "created_at"),
        Index("ix_generation_status", "status"),
        Index("ix_generation_book", "book_id"),
        Index("ix_generation_waiting_on", "waiting_on"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    api_key_id: int | None = Field(default=None)
    status: str = Field(default=JobStatus.queued, max_length=16)
    scene: str
    # The composed prompt actually sent upstream: "the prompt is data".
    prompt: str
    backend: str = Field(max_length=16)
    model: str = Field(max_length=64)
    # Upstream parameters (size, quality, n, background, output_format, ...), as sent.
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # [{"id": 1, "name": "Mia"}, ...] and library numbers, as resolved when the job was accepted.
    characters: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reference_numbers: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    response_format: str = Field(default="url", max_length=16)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(default=None, max_length=64)
    # Library numbers of the outputs, in order. Not derivable from Image.generation_id: an output
    # identical to an image already in the library is that image (same number, older job).
    image_numbers: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    attempts: int = Field(default=0)
    usage: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # USD from `usage` and the price table when the job succeeded (an estimate, not an invoice).
    estimated_cost_usd: float | None = Field(default=None)
    revised_prompts: list[str | None] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = None
    error_field: str | None = Field(default=None, max_length=100)
    error_status: int | None = None
    # Seconds the upstream asked us to wait (503 answers repeat it as Retry-After).
    error_retry_after: int | None = None
    # A storybook page's job (issue 9). No foreign key: deleting a book keeps its jobs' history.
    book_id: int | None = Field(default=None)
    page_id: int | None = Field(default=None)
    # The job whose picture this one needs (a book's continuity page). While set the job stays
    # queued and is never claimed; the book's completion hook finishes its prompt and clears it.
    waiting_on: str | None = Field(default=None, max_length=40)
    # A character's reference sheet asked with make_main: its first output becomes that
    # character's first reference when the job succeeds (in the same transaction).
    main_reference_of: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    started_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
