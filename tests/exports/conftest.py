"""Pictures on disk for the export engine's tests, built with Pillow (no binary fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from exports.spec import Picture
from tests.imagegen import picture as blocky


@pytest.fixture
def make_picture(tmp_path: Path) -> Callable[..., Picture]:
    """`make_picture(seed, size, colour=None, fmt="PNG", alpha=False)` -> a Picture file."""
    counter = iter(range(10_000))

    def make(
        seed: int = 0,
        size: tuple[int, int] = (1024, 1024),
        colour: tuple[int, int, int] | None = None,
        fmt: str = "PNG",
        alpha: bool = False,
    ) -> Picture:
        image = Image.new("RGB", size, colour) if colour else blocky(seed, size)
        if alpha:
            image = image.convert("RGBA")
            image.putalpha(Image.linear_gradient("L").resize(size))
        path = tmp_path / f"pic-{next(counter)}.{fmt.lower()}"
        image.save(path, format=fmt)
        return Picture(path=path, size=size, number=seed)

    return make
