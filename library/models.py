"""The image library's table: every picture a workspace owns, numbered 0, 1, 2, ... never reused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.timeutil import timestamp_column, utcnow


class Image(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("workspace_id", "number", name="uq_image_workspace_number"),
        Index("ix_image_workspace_sha256", "workspace_id", "sha256"),
        Index("ix_image_workspace_kind_number", "workspace_id", "kind", "number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True, ondelete="CASCADE")
    number: int
    kind: str = Field(max_length=16)  # "upload" | "generated"
    format: str = Field(max_length=8)  # "png" | "jpeg" | "webp"
    width: int
    height: int
    bytes: int
    sha256: str = Field(max_length=64)
    # 64-bit perceptual hash as hex (for the API) and as a signed int (for fast distance math).
    phash: str = Field(max_length=16)
    phash_int: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Paths relative to the image store root; content-addressed, so shared by equal files.
    file_key: str = Field(max_length=200)
    thumb_key: str = Field(max_length=200)
    generation_id: str | None = Field(default=None, max_length=40, index=True)
    prompt: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class ImageCharacter(SQLModel, table=True):
    """A tag "this picture shows that character", apart from the character's reference list.

    A generated scene shows its characters but is not (yet) one of their references; the tag
    lets filters, the scene composer and the pages say whom it shows. Deleting either side
    removes the tag (FK cascade).
    """

    __tablename__ = "image_character"
    __table_args__ = (Index("ix_image_character_character", "character_id"),)

    image_id: int = Field(foreign_key="image.id", primary_key=True, ondelete="CASCADE")
    character_id: int = Field(foreign_key="character.id", primary_key=True, ondelete="CASCADE")
