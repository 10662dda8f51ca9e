"""The image detail view and the deletes that need a confirm: an image, a character.

A delete is two steps without any script: the page shows a confirm that says what the delete
touches (which characters use the picture), and only its own POST deletes. A reload of the
result page never deletes twice (303 after the post).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from characters import service as characters
from config import Settings
from deps import RuntimeDep, SessionDep, check_rate_limit
from errors import NotFound
from generation import jobs
from library import service as library
from library.similarity import SimilarityCache
from library.tags import characters_shown
from pages.csrf import CsrfForm
from pages.pictures import character_names, picture_items, shown_image
from pages.render import WebRoute, render
from pages.session import WebCallerDep, web_session
from storage.db import write_transaction

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)
SIMILAR_DISTANCE = 12
SIMILAR_LIMIT = 10


def image_context(
    session: Session, settings: Settings, similarity: SimilarityCache, workspace_id: int, number: int
) -> dict[str, Any]:
    image = library.get_image(session, workspace_id, number)
    shown_ids = characters_shown(session, [image.id]).get(image.id, [])  # type: ignore[list-item,arg-type]
    names = character_names(session, workspace_id, set(shown_ids))
    job = None
    if image.generation_id:
        try:
            job = jobs.get_job(session, workspace_id, image.generation_id)
        except NotFound:
            job = None
    neighbours = library.similar_images(
        session, similarity, workspace_id, number, SIMILAR_DISTANCE, SIMILAR_LIMIT
    )
    similar, _ = picture_items(session, settings, workspace_id, [n for n, _ in neighbours])
    who = ", ".join(names[c] for c in shown_ids if c in names)
    return {
        "image": image,
        "shown": shown_image(settings, workspace_id, number, who),
        "shows": [{"id": c, "name": names[c]} for c in shown_ids if c in names],
        "users": characters.referencing_image(session, workspace_id, image.id),  # type: ignore[arg-type]
        "pages": [],  # book pages that show it, once books exist
        "job": job,
        "similar": similar,
    }


@router.get("/images/{number}")
def image_page(
    number: int,
    request: Request,
    caller: WebCallerDep,
    session: SessionDep,
    rt: RuntimeDep,
    confirm: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    context = image_context(session, rt.settings, rt.similarity, caller.workspace_id, number)
    return render(request, "image.html", {**context, "confirm": confirm == "delete"})


@router.post("/images/{number}/delete")
async def delete_image(
    number: int,
    request: Request,
    form: CsrfForm,
    caller: WebCallerDep,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    check_rate_limit(request, caller.key_id, "api")
    await run_in_threadpool(library.delete_image, session, rt.store, caller.workspace_id, number)
    web_session(request).flash("info", f"Deleted image {number}. Its number is not used again.")
    return RedirectResponse("/ui/library", status_code=303)


def _delete_character(session: Session, workspace_id: int, character_id: int) -> str:
    with write_transaction(session):
        character = characters.get_character(session, workspace_id, character_id)
        name = character.name
        characters.delete_character(session, character)
    return name


@router.post("/characters/{character_id}/delete")
async def delete_character(
    character_id: int, request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep
) -> Response:
    check_rate_limit(request, caller.key_id, "api")
    name = await run_in_threadpool(_delete_character, session, caller.workspace_id, character_id)
    web_session(request).flash("info", f"Deleted {name}. Their pictures stay in the library.")
    return RedirectResponse("/ui", status_code=303)
