"""Scenes: `POST /generate-image`, `POST /images/{number}/variations`, `GET /generations[/{id}]`, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from accounts.service import Caller
from api.openapi import (
    KEYED,
    GenerationErrorBody,
    GenerationIdPath,
    ImageNumberPath,
    OffsetQuery,
    bearer_scheme,
    error_responses,
)
from characters.service import get_character
from deps import CallerDep, RuntimeDep, SessionDep, SettingsDep, check_generation_limit, refuse_unknown_query
from generation import inputs, jobs, service
from generation.models import Generation, JobStatus
from generation.schemas import (
    DryRunRead,
    GenerateRequest,
    GenerationAccepted,
    GenerationList,
    GenerationRead,
)
from generation.variations import VariationRequest, variation_scene
from services.runtime import Runtime
from storage.ids import MAX_INT64

router = APIRouter(tags=["scenes"], dependencies=[Depends(bearer_scheme)], responses=error_responses(*KEYED))
ACCEPTED = {
    202: {
        "model": GenerationAccepted,
        "description": "Accepted: `wait` was false or the wait limit passed; poll `status_url`",
        "headers": {"Location": {"description": "the status_url", "schema": {"type": "string"}}},
    }
}


def _accepted(job_id: str, status: str, settings_base: str) -> JSONResponse:
    url = f"{settings_base}{service.status_path(job_id)}"
    return JSONResponse(
        {"id": job_id, "status": status, "status_url": url}, status_code=202, headers={"Location": url}
    )


@router.post(
    "/generate-image",
    response_model=GenerationRead | DryRunRead,
    responses={
        **ACCEPTED,
        **error_responses(400, 404, 409),
        # A generation that ran and failed: the error names its stored job.
        **error_responses(502, 503, 504, model=GenerationErrorBody),
    },
)
async def generate_image(
    body: GenerateRequest,
    request: Request,
    caller: CallerDep,
    rt: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> object:
    return await answer_scene(request, rt, caller, body, idempotency_key)


@router.post(
    "/images/{number}/variations",
    response_model=GenerationRead | DryRunRead,
    responses={
        **ACCEPTED,
        **error_responses(400, 404, 409),
        **error_responses(502, 503, 504, model=GenerationErrorBody),
    },
    tags=["images"],
)
async def image_variations(
    number: ImageNumberPath,
    body: VariationRequest,
    request: Request,
    caller: CallerDep,
    rt: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> object:
    """`n` variants of a library picture through the edit endpoint, with the picture's characters."""

    def build() -> GenerateRequest:
        with rt.session() as session:
            return variation_scene(session, caller.workspace_id, number, body)

    scene = await to_thread.run_sync(build)
    return await answer_scene(request, rt, caller, scene, idempotency_key)


async def answer_scene(
    request: Request,
    rt: Runtime,
    caller: Caller,
    body: GenerateRequest,
    idempotency_key: str | None,
    **job_fields: Any,
) -> GenerationRead | DryRunRead | JSONResponse:
    """Submit and answer: the finished job, a 202 to poll, the job's error, or a dry run's preview.

    Every scene-making route answers this way (also reference sheets, with their `job_fields`).
    """
    settings = rt.settings
    result = await submit_scene(request, rt, caller, body, idempotency_key, **job_fields)
    if isinstance(result, DryRunRead):
        return result
    if not body.wait:
        return _accepted(result.id, result.status, settings.public_base_url)
    job, read = await wait_and_read(rt, caller, result.id, include_b64=body.response_format == "b64_json")
    if job.status == JobStatus.failed:
        error = read.error
        assert error is not None
        return JSONResponse(
            {"error": {**error.model_dump(), "generation_id": job.id}},
            status_code=job.error_status or 502,
            headers={"Retry-After": str(job.error_retry_after)}
            if job.error_retry_after is not None
            else None,
        )
    if job.status != JobStatus.succeeded:
        return _accepted(job.id, job.status, settings.public_base_url)
    return read


async def submit_scene(
    request: Request,
    rt: Runtime,
    caller: Caller,
    body: GenerateRequest,
    idempotency_key: str | None,
    **job_fields: Any,
) -> Generation | DryRunRead:
    """The shared start of every scene-making route (the OpenAI facade too): import, validate, count, submit.

    The generation rate limit counts only requests that pass validation (`admit`).
    """
    body = await inputs.import_outside_references(rt, caller.workspace_id, body)
    return await service.submit(
        rt, caller, body, idempotency_key, admit=lambda: check_generation_limit(request, caller), **job_fields
    )


async def wait_and_read(
    rt: Runtime, caller: Caller, job_id: str, *, include_b64: bool
) -> tuple[Generation, GenerationRead]:
    """Wait up to SYNC_WAIT_SECONDS for the job, then read it as it is."""
    await service.wait_for(rt, job_id, rt.settings.sync_wait_seconds)
    return await to_thread.run_sync(
        lambda: service.load_read(rt, caller.workspace_id, job_id, include_b64=include_b64)
    )


@router.get("/generations/{generation_id}", response_model=GenerationRead, responses=error_responses(404))
def get_generation(
    generation_id: GenerationIdPath, caller: CallerDep, session: SessionDep, rt: RuntimeDep
) -> GenerationRead:
    job = jobs.get_job(session, caller.workspace_id, generation_id)
    store = rt.store if job.response_format == "b64_json" else None
    return service.generation_read(session, rt.settings, job, b64_from=store)


@router.post(
    "/generations/{generation_id}/cancel",
    response_model=GenerationRead,
    responses=error_responses(404, 409),
)
async def cancel_generation(
    generation_id: GenerationIdPath, caller: CallerDep, rt: RuntimeDep
) -> GenerationRead:
    """Stop a queued or running job: it ends `cancelled`, is not charged, and keeps no late outputs.

    A job already succeeded, failed or cancelled is a 409 naming its status.
    """
    await service.cancel(rt, caller.workspace_id, generation_id)
    _, read = await to_thread.run_sync(
        lambda: service.load_read(rt, caller.workspace_id, generation_id, include_b64=False)
    )
    return read


LIST_FILTERS = frozenset({"status", "character_id", "book_id", "limit", "offset"})


@router.get("/generations", response_model=GenerationList, responses=error_responses(404))
def list_generations(
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[JobStatus | None, Query()] = None,
    character_id: Annotated[
        int | None, Query(ge=1, le=MAX_INT64, description="scenes with this character")
    ] = None,
    book_id: Annotated[
        int | None, Query(ge=1, le=MAX_INT64, description="only this book's page jobs")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: OffsetQuery = 0,
) -> GenerationList:
    """Newest first; an unknown filter is a 422, never silently ignored."""
    refuse_unknown_query(request, LIST_FILTERS)
    if character_id is not None:
        get_character(session, caller.workspace_id, character_id)
    rows, total = jobs.list_jobs(
        session,
        caller.workspace_id,
        status=status,
        limit=limit,
        offset=offset,
        character_id=character_id,
        book_id=book_id,
    )
    return GenerationList(
        items=[service.generation_read(session, settings, job) for job in rows], total=total
    )
