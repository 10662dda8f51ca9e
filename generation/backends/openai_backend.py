"""The OpenAI backend: GPT Image through the official `openai` SDK's `AsyncOpenAI`.

With reference images it calls `images.edit(image=[...])`, every image a
`(filename, bytes, content_type)` tuple because bare bytes go out as octet-stream and the API
refuses them; without, `images.generate`. Retries (429, 5xx, connection errors, honouring
Retry-After) and timeouts are the SDK's own, configured from settings; what is left when they
give up is mapped, in `ERROR_RULES`, onto Storyloom's errors.

Insufficient quota is mapped to 502 `upstream_quota`, not 503: it is the server's billing, and
retrying later will not help until an operator tops the account up.

One log line per upstream call (model, endpoint, input images, latency, outcome, retries);
never the key, the images, or the prompt (only its length). Retries are the SDK's own and
invisible from outside, so an httpx2 request hook on the SDK's HTTP client counts the HTTP
requests each call makes (a context variable keeps concurrent calls apart): retries = requests - 1.
An optional observer (the app's metrics) hears (model, endpoint, seconds, outcome) per call.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI, DefaultAsyncHttpx2Client

from config import Settings
from errors import InvalidInput, StoryloomError, UpstreamError
from generation.backends.base import (
    BackendRequest,
    BackendResult,
    GeneratedImage,
    UpstreamObserver,
    zero_usage,
)
from generation.capabilities import MODELS
from generation.params import NOT_OPENAI_ARGUMENTS

log = logging.getLogger("storyloom.openai")

DEFAULT_RETRY_AFTER_SECONDS = 30
# HTTP requests sent by the current upstream call (first try + SDK retries); None outside a call.
_http_requests: ContextVar[list[int] | None] = ContextVar("storyloom_openai_requests", default=None)


async def _count_request(_: httpx2.Request) -> None:
    counter = _http_requests.get()
    if counter is not None:
        counter[0] += 1


def _upstream_message(err: openai.OpenAIError) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return body["message"]
    return getattr(err, "message", None) or str(err)


def _code(err: openai.OpenAIError) -> str | None:
    return getattr(err, "code", None)


def _retry_after(err: openai.OpenAIError) -> dict[str, str]:
    """Retry-After for our client: upstream's own value when it gave one, else a default."""
    response = getattr(err, "response", None)
    headers = response.headers if response is not None else {}
    seconds: float | None = None
    for name, divisor in (("retry-after", 1), ("retry-after-ms", 1000)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            break
        seconds = None
    if seconds is None:
        seconds = DEFAULT_RETRY_AFTER_SECONDS
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


@dataclass(frozen=True)
class ErrorRule:
    """One row of the mapping: the first rule whose `matches` holds decides the error."""

    outcome: str  # also the log's outcome word
    matches: Callable[[openai.OpenAIError], bool]
    build: Callable[[openai.OpenAIError], StoryloomError]


def _is(*types: type[BaseException]) -> Callable[[openai.OpenAIError], bool]:
    return lambda err: isinstance(err, types)


def _has_code(code: str) -> Callable[[openai.OpenAIError], bool]:
    return lambda err: _code(err) == code


AUTH_MESSAGE = "the server's OpenAI API key was refused by OpenAI; ask the operator to check OPENAI_API_KEY"

ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        "content_policy",
        _has_code("moderation_blocked"),
        lambda e: InvalidInput(_upstream_message(e), field="prompt", code="content_policy"),
    ),
    ErrorRule(
        "model_not_found",
        _has_code("model_not_found"),
        lambda e: InvalidInput(
            f"OpenAI does not offer this model to this server: {_upstream_message(e)}",
            field="model",
            code="model_not_found",
        ),
    ),
    ErrorRule(
        "upstream_quota",
        _has_code("insufficient_quota"),
        lambda e: UpstreamError(
            "the server's OpenAI account has run out of quota; ask the operator to check billing",
            status_code=502,
            code="upstream_quota",
        ),
    ),
    ErrorRule(
        "upstream_auth",
        _is(openai.AuthenticationError, openai.PermissionDeniedError),
        lambda e: UpstreamError(AUTH_MESSAGE, status_code=502, code="upstream_auth"),
    ),
    ErrorRule(  # before APIConnectionError: the timeout is its subclass
        "upstream_timeout",
        _is(openai.APITimeoutError),
        lambda e: UpstreamError(
            "OpenAI did not answer in time; try again, perhaps with a lower quality or smaller size",
            status_code=504,
            code="upstream_timeout",
        ),
    ),
    ErrorRule(
        "upstream_unavailable",
        _is(openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError),
        lambda e: UpstreamError(
            "OpenAI is busy or unavailable (after retries); try again later",
            status_code=503,
            code="upstream_unavailable",
            headers=_retry_after(e),
        ),
    ),
    ErrorRule(
        "upstream_rejected",
        _is(openai.BadRequestError, openai.UnprocessableEntityError),
        lambda e: InvalidInput(
            f"OpenAI rejected the request: {_upstream_message(e)}",
            field=getattr(e, "param", None) if isinstance(getattr(e, "param", None), str) else None,
            code="upstream_rejected",
        ),
    ),
    ErrorRule(
        "upstream_error",
        lambda e: True,
        lambda e: UpstreamError(f"OpenAI answered with an error: {_upstream_message(e)}", status_code=502),
    ),
)


def map_error(err: openai.OpenAIError) -> tuple[str, StoryloomError]:
    """(outcome, the error to raise) for an SDK error, by the first matching rule."""
    for rule in ERROR_RULES:
        if rule.matches(err):
            return rule.outcome, rule.build(err)
    raise AssertionError("the last rule matches everything")  # pragma: no cover


def _usage_of(response: Any) -> dict[str, Any]:
    usage = getattr(response, "usage", None)
    return usage.model_dump(exclude_none=True) if usage is not None else zero_usage()


class _NoTimeoutRetryClient(httpx2.AsyncClient):
    """The SDK's client, except that a timeout is final: the SDK retries timeouts like 5xx, but a
    timed-out image edit may still finish (and be billed) upstream, so each retry may pay again.

    Built with the SDK's default limits and timeout (what DefaultAsyncHttpx2Client sets).
    The SDK re-raises any `OpenAIError` from the client unchanged and without retrying, so a
    timeout turned into `APITimeoutError` here ends the call; 429 and 5xx answers are still
    retried by the SDK as before. OPENAI_RETRY_TIMEOUTS=true restores the SDK's behaviour.
    """

    async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        try:
            return await super().send(request, **kwargs)
        except httpx2.TimeoutException as exc:
            raise openai.APITimeoutError(request=request) from exc  # type: ignore[arg-type]


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float = 300.0,
        max_retries: int = 2,
        retry_timeouts: bool = False,
        observer: UpstreamObserver | None = None,
    ) -> None:
        self._observer = observer
        # The SDK's default client (its timeouts, limits, redirects) plus the request counter.
        hooks = {"request": [_count_request]}
        http_client = (
            DefaultAsyncHttpx2Client(event_hooks=hooks)
            if retry_timeouts
            else _NoTimeoutRetryClient(
                event_hooks=hooks,
                timeout=openai.DEFAULT_TIMEOUT,
                limits=openai.DEFAULT_CONNECTION_LIMITS,
                follow_redirects=True,
            )
        )
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )

    @classmethod
    def from_settings(cls, settings: Settings, observer: UpstreamObserver | None = None) -> OpenAIBackend:
        if settings.openai_api_key is None:
            raise ValueError("OpenAIBackend needs OPENAI_API_KEY")
        return cls(
            settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            timeout=settings.openai_timeout_seconds,
            max_retries=settings.openai_max_retries,
            retry_timeouts=settings.openai_retry_timeouts,
            observer=observer,
        )

    def _params(self, request: BackendRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
        params.update(request.params.upstream())
        for name in NOT_OPENAI_ARGUMENTS:  # input_fidelity: only on edits, only where the model takes it
            params.pop(name, None)
        return params

    def _input_fidelity(self, request: BackendRequest) -> str | None:
        caps = MODELS.get(request.model)
        wanted = request.params.input_fidelity
        return wanted if caps is not None and wanted in caps.input_fidelity else None

    async def generate(self, request: BackendRequest) -> BackendResult:
        params = self._params(request)
        endpoint = "images.edit" if request.references else "images.generate"
        started = time.perf_counter()
        outcome = "ok"
        counter = [0]
        token = _http_requests.set(counter)
        try:
            if request.references:
                fidelity = self._input_fidelity(request)
                if fidelity is not None:
                    params["input_fidelity"] = fidelity
                files = [(ref.filename, ref.data, ref.content_type) for ref in request.references]
                if request.mask is not None:
                    mask = request.mask
                    params["mask"] = (mask.filename, mask.data, mask.content_type)
                response = await self._client.images.edit(image=files, **params)
            else:
                response = await self._client.images.generate(**params)
            images = [
                GeneratedImage(data=base64.b64decode(item.b64_json), revised_prompt=item.revised_prompt)
                for item in (response.data or [])
                if item.b64_json
            ]
            if not images:
                outcome = "upstream_empty"
                raise UpstreamError(
                    "OpenAI answered without any image", status_code=502, code="upstream_error"
                )
            return BackendResult(images=images, usage=_usage_of(response), model=request.model)
        except openai.OpenAIError as err:
            outcome, mapped = map_error(err)
            raise mapped from None
        except BaseException:
            if outcome == "ok":  # cancelled (shutdown) or a bug: not a success in the metrics
                outcome = "aborted"
            raise
        finally:
            _http_requests.reset(token)
            seconds = time.perf_counter() - started
            log.info(
                "openai %s model=%s input_images=%d mask=%s n=%d size=%s prompt_chars=%d latency_ms=%d "
                "outcome=%s retries=%d",
                endpoint,
                request.model,
                len(request.references),
                request.mask is not None,
                request.params.n,
                request.params.size,
                len(request.prompt),
                round(seconds * 1000),
                outcome,
                max(0, counter[0] - 1),
            )
            self._observe(request.model, "edit" if request.references else "generate", seconds, outcome)

    def _observe(self, model: str, endpoint: str, seconds: float, outcome: str) -> None:
        if self._observer is None:
            return
        try:
            self._observer(model, endpoint, seconds, outcome)
        except Exception:
            log.warning("upstream observer failed", exc_info=True)

    async def aclose(self) -> None:
        await self._client.close()
