"""Shapes of the Books API (API.md, section Books).

Trims, chain modes and text positions are Literals, so an unknown value is a 422 whose message
lists the allowed ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from generation.schemas import CharacterRef

Trim = Literal["8.5x8.5", "8x8", "8x10", "10x8", "8.5x11", "11x8.5", "6x9", "7x10", "a4"]
Chain = Literal["first", "previous", "none"]
TextPosition = Literal["bottom", "top", "none"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
StyleText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
PageText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=8000)]
Number = Annotated[int, Field(ge=0)]

MAX_CAST = 50
MAX_MANUSCRIPT_CHARS = 400_000


class BookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    trim: Trim = "8.5x8.5"
    style: StyleText | None = None
    style_images: list[Number] = Field(default_factory=list, max_length=16)
    cast: list[CharacterRef] = Field(default_factory=list, max_length=MAX_CAST)
    chain: Chain = "first"
    text_position: TextPosition = "bottom"
    model: str | None = Field(default=None, max_length=64)
    quality: str = Field(default="auto", max_length=16)


class BookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    trim: Trim | None = None
    style: StyleText | None = None
    style_images: list[Number] | None = Field(default=None, max_length=16)
    cast: list[CharacterRef] | None = Field(default=None, max_length=MAX_CAST)
    chain: Chain | None = None
    text_position: TextPosition | None = None
    model: str | None = Field(default=None, max_length=64)
    quality: str | None = Field(default=None, max_length=16)

    @field_validator(
        "title", "trim", "chain", "text_position", "quality", "style_images", "cast", mode="before"
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value


class PageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: PageText = ""
    scene: PageText | None = None
    # Omitted: found from the book's cast by name in the text, like a manuscript's pages.
    characters: list[CharacterRef] | None = Field(default=None, max_length=16)
    reference_images: list[Number] = Field(default_factory=list, max_length=16)
    position: Annotated[int, Field(ge=1)] | None = Field(default=None, description="1-based; default: last")


class PageUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: PageText | None = None
    scene: PageText | None = None
    characters: list[CharacterRef] | None = Field(default=None, max_length=16)
    reference_images: list[Number] | None = Field(default=None, max_length=16)
    image: Number | None = Field(default=None, description="choose a candidate or any library number")
    position: Annotated[int, Field(ge=1)] | None = Field(default=None, description="move the page here")


class PageOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page_ids: list[int] = Field(max_length=1000)


class Manuscript(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_MANUSCRIPT_CHARS)
    replace: bool = False


class IllustrateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pages: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, max_length=1000)
    redo: bool = False
    n: Annotated[int, Field(ge=1, le=10)] = 1
    dry_run: bool = False


class CastMember(BaseModel):
    id: int
    name: str


class PageError(BaseModel):
    code: str
    message: str


class PageRead(BaseModel):
    id: int
    number: int
    text: str
    scene: str | None
    characters: list[CastMember]
    reference_images: list[int]
    image: int | None
    candidates: list[int]
    status: Literal["empty", "queued", "running", "illustrated", "failed"]
    generation_id: str | None
    error: PageError | None
    prompt: str | None
    effective_dpi: int | None
    image_url: str | None = None
    thumbnail_url: str | None = None


class Progress(BaseModel):
    pages: int
    illustrated: int
    queued: int
    running: int
    failed: int


class BookRead(BaseModel):
    id: int
    title: str
    trim: str
    trim_in: list[float]
    bleed_in: float
    style: str | None
    style_images: list[int]
    cast: list[CastMember]
    chain: str
    text_position: str
    model: str
    quality: str
    print_px: list[int]
    generate_size: str
    pages: list[PageRead] | None = None
    progress: Progress | None = None
    created_at: datetime
    updated_at: datetime


class BookList(BaseModel):
    items: list[BookRead]
    total: int


class PageList(BaseModel):
    pages: list[PageRead]


class PageJob(BaseModel):
    page: int
    generation_id: str


class Dropped(BaseModel):
    number: int
    role: str  # "character" | "page" | "continuity" | "style"
    character: str | None = None


class PagePlan(BaseModel):
    page: int
    prompt: str
    reference_images: list[int]
    dropped: list[Dropped]
    # "page 1" when this page waits for that page's picture (not drawn yet), else null.
    waits_for: str | None
    parameters: dict[str, Any]
    estimated_cost_usd: float


class IllustrateAccepted(BaseModel):
    jobs: list[PageJob]
    skipped: list[int]
    estimated_cost_usd: float
    status_url: str
    dropped: dict[int, list[Dropped]] = Field(default_factory=dict)


class IllustrateDryRun(BaseModel):
    dry_run: Literal[True] = True
    pages: list[PagePlan]
    skipped: list[int]
    estimated_cost_usd: float
