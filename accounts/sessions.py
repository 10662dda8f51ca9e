"""Browser sessions kept on the server, so logging out (or revoking the key) really ends them.

The cookie (pages/session.py) carries a random session token; only its sha256 is stored here,
with the key it logged in with and when it was last used. A session lives SESSION_LIFETIME_SECONDS
after its last use (sliding); logout deletes the row, so a cookie copied before logout is
worth nothing after it, and a revoked key ends its sessions because the key is checked too.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from accounts.models import BrowserSession
from storage.timeutil import utcnow

# Refresh `last_seen_at` at most this often: a page view should not always be a write.
TOUCH_EVERY = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, key_id: int, workspace_id: int) -> str:
    """A new session row (in the caller's write transaction); returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    session.add(BrowserSession(token_hash=_hash(token), key_id=key_id, workspace_id=workspace_id))
    return token


def check_session(
    session: Session, token: str, key_id: int, lifetime: timedelta, now: datetime | None = None
) -> tuple[bool, bool]:
    """(live, slid): live when the token names a session of this key used within `lifetime`;
    slid when its last use was moved forward (the cookie should then be sent again)."""
    now = now or utcnow()
    row = session.get(BrowserSession, _hash(token))
    if row is None or row.key_id != key_id:
        return False, False
    if row.last_seen_at + lifetime < now:
        session.delete(row)
        return False, False
    if now - row.last_seen_at < TOUCH_EVERY:
        return True, False
    row.last_seen_at = now
    session.add(row)
    return True, True


def end_session(session: Session, token: str) -> None:
    session.exec(delete(BrowserSession).where(col(BrowserSession.token_hash) == _hash(token)))  # type: ignore[call-overload]


def end_expired(session: Session, lifetime: timedelta, now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - lifetime
    rows = session.exec(select(BrowserSession).where(col(BrowserSession.last_seen_at) < cutoff)).all()
    for row in rows:
        session.delete(row)
    return len(rows)
