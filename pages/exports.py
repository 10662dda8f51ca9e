"""The book's Export panel (issue 10): choose profile, paper and cover, export, see the warnings
page by page, preview the first pages and download.

`export_panel_context` is what `templates/partials/export_panel.html` needs: the book page
includes the panel, and `/ui/books/{id}/export` shows it alone (a refused form comes back
there). The post waits for the export like the API does (up to SYNC_WAIT_SECONDS), then
redirects to the book page at the new export, so a reload never exports twice.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from books import service as books
from books.models import Book
from config import Settings
from deps import RuntimeDep, SessionDep, SettingsDep, check_rate_limit
from errors import InvalidInput
from exports import service
from exports.schemas import ExportRead, ExportRequest
from pages.csrf import CsrfForm
from pages.render import WebRoute, render
from pages.session import WebCallerDep, web_session
from storage.db import end_read

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)
FORM_FIELDS = ("format", "profile", "paper", "cover_image", "back_image")


def grouped_warnings(export: ExportRead) -> list[dict[str, Any]]:
    """Warnings about the book and its cover first, then page by page in order."""
    groups: dict[int | None, list[str]] = {}
    for warning in export.warnings:
        groups.setdefault(warning.page, []).append(warning.message)
    order = sorted(groups, key=lambda page: -1 if page is None else page)
    return [
        {"label": "The book and its cover" if page is None else f"Page {page}", "messages": groups[page]}
        for page in order
    ]


def local_urls(export: ExportRead, settings: Settings) -> ExportRead:
    """The page links to this server as the browser reached it, not PUBLIC_BASE_URL's host."""

    def local(url: str | None) -> str | None:
        return url.removeprefix(settings.public_base_url) if url else url

    return export.model_copy(
        update={
            "url": local(export.url),
            "cover_url": local(export.cover_url),
            "preview_urls": [local(u) for u in export.preview_urls],
        }
    )


def export_panel_context(
    session: Session,
    settings: Settings,
    book: Book,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    exports = [
        local_urls(service.export_to_api(e, settings), settings)
        for e in service.current_exports(session, book)
    ]
    panel = {
        "book": book,
        "page_count": len(books.pages_of(session, book.id)),  # type: ignore[arg-type]
        "exports": [{"export": e, "groups": grouped_warnings(e)} for e in exports],
        "errors": errors or {},
        "values": values or {"format": "pdf", "profile": "print", "paper": "white"},
    }
    # One key, so the panel's names never clash with the page that includes it.
    return {"export_panel": panel, "book": book}


@router.get("/books/{book_id}/export")
def export_page(
    book_id: int, request: Request, caller: WebCallerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    book = books.get_book(session, caller.workspace_id, book_id)
    return render(request, "book_export.html", export_panel_context(session, settings, book))


def _request_from(values: dict[str, str]) -> ExportRequest:
    """The form as the API's request; an empty cover number means no cover."""
    cover = None
    if values.get("cover_image", "").strip():
        cover = {
            "image": values["cover_image"].strip(),
            "back_image": values.get("back_image", "").strip() or None,
        }
    return ExportRequest.model_validate(
        {
            "format": values.get("format", "pdf"),
            "profile": values.get("profile", "print"),
            "paper": values.get("paper", "white"),
            "cover": cover,
        }
    )


@router.post("/books/{book_id}/export")
async def start_export(
    book_id: int,
    request: Request,
    form: CsrfForm,
    caller: WebCallerDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    settings = runtime.settings
    check_rate_limit(request, caller.key_id, "api")
    values = {name: form.get(name, "") for name in FORM_FIELDS}
    book = await run_in_threadpool(books.get_book, session, caller.workspace_id, book_id)
    errors: dict[str, str] = {}
    try:
        body = _request_from(values)
        export_id = await run_in_threadpool(
            service.accept_export, runtime.engine, runtime.export_store, caller.workspace_id, book_id, body
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "_".join(str(part) for part in first["loc"]) or "format"
        errors[{"cover_image": "cover_image", "cover_back_image": "back_image"}.get(name, name)] = first[
            "msg"
        ]
    except InvalidInput as exc:
        field = {"cover.image": "cover_image", "cover.back_image": "back_image"}.get(
            exc.field or "", exc.field or "format"
        )
        errors[field] = exc.message[:1].upper() + exc.message[1:] + "."
    if errors:
        await run_in_threadpool(end_read, session)
        context = await run_in_threadpool(export_panel_context, session, settings, book, errors, values)
        return render(request, "book_export.html", context, 422)
    finished = await runtime.exports.wait(export_id, settings.sync_wait_seconds)
    message = (
        "Export ready: the warnings and downloads are below."
        if finished
        else "Still exporting: reload this page in a minute."
    )
    web_session(request).flash("info", message)
    return RedirectResponse(f"/ui/books/{book_id}#export-{export_id}", status_code=303)
