"""The picture parameters of a scene, defined once for every stage that carries them.

The request (`GenerateRequest` inherits `PictureParams`), the prepared scene, the job's stored
`params`, the backend request and the upstream call all use these fields, so a new parameter
is added here and nowhere else. `SceneParams` adds what the capability table decides rather
than the author (`input_fidelity`, only for models that take it, only with references).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class PictureParams(BaseModel):
    size: str = "auto"
    quality: str = "auto"
    n: int = 1
    background: str = "auto"
    output_format: str = "png"
    output_compression: int | None = None

    def picture(self) -> dict[str, Any]:
        """Just the picture fields (what `SceneParams` and the capability check take)."""
        return {name: getattr(self, name) for name in PictureParams.model_fields}


# SceneParams fields that are never OpenAI arguments (the mask travels as a file part instead).
NOT_OPENAI_ARGUMENTS = (
    "input_fidelity",
    "mask",
    "seed",
    "guidance_scale",
    "steps",
    "strength",
    "negative_prompt",
)


class SceneParams(PictureParams):
    """The parameters as validated for one model: stored on the job, sent upstream as they are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_fidelity: str | None = None
    # Issue 14. The mask is a library number (its file goes upstream as the edit's `mask` part);
    # seed, guidance and steps only where the capability table (or the draft backend) takes them.
    mask: int | None = None
    seed: int | None = None
    guidance_scale: float | None = None
    steps: int | None = None
    # Issue 15 (local diffusion only): image-to-image strength and the negative prompt.
    strength: float | None = None
    negative_prompt: str | None = None

    def upstream(self) -> dict[str, Any]:
        """As stored on the job and sent to OpenAI: optional fields that are unset are left out."""
        return self.model_dump(exclude_none=True)
