"""Export routes: parse, call exports.service, hand rendering to the runner, shape the answer.

The files are served like library images: with the Bearer key or a signed URL (library.routes'
`ReaderDep`), so a browser link or a print service can download without a header.
"""

from __future__ import annotations

import re
from pathlib import Path

from anyio import to_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from api.blobs import serve_blob
from api.openapi import (
    BINARY,
    BOOK_ERRORS,
    SIGNED_URL_EXTRA,
    PageNumberPath,
    RowIdPath,
    bearer_scheme,
    error_responses,
)
from books import service as books
from deps import CallerDep, RuntimeDep, SessionDep, SettingsDep
from errors import NotFound
from exports import service
from exports.models import Export, ExportStatus
from exports.runner import unattended
from exports.schemas import ExportList, ExportRead, ExportRequest
from library.routes import ReaderDep
from storage.db import write_transaction

router = APIRouter(
    prefix="/books",
    tags=["exports"],
    dependencies=[Depends(bearer_scheme)],
    responses=error_responses(*BOOK_ERRORS),
)
MEDIA_TYPES = {"pdf": "application/pdf", "zip": "application/zip"}
EXPORT_CACHE_CONTROL = "private, max-age=3600"
PRESIGNED = {307: {"description": "With `S3_PRESIGN=true`: a short-lived presigned URL of the object store"}}


@router.post(
    "/{book_id}/exports",
    status_code=201,
    response_model=ExportRead,
    responses={202: {"model": ExportRead, "description": "still rendering after the wait; poll status_url"}},
)
async def create_export(
    book_id: RowIdPath, body: ExportRequest, runtime: RuntimeDep, caller: CallerDep
) -> JSONResponse:
    settings = runtime.settings

    export_id = await to_thread.run_sync(
        service.accept_export, runtime.engine, runtime.export_store, caller.workspace_id, book_id, body
    )
    await runtime.exports.wait(export_id, settings.sync_wait_seconds if body.wait else 0)

    def read() -> ExportRead:
        with runtime.session() as session:
            _, export = service.get_export(session, caller.workspace_id, book_id, export_id)
            return service.export_to_api(export, settings)

    answer = await to_thread.run_sync(read)
    if answer.status in (ExportStatus.SUCCEEDED, ExportStatus.FAILED):
        return JSONResponse(answer.model_dump(mode="json"), status_code=201)
    return JSONResponse(
        answer.model_dump(mode="json"), status_code=202, headers={"Location": answer.status_url}
    )


@router.get("/{book_id}/exports", response_model=ExportList)
def list_exports(
    book_id: RowIdPath, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> ExportList:
    """The book's exports that still show it as it is now, newest first."""
    book = books.get_book(session, caller.workspace_id, book_id)
    return ExportList(
        items=[service.export_to_api(e, settings) for e in service.current_exports(session, book)]
    )


@router.get("/{book_id}/exports/{export_id}", response_model=ExportRead)
def get_export(
    book_id: RowIdPath, export_id: RowIdPath, runtime: RuntimeDep, caller: CallerDep, session: SessionDep
) -> ExportRead:
    _, export = service.get_export(session, caller.workspace_id, book_id, export_id)
    if unattended(export):
        runtime.exports.submit(export_id)  # resumes one whose renderer died (its lease ran out)
    return service.export_to_api(export, runtime.settings)


@router.delete("/{book_id}/exports/{export_id}", status_code=204)
def delete_export(
    book_id: RowIdPath, export_id: RowIdPath, caller: CallerDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    with write_transaction(session):
        book = books.get_book(session, caller.workspace_id, book_id)
        export = session.get(Export, export_id)
        if export is None or export.book_id != book.id:
            raise NotFound(f"no export with id {export_id} for book {book_id}", field="export_id")
        session.delete(export)
    service.remove_dirs(runtime.export_store, [service.folder_of(export)])
    return Response(status_code=204)


def _download_name(title: str, what: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower() or "book"
    return f"{slug[:60]}-{what}"


def _serve(
    request: Request, runtime: RuntimeDep, key: str, media_type: str, filename: str | None
) -> Response:
    return serve_blob(
        request,
        runtime.export_store,
        key,
        media_type,
        cache_control=EXPORT_CACHE_CONTROL,
        presign=runtime.settings.s3_presign,
        filename=filename,
    )


def _serve_file(
    request: Request,
    book_id: int,
    export_id: int,
    workspace_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    cover: bool,
) -> Response:
    book, export = service.get_export(session, workspace_id, book_id, export_id)
    key = export.cover_key if cover else export.file_key
    if export.status != ExportStatus.SUCCEEDED or key is None:
        what = "a cover" if cover and export.status == ExportStatus.SUCCEEDED else "its file yet"
        raise NotFound(f"export {export_id} has no {what}", field="export_id", code="export_not_ready")
    media_type = MEDIA_TYPES["pdf" if cover else export.format]
    return _serve(request, runtime, key, media_type, _download_name(book.title, Path(key).name))


@router.get(
    "/{book_id}/exports/{export_id}/file",
    response_class=Response,
    responses={
        200: {
            "content": {"application/pdf": {"schema": BINARY}, "application/zip": {"schema": BINARY}},
            "description": "The interior PDF or the ZIP",
        },
        **PRESIGNED,
        **error_responses(403, 404),
    },
    openapi_extra=SIGNED_URL_EXTRA,
)
def export_file(
    book_id: RowIdPath,
    export_id: RowIdPath,
    workspace_id: ReaderDep,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
) -> Response:
    return _serve_file(request, book_id, export_id, workspace_id, session, runtime, cover=False)


@router.get(
    "/{book_id}/exports/{export_id}/cover",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {"schema": BINARY}}, "description": "The cover PDF"},
        **PRESIGNED,
        **error_responses(403, 404),
    },
    openapi_extra=SIGNED_URL_EXTRA,
)
def export_cover(
    book_id: RowIdPath,
    export_id: RowIdPath,
    workspace_id: ReaderDep,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
) -> Response:
    return _serve_file(request, book_id, export_id, workspace_id, session, runtime, cover=True)


@router.get(
    "/{book_id}/exports/{export_id}/preview/{number}",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {"schema": BINARY}},
            "description": "A page thumbnail drawn from the PDF",
        },
        **PRESIGNED,
        **error_responses(403, 404),
    },
    openapi_extra=SIGNED_URL_EXTRA,
)
def export_preview(
    book_id: RowIdPath,
    export_id: RowIdPath,
    number: PageNumberPath,
    workspace_id: ReaderDep,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
) -> Response:
    """A thumbnail of page `number` (1-based) as drawn from the interior PDF."""
    _, export = service.get_export(session, workspace_id, book_id, export_id)
    if export.status != ExportStatus.SUCCEEDED or not 1 <= number <= export.previews:
        raise NotFound(f"export {export_id} has no preview of page {number}", field="number")
    return _serve(request, runtime, service.preview_key(export, number), "image/webp", None)
