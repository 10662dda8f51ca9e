"""What each GPT Image model accepts: one table, checked before any upstream call is paid for.

Facts come from the installed `openai` SDK (3.54.0), which is newer than OpenAI's public
OpenAPI spec:

- `openai/types/image_model.py`: the model ids, and that `gpt-image-1` was shut down on
  2026-10-23 (successors `gpt-image-2.5-sunburst` / `gpt-image-2.5-flare`) and DALL·E 2/3 were
  retired on 2026-05-12.
- `openai/resources/images.py` (`edit` and `generate` docstrings): up to 16 input images;
  prompt at most 32,000 characters; `n` 1–10; standard sizes 1024x1024, 1536x1024, 1024x1536
  and `auto`; arbitrary `WxH` only on gpt-image-2, 2.5-sunburst, 2.5-flare and their dated
  snapshots (both sides divisible by 16, aspect 1:3–3:1, at most 3840x2160); qualities
  low/medium/high/auto, plus xhigh and max on the 2.5 family; `input_fidelity` high|low on
  gpt-image-1.5, only low on gpt-image-1-mini, omitted on gpt-image-2 (and, by the same
  docstring, not offered for 2.5/2.6); transparent backgrounds need png or webp;
  `output_compression` 0–100 only for jpeg/webp.
- The 2026-12-01 shutdown of gpt-image-1-mini, gpt-image-1.5 and chatgpt-image-latest is from
  OpenAI's deprecations page (see /work/shared/design/OPENAI_FACTS.md); the SDK still lists them.

The SDK also offers `gif` and `svg` output; those need preview/project access and extra
parameters (frame_count, svg), so Storyloom does not offer them.

A model is live until its shutdown date. "Today" is injectable so tests can move the clock:
on 2026-12-01 the 1.x models start answering 422 with their successor, with no code change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from errors import InvalidInput

STANDARD_SIZES: tuple[str, ...] = ("1024x1024", "1536x1024", "1024x1536")
MAX_INPUT_IMAGES = 16
MAX_PROMPT_CHARS = 32_000
QUALITIES: tuple[str, ...] = ("low", "medium", "high", "auto")
QUALITIES_25: tuple[str, ...] = ("low", "medium", "high", "xhigh", "max", "auto")
BACKGROUNDS: tuple[str, ...] = ("transparent", "opaque", "auto")
OUTPUT_FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")
TRANSPARENT_FORMATS: tuple[str, ...] = ("png", "webp")
COMPRESSION_FORMATS: tuple[str, ...] = ("jpeg", "webp")
SIZE_RE = re.compile(r"^(\d{1,5})x(\d{1,5})$")

# The live model that takes over a retired one's requests (the project default).
DEFAULT_SUCCESSOR = "gpt-image-2.5-flare"


@dataclass(frozen=True)
class ModelCapabilities:
    """One model's limits. Defaults are the GPT Image baseline every live model shares."""

    name: str
    arbitrary_sizes: bool = False
    size_multiple: int = 16
    max_aspect: float = 3.0
    max_edge: int = 3840
    max_pixels: int = 3840 * 2160
    standard_sizes: tuple[str, ...] = STANDARD_SIZES
    auto_size: bool = True
    qualities: tuple[str, ...] = QUALITIES
    n_min: int = 1
    n_max: int = 10
    max_input_images: int = MAX_INPUT_IMAGES
    input_fidelity: tuple[str, ...] = ()  # values the edit endpoint accepts; empty = omit it
    backgrounds: tuple[str, ...] = BACKGROUNDS
    transparent_formats: tuple[str, ...] = TRANSPARENT_FORMATS
    output_formats: tuple[str, ...] = OUTPUT_FORMATS
    compression_formats: tuple[str, ...] = COMPRESSION_FORMATS
    compression_range: tuple[int, int] = (0, 100)
    max_prompt_chars: int = MAX_PROMPT_CHARS
    # Sampling controls (issue 14). GPT Image takes none of them; Replicate models list theirs.
    seed: bool = False
    guidance_scale: tuple[float, float] | None = None  # inclusive range, None = not taken
    steps: tuple[int, int] | None = None
    strength: tuple[float, float] | None = None  # image-to-image only (issue 15)
    negative_prompt: bool = False
    takes_mask: bool = True
    provider: str = "openai"  # which backend runs it: "openai" | "replicate" | "diffusers"
    # Replicate only: how the size goes out ("aspect_ratio": "3:2", or "width_height") and the
    # input names the model uses for reference images, outputs and sampling controls.
    size_param: str = "size"
    image_input: str | None = None  # e.g. "input_image"; None: the model takes no input image
    outputs_input: str | None = None  # e.g. "num_outputs"; None: one image per prediction
    guidance_input: str = "guidance"
    steps_input: str = "num_inference_steps"
    shutdown: date | None = None  # first day the model no longer answers
    successor: str | None = None
    note: str = ""

    def is_live(self, today: date) -> bool:
        return self.shutdown is None or today < self.shutdown

    @property
    def edit_input_fidelity(self) -> str | None:
        """What to send as `input_fidelity` with reference images: "high" where it exists.

        High fidelity is what keeps faces stable across scenes; models that ignore or reject
        the parameter get nothing.
        """
        return "high" if "high" in self.input_fidelity else None


def _entries(*caps: ModelCapabilities) -> dict[str, ModelCapabilities]:
    return {c.name: c for c in caps}


_SHUTDOWN_1X = date(2026, 12, 1)
_GPT_IMAGE_1_SHUTDOWN = date(2026, 10, 23)
_DALLE_RETIRED = date(2026, 5, 12)

MODELS: dict[str, ModelCapabilities] = _entries(
    ModelCapabilities("gpt-image-2", arbitrary_sizes=True, note="transparent background is in preview"),
    ModelCapabilities(
        "gpt-image-2-2026-04-21", arbitrary_sizes=True, note="transparent background is in preview"
    ),
    ModelCapabilities("gpt-image-2.5-sunburst", arbitrary_sizes=True, qualities=QUALITIES_25),
    ModelCapabilities("gpt-image-2.5-sunburst-2026-09-08", arbitrary_sizes=True, qualities=QUALITIES_25),
    ModelCapabilities("gpt-image-2.5-flare", arbitrary_sizes=True, qualities=QUALITIES_25),
    ModelCapabilities("gpt-image-2.5-flare-2026-09-08", arbitrary_sizes=True, qualities=QUALITIES_25),
    ModelCapabilities("gpt-image-2.6-sunburst"),
    ModelCapabilities("gpt-image-2.6-flare"),
    ModelCapabilities(
        "gpt-image-1.5", input_fidelity=("high", "low"), shutdown=_SHUTDOWN_1X, successor=DEFAULT_SUCCESSOR
    ),
    ModelCapabilities(
        "gpt-image-1-mini", input_fidelity=("low",), shutdown=_SHUTDOWN_1X, successor=DEFAULT_SUCCESSOR
    ),
    ModelCapabilities("chatgpt-image-latest", shutdown=_SHUTDOWN_1X, successor=DEFAULT_SUCCESSOR),
    ModelCapabilities(
        "gpt-image-1",
        shutdown=_GPT_IMAGE_1_SHUTDOWN,
        successor=DEFAULT_SUCCESSOR,
        note="the SDK names gpt-image-2.5-sunburst or gpt-image-2.5-flare",
    ),
    ModelCapabilities("dall-e-2", shutdown=_DALLE_RETIRED, successor=DEFAULT_SUCCESSOR),
    ModelCapabilities("dall-e-3", shutdown=_DALLE_RETIRED, successor=DEFAULT_SUCCESSOR),
)

# A character's reference list may be sent whole to any model: no longer than the largest takes.
MAX_CHARACTER_REFERENCES = max(caps.max_input_images for caps in MODELS.values())


# Replicate models (IMAGE_BACKEND=replicate), from each model's published input schema on
# replicate.com (read 2026-11-30). Sizes are the GPT Image standard ones plus 16:9 / 9:16,
# sent as an aspect ratio; formats are PNG/JPEG/WebP ("jpg" on the wire); no quality levels.
_REPLICATE_SIZES = ("1024x1024", "1536x1024", "1024x1536", "1344x768", "768x1344")
_REPLICATE_COMMON: dict[str, object] = {
    "provider": "replicate",
    "standard_sizes": _REPLICATE_SIZES,
    "qualities": ("auto",),
    "backgrounds": ("auto",),
    "compression_formats": (),
    "takes_mask": False,
    "seed": True,
    "size_param": "aspect_ratio",
}
REPLICATE_MODELS: dict[str, ModelCapabilities] = _entries(
    ModelCapabilities(
        "black-forest-labs/flux-schnell",
        n_max=4,
        max_input_images=0,
        steps=(1, 4),
        outputs_input="num_outputs",
        **_REPLICATE_COMMON,  # type: ignore[arg-type]
    ),
    ModelCapabilities(
        "black-forest-labs/flux-dev",
        n_max=4,
        max_input_images=1,
        guidance_scale=(0.0, 10.0),
        steps=(1, 50),
        image_input="image",
        outputs_input="num_outputs",
        **_REPLICATE_COMMON,  # type: ignore[arg-type]
    ),
    ModelCapabilities(
        "black-forest-labs/flux-kontext-pro",
        n_max=1,
        max_input_images=1,
        image_input="input_image",
        **_REPLICATE_COMMON,  # type: ignore[arg-type]
    ),
)


# The local diffusion backend (IMAGE_BACKEND=diffusers, issue 15): whatever Stable
# Diffusion-family model DIFFUSERS_MODEL holds, under one name. Sizes are free (both sides
# multiples of 8, the VAE's downscale; "auto" is the model's native size); the first reference
# image is the image-to-image init image (IP-Adapter is not wired up); no mask, no quality levels,
# no transparent background. Ranges are what diffusers' Stable Diffusion pipelines accept.
LOCAL_MODEL = "local-diffusion"
LOCAL_MODELS: dict[str, ModelCapabilities] = _entries(
    ModelCapabilities(
        LOCAL_MODEL,
        provider="diffusers",
        arbitrary_sizes=True,
        size_multiple=8,
        max_aspect=4.0,
        max_edge=2048,
        max_pixels=2048 * 2048,
        standard_sizes=("512x512", "768x768", "1024x1024"),
        qualities=("auto",),
        backgrounds=("auto",),
        n_max=4,
        takes_mask=False,
        seed=True,
        guidance_scale=(0.0, 30.0),
        steps=(1, 150),
        strength=(0.0, 1.0),
        negative_prompt=True,
        note="runs on this server with DIFFUSERS_MODEL",
    ),
)
_BY_BACKEND: dict[str, dict[str, ModelCapabilities]] = {
    "openai": MODELS,
    "replicate": REPLICATE_MODELS,
    "diffusers": LOCAL_MODELS,
}


def today_utc() -> date:
    return datetime.now(UTC).date()


def live_models(today: date | None = None) -> list[str]:
    day = today or today_utc()
    return [name for name, caps in MODELS.items() if caps.is_live(day)]


def _one_of(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values)


def resolve_model(name: str, today: date | None = None, *, field: str = "model") -> ModelCapabilities:
    """The capabilities of a live model, or a 422 naming the successor / the live models.

    Also the start-up check for `DEFAULT_IMAGE_MODEL` (with field "default_image_model").
    """
    day = today or today_utc()
    caps = MODELS.get(name) or REPLICATE_MODELS.get(name) or LOCAL_MODELS.get(name)
    if caps is None:
        raise InvalidInput(f"unknown model {name!r}; use one of: {_one_of(live_models(day))}", field=field)
    if not caps.is_live(day):
        assert caps.shutdown is not None
        raise InvalidInput(
            f"model {name!r} was shut down on {caps.shutdown.isoformat()}; use {caps.successor} instead"
            + (f" ({caps.note})" if caps.note else ""),
            field=field,
            code="model_retired",
        )
    return caps


def parse_size(size: str) -> tuple[int, int] | None:
    """`"1536x864"` → (1536, 864); `"auto"` or anything else → None."""
    match = SIZE_RE.match(size)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _check_size(caps: ModelCapabilities, size: str) -> None:
    if size == "auto" and caps.auto_size:
        return
    if size in caps.standard_sizes:
        return
    allowed = _one_of([*caps.standard_sizes, *(["auto"] if caps.auto_size else [])])
    if not caps.arbitrary_sizes:
        raise InvalidInput(
            f"size {size!r} is not offered by {caps.name}; use one of: {allowed}", field="size"
        )
    dims = parse_size(size)
    rule = (
        f"use one of {allowed}, or WIDTHxHEIGHT with both sides divisible by {caps.size_multiple}, "
        f"aspect ratio between 1:{caps.max_aspect:g} and {caps.max_aspect:g}:1, "
        f"longest side at most {caps.max_edge} and at most {caps.max_pixels:,} pixels (e.g. 3840x2160)"
    )
    if dims is None:
        raise InvalidInput(f"size {size!r} is not valid for {caps.name}: {rule}", field="size")
    width, height = dims
    problems = []
    if width <= 0 or height <= 0 or width % caps.size_multiple or height % caps.size_multiple:
        problems.append(f"both sides must be positive multiples of {caps.size_multiple}")
    elif max(width, height) / min(width, height) > caps.max_aspect:
        problems.append(f"aspect ratio {width}:{height} is beyond {caps.max_aspect:g}:1")
    if max(width, height) > caps.max_edge:
        problems.append(f"longest side {max(width, height)} is over {caps.max_edge}")
    if width * height > caps.max_pixels:
        problems.append(f"{width * height:,} pixels is over {caps.max_pixels:,}")
    if problems:
        raise InvalidInput(
            f"size {size!r} is not valid for {caps.name} ({'; '.join(problems)}): {rule}", field="size"
        )


def validate_scene_params(
    *,
    model: str,
    prompt: str | None = None,
    size: str = "auto",
    quality: str = "auto",
    n: int = 1,
    background: str = "auto",
    output_format: str = "png",
    output_compression: int | None = None,
    reference_images: int = 0,
    today: date | None = None,
) -> ModelCapabilities:
    """Refuse, with a 422 naming the field and the allowed values, what the model would refuse.

    `reference_images` is how many input images will be sent. `prompt`, when given, is checked
    against the model's length limit (the composer checks the composed prompt again). Returns
    the model's capabilities so the caller can read e.g. `edit_input_fidelity`.
    """
    caps = resolve_model(model, today)
    if prompt is not None:
        if not prompt.strip():
            raise InvalidInput("prompt must not be empty", field="prompt")
        if len(prompt) > caps.max_prompt_chars:
            raise InvalidInput(
                f"prompt is {len(prompt):,} characters; {caps.name} takes at most {caps.max_prompt_chars:,}",
                field="prompt",
            )
    _check_size(caps, size)
    if quality not in caps.qualities:
        raise InvalidInput(
            f"quality {quality!r} is not offered by {caps.name}; use one of: {_one_of(caps.qualities)}",
            field="quality",
        )
    if isinstance(n, bool) or not isinstance(n, int) or not caps.n_min <= n <= caps.n_max:
        raise InvalidInput(f"n must be between {caps.n_min} and {caps.n_max}", field="n")
    if reference_images < 0 or reference_images > caps.max_input_images:
        raise InvalidInput(
            f"{reference_images} reference images chosen; {caps.name} takes at most {caps.max_input_images}",
            field="reference_images",
        )
    if output_format not in caps.output_formats:
        raise InvalidInput(
            f"output_format {output_format!r} is not offered; use one of: {_one_of(caps.output_formats)}",
            field="output_format",
        )
    if background not in caps.backgrounds:
        raise InvalidInput(
            f"background {background!r} is not offered by {caps.name}; "
            f"use one of: {_one_of(caps.backgrounds)}",
            field="background",
        )
    if background == "transparent" and output_format not in caps.transparent_formats:
        raise InvalidInput(
            f"a transparent background needs output_format {' or '.join(caps.transparent_formats)}, "
            f"not {output_format}",
            field="background",
        )
    if output_compression is not None:
        low, high = caps.compression_range
        if output_format not in caps.compression_formats:
            raise InvalidInput(
                f"output_compression applies only to output_format {' or '.join(caps.compression_formats)}",
                field="output_compression",
            )
        if isinstance(output_compression, bool) or not low <= output_compression <= high:
            raise InvalidInput(
                f"output_compression must be between {low} and {high}", field="output_compression"
            )
    return caps


# Backends that honour a seed whatever the model: the draft renderer seeds its panel layout.
SEEDING_BACKENDS = frozenset({"draft"})


def validate_sampling(
    caps: ModelCapabilities,
    backend: str,
    *,
    seed: int | None = None,
    guidance_scale: float | None = None,
    steps: int | None = None,
    strength: float | None = None,
    negative_prompt: str | None = None,
    reference_images: int = 0,
) -> None:
    """Refuse a sampling control that this model on this backend would ignore.

    A silently ignored seed is worse than a 422: the author would believe the picture can be
    drawn again. The draft backend honours `seed` for any model; GPT Image takes none.
    `strength` is how far image-to-image moves from input image 1, so it needs one.
    """
    where = f"{caps.name} on the {backend} backend"
    if backend != "draft" and caps.provider != backend:
        offered = _BY_BACKEND.get(backend, MODELS)
        raise InvalidInput(
            f"{caps.name} is a {caps.provider} model; this server draws with {backend}: use one of "
            + _one_of([name for name, c in offered.items() if c.is_live(today_utc())]),
            field="model",
            code="model_not_offered",
        )
    if seed is not None and not (caps.seed or backend in SEEDING_BACKENDS):
        raise InvalidInput(
            f"{where} takes no seed; leave seed out", field="seed", code="unsupported_parameter"
        )
    if negative_prompt is not None and (not caps.negative_prompt or backend == "draft"):
        raise InvalidInput(
            f"{where} takes no negative_prompt; leave it out",
            field="negative_prompt",
            code="unsupported_parameter",
        )
    if strength is not None and caps.strength is not None and reference_images == 0:
        raise InvalidInput(
            "strength applies to image-to-image: give a reference image (input image 1 is the start)",
            field="strength",
        )
    for name, value, allowed in (
        ("guidance_scale", guidance_scale, caps.guidance_scale),
        ("steps", steps, caps.steps),
        ("strength", strength, caps.strength),
    ):
        if value is None:
            continue
        if allowed is None or backend == "draft":
            raise InvalidInput(
                f"{where} takes no {name}; leave it out", field=name, code="unsupported_parameter"
            )
        low, high = allowed
        if not low <= value <= high:
            raise InvalidInput(f"{name} must be between {low:g} and {high:g} for {caps.name}", field=name)
