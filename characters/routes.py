"""Character routes: parse, call characters.service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.openapi import KEYED, CharacterIdPath, OffsetQuery, bearer_scheme, error_responses
from characters import service
from characters.schemas import (
    CharacterCreate,
    CharacterList,
    CharacterRead,
    CharacterUpdate,
    ReferenceNumbers,
)
from deps import CallerDep, SessionDep
from storage.db import write_transaction

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
