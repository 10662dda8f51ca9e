"""The "fix an area" page: paint over part of a library picture, describe the fix, redraw it.

The page's brush paints on a canvas the size of the picture; the script turns the strokes into
an OpenAI-style mask (opaque everywhere, transparent where painted) and sends it as a `data:`
URI. Here the mask goes into the library like any upload and the edit is an ordinary masked
scene job (`mask` = that number, the picture as input image 1), so it is checked, counted and
shown in the history exactly like one made through `/generate-image`.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from characters import service as characters
from deps import RuntimeDep, SessionDep, SettingsDep, check_generation_limit, check_rate_limit
from errors import InvalidInput
from generation.models import Generation
from generation.schemas import GenerateRequest
from generation.service import submit
from generation.variations import source_characters
from library import service as library
from library import sources
from pages.csrf import CsrfHeader
from pages.pages import shown_image
from pages.render import WebRoute, render
from pages.scene import read_json
from pages.session import WebCallerDep

page_router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)
api_router = APIRouter(prefix="/ui/api", route_class=WebRoute, include_in_schema=False)
MAX_MASK_JSON_BYTES = 6 * 1024 * 1024  # a 4 MB PNG as base64, with room for the form


@page_router.get("/images/{number}/fix")
def fix_page(
    number: int, request: Request, caller: WebCallerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    image = library.get_image(session, caller.workspace_id, number)
    everyone, _ = characters.list_characters(session, caller.workspace_id, q=None, limit=200, offset=0)
    context: dict[str, Any] = {
        "image": image,
        "shown": shown_image(settings, caller.workspace_id, number),
        "characters": everyone,
        "in_picture": source_characters(session, caller.workspace_id, number),
    }
    return render(request, "fix.html", context)


@api_router.post("/images/{number}/fix", dependencies=[CsrfHeader])
async def fix_area(number: int, request: Request, caller: WebCallerDep, rt: RuntimeDep) -> JSONResponse:
    check_rate_limit(request, caller.key_id, "api")
    data = await read_json(request, MAX_MASK_JSON_BYTES)
    raw = data.get("mask")
    if not isinstance(raw, str) or not raw.startswith("data:image/png;base64,"):
        raise InvalidInput("Paint the area to redraw first.", field="mask")
    mask_bytes = sources.decode_base64_image(raw, "mask", rt.settings.max_upload_bytes)

    def store_mask() -> int:
        with rt.session() as session:
            library.get_image(session, caller.workspace_id, number)  # 404 before storing anything
            stored = sources.store_sources(
                session, rt.settings, rt.store, rt.similarity, caller.workspace_id, [("mask", mask_bytes)]
            )
            return stored[0].image.number

    mask_number = await to_thread.run_sync(store_mask)
    try:
        body = GenerateRequest(
            prompt=str(data.get("prompt") or ""),
            characters=[int(c) for c in data.get("characters") or [] if str(c).isdigit()],
            reference_images=[number],
            mask=mask_number,
            wait=False,
        )
    except ValidationError:
        raise InvalidInput("Describe what to draw in the painted area.", field="prompt") from None
    key = request.headers.get("idempotency-key")
    job = await submit(
        rt,
        caller,
        body,
        key if key and len(key) <= 200 else None,
        admit=lambda: check_generation_limit(request, caller),
    )
    assert isinstance(job, Generation)
    return JSONResponse(
        {"id": job.id, "status": job.status, "status_url": f"/ui/api/generations/{job.id}"}, status_code=202
    )
