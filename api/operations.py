"""Operators' routes: `GET /health` (for load balancers) and `GET /metrics` (Prometheus)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from api.openapi import ErrorBody, error_responses, metrics_scheme
from deps import RuntimeDep
from errors import NotFound, Unauthorized
from services.bearer import parse_bearer
from services.health import health_report

router = APIRouter()


class QueueHealth(BaseModel):
    kind: str = Field(description="`local` (the in-process pool) or `procrastinate` (PostgreSQL workers)")
    depth: int | None = Field(description="jobs waiting for a worker")
    workers: int | None = Field(description="worker processes seen in the last minute (`local`: this one)")


class HealthRead(BaseModel):
    status: str = Field(description="`ok`, or `error` when a part below is down")
    database: str = Field(description="`ok` or `error: <kind>`")
    database_kind: str = Field(description="`sqlite` or `postgresql`")
    storage: str = Field(description="`ok` or `error: <reason>`")
    backend: str = Field(description="`openai` or `draft`")
    model: str
    version: str
    queue: QueueHealth
    limiter: str = Field(
        description="where rate limits are counted: `memory` (this process) or `redis` (shared); "
        "`error: <kind>` when the Redis does not answer (status `degraded`: requests are admitted)"
    )
    failing: list[str] | None = Field(default=None, description="the parts that are down (503 only)")


@router.get(
    "/health",
    tags=["health"],
    responses={
        200: {"model": HealthRead, "description": "Everything answers"},
        503: {"model": HealthRead, "description": "A part is down; `failing` names it"},
    },
)
def health(rt: RuntimeDep) -> JSONResponse:
    body = health_report(rt)
    return JSONResponse(body, status_code=503 if "failing" in body else 200)


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(metrics_scheme)],
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "Prometheus text",
        },
        **error_responses(401, 500),
        404: {"model": ErrorBody, "description": "Metrics are off (no `METRICS_TOKEN` set)"},
    },
)
def metrics_endpoint(request: Request, rt: RuntimeDep) -> Response:
    """Prometheus scrape target; 404 when no token is configured, 401 without the right one."""
    token = rt.settings.metrics_token
    if token is None:
        raise NotFound("Not Found")  # the same answer as any unknown path
    presented = parse_bearer(request.headers.get("authorization"), what="METRICS_TOKEN") or ""
    if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
        raise Unauthorized("metrics need 'Authorization: Bearer <METRICS_TOKEN>'", field="Authorization")
    return Response(rt.metrics.render(), media_type=CONTENT_TYPE_LATEST)
