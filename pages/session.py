"""The browser session: a signed cookie holding the API key's id, the workspace id, a CSRF token
and the token of a server-side session record (accounts/sessions.py).

The key itself never goes into the cookie; only its row id. Every request looks that row up
again, so revoking a key (manage.py revoke-key) closes its browser sessions at once, and checks
the session record, so logging out ends the session even for a copy of the cookie made before.
Sessions last SESSION_LIFETIME_SECONDS after their last use. The cookie is signed with
`settings.signing_key` (itsdangerous), HttpOnly and SameSite=Lax, and carries one-shot flash
messages for the page after a redirect.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from accounts import service as auth
from accounts.service import Caller
from accounts.sessions import check_session
from deps import SessionDep, get_runtime
from storage.db import end_read, write_transaction

COOKIE_NAME = "storyloom_session"
SALT = "storyloom.web.session"


class LoginRequired(Exception):
    """Raised by page dependencies; the web route class turns it into a redirect to the login page."""


@dataclass
class WebSession:
    csrf: str
    key_id: int | None = None
    workspace_id: int | None = None
    token: str | None = None  # names the server-side record (accounts/sessions.py)
    flashes: list[list[str]] = field(default_factory=list)
    dirty: bool = False

    def flash(self, level: str, text: str) -> None:
        self.flashes.append([level, text])
        self.dirty = True

    def pop_flashes(self) -> list[list[str]]:
        shown, self.flashes = self.flashes, []
        if shown:
            self.dirty = True
        return shown

    def log_in(self, caller: Caller, token: str) -> None:
        # A fresh CSRF token at login: a token seen before authentication is worth nothing after.
        self.key_id, self.workspace_id, self.token = caller.key_id, caller.workspace_id, token
        self.csrf, self.dirty = secrets.token_urlsafe(32), True

    def log_out(self) -> None:
        self.key_id = self.workspace_id = self.token = None
        self.csrf, self.flashes, self.dirty = secrets.token_urlsafe(32), [], True


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_runtime(request).settings.signing_key, salt=SALT)


def _decode(request: Request) -> WebSession | None:
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return None
    try:
        max_age = get_runtime(request).settings.session_lifetime_seconds
        data: dict[str, Any] = _serializer(request).loads(raw, max_age=max_age)
        return WebSession(
            csrf=str(data["t"]),
            key_id=data.get("k"),
            workspace_id=data.get("w"),
            token=data.get("s"),
            flashes=[[str(a), str(b)] for a, b in data.get("f", [])][:20],
        )
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def web_session(request: Request) -> WebSession:
    """This request's session (one object per request, a new anonymous one when absent or forged)."""
    current = getattr(request.state, "web_session", None)
    if current is None:
        current = _decode(request) or WebSession(csrf=secrets.token_urlsafe(32), dirty=True)
        request.state.web_session = current
    return current


def save_session(request: Request, response: Response) -> None:
    """Write the cookie back when the session changed (login, logout, flash shown or added)."""
    current: WebSession | None = getattr(request.state, "web_session", None)
    if current is None or not current.dirty:
        return
    payload: dict[str, Any] = {"t": current.csrf}
    if current.key_id is not None:
        payload.update(k=current.key_id, w=current.workspace_id, s=current.token)
    if current.flashes:
        payload["f"] = current.flashes
    secure = get_runtime(request).settings.public_base_url.startswith("https://")
    response.set_cookie(
        COOKIE_NAME,
        _serializer(request).dumps(payload),
        max_age=get_runtime(request).settings.session_lifetime_seconds,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def web_caller(request: Request, session: SessionDep) -> Caller:
    current = web_session(request)
    if current.key_id is None or current.workspace_id is None or not current.token:
        raise LoginRequired
    lifetime = timedelta(seconds=get_runtime(request).settings.session_lifetime_seconds)
    with write_transaction(session):
        live, slid = check_session(session, current.token, current.key_id, lifetime)
    current.dirty = current.dirty or slid  # a fresh cookie timestamp slides the cookie too
    caller = auth.caller_for_key_id(session, current.key_id, current.workspace_id) if live else None
    end_read(session)  # so a later write transaction starts clean
    if caller is None:
        current.log_out()
        raise LoginRequired
    request.state.caller = caller
    return caller


WebCallerDep = Annotated[Caller, Depends(web_caller)]
WebSessionDep = Annotated[WebSession, Depends(web_session)]
