"""The author's book pages: the book list, one book's page cards, and their form posts.

Each post is CSRF-checked, calls books.service / books.illustrate, then redirects (303) with a
flash message, so a reload never posts twice. The progress bar polls one small JSON endpoint;
the page reloads itself once nothing is queued or running, so every card shows its final state.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlmodel import Session
from starlette.responses import JSONResponse, RedirectResponse, Response

from books import illustrate, service
from books.models import Book
from books.printing import TRIMS
from books.schemas import BookCreate, BookUpdate, IllustrateRequest, PageCreate, PageUpdate
from config import Settings
from deps import RuntimeDep, SessionDep, SettingsDep
from errors import InvalidInput, StoryloomError
from pages.csrf import CsrfForm
from pages.exports import export_panel_context
from pages.pages import parse_numbers, shown_image
from pages.render import WebRoute, plain_words, render
from pages.session import WebCallerDep, web_session
from storage.db import write_transaction

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)
CHAINS = {"first": "Match page 1", "previous": "Match the page before", "none": "No continuity"}


def _back(book_id: int, anchor: str = "") -> Response:
    return RedirectResponse(f"/ui/books/{book_id}{anchor}", status_code=303)


def _problem(exc: ValidationError | StoryloomError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return plain_words(exc)


def _write(session: Session, action: Any) -> Any:
    with write_transaction(session):
        return action()


async def _act(request: Request, session: Session, book_id: int, action: Any, done: str) -> Response:
    """Run a write in the thread pool; flash `done`, or the problem in plain words."""
    try:
        await to_thread.run_sync(_write, session, action)
    except (ValidationError, StoryloomError) as exc:
        web_session(request).flash("error", _problem(exc))
    else:
        web_session(request).flash("info", done)
    return _back(book_id)


@router.get("/books")
def books_page(
    request: Request, caller: WebCallerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    books, total = service.list_books(session, caller.workspace_id, limit=200, offset=0)
    counts = {b.id: len(service.pages_of(session, b.id)) for b in books}  # type: ignore[arg-type]
    return render(
        request,
        "books.html",
        {"books": books, "counts": counts, "total": total, "trims": list(TRIMS), "chains": CHAINS},
    )


@router.post("/books")
async def create_book(
    request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    try:
        data = BookCreate(
            title=form.get("title", ""),
            trim=form.get("trim") or "8.5x8.5",  # type: ignore[arg-type]
            chain=form.get("chain") or "first",  # type: ignore[arg-type]
            style=form.get("style") or None,
        )
        book = await to_thread.run_sync(
            _write,
            session,
            lambda: service.create_book(session, caller.workspace_id, data, settings.default_image_model),
        )
    except (ValidationError, StoryloomError) as exc:
        web_session(request).flash("error", _problem(exc))
        return RedirectResponse("/ui/books", status_code=303)
    web_session(request).flash("info", f"Created “{book.title}”. Paste the manuscript to make its pages.")
    return _back(book.id)


def book_context(session: Session, settings: Settings, book: Book) -> dict[str, Any]:
    read = service.book_read(session, settings, book)
    ws = book.workspace_id
    assert read.pages is not None
    cards = []
    for page in read.pages:
        cards.append(
            {
                "page": page,
                "picture": shown_image(settings, ws, page.image, f"page {page.number}")
                if page.image is not None
                else None,
                "candidates": [
                    shown_image(settings, ws, n, f"candidate for page {page.number}") for n in page.candidates
                ],
            }
        )
    return {
        "book": read,
        "cards": cards,
        "style_images": [shown_image(settings, ws, n, "style") for n in read.style_images],
        "trims": list(TRIMS),
        "chains": CHAINS,
        "busy": bool(read.progress and (read.progress.queued or read.progress.running)),
    }


@router.get("/books/{book_id}")
def book_page(
    book_id: int, request: Request, caller: WebCallerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    book = service.get_book(session, caller.workspace_id, book_id)
    panel = export_panel_context(session, settings, book)["export_panel"]
    return render(request, "book.html", {**book_context(session, settings, book), "export_panel": panel})


@router.get("/api/books/{book_id}/progress")
def book_progress(
    book_id: int, caller: WebCallerDep, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    book = service.get_book(session, caller.workspace_id, book_id)
    read = service.book_read(session, settings, book)
    assert read.pages is not None and read.progress is not None
    failed = [
        {"number": p.number, "message": p.error.message if p.error else ""}
        for p in read.pages
        if p.status == "failed"
    ]
    return JSONResponse(
        {
            "progress": read.progress.model_dump(),
            "statuses": {str(p.id): p.status for p in read.pages},
            "failed": failed,
            "done": not read.progress.queued and not read.progress.running,
        }
    )


@router.post("/books/{book_id}/look")
async def set_look(
    book_id: int,
    request: Request,
    form: CsrfForm,
    caller: WebCallerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    def action() -> None:
        book = service.get_book(session, caller.workspace_id, book_id)
        data = BookUpdate(
            title=form.get("title") or book.title,
            style=form.get("style", ""),
            style_images=parse_numbers(form.get("style_images")),
            trim=form.get("trim") or book.trim,  # type: ignore[arg-type]
            chain=form.get("chain") or book.chain,  # type: ignore[arg-type]
        )
        service.update_book(session, book, data, settings.default_image_model)

    return await _act(request, session, book_id, action, "Saved the book's look.")


@router.post("/books/{book_id}/manuscript")
async def paste_manuscript(
    book_id: int, request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep
) -> Response:
    def action() -> int:
        book = service.get_book(session, caller.workspace_id, book_id)
        return len(
            service.import_manuscript(
                session, book, form.get("text", ""), replace=form.get("replace") == "on"
            )
        )

    return await _act(request, session, book_id, action, "Made pages from the manuscript.")


@router.post("/books/{book_id}/pages")
async def add_page(
    book_id: int, request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep
) -> Response:
    def action() -> None:
        book = service.get_book(session, caller.workspace_id, book_id)
        position = form.get("position", "")
        data = PageCreate(
            text=form.get("text", ""),
            scene=form.get("scene") or None,
            position=int(position) if position.isdigit() else None,
        )
        service.add_page(session, book, data)

    return await _act(request, session, book_id, action, "Added the page.")


@router.post("/books/{book_id}/pages/{page_id}/move")
async def move_page(
    book_id: int, page_id: int, request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep
) -> Response:
    def action() -> None:
        book = service.get_book(session, caller.workspace_id, book_id)
        page = service.get_page(session, book, page_id)
        step = -1 if form.get("direction") == "up" else 1
        service.update_page(session, book, page, PageUpdate(position=max(1, page.position + 1 + step)))

    return await _act(request, session, book_id, action, "Moved the page.")


@router.post("/books/{book_id}/pages/{page_id}/delete")
async def delete_page(
    book_id: int, page_id: int, request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep
) -> Response:
    def action() -> None:
        book = service.get_book(session, caller.workspace_id, book_id)
        service.delete_page(session, book, service.get_page(session, book, page_id))

    return await _act(
        request, session, book_id, action, "Deleted the page; its pictures stay in the library."
    )


@router.post("/books/{book_id}/pages/{page_id}/choose")
async def choose_picture(
    book_id: int, page_id: int, request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep
) -> Response:
    def action() -> None:
        book = service.get_book(session, caller.workspace_id, book_id)
        page = service.get_page(session, book, page_id)
        number = form.get("image", "")
        if not number.isdigit():
            raise InvalidInput("Pick one of the pictures first.", field="image")
        service.update_page(session, book, page, PageUpdate(image=int(number)))

    return await _act(request, session, book_id, action, "Chose the picture.")


@router.post("/books/{book_id}/illustrate")
async def illustrate_book(
    book_id: int,
    request: Request,
    form: CsrfForm,
    caller: WebCallerDep,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    number = form.get("page", "")
    n = form.get("n", "1")
    # A redraw asks for two new candidates: something to choose between, not a coin toss.
    body = IllustrateRequest(
        pages=[int(number)] if number.isdigit() else None,
        redo=form.get("redo") == "on",
        n=int(n) if n.isdigit() and 1 <= int(n) <= 4 else 1,
    )
    now = rt.clock()

    def accept() -> tuple[Any, list[str]]:
        return illustrate.accept(
            session,
            rt.settings,
            caller,
            book_id,
            body,
            backend=rt.backend.name,
            prices=rt.prices,
            now=now,
            idempotency_key=None,
        )

    try:
        answer, runnable = await to_thread.run_sync(accept)
    except StoryloomError as exc:
        web_session(request).flash("error", plain_words(exc))
        return _back(book_id)
    for job_id in runnable:
        await rt.jobs.submit(job_id)
    drawn = len(answer.jobs)
    web_session(request).flash(
        "info",
        f"Drawing {drawn} page{'' if drawn == 1 else 's'}"
        + (f"; {len(answer.skipped)} already illustrated." if answer.skipped else "."),
    )
    return _back(book_id, "#progress")
