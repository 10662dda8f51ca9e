"""The local backend's inference loop itself: cancellation between steps, one call per device."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from errors import UpstreamError
from generation.backends.base import BackendRequest
from generation.backends.diffusers_backend import DiffusersBackend, StepInfo, load_pipelines
from generation.params import SceneParams

pytestmark = pytest.mark.anyio


def request(**params: object) -> BackendRequest:
    values: dict[str, object] = {"size": "64x64", "seed": 11, "steps": 40}
    values.update(params)
    return BackendRequest(prompt="a lighthouse", model="local-diffusion", params=SceneParams(**values))  # type: ignore[arg-type]


async def test_a_cancel_stops_within_one_step(tiny_model: Path) -> None:
    backend = DiffusersBackend(load_pipelines(tiny_model, "cpu"), timeout=600)
    loop = asyncio.get_running_loop()
    seen: list[int] = []
    task: asyncio.Task[object] | None = None

    def observe(info: StepInfo) -> None:
        seen.append(info.step)
        if info.step == 2:
            assert task is not None
            loop.call_soon_threadsafe(task.cancel)
            # Hold this step until the backend has taken the cancel in: the next check must stop it.
            assert info.stop.wait(timeout=60)

    backend.step_observer = observe
    task = asyncio.create_task(backend.generate(request()))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [0, 1, 2]  # 40 steps asked; none ran after the one in progress
    # The device is free again: the next call runs all its steps.
    seen.clear()
    backend.step_observer = lambda info: seen.append(info.step)
    result = await backend.generate(request(steps=3))
    assert seen == [0, 1, 2] and len(result.images) == 1


async def test_a_timeout_stops_at_the_next_step_with_504(tiny_model: Path) -> None:
    backend = DiffusersBackend(load_pipelines(tiny_model, "cpu"), timeout=0.000001)
    seen: list[int] = []
    backend.step_observer = lambda info: seen.append(info.step)
    with pytest.raises(UpstreamError) as raised:
        await backend.generate(request())
    assert raised.value.status_code == 504 and seen == [0]


async def test_one_inference_at_a_time_per_device(tiny_model: Path) -> None:
    """Two backends (two runtimes) on one device share its lock: their steps never interleave."""
    pipelines = load_pipelines(tiny_model, "cpu")
    assert load_pipelines(tiny_model, "cpu") is pipelines  # loaded once per process
    first, second = (DiffusersBackend(pipelines, timeout=600) for _ in range(2))
    order: list[str] = []
    lock = threading.Lock()

    def tagged(tag: str) -> object:
        def observe(info: StepInfo) -> None:
            with lock:
                order.append(tag)

        return observe

    first.step_observer = tagged("a")  # type: ignore[assignment]
    second.step_observer = tagged("b")  # type: ignore[assignment]
    await asyncio.gather(first.generate(request(steps=4)), second.generate(request(steps=4)))
    assert sorted(order) == ["a"] * 4 + ["b"] * 4
    assert order in (["a"] * 4 + ["b"] * 4, ["b"] * 4 + ["a"] * 4)
