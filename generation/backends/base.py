"""The one small interface every image backend implements, and the plain data it passes.

The job worker builds a `BackendRequest` from a validated, composed scene and gets a
`BackendResult` back; it never knows whether OpenAI or the offline draft renderer answered.
Backends raise `errors.InvalidInput` / `errors.UpstreamError`, never SDK exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from generation.composer import CharacterBrief
from generation.params import SceneParams
from generation.prompt_budget import FittedPrompt

# Told about every upstream call: (model, endpoint "generate"|"edit", seconds, outcome "ok" or an
# error kind). The app passes metrics in through this, so backends never import app state.
UpstreamObserver = Callable[[str, str, float, str], None]


class BackendConfigError(RuntimeError):
    """The configured backend cannot start (e.g. IMAGE_BACKEND=openai with no key): fail at start-up."""


@dataclass(frozen=True)
class ReferenceImage:
    """One input image, in upload order: input image 1 is `references[0]`."""

    number: int  # library number, the author's handle
    filename: str  # sent to OpenAI as the part's file name, e.g. "ref-4.png"
    content_type: str  # image/png, image/jpeg or image/webp: never octet-stream (the API rejects it)
    data: bytes = field(repr=False)
    character_names: tuple[str, ...] = ()
    role: str = "character"  # or "continuity" / "style" (see generation.composer)


@dataclass(frozen=True)
class BackendRequest:
    prompt: str  # the composed prompt, sent as is
    model: str
    params: SceneParams = field(
        default_factory=SceneParams
    )  # input_fidelity: sent only where the model takes it
    references: list[ReferenceImage] = field(default_factory=list)
    scene: str | None = None  # the author's scene text alone, for the draft panel; None: use prompt
    mask: ReferenceImage | None = None  # PNG with alpha, the size of references[0]; alpha 0 = redraw


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes = field(repr=False)  # encoded in the request's output_format
    revised_prompt: str | None = None


@dataclass(frozen=True)
class BackendResult:
    images: list[GeneratedImage]
    usage: dict[str, Any]
    model: str


def zero_usage() -> dict[str, Any]:
    """The usage block of a call that spent nothing (draft, dry run), shaped like OpenAI's."""
    return {
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
    }


@runtime_checkable
class ImageBackend(Protocol):
    name: str  # "openai" | "draft": reported in answers and /health

    async def generate(self, request: BackendRequest) -> BackendResult:
        """Make `request.params.n` images; raise InvalidInput (422) or UpstreamError (502/503/504)."""
        ...

    async def aclose(self) -> None:
        """Release connections; called once from the app's lifespan on shutdown."""
        ...


@runtime_checkable
class FitsPrompt(Protocol):
    """A backend whose text encoder reads a limited number of tokens (local diffusion)."""

    def fit_prompt(
        self, composed: str, characters: Sequence[CharacterBrief], scene: str, book_style: str | None
    ) -> FittedPrompt:
        """The prompt to send, and a note (shown in the dry run) whenever it is not `composed`."""
        ...
