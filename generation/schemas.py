"""Shapes of `POST /generate-image` and the generation answers (API.md, section Scenes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from generation.models import JobStatus
from generation.params import PictureParams
from storage.ids import ImageNumber, RowId

SceneText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32_000)]
CharacterRef = RowId | Annotated[str, StringConstraints(min_length=1, max_length=100)]


class UrlReference(BaseModel):
    """An input image on the web: imported into the library (SSRF-safe) before it is used."""

    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]


class Base64Reference(BaseModel):
    """An input image sent inline: imported into the library (deduplicated) before it is used."""

    model_config = ConfigDict(extra="forbid")
    b64_json: Annotated[str, StringConstraints(min_length=1)]


DataUri = Annotated[str, StringConstraints(pattern=r"^data:image/[a-z+.-]+;base64,")]
# A library number, or an outside image that becomes one (generation/inputs.py).
ReferenceEntry = ImageNumber | UrlReference | Base64Reference | DataUri


class GenerateRequest(PictureParams):
    """Only `prompt` is required: `{"prompt": "..."}` alone is plain text-to-image.

    Model-specific limits (sizes, qualities, n, number of input images) are checked against
    the capability table after parsing, so the messages can name what the model allows.
    """

    model_config = ConfigDict(extra="forbid")

    prompt: SceneText
    characters: list[CharacterRef] = Field(default_factory=list, max_length=16)
    reference_images: list[ReferenceEntry] | None = Field(default=None, max_length=64)
    style: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = Field(
        default=None,
        description="book-wide style; when given it is the only style stated (characters' own are left out)",
    )
    model: str | None = Field(default=None, max_length=64)
    # size, quality, n, background, output_format, output_compression: PictureParams
    response_format: Literal["url", "b64_json"] = "url"
    # Issue 14: a masked edit (library number of a PNG with alpha, the size of input image 1;
    # transparent = redraw here) and sampling controls, each checked against the backend.
    mask: ImageNumber | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    guidance_scale: Annotated[float, Field(ge=0, le=100)] | None = None
    steps: Annotated[int, Field(ge=1, le=500)] | None = None
    # Issue 15 (local diffusion): how far image-to-image may move from input image 1, and what
    # the picture must not show. Backends that take neither answer 422.
    strength: Annotated[float, Field(ge=0, le=1)] | None = None
    negative_prompt: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    # Strict: `0`, `"false"` or `"no"` are refused rather than read as a boolean (issue 12, defect 12).
    wait: StrictBool = True
    dry_run: StrictBool = False

    def reference_numbers(self) -> list[int] | None:
        """The explicit references as library numbers; outside images must have been imported."""
        if self.reference_images is None:
            return None
        if not all(isinstance(entry, int) for entry in self.reference_images):
            raise AssertionError("outside reference images are imported before the scene is prepared")
        return [int(entry) for entry in self.reference_images]  # type: ignore[arg-type]


class SceneCharacter(BaseModel):
    """A character as the scene used it: which of the input images show them."""

    model_config = ConfigDict(extra="allow")

    id: int
    name: str
    reference_images: list[int] = Field(default_factory=list)


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
    status: JobStatus
    status_url: str
    prompt: str
    scene: str
    characters: list[SceneCharacter]
    # Cast members a reference image brought in (the request named no cast), and the references
    # of the named characters that did not fit the model's limit.
    added_characters: list[dict[str, Any]] = Field(default_factory=list)
    reference_images: list[int]
    left_out_references: list[int] = Field(default_factory=list)
    model: str
    backend: str
    parameters: dict[str, Any]
    seed: int | None = None  # the seed the backend used, when it takes one
    mask: int | None = None
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
    """202: the job is queued or running; poll `status_url` (also in the `Location` header)."""

    id: str
    status: JobStatus
    status_url: str


class GenerationList(BaseModel):
    items: list[GenerationRead]
    total: int


class DryRunRead(BaseModel):
    dry_run: Literal[True] = True
    prompt: str
    scene: str
    characters: list[SceneCharacter]
    added_characters: list[dict[str, Any]] = Field(default_factory=list)
    reference_images: list[int]
    left_out_references: list[int] = Field(default_factory=list)
    # What the author should know before paying: pictures of someone outside the cast, cut
    # references, a prompt shortened for a token-limited text encoder (local diffusion).
    warnings: list[str] = Field(default_factory=list)
    model: str
    backend: str
    endpoint: Literal["edit", "generate"]
    parameters: dict[str, Any]
    # A rough estimate before anything is spent (generation.pricing.estimate_before).
    estimated_cost_usd: float = 0.0
