"""Cost arithmetic against the one price table, overrides, and the before-spending estimate."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from generation.capabilities import MODELS
from generation.pricing import (
    FALLBACK,
    INPUT_IMAGE_TOKENS,
    PRICES,
    estimate_before,
    estimate_cost,
    load_prices,
    price_for,
)
from tests.conftest import make_settings

USAGE = {
    "input_tokens": 3000,
    "output_tokens": 4160,
    "total_tokens": 7160,
    "input_tokens_details": {"text_tokens": 1000, "image_tokens": 2000},
}


def test_cost_prices_text_image_input_and_image_output_separately() -> None:
    # gpt-image-2.6-sunburst: $5 text in, $8 image in, $30 image out per 1M tokens.
    assert estimate_cost("gpt-image-2.6-sunburst", USAGE) == pytest.approx(
        1000 * 5e-6 + 2000 * 8e-6 + 4160 * 30e-6
    )
    assert estimate_cost("gpt-image-2.6-sunburst", USAGE) == pytest.approx(0.1458)


def test_gpt_image_1_matches_its_published_per_image_prices() -> None:
    # $40/1M output: 272, 1056, 4160 tokens are about $0.011, $0.042, $0.167 per 1024x1024 image.
    costs = [estimate_cost("gpt-image-1", {"output_tokens": t}) for t in (272, 1056, 4160)]
    assert costs == pytest.approx([0.01088, 0.04224, 0.1664])


def test_usage_without_details_prices_all_input_as_text() -> None:
    usage = {"input_tokens": 2000, "output_tokens": 0}
    assert estimate_cost("gpt-image-1", usage) == pytest.approx(2000 * 5e-6)


def test_no_usage_costs_nothing_and_the_draft_backend_is_free() -> None:
    assert estimate_cost("gpt-image-1", None) == 0.0
    assert estimate_cost("gpt-image-1", {}) == 0.0
    assert estimate_cost("gpt-image-2.5-flare", USAGE, backend="draft") == 0.0
    assert estimate_before("gpt-image-2.5-flare", "1024x1024", "high", 2, 1, backend="draft") == 0.0
    assert estimate_cost("gpt-image-2.5-flare", USAGE, backend="openai") > 0


def test_dated_snapshots_use_their_model_price() -> None:
    assert price_for("gpt-image-2.5-flare-2026-09-08") == PRICES["gpt-image-2.5-flare"]


def test_every_gpt_image_model_we_accept_has_a_row_in_the_table() -> None:
    for name in MODELS:
        if name.startswith("dall-e"):
            continue  # retired before token pricing: never sent upstream
        assert price_for(name) is not FALLBACK, name


def test_unpublished_prices_say_whose_price_they_borrow() -> None:
    assert "published" in PRICES["gpt-image-2.6-sunburst"].note
    assert "gpt-image-2.6-sunburst" in PRICES["gpt-image-2.5-flare"].note
    assert "gpt-image-1" in PRICES["gpt-image-1.5"].note


def test_an_unknown_model_is_never_free() -> None:
    assert estimate_cost("gpt-image-9", USAGE) == estimate_cost("gpt-image-2.6-sunburst", USAGE) > 0


def test_overrides_replace_some_prices_of_a_known_model_and_keep_the_rest() -> None:
    prices = load_prices({"gpt-image-2.5-flare": {"image_out": 20}})
    assert prices["gpt-image-2.5-flare"].image_out == 20
    assert prices["gpt-image-2.5-flare"].text_in == 5
    assert estimate_cost("gpt-image-2.5-flare", USAGE, prices) == pytest.approx(
        1000 * 5e-6 + 2000 * 8e-6 + 4160 * 20e-6
    )
    # The built-in table is not changed for anyone else.
    assert estimate_cost("gpt-image-2.5-flare", USAGE) == pytest.approx(0.1458)


def test_an_override_may_add_a_model_with_all_three_prices() -> None:
    prices = load_prices({"gpt-image-3": {"text_in": 1, "image_in": 2, "image_out": 3}})
    assert estimate_cost("gpt-image-3", USAGE, prices) == pytest.approx(
        1000 * 1e-6 + 2000 * 2e-6 + 4160 * 3e-6
    )
    with pytest.raises(ValueError, match="needs"):
        load_prices({"gpt-image-3": {"image_out": 3}})


def test_price_overrides_setting_is_json_and_rejects_unknown_fields(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, price_overrides='{"gpt-image-1": {"image_out": 35}}')
    assert load_prices(settings.price_overrides)["gpt-image-1"].image_out == 35
    assert make_settings(tmp_path, price_overrides="").price_overrides == {}
    with pytest.raises(ValidationError, match="image_output"):
        make_settings(tmp_path, price_overrides='{"gpt-image-1": {"image_output": 35}}')
    with pytest.raises(ValidationError, match=">= 0"):
        make_settings(tmp_path, price_overrides='{"gpt-image-1": {"image_out": -1}}')


def test_estimate_before_matches_the_published_per_image_price() -> None:
    assert estimate_before("gpt-image-1", "1024x1024", "medium", 1, 0) == pytest.approx(0.04224)


def test_estimate_before_scales_output_with_n_and_area() -> None:
    one = estimate_before("gpt-image-2.6-sunburst", "1024x1024", "high", 1, 0)
    assert estimate_before("gpt-image-2.6-sunburst", "1024x1024", "high", 3, 0) == pytest.approx(3 * one)
    assert estimate_before("gpt-image-2.6-sunburst", "1536x1024", "high", 1, 0) == pytest.approx(1.5 * one)


def test_estimate_before_prices_reference_images_and_prompt_once_not_per_image() -> None:
    base = estimate_before("gpt-image-2.6-sunburst", "1024x1024", "low", 1, 0)
    refs = estimate_before("gpt-image-2.6-sunburst", "1024x1024", "low", 1, 4, prompt_chars=400)
    assert refs - base == pytest.approx(4 * INPUT_IMAGE_TOKENS * 8e-6 + 100 * 5e-6)
    refs_n2 = estimate_before("gpt-image-2.6-sunburst", "1024x1024", "low", 2, 4, prompt_chars=400)
    assert refs_n2 - refs == pytest.approx(base)


def test_estimate_before_errs_high_for_auto_choices() -> None:
    high = estimate_before("gpt-image-1", "1536x1024", "high", 1, 0)
    assert estimate_before("gpt-image-1", "auto", "auto", 1, 0) == pytest.approx(high)
    assert estimate_before("gpt-image-2.5-flare", "1024x1024", "max", 1, 0) > estimate_before(
        "gpt-image-2.5-flare", "1024x1024", "high", 1, 0
    )
