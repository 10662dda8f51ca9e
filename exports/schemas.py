"""Request and answer shapes of the export API (design/API.md, Books -> exports)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: int = Field(ge=0, description="library number of the front picture")
    back_image: int | None = Field(default=None, ge=0)


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["pdf", "zip"]
    profile: Literal["print", "screen"] = "print"
    paper: Literal["white", "cream", "premium-colour"] = "white"
    cover: CoverRequest | None = None
    wait: bool = True


class ExportWarningRead(BaseModel):
    page: int | None
    code: str
    message: str


class ExportRead(BaseModel):
    id: int
    book_id: int
    status: str
    format: str
    profile: str
    paper: str
    pages: int
    bytes: int | None
    url: str | None
    cover_url: str | None
    cover_bytes: int | None
    preview_urls: list[str]
    warnings: list[ExportWarningRead]
    spine_in: float | None
    error: str | None
    status_url: str
    created_at: datetime
    finished_at: datetime | None


class ExportList(BaseModel):
    items: list[ExportRead]
