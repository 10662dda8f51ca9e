"""Operators' routes: `GET /health` (for load balancers) and `GET /metrics` (Prometheus)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from deps import RuntimeDep
from errors import NotFound, Unauthorized
from services.bearer import parse_bearer
from services.health import health_report

router = APIRouter()


@router.get("/health", tags=["health"])
def health(rt: RuntimeDep) -> JSONResponse:
    body = health_report(rt)
    return JSONResponse(body, status_code=503 if "failing" in body else 200)


@router.get("/metrics", include_in_schema=False, tags=["operations"])
def metrics_endpoint(request: Request, rt: RuntimeDep) -> Response:
    """Prometheus scrape target; 404 when no token is configured, 401 without the right one."""
    token = rt.settings.metrics_token
    if token is None:
        raise NotFound("Not Found")  # the same answer as any unknown path
    presented = parse_bearer(request.headers.get("authorization"), what="METRICS_TOKEN") or ""
    if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
        raise Unauthorized("metrics need 'Authorization: Bearer <METRICS_TOKEN>'", field="Authorization")
    return Response(rt.metrics.render(), media_type=CONTENT_TYPE_LATEST)
