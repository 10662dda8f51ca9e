"""The Replicate backend: FLUX and friends through the official `replicate` client.

A prediction is created for the model (`POST /v1/models/{owner}/{name}/predictions`), polled by
the client until it succeeds, fails or is cancelled, and its output files are downloaded with
the same SSRF-safe fetcher as URL imports (size cap while streaming, content sniffed; the
output host must be public or on URL_IMPORT_ALLOW_HOSTS). Each model's input names, sizes
and sampling controls come from its capability row (generation/capabilities.py), so the
request was already checked before anything was spent.

Reference images go inline as `data:` URIs (no upload to Replicate's file store needed);
sizes go as an aspect ratio. Errors map like OpenAI's: 422 for input Replicate refuses,
502 for a refused token or a failed/cancelled prediction, 503 with Retry-After when
throttled or down, 504 when a prediction outlives REPLICATE_TIMEOUT_SECONDS (it is then
cancelled, so it stops costing money).
"""

from __future__ import annotations

import base64
import logging
import math
import time
from typing import Any

import anyio
import httpx
import replicate
from replicate.exceptions import ReplicateError

from config import Settings
from errors import InvalidInput, StoryloomError, UpstreamError
from generation.backends.base import (
    BackendRequest,
    BackendResult,
    GeneratedImage,
    UpstreamObserver,
    zero_usage,
)
from generation.capabilities import ModelCapabilities, parse_size, resolve_model
from library.fetcher import FetchPolicy, Resolver, fetch_image, system_resolver
from library.sources import fetch_policy

log = logging.getLogger("storyloom.replicate")
RETRY_AFTER_SECONDS = 30
WIRE_FORMATS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def aspect_ratio(size: str) -> str:
    dims = parse_size(size)
    if dims is None:
        return "1:1"
    width, height = dims
    divisor = math.gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def replicate_input(caps: ModelCapabilities, request: BackendRequest) -> dict[str, Any]:
    """The prediction's `input`, in this model's own parameter names."""
    values: dict[str, Any] = {
        "prompt": request.prompt,
        "output_format": WIRE_FORMATS[request.params.output_format],
    }
    if caps.size_param == "aspect_ratio":
        values["aspect_ratio"] = aspect_ratio(request.params.size)
    elif caps.size_param == "width_height" and (dims := parse_size(request.params.size)) is not None:
        values["width"], values["height"] = dims
    if caps.outputs_input is not None:
        values[caps.outputs_input] = request.params.n
    if request.params.seed is not None:
        values["seed"] = request.params.seed
    if request.params.guidance_scale is not None:
        values[caps.guidance_input] = request.params.guidance_scale
    if request.params.steps is not None:
        values[caps.steps_input] = request.params.steps
    if request.references and caps.image_input is not None:
        ref = request.references[0]
        values[caps.image_input] = f"data:{ref.content_type};base64,{base64.b64encode(ref.data).decode()}"
    return values


def _retry_after(seconds: int = RETRY_AFTER_SECONDS) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


def map_error(err: ReplicateError) -> tuple[str, StoryloomError]:
    """(outcome, error) for an HTTP error answer from Replicate's API."""
    detail = err.detail or err.title or "no detail"
    status = err.status or 0
    if status in (401, 403):
        return "upstream_auth", UpstreamError(
            "the server's Replicate token was refused; ask the operator to check REPLICATE_API_TOKEN",
            status_code=502,
            code="upstream_auth",
        )
    if status == 404:
        return "model_not_found", InvalidInput(
            f"Replicate does not offer this model: {detail}", field="model", code="model_not_found"
        )
    if status in (400, 422):
        return "upstream_rejected", InvalidInput(
            f"Replicate rejected the input: {detail}", code="upstream_rejected"
        )
    if status == 429 or status >= 500:
        return "upstream_unavailable", UpstreamError(
            "Replicate is busy or unavailable; try again later",
            status_code=503,
            code="upstream_unavailable",
            headers=_retry_after(),
        )
    return "upstream_error", UpstreamError(f"Replicate answered with an error: {detail}", status_code=502)


class ReplicateBackend:
    name = "replicate"

    def __init__(
        self,
        api_token: str,
        *,
        output_policy: FetchPolicy,
        base_url: str | None = None,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 300.0,
        resolver: Resolver = system_resolver,
        observer: UpstreamObserver | None = None,
    ) -> None:
        self._client = replicate.Client(
            api_token=api_token, base_url=base_url, timeout=httpx.Timeout(30.0, connect=10.0)
        )
        self._client.poll_interval = poll_seconds
        self._timeout = timeout_seconds
        self._policy = output_policy
        self._resolver = resolver
        self._observer = observer

    @classmethod
    def from_settings(cls, settings: Settings, observer: UpstreamObserver | None = None) -> ReplicateBackend:
        if settings.replicate_api_token is None:
            raise ValueError("ReplicateBackend needs REPLICATE_API_TOKEN")
        return cls(
            settings.replicate_api_token.get_secret_value(),
            output_policy=fetch_policy(settings),
            base_url=settings.replicate_base_url,
            poll_seconds=settings.replicate_poll_seconds,
            timeout_seconds=settings.replicate_timeout_seconds,
            observer=observer,
        )

    async def generate(self, request: BackendRequest) -> BackendResult:
        caps = resolve_model(request.model)
        started = time.perf_counter()
        outcome = "ok"
        prediction_id = None
        try:
            prediction = await self._client.predictions.async_create(
                model=request.model, input=replicate_input(caps, request)
            )
            prediction_id = prediction.id
            with anyio.move_on_after(self._timeout) as waited:
                await prediction.async_wait()
            if waited.cancelled_caught:
                outcome = "upstream_timeout"
                await self._cancel(prediction)
                raise UpstreamError(
                    f"the Replicate prediction ran longer than {self._timeout:g} seconds and was cancelled",
                    status_code=504,
                    code="upstream_timeout",
                )
            if prediction.status == "failed":
                outcome = "upstream_failed"
                raise UpstreamError(
                    f"the Replicate prediction failed: {prediction.error or 'no reason given'}",
                    status_code=502,
                    code="upstream_failed",
                )
            if prediction.status == "canceled":
                outcome = "upstream_canceled"
                raise UpstreamError(
                    "the Replicate prediction was cancelled before it finished",
                    status_code=502,
                    code="upstream_canceled",
                )
            images = [
                GeneratedImage(data=await self._download(url)) for url in self._output_urls(prediction.output)
            ]
            if not images:
                outcome = "upstream_empty"
                raise UpstreamError("Replicate answered without any image", status_code=502)
            usage = zero_usage()
            if prediction.metrics:
                usage["predict_time"] = prediction.metrics.get("predict_time")
            return BackendResult(images=images, usage=usage, model=request.model)
        except ReplicateError as err:
            outcome, mapped = map_error(err)
            raise mapped from None
        except httpx.TimeoutException:
            outcome = "upstream_timeout"
            raise UpstreamError(
                "Replicate did not answer in time", status_code=504, code="upstream_timeout"
            ) from None
        except httpx.TransportError:
            outcome = "upstream_unavailable"
            raise UpstreamError(
                "Replicate could not be reached; try again later",
                status_code=503,
                code="upstream_unavailable",
                headers=_retry_after(),
            ) from None
        except BaseException:
            if outcome == "ok":
                outcome = "aborted"
            raise
        finally:
            seconds = time.perf_counter() - started
            log.info(
                "replicate prediction model=%s id=%s input_images=%d n=%d latency_ms=%d outcome=%s",
                request.model,
                prediction_id,
                len(request.references),
                request.params.n,
                round(seconds * 1000),
                outcome,
            )
            if self._observer is not None:
                self._observer(request.model, "edit" if request.references else "generate", seconds, outcome)

    @staticmethod
    def _output_urls(output: Any) -> list[str]:
        if isinstance(output, str):
            return [output]
        if isinstance(output, list):
            return [item for item in output if isinstance(item, str)]
        return []

    async def _download(self, url: str) -> bytes:
        try:
            fetched = await fetch_image(url, self._policy, self._resolver, field="output")
        except InvalidInput as exc:  # the output, not the author's input, is at fault
            raise UpstreamError(
                f"a Replicate output could not be used: {exc.message}", status_code=502
            ) from None
        return fetched.data

    async def _cancel(self, prediction: Any) -> None:
        try:
            with anyio.move_on_after(10):
                await self._client.predictions.async_cancel(prediction.id)
        except (ReplicateError, httpx.HTTPError):
            log.warning("could not cancel Replicate prediction %s", prediction.id)

    async def aclose(self) -> None:
        return None
