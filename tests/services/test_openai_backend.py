"""The OpenAI backend, driven through the real `openai` SDK against the fake upstream over HTTP."""

from __future__ import annotations

import base64
import io
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from PIL import Image

from errors import InvalidInput, StoryloomError, UpstreamError
from generation.backends import (
    BackendConfigError,
    BackendRequest,
    DraftBackend,
    ImageBackend,
    OpenAIBackend,
    ReferenceImage,
    make_backend,
)
from generation.backends.openai_backend import DEFAULT_RETRY_AFTER_SECONDS
from generation.params import SceneParams
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAI, fake_image_b64

pytestmark = pytest.mark.anyio

KEY = "sk-test-storyloom-0123456789abcdef"
MakeBackend = Callable[..., ImageBackend]


def image_bytes(colour: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, fmt)
    return buffer.getvalue()


REFERENCES = [
    ReferenceImage(0, "ref-0.png", "image/png", image_bytes((200, 0, 0)), ("Mia",)),
    ReferenceImage(4, "ref-4.jpg", "image/jpeg", image_bytes((0, 200, 0), "JPEG"), ("Rex",)),
    ReferenceImage(7, "ref-7.webp", "image/webp", image_bytes((0, 0, 200), "WEBP"), ("Mia", "Rex")),
]


@pytest.fixture
async def backends(tmp_path: Path, openai_base_url: str) -> AsyncIterator[MakeBackend]:
    """Build OpenAI backends from settings, as the app will; closes them after the test."""
    made: list[ImageBackend] = []

    def build(**overrides: object) -> ImageBackend:
        values: dict[str, object] = {
            "image_backend": "openai",
            "openai_api_key": KEY,
            "openai_base_url": openai_base_url,
            "openai_max_retries": 2,
            "openai_timeout_seconds": 10,
        }
        values.update(overrides)
        backend = make_backend(make_settings(tmp_path / "data", **values))
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.aclose()


def scene(**overrides: object) -> BackendRequest:
    values: dict[str, object] = {
        "prompt": "Mia (curly red hair, yellow raincoat) opens an umbrella; Rex shakes himself dry.",
        "model": "gpt-image-2.5-flare",
        "size": "1536x1024",
        "quality": "high",
        "n": 2,
    }
    values.update(overrides)
    # The picture fields travel as one SceneParams, the same model the job stores.
    params = {k: values.pop(k) for k in list(values) if k in SceneParams.model_fields}
    return BackendRequest(**values, params=SceneParams(**params))  # type: ignore[arg-type]


def decoded_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


async def test_edit_sends_every_reference_with_its_file_name_and_content_type(
    fake: FakeOpenAI, backends: MakeBackend
) -> None:
    result = await backends().generate(scene(references=REFERENCES))

    [sent] = fake.requests
    assert sent.endpoint == "edits"
    assert [(i.filename, i.content_type, i.data) for i in sent.images] == [
        (r.filename, r.content_type, r.data) for r in REFERENCES
    ]
    assert sent.fields["prompt"] == scene().prompt
    assert sent.fields["model"] == "gpt-image-2.5-flare"
    assert (sent.fields["size"], sent.fields["quality"], sent.fields["n"]) == ("1536x1024", "high", "2")
    assert "input_fidelity" not in sent.fields  # gpt-image-2.x: the SDK says omit it
    assert sent.authorization == f"Bearer {KEY}"
    assert [decoded_size(i.data) for i in result.images] == [(1536, 1024), (1536, 1024)]
    assert result.usage["input_tokens_details"]["image_tokens"] == 3 * 323
    assert result.usage["output_tokens"] == 2 * 1056
    assert result.model == "gpt-image-2.5-flare"


async def test_edit_asks_for_high_input_fidelity_only_where_the_model_takes_it(
    fake: FakeOpenAI, backends: MakeBackend
) -> None:
    backend = backends()
    await backend.generate(
        scene(model="gpt-image-1.5", size="1024x1024", references=REFERENCES[:2], input_fidelity="high")
    )
    await backend.generate(
        scene(model="gpt-image-1-mini", size="1024x1024", references=REFERENCES[:2], input_fidelity="high")
    )
    assert fake.requests[0].fields["input_fidelity"] == "high"
    assert "input_fidelity" not in fake.requests[1].fields


async def test_without_references_it_generates_and_always_sends_the_model(
    fake: FakeOpenAI, backends: MakeBackend
) -> None:
    result = await backends().generate(
        scene(n=1, size="1024x1536", output_format="jpeg", output_compression=70, model="gpt-image-2")
    )
    [sent] = fake.requests
    assert sent.endpoint == "generations"
    assert sent.fields["model"] == "gpt-image-2"
    assert sent.fields["output_compression"] == 70
    assert sent.authorization == f"Bearer {KEY}"
    with Image.open(io.BytesIO(result.images[0].data)) as img:
        assert (img.format, img.size) == ("JPEG", (1024, 1536))


async def test_rate_limit_is_retried_by_the_sdk_then_succeeds(
    fake: FakeOpenAI, backends: MakeBackend
) -> None:
    fake.fail("rate_limit", times=2)
    result = await backends(openai_max_retries=2).generate(scene(references=REFERENCES))
    assert [r.status for r in fake.requests] == [429, 429, 200]
    assert all(len(r.images) == 3 for r in fake.requests)  # every retry re-sends every reference
    assert len(result.images) == 2


async def test_rate_limit_after_all_retries_is_503_with_upstreams_retry_after(
    fake: FakeOpenAI, backends: MakeBackend
) -> None:
    # The SDK prefers retry-after-ms (1 ms: fast test); our answer carries upstream's Retry-After.
    fake.fail("rate_limit", times=3, headers={"retry-after-ms": "1", "Retry-After": "7"})
    with pytest.raises(UpstreamError) as caught:
        await backends(openai_max_retries=2).generate(scene())
    assert [r.status for r in fake.requests] == [429, 429, 429]
    assert (caught.value.status_code, caught.value.code) == (503, "upstream_unavailable")
    assert caught.value.headers == {"Retry-After": "7"}


async def test_server_error_without_retry_after_is_503_with_the_default(
    fake: FakeOpenAI, backends: MakeBackend
) -> None:
    fake.fail("server_error", times=1, retry_after=None)
    with pytest.raises(UpstreamError) as caught:
        await backends(openai_max_retries=0).generate(scene())
    assert (caught.value.status_code, caught.value.code) == (503, "upstream_unavailable")
    assert caught.value.headers == {"Retry-After": str(DEFAULT_RETRY_AFTER_SECONDS)}


async def test_server_error_is_retried_then_succeeds(fake: FakeOpenAI, backends: MakeBackend) -> None:
    fake.fail("server_error", times=1)
    await backends(openai_max_retries=2).generate(scene())
    assert [r.status for r in fake.requests] == [500, 200]


async def test_unreachable_upstream_is_503(tmp_path: Path, backends: MakeBackend) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = backends(openai_base_url=f"http://127.0.0.1:{port}/v1", openai_max_retries=0)
    with pytest.raises(UpstreamError) as caught:
        await backend.generate(scene())
    assert (caught.value.status_code, caught.value.code) == (503, "upstream_unavailable")
    assert "Retry-After" in caught.value.headers


async def test_slow_upstream_is_504(fake: FakeOpenAI, backends: MakeBackend) -> None:
    fake.latency = 5.0
    with pytest.raises(UpstreamError) as caught:
        await backends(openai_timeout_seconds=0.3, openai_max_retries=0).generate(scene())
    assert (caught.value.status_code, caught.value.code) == (504, "upstream_timeout")


@pytest.mark.parametrize(
    ("fault", "kind", "status", "code", "field"),
    [
        ("moderation_blocked", InvalidInput, 422, "content_policy", "prompt"),
        ("unauthorized", UpstreamError, 502, "upstream_auth", None),
        ("permission_denied", UpstreamError, 502, "upstream_auth", None),
        ("insufficient_quota", UpstreamError, 502, "upstream_quota", None),
        ("model_not_found", InvalidInput, 422, "model_not_found", "model"),
        ("bad_request", InvalidInput, 422, "upstream_rejected", "size"),
    ],
)
async def test_upstream_errors_map_to_storyloom_errors(
    fake: FakeOpenAI,
    backends: MakeBackend,
    fault: str,
    kind: type[StoryloomError],
    status: int,
    code: str,
    field: str | None,
) -> None:
    # The SDK retries every 429, insufficient_quota included: keep its waits at 1 ms.
    fake.fail(fault, times=3, headers={"retry-after-ms": "1"})
    with pytest.raises(StoryloomError) as caught:
        await backends().generate(scene(references=REFERENCES[:1]))
    error = caught.value
    assert (type(error), error.status_code, error.code, error.field) == (kind, status, code, field)
    assert KEY not in error.message


async def test_moderation_block_is_not_retried_and_passes_the_upstream_message(
    fake: FakeOpenAI, backends: MakeBackend
) -> None:
    fake.fail("moderation_blocked")
    with pytest.raises(InvalidInput) as caught:
        await backends().generate(scene())
    assert len(fake.requests) == 1
    assert "rejected as a result of our safety system" in caught.value.message


async def test_reference_sent_as_octet_stream_is_refused_upstream_as_rejected(
    fake: FakeOpenAI, backends: MakeBackend
) -> None:
    untyped = ReferenceImage(1, "ref-1", "application/octet-stream", image_bytes((9, 9, 9)), ("Mia",))
    with pytest.raises(InvalidInput) as caught:
        await backends().generate(scene(references=[untyped]))
    assert (caught.value.code, caught.value.field) == ("upstream_rejected", "image")
    assert "unsupported mimetype" in caught.value.message


async def test_refused_key_says_so_without_the_key(fake: FakeOpenAI, backends: MakeBackend) -> None:
    fake.fail("unauthorized")
    with pytest.raises(UpstreamError) as caught:
        await backends().generate(scene())
    assert "OpenAI API key was refused" in caught.value.message
    assert KEY not in caught.value.message
    assert caught.value.__cause__ is None  # the SDK error (which echoes the key) is not chained


async def test_logs_one_line_per_call_and_never_the_key_images_or_prompt(
    fake: FakeOpenAI, backends: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDK's and httpx's debug logs included
    backend = backends()
    request = scene(references=REFERENCES, n=1, size="1024x1024")
    await backend.generate(request)
    fake.fail("unauthorized")
    with pytest.raises(UpstreamError):
        await backend.generate(request)

    ours = [r.getMessage() for r in caplog.records if r.name == "storyloom.openai"]
    assert len(ours) == 2
    assert "images.edit" in ours[0]
    assert "model=gpt-image-2.5-flare" in ours[0]
    assert "input_images=3" in ours[0]
    assert "latency_ms=" in ours[0]
    assert ours[0].endswith("outcome=ok retries=0")
    assert ours[1].endswith("outcome=upstream_auth retries=0")
    assert KEY not in caplog.text
    assert request.prompt not in caplog.text
    assert fake_image_b64(1024, 1024, "png", 0)[:64] not in caplog.text
    assert base64.b64encode(REFERENCES[0].data).decode()[:64] not in caplog.text


async def test_auto_backend_is_openai_with_a_key_and_draft_without(tmp_path: Path) -> None:
    with_key = make_backend(make_settings(tmp_path, image_backend="auto", openai_api_key=KEY))
    try:
        assert isinstance(with_key, OpenAIBackend)
        assert with_key.name == "openai"
    finally:
        await with_key.aclose()
    without_key = make_backend(make_settings(tmp_path, image_backend="auto", openai_api_key=""))
    assert isinstance(without_key, DraftBackend)
    assert isinstance(
        make_backend(make_settings(tmp_path, image_backend="draft", openai_api_key=KEY)), DraftBackend
    )


def test_explicit_openai_backend_without_a_key_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(BackendConfigError, match="OPENAI_API_KEY"):
        make_backend(make_settings(tmp_path, image_backend="openai", openai_api_key=None))


@pytest.mark.parametrize(("retry_timeouts", "requests"), [(False, 1), (True, 3)])
async def test_timeouts_are_not_retried_unless_a_setting_says_so(
    fake: FakeOpenAI, backends: MakeBackend, retry_timeouts: bool, requests: int
) -> None:
    """A timed-out edit may still be billed upstream: by default one try only (issue 12, defect 11)."""
    fake.latency = 5.0
    backend = backends(openai_timeout_seconds=0.3, openai_max_retries=2, openai_retry_timeouts=retry_timeouts)
    with pytest.raises(UpstreamError) as caught:
        await backend.generate(scene())
    assert (caught.value.status_code, caught.value.code) == (504, "upstream_timeout")
    assert len(fake.requests) == requests


async def test_rate_limits_and_server_errors_are_still_retried_without_timeout_retries(
    fake: FakeOpenAI, backends: MakeBackend
) -> None:
    fake.fail("rate_limit", times=1)
    fake.fail("server_error", times=1)
    await backends(openai_max_retries=2, openai_retry_timeouts=False).generate(scene())
    assert [r.status for r in fake.requests] == [429, 500, 200]
