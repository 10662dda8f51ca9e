"""The scene form's fetch() endpoints: preview the prompt (dry run), generate, poll a job.

Answers carry server-rendered HTML fragments (autoescaped Jinja2), so the page script only
swaps them in and never builds markup from user text. Generation always runs with
`wait=False`: the page polls `/ui/api/generations/{id}` and shows progress meanwhile.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from sqlmodel import Session
from starlette.responses import JSONResponse

from api.request_body import read_capped
from characters import service as characters
from config import Settings
from deps import RuntimeDep, SessionDep, SettingsDep, check_generation_limit, check_rate_limit
from errors import BadRequest, InvalidInput, StoryloomError
from generation import jobs
from generation.models import Generation, JobStatus
from generation.schemas import DryRunRead, GenerateRequest
from generation.service import submit
from pages.csrf import CsrfHeader
from pages.pages import parse_numbers
from pages.pictures import picture_items, shown_image
from pages.render import WebRoute, plain_words, templates
from pages.session import WebCallerDep, web_session

router = APIRouter(prefix="/ui/api", route_class=WebRoute, include_in_schema=False)
MAX_JSON_BYTES = 64 * 1024


async def read_json(request: Request, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    body = await read_capped(request, limit, None, "the form is too large")
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("the scene form did not arrive as JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the scene form did not arrive as a JSON object")
    return data


def scene_request(data: dict[str, Any], *, dry_run: bool) -> GenerateRequest:
    """The form's fields as a GenerateRequest; a bad value is a 422 naming the form field."""
    refs_text = str(data.get("reference_images") or "")
    if refs_text.replace(",", " ").split() != [str(n) for n in parse_numbers(refs_text)]:
        raise InvalidInput("Reference images must be image numbers, like 0, 3, 7.", field="reference_images")
    refs = parse_numbers(refs_text)
    try:
        return GenerateRequest(
            prompt=str(data.get("prompt") or ""),
            characters=[int(c) for c in data.get("characters") or [] if str(c).isdigit()],
            reference_images=refs or None,
            size=str(data.get("size") or "auto"),
            quality=str(data.get("quality") or "auto"),
            n=int(data.get("n") or 1),
            wait=False,
            dry_run=dry_run,
        )
    except (ValidationError, ValueError) as exc:
        field = "n"
        message = "n must be a whole number"
        if isinstance(exc, ValidationError) and exc.errors():
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "prompt"
            message = _field_message(first)
        raise InvalidInput(message, field=field) from None


def _field_message(error: Any) -> str:
    """The real reason, in the author's words: an empty scene and a too-long one differ."""
    field = str(error["loc"][0]) if error["loc"] else "prompt"
    if field == "prompt" and error["type"] == "string_too_short":
        return "Write what happens in the scene."
    if error["type"] == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        given = len(error.get("input") or "")
        return f"The scene is {given:,} characters long; at most {limit:,} fit. Shorten it."
    return str(error["msg"])


def _fragment(name: str, context: dict[str, Any]) -> str:
    return templates.get_template(name).render(context)


@router.post("/preview", dependencies=[CsrfHeader])
async def preview(request: Request, caller: WebCallerDep, rt: RuntimeDep) -> JSONResponse:
    check_rate_limit(request, caller.key_id, "api")
    body = scene_request(await read_json(request), dry_run=True)
    result = await submit(rt, caller, body, None)
    assert isinstance(result, DryRunRead)
    cost = result.estimated_cost_usd  # the dry run prices it; the page only shows it
    html = _fragment("partials/preview.html", {"dry": result, "cost": cost})
    return JSONResponse({"html": html, "prompt": result.prompt})


@router.post("/generate", dependencies=[CsrfHeader])
async def generate(request: Request, caller: WebCallerDep, rt: RuntimeDep) -> JSONResponse:
    check_rate_limit(request, caller.key_id, "api")
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= 200:
        raise InvalidInput("Idempotency-Key must be 1–200 characters", field="Idempotency-Key")
    body = scene_request(await read_json(request), dry_run=False)
    job = await submit(rt, caller, body, key, admit=lambda: check_generation_limit(request, caller))
    assert isinstance(job, Generation)
    return JSONResponse(
        {"id": job.id, "status": job.status, "status_url": f"/ui/api/generations/{job.id}"}, status_code=202
    )


@router.get("/references")
def references(
    request: Request,
    caller: WebCallerDep,
    session: SessionDep,
    settings: SettingsDep,
    numbers: Annotated[str, Query(max_length=2000)] = "",
) -> JSONResponse:
    """The chosen references as thumbnails in send order, and whom each shows (to tick them)."""
    items, unknown = picture_items(session, settings, caller.workspace_id, parse_numbers(numbers))
    html = _fragment("partials/references.html", {"refs": items, "unknown": unknown})
    shows = {str(item["number"]): item["character_ids"] for item in items}
    return JSONResponse({"html": html, "characters": shows, "numbers": [i["number"] for i in items]})


def job_view(session: Session, settings: Settings, job: Generation) -> dict[str, Any]:
    """What the result fragment and the history page show of one job."""
    ws = job.workspace_id
    all_characters, _ = characters.list_characters(session, ws, q=None, limit=200, offset=0)
    error = None
    if job.status == JobStatus.failed:
        failure = StoryloomError(job.error_message or "the job failed", code=job.error_code or "failed")
        failure.status_code = job.error_status or 502
        error = plain_words(failure)
    sent, _ = picture_items(session, settings, ws, job.reference_numbers)
    return {
        "job": job,
        "sent": sent,
        "outputs": [shown_image(settings, ws, n, "generated scene") for n in job.image_numbers],
        "characters": all_characters,
        "scene_character_ids": [c.get("id") for c in job.characters],
        "error": error,
    }


def _poll(session: Session, settings: Settings, workspace_id: int, job_id: str, csrf: str) -> dict[str, Any]:
    job = jobs.get_job(session, workspace_id, job_id)
    done = job.status in jobs.TERMINAL
    html = _fragment("partials/generation.html", {**job_view(session, settings, job), "csrf_token": csrf})
    return {"id": job.id, "status": job.status, "done": done, "html": html}


@router.get("/generations/{job_id}")
def poll(
    job_id: str, request: Request, caller: WebCallerDep, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    return JSONResponse(_poll(session, settings, caller.workspace_id, job_id, web_session(request).csrf))
