"""The OpenAI-compatible facade: `/v1/images/generations` and `/v1/images/edits` over Storyloom.

Tools that speak OpenAI's images API (the `openai` SDK, n8n's OpenAI node) point their base
URL at `<storyloom>/v1` and use a Storyloom key as the API key. Each call is an ordinary
scene job — history, usage, quotas, rate limits, `Idempotency-Key` — and characters come in
by mention (`@Mia`, `@"Captain Bo"`), so the composed prompt with their descriptions and
references is what reaches the model. Uploaded images (and the mask) go into the library
first, validated and deduplicated like any upload, and are the edit's first input images.

The answer is OpenAI's `ImagesResponse`; errors are OpenAI's shape (openai_compat/errors.py).
A job still running when the wait ends answers 504 with `x-should-retry: false`: a retry by
the SDK would start (and pay for) a second job, so the caller is pointed at the job instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from characters.service import find_character_by_name, reference_numbers
from deps import CallerDep, RuntimeDep
from errors import InvalidInput, NotFound
from generation.models import Generation, JobStatus
from generation.routes import submit_scene, wait_and_read
from generation.schemas import GenerateRequest, GenerationRead
from generation.service import status_path
from library import sources
from library.upload_body import MultipartForm, read_multipart
from openai_compat.errors import openai_error
from openai_compat.mentions import parse_mentions
from services.runtime import Runtime

# OpenAI's own contract (its paths, ImagesResponse and error shape), not Storyloom's: documented
# in docs/API.md ("OpenAI-compatible API") and left out of /openapi.json, whose error schema and
# bearer scheme it does not share.
router = APIRouter(prefix="/v1", tags=["openai-compatible"], include_in_schema=False)

IMAGE_FIELDS = frozenset({"image", "image[]"})
TEXT_FIELDS = frozenset(
    {
        "prompt",
        "model",
        "n",
        "size",
        "quality",
        "background",
        "output_format",
        "output_compression",
        "input_fidelity",
        "response_format",
        "moderation",
        "user",
    }
)
MAX_PROMPT_BYTES = 32_000 * 4  # 32,000 characters of UTF-8


class ImagesGenerateBody(BaseModel):
    """OpenAI's generate parameters. `moderation`, `user` and `style` are accepted and not used."""

    model_config = ConfigDict(extra="ignore")

    prompt: str
    model: str | None = None
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    response_format: Literal["url", "b64_json"] | None = None


def _scene_request(
    rt: Runtime,
    workspace_id: int,
    prompt: str,
    fields: dict[str, Any],
    references: list[int] | None,
    mask: int | None,
) -> GenerateRequest:
    """The `/generate-image` request an OpenAI call means; 400 (`param`) for what it cannot mean."""
    mentions = parse_mentions(prompt)
    names: list[str] = []
    with rt.session() as session:
        ids: list[int] = []
        for name in mentions.names:
            try:
                character = find_character_by_name(session, workspace_id, name)
            except NotFound:
                raise InvalidInput(
                    f"the prompt mentions @{name}, but there is no character named {name!r}",
                    field="prompt",
                    code="unknown_character",
                ) from None
            ids.append(character.id)  # type: ignore[arg-type]
            names.append(character.name)
        if references is not None:
            # Uploaded images first (the mask applies to image 1), then the mentioned characters' own.
            lists = reference_numbers(session, ids)
            references = references + [n for cid in ids for n in lists[cid] if n not in references]
    values: dict[str, Any] = {key: value for key, value in fields.items() if value is not None}
    values.update(prompt=mentions.scene, characters=names, reference_images=references, mask=mask, wait=True)
    values["response_format"] = values.get("response_format") or "b64_json"
    try:
        return GenerateRequest(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None


def _images_response(job: Generation, read: GenerationRead, response_format: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for image in read.images:
        item: dict[str, Any] = {"revised_prompt": image.revised_prompt}
        item["b64_json" if response_format == "b64_json" else "url"] = (
            image.b64_json if response_format == "b64_json" else image.url
        )
        data.append(item)
    params = job.params
    return {
        "created": int(job.created_at.timestamp()),
        "data": data,
        "background": params.get("background"),
        "output_format": params.get("output_format"),
        "quality": params.get("quality"),
        "size": params.get("size"),
        "usage": job.usage,
    }


async def _run(
    request: Request, rt: Runtime, caller: Any, body: GenerateRequest, idempotency_key: str | None
) -> JSONResponse:
    result = await submit_scene(request, rt, caller, body, idempotency_key)
    assert isinstance(result, Generation)  # the facade never asks for a dry run
    job, read = await wait_and_read(rt, caller, result.id, include_b64=body.response_format == "b64_json")
    headers = {"x-storyloom-generation-id": job.id}
    if job.status == JobStatus.failed:
        error = read.error
        assert error is not None
        if job.error_retry_after is not None:
            headers["Retry-After"] = str(job.error_retry_after)
        status, payload = openai_error(job.error_status or 502, error.code, error.message, error.field)
        return JSONResponse(payload, status, headers=headers)
    if job.status != JobStatus.succeeded:
        headers["x-should-retry"] = "false"
        message = (
            f"the images are still being drawn; fetch {rt.settings.public_base_url}{status_path(job.id)} "
            "with the same key (retrying this call would start and pay for another job)"
        )
        status, payload = openai_error(504, "still_running", message, None)
        return JSONResponse(payload, status, headers=headers)
    return JSONResponse(_images_response(job, read, body.response_format), headers=headers)


@router.post("/images/generations")
async def images_generations(
    body: ImagesGenerateBody,
    request: Request,
    caller: CallerDep,
    rt: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    fields = body.model_dump(exclude={"prompt"})
    scene = await to_thread.run_sync(
        lambda: _scene_request(rt, caller.workspace_id, body.prompt, fields, None, None)
    )
    return await _run(request, rt, caller, scene, idempotency_key)


def _form_fields(form: MultipartForm) -> dict[str, Any]:
    """Multipart strings to typed values; `input_fidelity`, `moderation`, `user` are Storyloom's call."""
    fields: dict[str, Any] = {}
    for name in ("model", "size", "quality", "background", "output_format", "response_format"):
        value = form.fields.get(name, "").strip()
        fields[name] = value or None
    for name in ("n", "output_compression"):
        raw = form.fields.get(name, "").strip()
        if raw:
            try:
                fields[name] = int(raw)
            except ValueError:
                raise InvalidInput(f"{name} must be an integer", field=name) from None
    return fields


@router.post("/images/edits")
async def images_edits(
    request: Request,
    caller: CallerDep,
    rt: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    settings = rt.settings
    async with read_multipart(
        request,
        settings,
        rt.scratch.path,
        text_fields=TEXT_FIELDS,
        file_fields=IMAGE_FIELDS | {"mask"},
        max_text_bytes=MAX_PROMPT_BYTES,
    ) as form:
        prompt = form.fields.get("prompt", "")
        if not prompt.strip():
            raise InvalidInput("Missing required parameter: 'prompt'.", field="prompt")
        images = [part for part in form.files if part.field in IMAGE_FIELDS]
        masks = [part for part in form.files if part.field == "mask"]
        if not images:
            raise InvalidInput("Missing required parameter: 'image'.", field="image")
        if len(masks) > 1:
            raise InvalidInput("send at most one mask", field="mask")
        fields = _form_fields(form)

        def store() -> tuple[list[int], int | None]:
            blobs = [("image", part.read_bytes()) for part in images] + [
                ("mask", part.read_bytes()) for part in masks
            ]
            with rt.session() as session:
                stored = sources.store_sources(
                    session, settings, rt.store, rt.similarity, caller.workspace_id, blobs
                )
            numbers = [s.image.number for s in stored]
            mask = numbers.pop() if masks else None
            # The same picture sent twice is one library image: send it once.
            return list(dict.fromkeys(numbers)), mask

        numbers, mask = await to_thread.run_sync(store)
    scene = await to_thread.run_sync(
        lambda: _scene_request(rt, caller.workspace_id, prompt, fields, numbers, mask)
    )
    return await _run(request, rt, caller, scene, idempotency_key)
