"""Character routes: parse, call characters.service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from api.openapi import (
    KEYED,
    CharacterIdPath,
    GenerationErrorBody,
    OffsetQuery,
    bearer_scheme,
    error_responses,
)
from characters import service, sheet
from characters.schemas import (
    CharacterCreate,
    CharacterList,
    CharacterRead,
    CharacterUpdate,
    ReferenceNumbers,
    ReferenceSheetRequest,
)
from deps import CallerDep, RuntimeDep, SessionDep
from generation.routes import ACCEPTED, answer_scene
from generation.schemas import DryRunRead, GenerationRead
from storage.db import end_read, write_transaction

router = APIRouter(
    prefix="/characters",
    tags=["characters"],
    dependencies=[Depends(bearer_scheme)],
    responses=error_responses(*KEYED),
)


@router.post("", status_code=201, response_model=CharacterRead, responses=error_responses(400, 409))
def create_character(body: CharacterCreate, caller: CallerDep, session: SessionDep) -> CharacterRead:
    with write_transaction(session):
        character = service.create_character(session, caller.workspace_id, body)
    return service.to_read(character, [])


@router.get("", response_model=CharacterList)
def list_characters(
    caller: CallerDep,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=100, description="part of the name")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> CharacterList:
    items, total = service.list_characters(session, caller.workspace_id, q=q, limit=limit, offset=offset)
    numbers = service.reference_numbers(session, [c.id for c in items])  # type: ignore[misc]
    return CharacterList(items=[service.to_read(c, numbers[c.id]) for c in items], total=total)  # type: ignore[index]


@router.get("/{character_id}", response_model=CharacterRead, responses=error_responses(404))
def get_character(character_id: CharacterIdPath, caller: CallerDep, session: SessionDep) -> CharacterRead:
    return service.read_character(session, service.get_character(session, caller.workspace_id, character_id))


@router.patch("/{character_id}", response_model=CharacterRead, responses=error_responses(400, 404, 409))
def update_character(
    character_id: CharacterIdPath, body: CharacterUpdate, caller: CallerDep, session: SessionDep
) -> CharacterRead:
    with write_transaction(session):
        character = service.get_character(session, caller.workspace_id, character_id)
        service.update_character(session, character, body)
    return service.read_character(session, character)


@router.delete("/{character_id}", status_code=204, responses=error_responses(404))
def delete_character(character_id: CharacterIdPath, caller: CallerDep, session: SessionDep) -> Response:
    with write_transaction(session):
        service.delete_character(session, service.get_character(session, caller.workspace_id, character_id))
    return Response(status_code=204)


@router.put("/{character_id}/references", response_model=CharacterRead, responses=error_responses(400, 404))
def set_references(
    character_id: CharacterIdPath, body: ReferenceNumbers, caller: CallerDep, session: SessionDep
) -> CharacterRead:
    with write_transaction(session):
        character = service.get_character(session, caller.workspace_id, character_id)
        service.set_references(session, character, body.numbers)
    return service.read_character(session, character)


@router.post(
    "/{character_id}/reference-sheet",
    status_code=200,
    response_model=GenerationRead | DryRunRead,
    responses={
        **ACCEPTED,
        **error_responses(400, 404, 409),
        **error_responses(502, 503, 504, model=GenerationErrorBody),
    },
)
async def reference_sheet(
    character_id: CharacterIdPath,
    body: ReferenceSheetRequest,
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    rt: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> object:
    """A turnaround sheet of the character; answers like `POST /generate-image` (200, or 202)."""
    character = service.get_character(session, caller.workspace_id, character_id)
    end_read(session)  # the wait below must not hold a pooled connection
    scene = sheet.sheet_request(character.name, character_id, wait=body.wait)
    fields = {"main_reference_of": character_id} if body.make_main else {}
    return await answer_scene(request, rt, caller, scene, idempotency_key, **fields)
