"""Tables of the character library: characters, numbered images and ordered reference links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.timeutil import timestamp_column, utcnow


class Character(SQLModel, table=True):
    __table_args__ = (
        # Names are unique per workspace regardless of case: `name_key` is the casefolded name.
        UniqueConstraint("workspace_id", "name_key", name="uq_character_workspace_name"),
        # Ids are never reused (migration 0004): generations name characters by id.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    name_key: str = Field(max_length=100)
    description: str = Field(max_length=4000)
    style: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class CharacterReference(SQLModel, table=True):
    """A character's ordered list of reference images (position 0 is shown first)."""

    __tablename__ = "character_reference"
    __table_args__ = (Index("ix_character_reference_image", "image_id"),)

    character_id: int = Field(foreign_key="character.id", primary_key=True, ondelete="CASCADE")
    image_id: int = Field(foreign_key="image.id", primary_key=True, ondelete="CASCADE")
    position: int
