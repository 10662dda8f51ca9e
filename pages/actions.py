"""The pages' form posts: log in/out, create and edit characters, upload, reorder, remove, promote.

Each post is CSRF-checked, calls the characters service, then redirects (303) to a page with a
flash message, so a reload never posts twice. Invalid input re-renders the form with a message
next to the field. Database and Pillow work runs in the thread pool, never on the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from accounts.service import Caller, authenticate
from accounts.sessions import end_session, start_session
from characters import service
from characters.schemas import CharacterCreate, CharacterUpdate
from config import Settings
from deps import RuntimeDep, SessionDep, SettingsDep, check_rate_limit
from errors import (
    BadRequest,
    Conflict,
    InvalidInput,
    PayloadTooLarge,
    StoryloomError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from library import service as library
from library.upload_body import read_multipart
from pages import csrf
from pages.csrf import CsrfForm
from pages.pages import character_context, gallery_context, parse_numbers, safe_next
from pages.render import WebRoute, plain_words, render
from pages.session import WebCallerDep, web_session
from services.runtime import Runtime
from storage.db import end_read, write_transaction

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "form"
        message = {
            "string_too_short": "This field is required.",
            "string_too_long": f"Too long (at most {err.get('ctx', {}).get('max_length', '?')} characters).",
        }.get(err["type"], str(err["msg"]))
        errors.setdefault(name, message)
    return errors


def _text_fields(form: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: form.get(name, "") for name in names if name in form}


@router.post("/login")
async def login(request: Request, form: CsrfForm, session: SessionDep, rt: RuntimeDep) -> Response:
    key = form.get("api_key", "").strip()
    target = safe_next(form.get("next"))
    try:
        caller: Caller = await run_in_threadpool(authenticate, session, key)
    except Unauthorized as exc:
        client = request.client.host if request.client else None
        refusal = rt.auth_throttle.refuse(exc, client, key)
        if isinstance(refusal, TooManyRequests):
            context = {"next": target, "error": f"Too many failed attempts. {refusal.message.capitalize()}."}
            response = render(request, "login.html", context, 429)
            response.headers.update(refusal.headers)
            return response
        context = {"next": target, "error": "That API key is unknown or revoked. Check it and try again."}
        return render(request, "login.html", context, 401)
    finally:
        await run_in_threadpool(session.rollback)
    token = await run_in_threadpool(_start_session, session, caller)
    current = web_session(request)
    current.log_in(caller, token)
    current.flash("info", f"Logged in to workspace {caller.workspace_name}.")
    return redirect(target)


def _start_session(session: Session, caller: Caller) -> str:
    with write_transaction(session):
        return start_session(session, caller.key_id, caller.workspace_id)


def _end_session(session: Session, token: str) -> None:
    with write_transaction(session):
        end_session(session, token)


@router.post("/logout")
async def logout(request: Request, form: CsrfForm, session: SessionDep) -> Response:
    current = web_session(request)
    if current.token:
        await run_in_threadpool(_end_session, session, current.token)
    current.log_out()
    return redirect("/ui/login")


def _create(session: Session, settings: Settings, caller: Caller, values: dict[str, str]) -> Any:
    """The new character, or the gallery context with field errors to show."""
    try:
        data = CharacterCreate(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        errors = field_errors(exc)
    else:
        try:
            with write_transaction(session):
                return service.create_character(session, caller.workspace_id, data)
        except Conflict as exc:
            errors = {"name": f"{exc.message[0].upper()}{exc.message[1:]}."}
    return {**gallery_context(session, settings, caller.workspace_id), "errors": errors, "values": values}


@router.post("/characters")
async def create_character(
    request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    check_rate_limit(request, caller.key_id, "api")
    values = _text_fields(form, ("name", "description", "style"))
    result = await run_in_threadpool(_create, session, settings, caller, values)
    if isinstance(result, dict):
        return render(request, "gallery.html", result, 422)
    web_session(request).flash("info", f"Created {result.name}. Now upload a few reference pictures.")
    return redirect(f"/ui/characters/{result.id}")


def _update(
    session: Session, settings: Settings, caller: Caller, character_id: int, values: dict[str, str]
) -> Any:
    try:
        with write_transaction(session):
            character = service.get_character(session, caller.workspace_id, character_id)
            service.update_character(session, character, CharacterUpdate(**values))  # type: ignore[arg-type]
        return None
    except ValidationError as exc:
        errors = field_errors(exc)
    except Conflict as exc:
        errors = {"name": exc.message}
    character = service.get_character(session, caller.workspace_id, character_id)
    return {**character_context(session, settings, character), "errors": errors, "values": values}


@router.post("/characters/{character_id}")
async def update_character(
    character_id: int,
    request: Request,
    form: CsrfForm,
    caller: WebCallerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    check_rate_limit(request, caller.key_id, "api")
    values = _text_fields(form, ("name", "description", "style"))
    result = await run_in_threadpool(_update, session, settings, caller, character_id, values)
    if result is not None:
        return render(request, "character.html", result, 422)
    web_session(request).flash("info", "Saved.")
    return redirect(f"/ui/characters/{character_id}")


def _set_references(session: Session, caller: Caller, character_id: int, numbers: list[int]) -> None:
    with write_transaction(session):
        character = service.get_character(session, caller.workspace_id, character_id)
        service.set_references(session, character, numbers)


@router.post("/characters/{character_id}/references/order")
async def set_references(
    character_id: int, request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep
) -> Response:
    """Reorder or remove: the form carries the whole new order, computed when the page was drawn."""
    check_rate_limit(request, caller.key_id, "api")
    numbers = parse_numbers(form.get("numbers"))
    await run_in_threadpool(_set_references, session, caller, character_id, numbers)
    message = form.get("message") or "References updated."
    web_session(request).flash("info", message[:200])
    return redirect(f"/ui/characters/{character_id}#references")


def _ingest(
    session: Session, rt: Runtime, caller: Caller, character_id: int, files: list[Any]
) -> list[library.StoredImage]:
    service.get_character(session, caller.workspace_id, character_id)
    end_read(session)
    processed = [
        library.prepare(rt.settings, f.read_bytes(), gate=rt.decode_gate, name=f.filename) for f in files
    ]
    return library.store_processed(
        session, rt.settings, rt.store, rt.similarity, caller.workspace_id, processed,
        character_id=character_id,
    )  # fmt: skip


def upload_messages(stored: list[library.StoredImage]) -> list[tuple[str, str]]:
    """What the author should hear after an upload, near-duplicates first among the warnings."""
    new = [s.image.number for s in stored if not s.duplicate]
    messages: list[tuple[str, str]] = []
    if new:
        messages.append(("info", f"Added image{'s' if len(new) > 1 else ''} {', '.join(map(str, new))}."))
    for s in stored:
        if s.duplicate:
            text = f"Image {s.image.number} was already in the library; it is used as is."
            messages.append(("warning", text))
        elif s.similar_to:
            others = ", ".join(str(n) for n in s.similar_to)
            messages.append(("warning", f"Image {s.image.number} looks almost the same as image {others}."))
    return messages


def _upload_refused(
    session: Session, settings: Settings, caller: Caller, character_id: int, exc: StoryloomError
) -> dict[str, Any]:
    end_read(session)
    character = service.get_character(session, caller.workspace_id, character_id)
    return {**character_context(session, settings, character), "errors": {"files": plain_words(exc)}}


@router.post("/characters/{character_id}/references")
async def upload_references(
    character_id: int, request: Request, caller: WebCallerDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    check_rate_limit(request, caller.key_id, "api")
    csrf.check_origin(request)
    if request.headers.get(csrf.HEADER):
        csrf.check_token(request, request.headers.get(csrf.HEADER))
    try:
        async with read_multipart(
            request, rt.settings, rt.scratch.path, text_fields=frozenset({csrf.FIELD})
        ) as form:
            csrf.check_token(request, form.fields.get(csrf.FIELD))
            if not form.files or all(f.size == 0 for f in form.files):
                raise InvalidInput("Choose one or more pictures to upload.", field="files")
            stored = await run_in_threadpool(_ingest, session, rt, caller, character_id, form.files)
    except (InvalidInput, UnsupportedMediaType, PayloadTooLarge, BadRequest) as exc:
        # Back on the character page, the message next to the file field, her pictures still there.
        context = await run_in_threadpool(_upload_refused, session, rt.settings, caller, character_id, exc)
        return render(request, "character.html", context, exc.status_code)
    current = web_session(request)
    for level, text in upload_messages(stored):
        current.flash(level, text)
    return redirect(f"/ui/characters/{character_id}#references")


def _promote(session: Session, caller: Caller, character_id: int, number: int) -> str:
    with write_transaction(session):
        character = service.get_character(session, caller.workspace_id, character_id)
        image = library.get_image(session, caller.workspace_id, number)
        service.append_references(session, character, [image.id], field="number")  # type: ignore[list-item]
    return character.name


@router.post("/characters/{character_id}/references/add")
async def add_reference(
    character_id: int, request: Request, form: CsrfForm, caller: WebCallerDep, session: SessionDep
) -> Response:
    """ "Use as reference for …": append a library image (e.g. a generated scene) to a character."""
    check_rate_limit(request, caller.key_id, "api")
    number = parse_numbers(form.get("number"))
    if not number:
        raise InvalidInput("Say which image number to add.", field="number")
    name = await run_in_threadpool(_promote, session, caller, character_id, number[0])
    web_session(request).flash("info", f"Image {number[0]} is now a reference for {name}.")
    return redirect(f"/ui/characters/{character_id}#references")
