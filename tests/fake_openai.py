"""A fake OpenAI Images API for the real `openai` SDK to talk to over HTTP.

Serve `FakeOpenAI().app` with `tests.servers.serve` and point the SDK at f"{url}/v1". It
parses what the SDK really sends (multipart `POST /v1/images/edits` with repeated `image[]`
parts; JSON `POST /v1/images/generations`), records every request, including retries, and
answers like OpenAI: base64 images of the requested size and format plus a usage block.

Faults are queued with `fail(kind, times=N)`: the next N requests get that error, then
requests succeed again, which is how SDK retries become visible in `requests`. `latency`
delays every successful answer (a slow upstream for timeouts and the benchmark); a waiting
handler notices when its client has gone, so the server stops promptly. `hold()` keeps every
answer waiting until `release()` (a job that stays `running` as long as a test needs, without
guessing a latency), and `wait_for_requests(n)` blocks a test until the fake has seen n requests.

Like OpenAI, an image part sent as `application/octet-stream` is refused with
`unsupported_file_mimetype`.
"""

from __future__ import annotations

import base64
import io
import threading
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import anyio
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ACCEPTED_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
COLOURS = ((200, 80, 60), (60, 140, 200), (90, 170, 90), (220, 190, 60))
CREATED = 1_795_000_000  # fixed, so answers are reproducible

# kind → (status, error body). The messages are OpenAI's own wording where we know it.
FAULTS: dict[str, tuple[int, dict[str, Any]]] = {
    "rate_limit": (
        429,
        {
            "message": "Rate limit reached for gpt-image in organization org-fake on images per minute.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    ),
    "server_error": (
        500,
        {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    ),
    "moderation_blocked": (
        400,
        {
            "message": "Your request was rejected as a result of our safety system.",
            "type": "image_generation_user_error",
            "param": None,
            "code": "moderation_blocked",
        },
    ),
    "unauthorized": (
        401,
        {
            # The real API echoes (part of) the key here: our mapping must never pass this on.
            "message": "Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
    ),
    "permission_denied": (
        403,
        {
            "message": "Your organization must be verified to use the model.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        },
    ),
    "insufficient_quota": (
        429,
        {
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        },
    ),
    "model_not_found": (
        404,
        {
            "message": "The model does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        },
    ),
    "bad_request": (
        400,
        {
            "message": "Invalid value for 'size'.",
            "type": "invalid_request_error",
            "param": "size",
            "code": "invalid_value",
        },
    ),
}
RETRYABLE = {"rate_limit", "server_error"}


@dataclass(frozen=True)
class UploadedImage:
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass
class RecordedRequest:
    endpoint: str  # "edits" | "generations"
    authorization: str | None
    fields: dict[str, Any]  # multipart strings, or the JSON body
    images: list[UploadedImage]
    status: int = 200  # what the fake answered
    mask: UploadedImage | None = None  # the `mask` part of an edit, as sent
    index: int = -1  # arrival order, from 0


@dataclass(frozen=True)
class Fault:
    kind: str
    headers: dict[str, str]


def _colour(variant: int) -> tuple[int, int, int]:
    if variant < len(COLOURS):
        return COLOURS[variant]
    # An odd multiplier is a bijection modulo 2**24: every variant below 16.7 M gets its own colour.
    # (The old per-channel formula repeated every 16 requests of `distinct_outputs`: with more than
    # 16 calls, "distinct" outputs collided and were stored as duplicates.)
    mixed = (variant * 2_654_435_761) % (1 << 24)
    return (mixed >> 16, (mixed >> 8) & 0xFF, mixed & 0xFF)


@lru_cache(maxsize=64)
def fake_image_b64(width: int, height: int, output_format: str, variant: int) -> str:
    """A small, valid image of the size asked for: a flat colour (compresses to almost nothing).

    Variants 0-3 are the fixed palette; higher ones get a colour of their own.
    """
    img = Image.new("RGB", (width, height), _colour(variant))
    buffer = io.BytesIO()
    # compress_level 1: a flat colour compresses as well, and print-sized pages encode ~5x faster.
    options = {"compress_level": 1} if output_format == "png" else {}
    img.save(buffer, PIL_FORMATS.get(output_format, "PNG"), **options)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _dims(size: str | None) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in str(size).split("x"))
    except ValueError:
        return 1024, 1024
    return width, height


class FakeOpenAI:
    """The fake upstream: `app` to serve, `requests` to inspect, `fail()` and `latency` to steer."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        # True: every request's images get colours no other request gets (distinct bytes per call,
        # so a book's pages are told apart by sha256); False: the fixed palette, same bytes each time.
        self.distinct_outputs = False
        self._hold_from = 0
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._matching: list[tuple[str, Fault]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._released = threading.Event()
        self._released.set()
        self.app = Starlette(
            routes=[
                Route("/v1/images/edits", self._edits, methods=["POST"]),
                Route("/v1/images/generations", self._generations, methods=["POST"]),
            ]
        )

    def fail(
        self,
        kind: str,
        *,
        times: int = 1,
        retry_after: str | None = "0.001",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests with fault `kind` (a key of FAULTS).

        Retryable faults (429 rate limit, 500) carry `Retry-After: retry_after`. The SDK honours
        values above 0 up to 120 s; note `Retry-After: 0` is *not* honoured (it falls back to
        0.5–8 s backoff), hence the default of 1 ms. `headers` adds or overrides headers.
        """
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULTS)}")
        answer_headers = {"Retry-After": retry_after} if kind in RETRYABLE and retry_after is not None else {}
        answer_headers.update(headers or {})
        with self._lock:
            self._faults.extend(Fault(kind, answer_headers) for _ in range(times))

    def fail_when(self, kind: str, prompt_contains: str, *, times: int = 1) -> None:
        """Answer the next `times` requests whose prompt contains `prompt_contains` with fault `kind`.

        For concurrent requests (a book's pages) whose arrival order is not fixed: the fault
        lands on the page meant, whatever order the pages reach the fake in.
        """
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULTS)}")
        with self._lock:
            self._matching.extend([(prompt_contains, Fault(kind, {}))] * times)

    def hold(self, *, from_request: int = 0) -> None:
        """Keep successful answers waiting (after `latency`) until `release()`.

        `from_request` lets the first requests through (arrival order from 0): hold(from_request=1)
        answers a book's page 1 and then keeps every later page waiting, to count them in flight.
        """
        self._hold_from = from_request
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; AssertionError after `timeout` seconds."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"the fake saw {len(self.requests)} request(s), expected {count}")
            return list(self.requests)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._matching.clear()
            self.requests.clear()
        self.latency = 0.0
        self.distinct_outputs = False
        self._hold_from = 0
        self._released.set()

    def _next_fault(self, prompt: str) -> Fault | None:
        with self._lock:
            for index, (text, fault) in enumerate(self._matching):
                if text in prompt:
                    del self._matching[index]
                    return fault
            return self._faults.popleft() if self._faults else None

    def _record(self, recorded: RecordedRequest) -> None:
        with self._lock:
            recorded.index = len(self.requests)
            self.requests.append(recorded)
            self._arrived.notify_all()

    async def _edits(self, request: Request) -> Response:
        async with request.form(max_files=64, max_fields=64) as form:
            images: list[UploadedImage] = []
            fields: dict[str, Any] = {}
            mask: UploadedImage | None = None
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    part = UploadedImage(value.filename, value.content_type, await value.read())
                    if key in ("image", "image[]"):
                        images.append(part)
                    elif key == "mask":
                        mask = part
                else:
                    fields[key] = value
        recorded = RecordedRequest("edits", request.headers.get("authorization"), fields, images, mask=mask)
        self._record(recorded)
        if mask is not None and images:
            problem = _mask_problem(mask, images[0])
            if problem is not None:
                return self._error(
                    recorded,
                    400,
                    {
                        "message": problem,
                        "type": "invalid_request_error",
                        "param": "mask",
                        "code": "invalid_value",
                    },
                )
        for image in images:
            if image.content_type not in ACCEPTED_IMAGE_TYPES:
                return self._error(
                    recorded,
                    400,
                    {
                        "message": f"Invalid file 'image': unsupported mimetype ('{image.content_type}'). "
                        "Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
                        "type": "invalid_request_error",
                        "param": "image",
                        "code": "unsupported_file_mimetype",
                    },
                )
        if not images:
            return self._error(recorded, 400, _missing("image"))
        return await self._answer(request, recorded)

    async def _generations(self, request: Request) -> Response:
        body = await request.json()
        recorded = RecordedRequest("generations", request.headers.get("authorization"), dict(body), [])
        self._record(recorded)
        return await self._answer(request, recorded)

    def _error(
        self,
        recorded: RecordedRequest,
        status: int,
        error: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> Response:
        recorded.status = status
        return JSONResponse({"error": error}, status, headers=headers)

    async def _answer(self, request: Request, recorded: RecordedRequest) -> Response:
        fields = recorded.fields
        for name in ("prompt", "model"):
            if not fields.get(name):
                return self._error(recorded, 400, _missing(name))
        fault = self._next_fault(str(fields.get("prompt", "")))
        if fault is not None:
            status, error = FAULTS[fault.kind]
            error = dict(error)
            key = (recorded.authorization or "").removeprefix("Bearer ")
            error["message"] = error["message"].replace("{key}", key)
            return self._error(recorded, status, error, fault.headers)
        if not await self._wait(request, recorded):
            recorded.status = 499  # the client gave up (its timeout)
            return Response(status_code=499)
        return JSONResponse(self._success(fields, recorded))

    def _held(self, recorded: RecordedRequest) -> bool:
        return not self._released.is_set() and recorded.index >= self._hold_from

    async def _wait(self, request: Request, recorded: RecordedRequest) -> bool:
        """Sleep `latency` seconds (and while held); False if the client disconnected meanwhile."""
        if self.latency <= 0 and not self._held(recorded):
            return True
        gone = False
        async with anyio.create_task_group() as group:

            async def watch_for_disconnect() -> None:
                nonlocal gone
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                gone = True
                group.cancel_scope.cancel()

            group.start_soon(watch_for_disconnect)
            await anyio.sleep(self.latency)
            # Held: release() comes from the test thread, so a threading.Event polled here, not anyio.Event.
            while self._held(recorded):  # noqa: ASYNC110
                await anyio.sleep(0.005)
            group.cancel_scope.cancel()
        return not gone

    def _variant(self, recorded: RecordedRequest, i: int, n: int) -> int:
        return len(COLOURS) + recorded.index * 16 + i if self.distinct_outputs else i

    def _success(self, fields: dict[str, Any], recorded: RecordedRequest) -> dict[str, Any]:
        size = str(fields.get("size") or "auto")
        width, height = _dims(size) if size != "auto" else (1024, 1024)
        output_format = str(fields.get("output_format") or "png")
        n = int(fields.get("n") or 1)
        quality = str(fields.get("quality") or "auto")
        text_tokens = max(1, len(str(fields["prompt"])) // 4)
        image_tokens = 323 * len(recorded.images)
        output_tokens = 1056 * n
        return {
            "created": CREATED,
            "background": "opaque",
            "output_format": output_format,
            "quality": "medium" if quality == "auto" else quality,
            "size": f"{width}x{height}",
            "data": [
                {
                    "b64_json": fake_image_b64(width, height, output_format, self._variant(recorded, i, n)),
                    "revised_prompt": None,
                }
                for i in range(n)
            ],
            "usage": {
                "input_tokens": text_tokens + image_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
                "output_tokens": output_tokens,
                "total_tokens": text_tokens + image_tokens + output_tokens,
            },
        }


def _mask_problem(mask: UploadedImage, first: UploadedImage) -> str | None:
    """What OpenAI checks on a mask: a PNG (declared and real), with alpha, the first image's size."""
    if mask.content_type != "image/png":
        return f"Invalid file 'mask': unsupported mimetype ('{mask.content_type}'). Mask must be a PNG."
    with Image.open(io.BytesIO(mask.data)) as picture, Image.open(io.BytesIO(first.data)) as image:
        if picture.format != "PNG" or picture.mode not in ("RGBA", "LA", "PA"):
            return "Invalid mask image: the mask must be a PNG with an alpha channel."
        if picture.size != image.size:
            return "Invalid mask image: mask and image must have the same dimensions."
    return None


def _missing(name: str) -> dict[str, Any]:
    return {
        "message": f"Missing required parameter: '{name}'.",
        "type": "invalid_request_error",
        "param": name,
        "code": "missing_required_parameter",
    }
