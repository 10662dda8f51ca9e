"""Books routes: parse, call books.service / books.illustrate, shape the answer."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse

from api.openapi import BOOK_ERRORS, OffsetQuery, RowIdPath, bearer_scheme, error_responses
from books import illustrate, service
from books.schemas import (
    BookCreate,
    BookList,
    BookRead,
    BookUpdate,
    IllustrateAccepted,
    IllustrateDryRun,
    IllustrateRequest,
    Manuscript,
    PageCreate,
    PageList,
    PageOrder,
    PageRead,
    PageUpdate,
)
from deps import CallerDep, RuntimeDep, SessionDep, SettingsDep
from storage.db import write_transaction

router = APIRouter(
    prefix="/books",
    tags=["books"],
    dependencies=[Depends(bearer_scheme)],
    responses=error_responses(*BOOK_ERRORS),
)


@router.post("", status_code=201, response_model=BookRead)
def create_book(body: BookCreate, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> BookRead:
    with write_transaction(session):
        book = service.create_book(session, caller.workspace_id, body, settings.default_image_model)
    return service.book_read(session, settings, book)


@router.get("", response_model=BookList)
def list_books(
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> BookList:
    books, total = service.list_books(session, caller.workspace_id, limit=limit, offset=offset)
    return BookList(
        items=[service.book_read(session, settings, b, with_pages=False) for b in books], total=total
    )


@router.get("/{book_id}", response_model=BookRead)
def get_book(book_id: RowIdPath, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> BookRead:
    return service.book_read(session, settings, service.get_book(session, caller.workspace_id, book_id))


@router.patch("/{book_id}", response_model=BookRead)
def update_book(
    book_id: RowIdPath, body: BookUpdate, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> BookRead:
    with write_transaction(session):
        book = service.get_book(session, caller.workspace_id, book_id)
        service.update_book(session, book, body, settings.default_image_model)
    return service.book_read(session, settings, book)


@router.delete("/{book_id}", status_code=204)
def delete_book(book_id: RowIdPath, caller: CallerDep, session: SessionDep) -> Response:
    with write_transaction(session):
        service.delete_book(session, service.get_book(session, caller.workspace_id, book_id))
    return Response(status_code=204)


@router.post("/{book_id}/manuscript", status_code=201, response_model=PageList)
def import_manuscript(
    book_id: RowIdPath, body: Manuscript, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> PageList:
    with write_transaction(session):
        book = service.get_book(session, caller.workspace_id, book_id)
        pages = service.import_manuscript(session, book, body.text, replace=body.replace)
    return PageList(pages=service.page_reads(session, settings, book, pages))


@router.post("/{book_id}/pages", status_code=201, response_model=PageRead)
def add_page(
    book_id: RowIdPath, body: PageCreate, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> PageRead:
    with write_transaction(session):
        book = service.get_book(session, caller.workspace_id, book_id)
        page = service.add_page(session, book, body)
    return service.page_reads(session, settings, book, [page])[0]


@router.put("/{book_id}/pages/order", response_model=BookRead)
def set_order(
    book_id: RowIdPath, body: PageOrder, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> BookRead:
    with write_transaction(session):
        book = service.get_book(session, caller.workspace_id, book_id)
        service.set_order(session, book, body.page_ids)
    return service.book_read(session, settings, book)


@router.patch("/{book_id}/pages/{page_id}", response_model=PageRead)
def update_page(
    book_id: RowIdPath,
    page_id: RowIdPath,
    body: PageUpdate,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> PageRead:
    with write_transaction(session):
        book = service.get_book(session, caller.workspace_id, book_id)
        page = service.update_page(session, book, service.get_page(session, book, page_id), body)
    return service.page_reads(session, settings, book, [page])[0]


@router.delete("/{book_id}/pages/{page_id}", status_code=204)
def delete_page(book_id: RowIdPath, page_id: RowIdPath, caller: CallerDep, session: SessionDep) -> Response:
    with write_transaction(session):
        book = service.get_book(session, caller.workspace_id, book_id)
        service.delete_page(session, book, service.get_page(session, book, page_id))
    return Response(status_code=204)


@router.post(
    "/{book_id}/illustrate",
    status_code=202,
    response_model=IllustrateAccepted | IllustrateDryRun,
    responses={200: {"description": "dry run: every page's prompt, references and the cost"}},
)
async def illustrate_book(
    book_id: RowIdPath,
    body: IllustrateRequest,
    caller: CallerDep,
    rt: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=180)] = None,
) -> object:
    """Queue the pages as ordinary jobs; not counted against the per-minute limit (the queue paces it)."""

    def run() -> IllustrateDryRun | tuple[IllustrateAccepted, list[str]]:
        with rt.session() as session:
            if body.dry_run:
                book = service.get_book(session, caller.workspace_id, book_id)
                return illustrate.dry_run(session, rt.settings, book, body, rt.backend.name, rt.prices)
            return illustrate.accept(
                session,
                rt.settings,
                caller,
                book_id,
                body,
                backend=rt.backend.name,
                prices=rt.prices,
                now=rt.clock(),
                idempotency_key=idempotency_key,
            )

    result = await to_thread.run_sync(run)
    if isinstance(result, IllustrateDryRun):
        return JSONResponse(result.model_dump(mode="json"), status_code=200)
    answer, runnable = result
    for job_id in runnable:
        await rt.jobs.submit(job_id)
    return JSONResponse(
        answer.model_dump(mode="json"), status_code=202, headers={"Location": answer.status_url}
    )
