"""Shapes of `POST /generate-image` and the generation answers (API.md, section Scenes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from generation.params import PictureParams

SceneText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32_000)]
CharacterRef = Annotated[int, Field(ge=1)] | Annotated[str, StringConstraints(min_length=1, max_length=100)]


class GenerateRequest(PictureParams):
    """Only `prompt` is required: `{"prompt": "..."}` alone is plain text-to-image.

    Model-specific limits (sizes, qualities, n, number of input images) are checked against
    the capability table after parsing, so the messages can name what the model allows.
    """

    model_config = ConfigDict(extra="forbid")

    prompt: SceneText
    characters: list[CharacterRef] = Field(default_factory=list, max_length=16)
    reference_images: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, max_length=64)
    style: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = Field(
        default=None,
        description="book-wide style; when given it is the only style stated (characters' own are left out)",
    )
    model: str | None = Field(default=None, max_length=64)
    # size, quality, n, background, output_format, output_compression: PictureParams
    response_format: Literal["url", "b64_json"] = "url"
    wait: bool = True
    dry_run: bool = False


class GenerationImage(BaseModel):
    number: int
    url: str
    thumbnail_url: str
    b64_json: str | None = None
    revised_prompt: str | None = None


class GenerationError(BaseModel):
    code: str
    message: str
    field: str | None = None


class GenerationRead(BaseModel):
    id: str
    status: str
    status_url: str
    prompt: str
    scene: str
    characters: list[dict[str, Any]]
    # Cast members a reference image brought in (the request named no cast), and the references
    # of the named characters that did not fit the model's limit.
    added_characters: list[dict[str, Any]] = Field(default_factory=list)
    reference_images: list[int]
    left_out_references: list[int] = Field(default_factory=list)
    model: str
    backend: str
    parameters: dict[str, Any]
    images: list[GenerationImage]
    image_url: str | None
    usage: dict[str, Any] | None
    # USD from `usage` and the price table, set when the job succeeds; null before.
    estimated_cost_usd: float | None = None
    error: GenerationError | None
    attempts: int
    # A storybook page's job: its book and the page's number now (null once the page is deleted).
    book_id: int | None = None
    page: int | None = None
    created_at: str
    started_at: str | None
    finished_at: str | None


class GenerationAccepted(BaseModel):
    id: str
    status: str
    status_url: str


class GenerationList(BaseModel):
    items: list[GenerationRead]
    total: int


class DryRunRead(BaseModel):
    dry_run: Literal[True] = True
    prompt: str
    scene: str
    characters: list[dict[str, Any]]
    added_characters: list[dict[str, Any]] = Field(default_factory=list)
    reference_images: list[int]
    left_out_references: list[int] = Field(default_factory=list)
    # What the author should know before paying: pictures of someone outside the cast, cut references.
    warnings: list[str] = Field(default_factory=list)
    model: str
    backend: str
    endpoint: Literal["edit", "generate"]
    parameters: dict[str, Any]
    # A rough estimate before anything is spent (generation.pricing.estimate_before).
    estimated_cost_usd: float = 0.0
