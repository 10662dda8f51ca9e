"""Local diffusion (IMAGE_BACKEND=diffusers): a Stable Diffusion-family model on this machine.

No API key and no per-image bill; a seed gives the same bytes again on the same device.
`DIFFUSERS_MODEL` is a diffusers-format directory (`save_pretrained` layout), loaded with
`local_files_only` through diffusers' auto pipelines: text-to-image, and image-to-image (from
the same weights) when the scene has reference images, input image 1 being the init image and
`strength` how far the picture may move from it. IP-Adapter is not wired up: the other
references only shape the prompt.

torch, diffusers and transformers are optional (requirements-local.txt) and imported only
here, lazily: without them the server still starts and /health says what to install.

Two things are process-wide on purpose, the one exception to "state belongs to the runtime":
the loaded weights (a model is gigabytes; every runtime in the process shares one copy) and
one lock per device (a GPU runs one inference at a time however many runtimes ask). Inference
runs in a worker thread; a cancelled or timed-out job stops at the next denoising step (the
step callback checks), never mid-way through the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import Settings
from errors import InvalidInput, UpstreamError
from generation.backends.base import (
    BackendConfigError,
    BackendRequest,
    BackendResult,
    GeneratedImage,
    zero_usage,
)
from generation.backends.draft import encode_picture
from generation.capabilities import parse_size
from generation.composer import CharacterBrief
from generation.prompt_budget import FittedPrompt, fit_prompt

log = logging.getLogger("storyloom.diffusers")

INSTALL_COMMAND = ".venv/bin/pip install -r requirements-local.txt"
NEEDED_MODULES = ("torch", "diffusers", "transformers")


def torch_problem() -> str | None:
    """What is missing for local diffusion, with the command that installs it; None when ready."""
    missing = []
    for name in NEEDED_MODULES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if not missing:
        return None
    return f"IMAGE_BACKEND=diffusers needs {', '.join(missing)}, not installed here: run {INSTALL_COMMAND}"


@dataclass(frozen=True)
class StepInfo:
    """Told to `DiffusersBackend.step_observer` at the end of every denoising step."""

    step: int  # 0-based
    steps: int  # the denoising steps this call runs
    guidance_scale: float
    stop: threading.Event = field(repr=False)  # set once the job is cancelled


StepObserver = Callable[[StepInfo], None]


class _Stopped(Exception):
    """Raised from the step callback: ends the pipeline call between two steps."""


@dataclass
class LocalPipelines:
    """One model on one device: both pipelines share the same weights."""

    path: Path
    device: str
    text2image: Any = field(repr=False)
    image2image: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    token_limit: int
    native_size: tuple[int, int]
    lock: threading.Lock = field(repr=False)


class _ProcessModels:
    """The process-wide part (see the module docstring): loaded models and one lock per device."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held while loading, so two runtimes never load twice
        self.loaded: dict[tuple[str, str], LocalPipelines] = {}
        self.device_locks: dict[str, threading.Lock] = {}


# The documented exception to "no module-level state" (docs/ARCHITECTURE.md, State).
process_models = _ProcessModels()


def choose_device(wanted: str | None) -> str:
    """DIFFUSERS_DEVICE when set, else CUDA when this machine has it, else the CPU."""
    if wanted:
        return wanted
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_model_dir(model_dir: Path | None) -> Path:
    if model_dir is None:
        raise BackendConfigError(
            "IMAGE_BACKEND=diffusers but DIFFUSERS_MODEL is not set: set it to a local "
            "diffusers-format model directory (save_pretrained layout)"
        )
    path = model_dir.expanduser().resolve()
    if not path.is_dir():
        raise BackendConfigError(f"DIFFUSERS_MODEL={path}: no such directory")
    if not (path / "model_index.json").is_file():
        raise BackendConfigError(
            f"DIFFUSERS_MODEL={path}: no model_index.json there; it must be a diffusers-format "
            "model directory (save_pretrained layout)"
        )
    return path


def load_pipelines(model_dir: Path | None, device: str | None = None) -> LocalPipelines:
    """The model's pipelines, loaded once per process and device; a bad directory names itself."""
    path = _check_model_dir(model_dir)
    import torch
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

    where = choose_device(device)
    with process_models.lock:
        loaded = process_models.loaded.get((str(path), where))
        if loaded is not None:
            return loaded
        dtype = torch.float16 if where.startswith("cuda") else torch.float32
        started = time.perf_counter()
        try:
            text2image = AutoPipelineForText2Image.from_pretrained(
                str(path), dtype=dtype, local_files_only=True
            )
        except Exception as exc:
            raise BackendConfigError(
                f"DIFFUSERS_MODEL={path}: the model could not be loaded ({type(exc).__name__}: {exc})"
            ) from exc
        try:
            text2image = text2image.to(where)
        except Exception as exc:
            raise BackendConfigError(
                f"DIFFUSERS_DEVICE={where}: the model could not be moved there ({type(exc).__name__}: {exc})"
            ) from exc
        image2image = AutoPipelineForImage2Image.from_pipe(text2image)
        for pipeline in (text2image, image2image):
            pipeline.set_progress_bar_config(disable=True)
        tokenizer = text2image.tokenizer
        limit = int(tokenizer.model_max_length)
        if limit > 100_000:  # "no limit" sentinel of tokenizers without one: ask the encoder
            limit = int(text2image.text_encoder.config.max_position_embeddings)
        side = int(text2image.unet.config.sample_size) * int(text2image.vae_scale_factor)
        loaded = LocalPipelines(
            path=path,
            device=where,
            text2image=text2image,
            image2image=image2image,
            tokenizer=tokenizer,
            token_limit=limit,
            native_size=(side, side),
            lock=process_models.device_locks.setdefault(where, threading.Lock()),
        )
        process_models.loaded[(str(path), where)] = loaded
        log.info(
            "diffusers: loaded %s on %s (%s, native %dx%d) in %.1fs",
            path,
            where,
            dtype,
            side,
            side,
            time.perf_counter() - started,
        )
        return loaded


class DiffusersBackend:
    """Draws with a local model, one inference at a time per device."""

    name = "diffusers"

    def __init__(
        self, pipelines: LocalPipelines, *, timeout: float, step_observer: StepObserver | None = None
    ) -> None:
        self.pipelines = pipelines
        self.timeout = timeout
        # Told about every denoising step (tests and the benchmark count them); None in production.
        self.step_observer = step_observer

    @classmethod
    def from_settings(cls, settings: Settings) -> DiffusersBackend:
        pipelines = load_pipelines(settings.diffusers_model, settings.diffusers_device)
        return cls(pipelines, timeout=settings.diffusers_timeout_seconds)

    def count_tokens(self, text: str) -> int:
        return len(self.pipelines.tokenizer(text, truncation=False).input_ids)

    def fit_prompt(
        self, composed: str, characters: Sequence[CharacterBrief], scene: str, book_style: str | None
    ) -> FittedPrompt:
        """The prompt within the text encoder's limit; a note whenever it is not `composed`."""
        return fit_prompt(
            composed,
            characters,
            scene,
            book_style,
            limit=self.pipelines.token_limit,
            count=self.count_tokens,
        )

    async def generate(self, request: BackendRequest) -> BackendResult:
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self._infer, request, stop)
        try:
            images = await asyncio.shield(future)
        except asyncio.CancelledError:
            stop.set()  # the thread ends after the step in progress; wait for it to let the device go
            with contextlib.suppress(BaseException):
                await future
            raise
        return BackendResult(
            images=[GeneratedImage(data=data) for data in images], usage=zero_usage(), model=request.model
        )

    def _infer(self, request: BackendRequest, stop: threading.Event) -> list[bytes]:
        """Runs in a worker thread, holding the device's lock for the pipeline call."""
        import torch

        params = request.params
        pipelines = self.pipelines
        with pipelines.lock:
            if stop.is_set():
                return []
            deadline = time.monotonic() + self.timeout
            generator = torch.Generator(device=pipelines.device)
            if params.seed is not None:
                generator.manual_seed(params.seed)
            else:
                generator.seed()
            kwargs: dict[str, Any] = {
                "prompt": request.prompt,
                "num_images_per_prompt": params.n,
                "generator": generator,
                "output_type": "pil",
            }
            if params.negative_prompt:
                kwargs["negative_prompt"] = params.negative_prompt
            if params.guidance_scale is not None:
                kwargs["guidance_scale"] = params.guidance_scale
            if params.steps is not None:
                kwargs["num_inference_steps"] = params.steps
            width, height = parse_size(params.size) or pipelines.native_size
            if request.references:
                pipeline = pipelines.image2image
                kwargs["image"] = self._init_image(request.references[0].data, width, height)
                if params.strength is not None:
                    kwargs["strength"] = params.strength
            else:
                pipeline = pipelines.text2image
                kwargs["width"], kwargs["height"] = width, height
            observer = self.step_observer

            def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                if observer is not None:
                    observer(StepInfo(step, int(pipe.num_timesteps), float(pipe.guidance_scale), stop))
                if stop.is_set():
                    raise _Stopped("cancelled")
                if time.monotonic() > deadline:
                    raise _Stopped("timeout")
                return tensors

            kwargs["callback_on_step_end"] = on_step
            try:
                with torch.inference_mode():
                    output = pipeline(**kwargs)
            except _Stopped as why:
                if str(why) == "timeout":
                    raise UpstreamError(
                        f"local inference ran past DIFFUSERS_TIMEOUT_SECONDS={self.timeout:g}; stopped",
                        status_code=504,
                        code="local_timeout",
                    ) from None
                return []
            except ValueError as exc:  # diffusers' own argument checks (e.g. strength x steps < 1)
                raise InvalidInput(f"the local model refused the request: {exc}", field="strength") from exc
        return [
            encode_picture(image.convert("RGB"), params.output_format, params.output_compression)
            for image in output.images
        ]

    @staticmethod
    def _init_image(data: bytes, width: int, height: int) -> Any:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)

    async def aclose(self) -> None:
        return None  # the weights stay loaded for the next runtime in this process


class UnavailableBackend:
    """IMAGE_BACKEND=diffusers without torch: the server runs, /health and every job say why."""

    name = "diffusers"

    def __init__(self, problem: str) -> None:
        self.problem = problem

    async def generate(self, request: BackendRequest) -> BackendResult:
        raise UpstreamError(self.problem, status_code=503, code="backend_unavailable")

    async def aclose(self) -> None:
        return None


def make_diffusers_backend(settings: Settings) -> DiffusersBackend | UnavailableBackend:
    """A bad model directory stops the start-up; missing packages leave a backend that explains."""
    _check_model_dir(settings.diffusers_model)
    problem = torch_problem()
    if problem is not None:
        log.error("%s", problem)
        return UnavailableBackend(problem)
    return DiffusersBackend.from_settings(settings)
