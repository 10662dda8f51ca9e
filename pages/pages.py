"""The author's pages (GET): login, gallery, character, library picker, scene form, history.

Sync routes: FastAPI runs them in its thread pool, so the SQLite reads never block the loop.
Every query is scoped to the session's workspace; another workspace's character is a 404 page.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from characters import service
from characters.models import Character
from config import Settings
from deps import RuntimeDep, SessionDep, SettingsDep
from generation import jobs
from generation.backends import default_model
from generation.capabilities import resolve_model
from library import service as library
from library.tags import characters_shown
from pages.pictures import picture_items, shown_image
from pages.render import WebRoute, render
from pages.session import WebCallerDep, web_session

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)
LIBRARY_PAGE = 24
HISTORY_PAGE = 10


def safe_next(target: str | None) -> str:
    """Only our own pages: never an open redirect to another site."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if web_session(request).key_id is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "error": None})


def gallery_context(session: Session, settings: Settings, workspace_id: int) -> dict[str, Any]:
    cards = cast_cards(session, settings, workspace_id)
    return {"cards": cards, "total": len(cards), "errors": {}, "values": {}}


@router.get("")
def gallery(request: Request, caller: WebCallerDep, session: SessionDep, settings: SettingsDep) -> Response:
    return render(request, "gallery.html", gallery_context(session, settings, caller.workspace_id))


def reference_moves(numbers: list[int]) -> list[dict[str, Any]]:
    """Each reference with the whole new order its up/down/remove buttons would post."""
    moves = []
    for i, number in enumerate(numbers):
        up = down = None
        if i > 0:
            up = [*numbers[: i - 1], number, numbers[i - 1], *numbers[i + 1 :]]
        if i < len(numbers) - 1:
            down = [*numbers[:i], numbers[i + 1], number, *numbers[i + 2 :]]
        remove = numbers[:i] + numbers[i + 1 :]
        moves.append({"position": i, "number": number, "up": up, "down": down, "remove": remove})
    return moves


def character_context(session: Session, settings: Settings, character: Character) -> dict[str, Any]:
    numbers = service.reference_numbers(session, [character.id])[character.id]  # type: ignore[index,list-item]
    refs = [
        {**shown_image(settings, character.workspace_id, m["number"], character.name), **m}
        for m in reference_moves(numbers)
    ]
    return {"character": character, "refs": refs, "errors": {}, "values": {}, "confirm": False}


@router.get("/characters/{character_id}")
def character_page(
    character_id: int,
    request: Request,
    caller: WebCallerDep,
    session: SessionDep,
    settings: SettingsDep,
    confirm: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    character = service.get_character(session, caller.workspace_id, character_id)
    context = character_context(session, settings, character)
    return render(request, "character.html", {**context, "confirm": confirm == "delete"})


def parse_numbers(text: str | None) -> list[int]:
    """'3, 1 4' -> [3, 1, 4]; anything not a number is dropped (the scene form re-checks)."""
    words = (text or "").replace(",", " ").split()
    return [int(w) for w in words if w.isdigit()]


@router.get("/library")
def library_page(
    request: Request,
    caller: WebCallerDep,
    session: SessionDep,
    rt: RuntimeDep,
    kind: Literal["upload", "generated", ""] = "",
    character_id: Annotated[str, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    picked: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    ws = caller.workspace_id
    settings = rt.settings
    chosen = int(character_id) if character_id.isdigit() else None
    rows, total = library.list_images(
        session,
        rt.similarity,
        ws,
        character_id=chosen,
        kind=kind or None,
        limit=LIBRARY_PAGE,
        offset=(page - 1) * LIBRARY_PAGE,
    )
    characters, _ = service.list_characters(session, ws, q=None, limit=200, offset=0)
    names = {c.id: c.name for c in characters}
    links = characters_shown(session, [r.id for r in rows])  # type: ignore[misc]
    images = []
    for row in rows:
        who = ", ".join(names[cid] for cid in links.get(row.id, []) if cid in names)  # type: ignore[arg-type]
        images.append({**shown_image(settings, ws, row.number, who), "kind": row.kind, "who": who})
    pages = max(1, -(-total // LIBRARY_PAGE))
    return render(
        request,
        "library.html",
        {
            "images": images,
            "total": total,
            "page": page,
            "pages": pages,
            "kind": kind,
            "character_id": chosen,
            "characters": characters,
            "picked": " ".join(str(n) for n in parse_numbers(picked)),
        },
    )


def scene_options(settings: Settings, today: date, backend: str) -> dict[str, Any]:
    caps = resolve_model(default_model(settings, backend), today)
    sizes = [*caps.standard_sizes, "auto"] if caps.auto_size else list(caps.standard_sizes)
    return {"sizes": sizes, "qualities": list(caps.qualities), "n_max": caps.n_max, "model": caps.name}


def cast_cards(session: Session, settings: Settings, workspace_id: int) -> list[dict[str, Any]]:
    """Every character as a card with its main (first) reference picture."""
    characters, _ = service.list_characters(session, workspace_id, q=None, limit=200, offset=0)
    numbers = service.reference_numbers(session, [c.id for c in characters])  # type: ignore[misc]
    cards = []
    for c in characters:
        refs = numbers[c.id]  # type: ignore[index]
        first = shown_image(settings, workspace_id, refs[0], c.name) if refs else None
        cards.append({"character": c, "first": first, "count": len(refs)})
    return cards


@router.get("/scene")
def scene_page(
    request: Request,
    caller: WebCallerDep,
    session: SessionDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    refs: Annotated[str, Query(max_length=2000)] = "",
    picked: Annotated[str, Query(max_length=2000)] = "",
    character_id: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The scene form. Pictures picked in the library bring their characters along, ticked."""
    ws = caller.workspace_id
    items, unknown = picture_items(session, settings, ws, parse_numbers(refs or picked))
    ticked = {cid for item in items for cid in item["character_ids"]}
    if character_id.isdigit():
        ticked.add(int(character_id))
    return render(
        request,
        "scene.html",
        {
            "cards": cast_cards(session, settings, ws),
            "ticked": ticked,
            "refs": items,
            "unknown": unknown,
            "refs_text": ", ".join(str(item["number"]) for item in items),
            **scene_options(settings, runtime.clock().date(), runtime.backend_name),
        },
    )


@router.get("/history")
def history_page(
    request: Request,
    caller: WebCallerDep,
    session: SessionDep,
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    ws = caller.workspace_id
    rows, total = jobs.list_jobs(
        session, ws, status=None, limit=HISTORY_PAGE, offset=(page - 1) * HISTORY_PAGE
    )
    items = [
        {
            "job": job,
            "outputs": [shown_image(settings, ws, n, "generated") for n in job.image_numbers],
            "refs": [shown_image(settings, ws, n) for n in job.reference_numbers],
        }
        for job in rows
    ]
    pages = max(1, -(-total // HISTORY_PAGE))
    return render(request, "history.html", {"items": items, "page": page, "pages": pages, "total": total})
