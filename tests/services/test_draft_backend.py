"""The offline draft backend: deterministic storyboard panels of the requested size and format."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from generation.backends import BackendRequest, DraftBackend, ReferenceImage, zero_usage
from generation.backends.draft import DRAFT_RED
from generation.params import SceneParams

pytestmark = pytest.mark.anyio

GREEN = (0, 200, 0)
# Any WxH renders; where the size is not what a test checks, a small panel keeps it quick.
SMALL = "384x256"


def solid_png(colour: tuple[int, int, int], size: tuple[int, int] = (300, 400)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def request(**overrides: object) -> BackendRequest:
    values: dict[str, object] = {
        "prompt": "the composed prompt",
        "scene": "Mia opens an umbrella in the rain",
        "model": "gpt-image-2.5-flare",
        "size": SMALL,
        "references": [
            ReferenceImage(0, "ref-0.png", "image/png", solid_png(GREEN), ("Mia",)),
            ReferenceImage(4, "ref-4.png", "image/png", solid_png((0, 0, 220)), ("Rex",)),
        ],
    }
    values.update(overrides)
    # The picture fields travel as one SceneParams, the same model the job stores.
    params = {k: values.pop(k) for k in list(values) if k in SceneParams.model_fields}
    return BackendRequest(**values, params=SceneParams(**params))  # type: ignore[arg-type]


def colours(data: bytes) -> set[tuple[int, int, int]]:
    # A set of the pixels: getcolors(maxcolors=2**24) allocates for every possible colour.
    with Image.open(io.BytesIO(data)) as img:
        return set(img.convert("RGB").get_flattened_data())  # type: ignore[arg-type]


async def test_same_request_gives_the_same_bytes() -> None:
    first = await DraftBackend().generate(request(n=2))
    second = await DraftBackend().generate(request(n=2))
    assert [i.data for i in first.images] == [i.data for i in second.images]


async def test_different_scene_gives_a_different_panel() -> None:
    first = await DraftBackend().generate(request())
    second = await DraftBackend().generate(request(scene="Rex chases a paper boat"))
    assert first.images[0].data != second.images[0].data


@pytest.mark.parametrize(
    ("output_format", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")]
)
@pytest.mark.parametrize(("size", "dims"), [("1536x864", (1536, 864)), ("auto", (1024, 1024))])
async def test_panel_has_the_requested_size_and_format(
    output_format: str, pil_format: str, size: str, dims: tuple[int, int]
) -> None:
    result = await DraftBackend().generate(request(size=size, output_format=output_format))
    with Image.open(io.BytesIO(result.images[0].data)) as img:
        assert img.format == pil_format
        assert img.size == dims


async def test_one_distinct_panel_per_n() -> None:
    result = await DraftBackend().generate(request(n=3))
    assert len(result.images) == 3
    assert len({image.data for image in result.images}) == 3


async def test_panel_shows_the_reference_images_and_a_draft_mark() -> None:
    with_refs = colours((await DraftBackend().generate(request())).images[0].data)
    without_refs = colours((await DraftBackend().generate(request(references=[]))).images[0].data)
    assert GREEN in with_refs
    assert GREEN not in without_refs
    assert DRAFT_RED in with_refs


async def test_unreadable_reference_still_gives_a_panel() -> None:
    broken = ReferenceImage(9, "ref-9.png", "image/png", b"not an image", ("Mia",))
    result = await DraftBackend().generate(request(references=[broken]))
    assert len(result.images) == 1


async def test_usage_is_all_zeros_and_model_is_echoed() -> None:
    result = await DraftBackend().generate(request())
    assert result.usage == zero_usage()
    assert result.model == "gpt-image-2.5-flare"
    assert result.images[0].revised_prompt is None


def _rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


@pytest.mark.parametrize("size", ["1024x1536", "1024x1024", "1536x1024"])
async def test_the_header_fits_the_panel(size: str) -> None:
    """ "DRAFT · panel 1/1 · model · 1024x1536" is never cut at the right edge (issue 11, defect 10)."""
    result = await DraftBackend().generate(request(size=size))
    img = _rgb(result.images[0].data)
    short = min(img.size)
    margin, border = max(8, short // 32), max(2, short // 128)
    band = img.crop((img.width - margin + 2, margin, img.width - border - 1, margin + short // 24))
    pixels = band.get_flattened_data()
    red = [p for p in pixels if abs(p[0] - DRAFT_RED[0]) + abs(p[1] - DRAFT_RED[1]) < 120 and p[0] > 120]
    assert red == [], "header text runs into the right margin"


@pytest.mark.parametrize("size", ["1024x1024", "1024x1536"])
async def test_the_references_fill_the_panel(size: str) -> None:
    """The references are laid out large: together they cover at least a quarter of the page."""
    result = await DraftBackend().generate(request(size=size))
    img = _rgb(result.images[0].data)
    covered = sum(1 for p in img.get_flattened_data() if p in (GREEN, (0, 0, 220)))
    assert covered / (img.width * img.height) >= 0.25
