"""A fake Replicate API for the real `replicate` client, served on 127.0.0.1 by `tests.servers.serve`.

Predictions are created at `POST /v1/models/{owner}/{name}/predictions`, start as `starting`
and reach `outcome` ("succeeded", "failed", "canceled"; "running" never finishes) after
`polls_to_finish` polls of `GET /v1/predictions/{id}`; `POST .../cancel` cancels one. Output
files are PNGs served by the fake itself under `/files/`. `fail(kind)` answers the next create
with an HTTP error as Replicate words it (problem-details JSON). Everything is recorded.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "r8_test_token"
FAULTS: dict[str, tuple[int, dict[str, Any]]] = {
    "invalid_input": (
        422,
        {"title": "Input validation failed", "detail": "- input.prompt: too long", "status": 422},
    ),
    "throttled": (429, {"title": "Request was throttled", "detail": "Request was throttled.", "status": 429}),
    "down": (
        503,
        {"title": "Service Unavailable", "detail": "Replicate is down for maintenance", "status": 503},
    ),
    "no_model": (
        404,
        {"title": "Not found", "detail": "The requested resource could not be found.", "status": 404},
    ),
}


@dataclass
class FakePrediction:
    id: str
    model: str
    input: dict[str, Any]
    status: str = "starting"
    polls: int = 0
    output: list[str] | None = None
    error: str | None = None


@dataclass
class Created:
    model: str
    input: dict[str, Any]
    authorization: str | None


@dataclass
class FakeReplicate:
    base_url: str = ""
    outcome: str = "succeeded"
    polls_to_finish: int = 2
    created: list[Created] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    predictions: dict[str, FakePrediction] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    _faults: deque[str] = field(default_factory=deque)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/v1/models/{owner}/{name}/predictions", self._create, methods=["POST"]),
                Route("/v1/predictions/{pid}", self._get, methods=["GET"]),
                Route("/v1/predictions/{pid}/cancel", self._cancel, methods=["POST"]),
                Route("/files/{name}", self._file, methods=["GET"]),
            ]
        )

    def fail(self, kind: str) -> None:
        self._faults.append(kind)

    def reset(self) -> None:
        with self._lock:
            self.outcome, self.polls_to_finish = "succeeded", 2
            self.created.clear()
            self.cancelled.clear()
            self.predictions.clear()
            self._faults.clear()

    def _json(self, p: FakePrediction) -> dict[str, Any]:
        done = p.status in ("succeeded", "failed", "canceled")
        return {
            "id": p.id,
            "model": p.model,
            "version": "fakeversion",
            "status": p.status,
            "input": p.input,
            "output": p.output,
            "logs": "",
            "error": p.error,
            "metrics": {"predict_time": 1.25} if done else {},
            "created_at": "2026-11-30T00:00:00Z",
            "started_at": "2026-11-30T00:00:01Z",
            "completed_at": "2026-11-30T00:00:02Z" if done else None,
            "urls": {
                "get": f"{self.base_url}/v1/predictions/{p.id}",
                "cancel": f"{self.base_url}/v1/predictions/{p.id}/cancel",
            },
        }

    async def _create(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        body = await request.json()
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        self.created.append(Created(model, dict(body.get("input") or {}), authorization))
        if authorization != f"Bearer {TOKEN}":
            detail = {
                "title": "Unauthenticated",
                "detail": "You did not pass a valid authentication token",
                "status": 401,
            }
            return JSONResponse(detail, 401)
        if self._faults:
            status, detail = FAULTS[self._faults.popleft()]
            return JSONResponse(detail, status)
        prediction = FakePrediction(f"p{next(self._ids)}", model, dict(body["input"]))
        self.predictions[prediction.id] = prediction
        return JSONResponse(self._json(prediction), 201)

    async def _get(self, request: Request) -> Response:
        prediction = self.predictions.get(request.path_params["pid"])
        if prediction is None:
            return JSONResponse({"title": "Not found", "status": 404}, 404)
        prediction.polls += 1
        if prediction.status in ("starting", "processing"):
            prediction.status = "processing"
            if prediction.polls >= self.polls_to_finish and self.outcome != "running":
                self._finish(prediction)
        return JSONResponse(self._json(prediction))

    def _finish(self, prediction: FakePrediction) -> None:
        prediction.status = self.outcome
        if self.outcome == "failed":
            prediction.error = "CUDA out of memory"
        elif self.outcome == "succeeded":
            count = int(prediction.input.get("num_outputs", 1))
            extension = prediction.input.get("output_format", "webp")
            prediction.output = []
            for index in range(count):
                name = f"{prediction.id}-{index}.{extension}"
                self.files[name] = _picture(prediction.input, index)
                prediction.output.append(f"{self.base_url}/files/{name}")

    async def _cancel(self, request: Request) -> Response:
        prediction = self.predictions[request.path_params["pid"]]
        prediction.status = "canceled"
        self.cancelled.append(prediction.id)
        return JSONResponse(self._json(prediction))

    async def _file(self, request: Request) -> Response:
        data = self.files.get(request.path_params["name"])
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type="image/png")


def _picture(values: dict[str, Any], index: int) -> bytes:
    """A small PNG whose shape follows the aspect ratio and whose colour follows seed and index."""
    ratio = str(values.get("aspect_ratio", "1:1"))
    wide, tall = (int(part) for part in ratio.split(":"))
    size = (64 * wide // max(wide, tall), 64 * tall // max(wide, tall))
    seed = int(values.get("seed", 0))
    colour = ((seed * 37 + index * 80) % 256, (seed * 11) % 256, (index * 120) % 256)
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()
