"""`POST /generate-image`, `GET /generations/{id}`, `GET /generations`."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from accounts.service import Caller
from characters.service import get_character
from deps import CallerDep, RuntimeDep, SessionDep, SettingsDep, check_generation_limit, refuse_unknown_query
from generation import jobs, service
from generation.models import JobStatus
from generation.schemas import DryRunRead, GenerateRequest, GenerationList, GenerationRead
from services.runtime import Runtime

router = APIRouter(tags=["scenes"])


def _accepted(job_id: str, status: str, settings_base: str) -> JSONResponse:
    url = f"{settings_base}{service.status_path(job_id)}"
    return JSONResponse(
        {"id": job_id, "status": status, "status_url": url}, status_code=202, headers={"Location": url}
    )


@router.post(
    "/generate-image",
    response_model=GenerationRead | DryRunRead,
    responses={202: {"description": "accepted; poll status_url"}},
)
async def generate_image(
    body: GenerateRequest,
    request: Request,
    caller: CallerDep,
    rt: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> object:
    return await answer_scene(request, rt, caller, body, idempotency_key)


async def answer_scene(
    request: Request,
    rt: Runtime,
    caller: Caller,
    body: GenerateRequest,
    idempotency_key: str | None,
    **job_fields: Any,
) -> object:
    """Accept a scene and answer it the way `POST /generate-image` does (also reference sheets)."""
    settings = rt.settings
    result = await service.submit(
        rt, caller, body, idempotency_key, admit=lambda: check_generation_limit(request, caller), **job_fields
    )
    if isinstance(result, DryRunRead):
        return result
    if not body.wait:
        return _accepted(result.id, result.status, settings.public_base_url)
    await service.wait_for(rt, result.id, settings.sync_wait_seconds)
    job, read = await to_thread.run_sync(
        lambda: service.load_read(
            rt, caller.workspace_id, result.id, include_b64=body.response_format == "b64_json"
        )
    )
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


@router.get("/generations/{generation_id}", response_model=GenerationRead)
def get_generation(
    generation_id: str, caller: CallerDep, session: SessionDep, rt: RuntimeDep
) -> GenerationRead:
    job = jobs.get_job(session, caller.workspace_id, generation_id)
    store = rt.store if job.response_format == "b64_json" else None
    return service.generation_read(session, rt.settings, job, b64_from=store)


LIST_FILTERS = frozenset({"status", "character_id", "book_id", "limit", "offset"})


@router.get("/generations", response_model=GenerationList)
def list_generations(
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[JobStatus | None, Query()] = None,
    character_id: Annotated[int | None, Query(ge=1, description="scenes with this character")] = None,
    book_id: Annotated[int | None, Query(description="only this book's page jobs")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
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
