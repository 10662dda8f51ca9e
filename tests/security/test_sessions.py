"""Browser sessions end for real (issue 12, defect 8): logout ends a copied cookie too, and sessions
last SESSION_LIFETIME_SECONDS (12 h) after their last use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import select

from accounts.models import BrowserSession
from pages.session import COOKIE_NAME
from storage.db import write_session
from storage.timeutil import utcnow
from tests.web.test_templates import log_in


def _age_sessions(app: FastAPI, idle: timedelta) -> None:
    """Make every session look last used `idle` ago (the clock is the database row's)."""
    with write_session(app.state.runtime.engine) as session:
        session.execute(text("UPDATE browser_session SET last_seen_at = :t"), {"t": utcnow() - idle})


def test_a_cookie_copied_before_logout_is_worthless_after_it(
    client: TestClient, app: FastAPI, make_key: Callable[..., str]
) -> None:
    csrf = log_in(client, make_key("alpha"))
    copied = client.cookies.get(COOKIE_NAME)
    assert copied
    assert client.post("/ui/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, copied)  # replay the copy made before logout
    response = client.get("/ui", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/login")


def test_sessions_end_twelve_hours_after_their_last_use_and_slide_while_used(
    client: TestClient, app: FastAPI, make_key: Callable[..., str]
) -> None:
    log_in(client, make_key("alpha"))
    cookie = client.cookies.get(COOKIE_NAME)
    _age_sessions(app, timedelta(hours=11, minutes=50))
    used = client.get("/ui", follow_redirects=False)
    assert used.status_code == 200  # still within 12 h: and this use slides it forward
    assert "max-age=43200" in used.headers.get("set-cookie", "").lower()
    with write_session(app.state.runtime.engine) as session:
        seen = session.exec(select(BrowserSession.last_seen_at)).one()
    assert utcnow() - seen < timedelta(minutes=1)  # slid forward to this use
    _age_sessions(app, timedelta(hours=12, minutes=1))
    assert client.get("/ui", follow_redirects=False).status_code == 303
    assert cookie


def test_the_cookie_itself_lasts_twelve_hours(client: TestClient, make_key: Callable[..., str]) -> None:
    page = client.get("/ui/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post(
        "/ui/login", data={"api_key": make_key("alpha"), "csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "max-age=43200" in response.headers["set-cookie"].lower()
