"""The model capability table: what is refused locally, with which field and message."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import get_args

import pytest
from openai.types.image_model import ImageModel

from errors import InvalidInput
from generation.capabilities import MODELS, live_models, resolve_model, validate_scene_params
from tests.conftest import make_settings

TODAY = date(2026, 11, 23)


def refused(**params: object) -> InvalidInput:
    params.setdefault("model", "gpt-image-2.5-flare")
    params.setdefault("today", TODAY)
    with pytest.raises(InvalidInput) as caught:
        validate_scene_params(**params)  # type: ignore[arg-type]
    assert caught.value.status_code == 422
    return caught.value


def test_table_covers_exactly_the_models_the_installed_sdk_lists() -> None:
    assert set(MODELS) == set(get_args(ImageModel))


def test_live_models_today_include_the_2_x_family_and_not_the_shut_down_ones() -> None:
    live = live_models(TODAY)
    for name in (
        "gpt-image-2",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.6-flare",
    ):
        assert name in live
    for name in ("gpt-image-1", "dall-e-2", "dall-e-3"):
        assert name not in live


def test_default_model_from_settings_is_live(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert resolve_model(settings.default_image_model, TODAY).name == settings.default_image_model


@pytest.mark.parametrize("model", ["gpt-image-1", "dall-e-2", "dall-e-3"])
def test_retired_model_is_refused_naming_its_successor(model: str) -> None:
    error = refused(model=model, prompt="a cat")
    assert error.field == "model"
    assert error.code == "model_retired"
    assert "gpt-image-2.5-flare" in error.message
    assert "shut down" in error.message


def test_gpt_image_1_5_is_live_until_its_shutdown_date_then_names_the_successor() -> None:
    assert validate_scene_params(model="gpt-image-1.5", today=TODAY).shutdown == date(2026, 12, 1)
    error = refused(model="gpt-image-1.5", today=date(2026, 12, 1))
    assert error.field == "model"
    assert "2026-12-01" in error.message
    assert "gpt-image-2.5-flare" in error.message


def test_unknown_model_is_refused_listing_live_models() -> None:
    error = refused(model="gpt-image-9")
    assert error.field == "model"
    assert "gpt-image-2.5-flare" in error.message
    assert "gpt-image-1," not in error.message


@pytest.mark.parametrize("size", ["auto", "1024x1024", "1536x1024", "1024x1536"])
def test_standard_sizes_are_accepted_by_every_live_model(size: str) -> None:
    for model in live_models(TODAY):
        validate_scene_params(model=model, size=size, today=TODAY)


@pytest.mark.parametrize("size", ["1536x864", "3840x2160", "2160x3840", "3072x1024", "1024x3072", "16x16"])
def test_arbitrary_sizes_within_limits_are_accepted_on_2_5(size: str) -> None:
    validate_scene_params(model="gpt-image-2.5-flare", size=size, today=TODAY)


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ("1000x1000", "multiples of 16"),
        ("3088x1024", "aspect ratio"),
        ("4096x1536", "over 3840"),
        ("3840x2176", "pixels is over"),
        ("large", "WIDTHxHEIGHT"),
        ("0x1024", "multiples of 16"),
    ],
)
def test_invalid_arbitrary_sizes_are_refused_with_the_rule(size: str, reason: str) -> None:
    error = refused(size=size)
    assert error.field == "size"
    assert reason in error.message
    assert "1024x1024" in error.message


def test_arbitrary_size_is_refused_where_the_sdk_does_not_offer_it() -> None:
    error = refused(model="gpt-image-2.6-flare", size="1536x864")
    assert error.field == "size"
    assert "1024x1536" in error.message


def test_xhigh_quality_is_only_for_the_2_5_family() -> None:
    validate_scene_params(model="gpt-image-2.5-sunburst", quality="xhigh", today=TODAY)
    error = refused(model="gpt-image-2", quality="xhigh")
    assert error.field == "quality"
    assert "low, medium, high, auto" in error.message


@pytest.mark.parametrize("n", [0, 11, -1])
def test_n_outside_1_to_10_is_refused(n: int) -> None:
    error = refused(n=n)
    assert error.field == "n"
    assert "between 1 and 10" in error.message


def test_up_to_16_reference_images_are_accepted_and_17_refused() -> None:
    validate_scene_params(model="gpt-image-2.5-flare", reference_images=16, today=TODAY)
    error = refused(reference_images=17)
    assert error.field == "reference_images"
    assert "16" in error.message


def test_transparent_background_needs_png_or_webp() -> None:
    validate_scene_params(model="gpt-image-2", background="transparent", output_format="webp", today=TODAY)
    error = refused(background="transparent", output_format="jpeg")
    assert error.field == "background"
    assert "png or webp" in error.message


def test_unknown_background_and_output_format_are_refused_listing_choices() -> None:
    assert refused(background="clear").field == "background"
    error = refused(output_format="gif")
    assert error.field == "output_format"
    assert "png, jpeg, webp" in error.message


def test_output_compression_only_for_jpeg_or_webp_and_in_range() -> None:
    validate_scene_params(model="gpt-image-2", output_format="jpeg", output_compression=80, today=TODAY)
    assert refused(output_format="png", output_compression=80).field == "output_compression"
    assert refused(output_format="webp", output_compression=101).field == "output_compression"


def test_prompt_over_32000_characters_is_refused_and_at_the_limit_accepted() -> None:
    validate_scene_params(model="gpt-image-2", prompt="x" * 32_000, today=TODAY)
    error = refused(prompt="x" * 32_001)
    assert error.field == "prompt"
    assert "32,000" in error.message
    assert refused(prompt="   ").field == "prompt"


def test_input_fidelity_high_only_where_the_sdk_says_it_applies() -> None:
    assert MODELS["gpt-image-1.5"].edit_input_fidelity == "high"
    assert MODELS["gpt-image-1-mini"].edit_input_fidelity is None
    for model in ("gpt-image-2", "gpt-image-2.5-flare", "gpt-image-2.6-sunburst"):
        assert MODELS[model].edit_input_fidelity is None
