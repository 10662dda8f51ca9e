"""Typed FastAPI dependencies, declared once: the runtime, settings, a DB session, the calling workspace.

`create_app(settings)` puts its one `Runtime` on `app.state.runtime`; this module is the only
place that reads it from there, so routes see typed parts (`RuntimeDep`, `SettingsDep`, …) and
everything below the routes takes the runtime or plain arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session

from accounts.service import Caller, authenticate
from config import Settings
from errors import InvalidInput, Unauthorized
from services.bearer import parse_bearer
from services.ratelimit import LimitScope, LimitStatus
from services.runtime import Runtime
from storage.db import end_read


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def get_engine(runtime: RuntimeDep) -> Engine:
    return runtime.engine


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_caller(request: Request, session: SessionDep) -> Caller:
    token = parse_bearer(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'", field="Authorization")
    try:
        caller = authenticate(session, token)
    except Unauthorized as exc:
        client = request.client.host if request.client else None
        raise get_runtime(request).auth_throttle.refuse(exc, client, token) from None
    # End the read transaction so its pooled connection goes back now: a request that then waits
    # (POST /generate-image, up to SYNC_WAIT_SECONDS) must not hold one, or 15 waiting requests
    # exhaust the pool and the job workers they wait for can never get one.
    end_read(session)
    request.state.caller = caller
    check_rate_limit(request, caller.key_id, "api")
    return caller


def check_rate_limit(request: Request, key_id: int, scope: LimitScope) -> LimitStatus:
    """Count this request against `scope` for the key (429 when over), keeping headers for the answer.

    `get_caller` does `api` for every keyed request; the generation route adds `generations`.
    The tightest status is kept on `request.state.rate_limit` for the RateLimit-* headers.
    """
    status = get_runtime(request).limiter.check(key_id, scope)
    request.state.rate_limit = status.tighter(getattr(request.state, "rate_limit", None))
    return status


def check_generation_limit(request: Request, caller: Caller) -> LimitStatus:
    """Count one real (non-dry-run) generation request for the caller's key; 429 when over.

    The API route and the HTML scene form both hand it to `generation.service.submit`, which
    calls it once the request is valid and before anything is queued: a 422 costs nothing, a
    429 creates nothing, and both count against the same per-key budget.
    """
    return check_rate_limit(request, caller.key_id, "generations")


CallerDep = Annotated[Caller, Depends(get_caller)]


def refuse_unknown_query(request: Request, allowed: frozenset[str]) -> None:
    """A filter the route does not know is a 422 naming it, so a typo never returns everything."""
    for name in request.query_params:
        if name not in allowed:
            raise InvalidInput(
                f"unknown query parameter {name!r}; this list takes {', '.join(sorted(allowed))}",
                field=name,
                code="unknown_parameter",
            )
