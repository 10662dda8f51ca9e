"""What a generation costs: one price table per model, and the arithmetic from upstream usage.

Source: OpenAI's model pages, as copied into /work/shared/design/OPENAI_FACTS.md on 2026-11-22
(USD per 1M tokens): gpt-image-2.6-sunburst text in $5, image in $8, image out $30;
gpt-image-1 $5 / $10 / $40. Those are the only two published prices we have; every other model
borrows its nearest family's price and says so in `note` (the table is the one place to fix
when a price is published). Operators correct or add prices with `PRICE_OVERRIDES`, without a
release. Costs are estimates for accounting and budgets, not an invoice.

Why tokens: GPT Image bills text input, image input and image output tokens at different rates,
and answers each call with `usage{input_tokens, output_tokens,
input_tokens_details{text_tokens, image_tokens}}`, so the cost after the fact is exact
arithmetic. Before the call (`dry_run`) only a rough estimate is possible: see `estimate_before`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

PER_TOKEN = 1 / 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens."""

    text_in: float
    image_in: float
    image_out: float
    note: str = ""


_SUNBURST_26 = Price(5.0, 8.0, 30.0, "published (OpenAI model page, read 2026-11-22)")
_GPT_IMAGE_1 = Price(5.0, 10.0, 40.0, "published (OpenAI model page, read 2026-11-22)")


def _like(base: Price, family: str) -> Price:
    return replace(base, note=f"no published price: {family}'s price assumed")


# One row per model id (dated snapshots resolve to their base id, see `price_for`).
PRICES: dict[str, Price] = {
    "gpt-image-2.6-sunburst": _SUNBURST_26,
    "gpt-image-2.6-flare": _like(_SUNBURST_26, "gpt-image-2.6-sunburst"),
    "gpt-image-2.5-sunburst": _like(_SUNBURST_26, "gpt-image-2.6-sunburst"),
    "gpt-image-2.5-flare": _like(_SUNBURST_26, "gpt-image-2.6-sunburst"),
    "gpt-image-2": _like(_SUNBURST_26, "gpt-image-2.6-sunburst"),
    "gpt-image-1": _GPT_IMAGE_1,
    "gpt-image-1.5": _like(_GPT_IMAGE_1, "gpt-image-1"),
    "gpt-image-1-mini": _like(_GPT_IMAGE_1, "gpt-image-1 (an overestimate for mini)"),
    "chatgpt-image-latest": _like(_GPT_IMAGE_1, "gpt-image-1"),
}
# The offline storyboard backend spends nothing, whatever model a request names. Every cost,
# before (dry run) and after (a finished job), is decided here and nowhere else.
# IMAGE_BACKEND=diffusers draws on this server's own CPU/GPU: no per-image bill either (issue 15).
FREE_BACKENDS = frozenset({"draft", "diffusers"})
# A model this table does not know (a new snapshot family) is billed like the newest family,
# so a cost is never silently zero.
FALLBACK = _like(_SUNBURST_26, "unknown model, gpt-image-2.6-sunburst")
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")

# Output tokens per image at 1024x1024, from OpenAI's gpt-image-1 image-generation guide
# (low 272, medium 1056, high 4160; 1024x1536 is 1.5 times that). Checked against the
# published per-image prices: 272 x $40/1M = $0.011, 1056 -> $0.042, 4160 -> $0.166.
OUTPUT_TOKENS_1024: dict[str, int] = {"low": 272, "medium": 1056, "high": 4160}
# Not published: xhigh and max (2.5 family) guessed at 1.5x and 2x high; `auto` priced as high,
# because an estimate shown before spending should not be lower than the bill.
OUTPUT_TOKENS_1024.update({"xhigh": 6240, "max": 8320, "auto": 4160})
# `auto` size priced as the larger standard size (1536x1024), for the same reason.
AUTO_SIZE_PIXELS = 1536 * 1024
# An input (reference) image tokenised like a 1024x1024 vision input at high detail:
# 85 + 170 x 4 tiles. Larger images are scaled down upstream, so this is a fair per-image guess.
INPUT_IMAGE_TOKENS = 765
CHARS_PER_TEXT_TOKEN = 4


def load_prices(overrides: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Price]:
    """The built-in table with `PRICE_OVERRIDES` applied (partial rows merge into known models).

    A model not in the table must give all three prices: guessing the missing ones would put an
    invented number in the accounts.
    """
    table = dict(PRICES)
    for model, fields in (overrides or {}).items():
        unknown = set(fields) - {"text_in", "image_in", "image_out"}
        if unknown:
            raise ValueError(f"PRICE_OVERRIDES[{model!r}]: unknown fields {sorted(unknown)}")
        base = table.get(model)
        if base is None:
            missing = {"text_in", "image_in", "image_out"} - set(fields)
            if missing:
                raise ValueError(f"PRICE_OVERRIDES[{model!r}]: a new model needs {sorted(missing)} too")
            base = Price(0.0, 0.0, 0.0)
        table[model] = replace(base, **{k: float(v) for k, v in fields.items()}, note="PRICE_OVERRIDES")
    return table


def price_for(model: str, prices: Mapping[str, Price] | None = None) -> Price:
    table = PRICES if prices is None else prices
    if model in table:
        return table[model]
    base = _SNAPSHOT.sub("", model)
    return table.get(base, FALLBACK)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def estimate_cost(
    model: str,
    usage: Mapping[str, Any] | None,
    prices: Mapping[str, Price] | None = None,
    *,
    backend: str = "openai",
) -> float:
    """USD for one upstream answer's `usage`, rounded to a millionth of a dollar.

    Input tokens are split by `input_tokens_details`; when the details are missing, all input
    is priced as text (the cheaper rate never exceeds image input, so this errs low only when
    the upstream omits what it charged for). Output tokens of an image model are image tokens.
    """
    if not usage or backend in FREE_BACKENDS:
        return 0.0
    price = price_for(model, prices)
    details = usage.get("input_tokens_details") or {}
    if details:
        text_in = _int(details.get("text_tokens"))
        image_in = _int(details.get("image_tokens"))
    else:
        text_in, image_in = _int(usage.get("input_tokens")), 0
    image_out = _int(usage.get("output_tokens"))
    cost = (text_in * price.text_in + image_in * price.image_in + image_out * price.image_out) * PER_TOKEN
    return round(cost, 6)


def estimate_output_tokens(size: str, quality: str) -> int:
    """Rough output tokens for one image: the 1024x1024 count for `quality`, scaled by pixel area."""
    per_1024 = OUTPUT_TOKENS_1024.get(quality, OUTPUT_TOKENS_1024["high"])
    width, _, height = size.partition("x")
    pixels = int(width) * int(height) if width.isdigit() and height.isdigit() else AUTO_SIZE_PIXELS
    return math.ceil(per_1024 * pixels / (1024 * 1024))


def estimate_before(
    model: str,
    size: str,
    quality: str,
    n: int,
    n_input_images: int,
    *,
    prompt_chars: int = 0,
    prices: Mapping[str, Price] | None = None,
    backend: str = "openai",
) -> float:
    """USD a request will roughly cost, for `dry_run` before anything is spent.

    Output: `n` images of `estimate_output_tokens(size, quality)` each. Input: the prompt at
    ~4 characters per token plus `INPUT_IMAGE_TOKENS` per reference image (sent once, whatever
    `n`). Unpublished cases (auto size/quality, xhigh, max) are priced high on purpose.
    """
    usage = {
        "input_tokens_details": {
            "text_tokens": math.ceil(prompt_chars / CHARS_PER_TEXT_TOKEN),
            "image_tokens": n_input_images * INPUT_IMAGE_TOKENS,
        },
        "output_tokens": max(n, 0) * estimate_output_tokens(size, quality),
    }
    return estimate_cost(model, usage, prices, backend=backend)
