"""Fitting a composed prompt into a token limit: the documented short form, never a silent cut."""

from __future__ import annotations

from generation.composer import CharacterBrief
from generation.prompt_budget import fit_prompt, short_form

MIA = CharacterBrief("Mia", "a girl in a red raincoat.", "watercolour")
REX = CharacterBrief("Rex", "a small grey dog")


def words(text: str) -> int:
    """A stand-in tokenizer: one token per word, plus start and end tokens like CLIP's."""
    return len(text.split()) + 2


def test_the_short_form_puts_descriptions_first_then_the_scene_then_the_style() -> None:
    assert short_form([MIA, REX], "Mia walks Rex.", "soft pencil") == (
        "Mia: a girl in a red raincoat, watercolour. Rex: a small grey dog. Mia walks Rex. Style: soft pencil"
    )


def test_a_prompt_that_fits_goes_out_unchanged_without_a_note() -> None:
    fitted = fit_prompt("a fox in the snow", [], "a fox in the snow", None, limit=77, count=words)
    assert fitted.prompt == "a fox in the snow" and fitted.note is None


def test_an_over_long_prompt_becomes_the_short_form_and_says_so() -> None:
    composed = "Create an illustration " * 30 + "Mia walks Rex."
    fitted = fit_prompt(composed, [MIA, REX], "Mia walks Rex.", None, limit=20, count=words)
    assert fitted.prompt == short_form([MIA, REX], "Mia walks Rex.", None)
    assert fitted.note is not None and f"is {words(composed)} tokens" in fitted.note and "20" in fitted.note


def test_a_short_form_still_too_long_keeps_whole_words_and_names_the_dropped_ones() -> None:
    scene = "Mia walks Rex along the long wet street past the bakery"
    fitted = fit_prompt("x " * 100, [MIA, REX], scene, None, limit=16, count=words)
    full = short_form([MIA, REX], scene, None)
    assert full.startswith(fitted.prompt)
    dropped = full.removeprefix(fitted.prompt).strip()
    assert words(fitted.prompt) <= 16 < words(f"{fitted.prompt} {dropped.split()[0]}")
    assert fitted.note is not None and repr(dropped) in fitted.note
