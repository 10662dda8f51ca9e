"""Pick the image backend from settings, once, at start-up.

`IMAGE_BACKEND=auto` means "use OpenAI if this server has a key, else draw offline drafts",
so a fresh checkout works with no configuration. Asking for `openai` without a key is a
configuration mistake and stops the start-up with a message saying what to set.
"""

from __future__ import annotations

from config import Settings
from generation.backends.base import (
    BackendConfigError,
    BackendRequest,
    BackendResult,
    FitsPrompt,
    GeneratedImage,
    ImageBackend,
    ReferenceImage,
    UpstreamObserver,
    zero_usage,
)
from generation.backends.draft import DraftBackend
from generation.capabilities import LOCAL_MODEL

__all__ = [
    "BackendConfigError",
    "BackendRequest",
    "BackendResult",
    "DraftBackend",
    "FitsPrompt",
    "GeneratedImage",
    "ImageBackend",
    "OpenAIBackend",
    "ReferenceImage",
    "UpstreamObserver",
    "backend_name",
    "backend_problem",
    "default_model",
    "make_backend",
    "zero_usage",
]


def backend_name(settings: Settings) -> str:
    """Which backend `make_backend` builds: openai, replicate, diffusers or draft (for /health, logs)."""
    if settings.image_backend == "auto":
        return "openai" if settings.openai_api_key is not None else "draft"
    return settings.image_backend


def backend_problem(settings: Settings) -> str | None:
    """Why the configured backend cannot draw although the server runs (for /health), or None."""
    if backend_name(settings) != "diffusers":
        return None
    from generation.backends.diffusers_backend import torch_problem

    return torch_problem()


def make_backend(settings: Settings, observer: UpstreamObserver | None = None) -> ImageBackend:
    """Build the configured backend; call it inside the app's lifespan (the client binds to that loop)."""
    name = backend_name(settings)
    if name == "openai":
        if settings.openai_api_key is None:
            raise BackendConfigError(
                "IMAGE_BACKEND=openai but OPENAI_API_KEY is not set: set the key, "
                "or use IMAGE_BACKEND=auto (draft without a key) or IMAGE_BACKEND=draft"
            )
        from generation.backends.openai_backend import OpenAIBackend

        return OpenAIBackend.from_settings(settings, observer=observer)
    if name == "replicate":
        if settings.replicate_api_token is None:
            raise BackendConfigError(
                "IMAGE_BACKEND=replicate but REPLICATE_API_TOKEN is not set: set the token, "
                "or use another backend"
            )
        from generation.backends.replicate_backend import ReplicateBackend  # like openai: only when used

        return ReplicateBackend.from_settings(settings, observer=observer)
    if name == "diffusers":
        from generation.backends.diffusers_backend import make_diffusers_backend  # torch: only when used

        return make_diffusers_backend(settings)
    return DraftBackend()


def __getattr__(name: str) -> object:
    # The openai SDK costs seconds of start-up: only a process that builds that backend (or asks
    # for the class by name) imports it, so manage.py and offline servers start without it.
    if name == "OpenAIBackend":
        from generation.backends.openai_backend import OpenAIBackend

        return OpenAIBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_model(settings: Settings, backend: str) -> str:
    """The model a request without one gets: Replicate and local diffusion have their own."""
    if backend == "diffusers":
        return LOCAL_MODEL
    return settings.replicate_default_model if backend == "replicate" else settings.default_image_model
