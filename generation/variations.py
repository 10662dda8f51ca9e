"""Variations of a library picture: an ordinary scene job that edits the picture itself.

OpenAI's own variations endpoint went with DALL·E 2 (retired 2026-05-12), so a variation is
an edit: the source is input image 1 and the prompt asks for the same picture with other
details. The source's characters come along (the ones it is a reference of, and the cast of
the scene that drew it), so their descriptions reach the prompt and the job's cast — which is
what the outputs are tagged with — is the source's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session

from generation.models import Generation
from generation.schemas import GenerateRequest
from library import service as library
from library.tags import characters_shown

DEFAULT_PROMPT = (
    "A variation of input image 1: the same characters, looking exactly as they do there, in the "
    "same kind of scene, with small changes in pose, framing and details."
)


class VariationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = 1
    prompt: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32_000)] | None
    ) = None
    model: str | None = Field(default=None, max_length=64)
    size: str = "auto"
    quality: str = "auto"
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    response_format: Literal["url", "b64_json"] = "url"
    wait: bool = True


def source_characters(session: Session, workspace_id: int, number: int) -> list[int]:
    """Who is in picture `number`: whom it shows (references and tags), then its scene's cast."""
    image = library.get_image(session, workspace_id, number)
    found = list(characters_shown(session, [image.id]).get(image.id, []))  # type: ignore[arg-type]
    if image.generation_id is not None:
        job = session.get(Generation, image.generation_id)
        if job is not None:
            found.extend(c["id"] for c in job.characters if c.get("id") not in found)
    return found


def variation_scene(
    session: Session, workspace_id: int, number: int, body: VariationRequest
) -> GenerateRequest:
    """The scene request that draws `body.n` variations of picture `number` (404 if it is not there)."""
    cast = source_characters(session, workspace_id, number)
    return GenerateRequest(
        prompt=body.prompt or DEFAULT_PROMPT,
        characters=list(cast),
        reference_images=[number],
        model=body.model,
        size=body.size,
        quality=body.quality,
        n=body.n,
        seed=body.seed,
        response_format=body.response_format,
        wait=body.wait,
    )
