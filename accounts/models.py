"""Workspaces and their API keys: the unit of ownership for every row in Storyloom."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from storage.timeutil import timestamp_column, utcnow


class Workspace(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    # The next library number to hand out. Only ever incremented, so numbers are never reused.
    next_image_number: int = Field(default=0)
    # Bumped whenever the library's images change, so in-memory indexes know when to reload.
    library_version: int = Field(default=0)
    # Images per UTC day: NULL follows the DAILY_IMAGE_QUOTA setting, 0 is unlimited.
    daily_image_quota: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    # sha256 of the key: keys are 256-bit random, so a fast hash is as safe as a slow one.
    key_hash: str = Field(index=True, unique=True, max_length=64)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    revoked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class BrowserSession(SQLModel, table=True):
    """A logged-in browser (accounts/sessions.py): only the sha256 of the cookie's token is kept."""

    __tablename__ = "browser_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    key_id: int = Field(foreign_key="api_key.id", index=True, ondelete="CASCADE")
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
