"""API keys: created and revoked by operators (manage.py), checked on every request.

Only a sha256 of each key is stored; the key itself is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import Session, select

from accounts.models import ApiKey, Workspace
from errors import NotFound, Unauthorized
from storage.timeutil import utcnow

KEY_PREFIX = "sl_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who is asking: the workspace every query is scoped to, and the key that proved it."""

    workspace_id: int
    workspace_name: str
    key_id: int


def get_or_create_workspace(session: Session, name: str) -> Workspace:
    workspace = session.exec(select(Workspace).where(Workspace.name == name)).first()
    if workspace is None:
        workspace = Workspace(name=name)
        session.add(workspace)
        session.flush()
    return workspace


def create_key(session: Session, *, name: str, workspace: str = "default") -> tuple[ApiKey, str]:
    """Make a key in `workspace` (created if new); returns the row and the plaintext key."""
    ws = get_or_create_workspace(session, workspace)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(workspace_id=ws.id, name=name, key_hash=hash_key(key), prefix=key[:10])  # type: ignore[arg-type]
    session.add(row)
    session.flush()
    return row, key


def list_keys(session: Session) -> list[tuple[ApiKey, Workspace]]:
    stmt = select(ApiKey, Workspace).join(Workspace).order_by(ApiKey.id)  # type: ignore[arg-type]
    return list(session.exec(stmt).all())


def revoke_key(session: Session, key_id: int) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id}", field="id")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
    return row


def has_active_key(session: Session) -> bool:
    return session.exec(select(ApiKey.id).where(ApiKey.revoked_at.is_(None))).first() is not None  # type: ignore[union-attr]


def authenticate(session: Session, key: str) -> Caller:
    """Resolve a presented key to its workspace, or refuse with 401 (never saying why in detail)."""
    stmt = (
        select(ApiKey, Workspace)
        .join(Workspace)  # type: ignore[arg-type]
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
    )
    found = session.exec(stmt).first()
    if found is None:
        raise Unauthorized("unknown or revoked API key", field="Authorization")
    api_key, workspace = found
    return Caller(workspace_id=workspace.id, workspace_name=workspace.name, key_id=api_key.id)  # type: ignore[arg-type]


def caller_for_key_id(session: Session, key_id: int, workspace_id: int) -> Caller | None:
    """The caller a session stands for, or None once its key is revoked or gone."""
    stmt = (
        select(ApiKey, Workspace)
        .join(Workspace)  # type: ignore[arg-type]
        .where(
            ApiKey.id == key_id,
            ApiKey.workspace_id == workspace_id,
            ApiKey.revoked_at.is_(None),  # type: ignore[union-attr]
        )
    )
    found = session.exec(stmt).first()
    if found is None:
        return None
    key, workspace = found
    return Caller(workspace_id=workspace.id, workspace_name=workspace.name, key_id=key.id)  # type: ignore[arg-type]
