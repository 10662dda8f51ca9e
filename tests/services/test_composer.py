"""The prompt composer: descriptions verbatim, who is in which input image, then the scene."""

from __future__ import annotations

import pytest

from errors import InvalidInput
from generation.backends.base import ReferenceImage
from generation.composer import CharacterBrief, InputImage, compose_prompt

MIA = CharacterBrief(
    name="Mia",
    description='A seven-year-old girl with curly red hair, a yellow raincoat and "lucky" green boots.\n'
    "Freckles across her nose.",
    style="soft watercolour",
)
REX = CharacterBrief(name="Rex", description="A scruffy grey terrier with one floppy ear.")
SCENE = "Mia opens an umbrella in the rain while Rex shakes himself dry."


def compose(**overrides: object) -> str:
    args: dict[str, object] = {
        "characters": [MIA, REX],
        "scene": SCENE,
        "book_style": "gentle picture-book illustration, muted palette",
        "input_images": [InputImage(0, ("Mia",)), InputImage(4, ("Mia", "Rex")), InputImage(7)],
    }
    args.update(overrides)
    return compose_prompt(**args)  # type: ignore[arg-type]


def test_states_each_description_and_style_verbatim() -> None:
    prompt = compose(book_style=None)
    assert MIA.description in prompt
    assert REX.description in prompt
    assert "Style of Mia: soft watercolour" in prompt


def test_a_book_style_is_the_one_style_stated() -> None:
    prompt = compose()
    assert MIA.description in prompt and REX.description in prompt
    assert prompt.count("gentle picture-book illustration, muted palette") == 1
    assert "soft watercolour" not in prompt


def test_continuity_and_style_images_say_what_they_are_for() -> None:
    prompt = compose(
        input_images=[
            InputImage(0, ("Mia",)),
            InputImage(9, role="continuity", label="page 1"),
            InputImage(5, role="style"),
        ]
    )
    assert (
        "Input image 2 (library image 9) is page 1 of this book, for continuity: same world, light and "
        in prompt
    )
    assert "not the same composition" in prompt
    assert (
        "Input image 3 (library image 5) is a style reference, for the art style only: match the medium, "
        in prompt
    )
    assert "Mia is shown in input image 1 (library image 0)." in prompt


def test_text_space_asks_for_a_quiet_band_and_no_lettering() -> None:
    prompt = compose_prompt([], "A lighthouse at dawn", text_space="bottom")
    assert "Leave the bottom quarter of the picture calm" in prompt
    assert "Draw no text" in prompt


def test_tells_the_model_to_keep_characters_as_in_their_references() -> None:
    assert "exactly as shown in their reference images" in compose()


def test_says_which_input_image_shows_whom_by_upload_position_and_library_number() -> None:
    prompt = compose()
    assert "Input image 1 (library image 0) shows Mia." in prompt
    assert "Input image 2 (library image 4) shows Mia and Rex." in prompt
    assert "Input image 3 (library image 7) shows no named character" in prompt
    assert "Mia is shown in input images 1 (library image 0) and 2 (library image 4)." in prompt
    assert "Rex is shown in input image 2 (library image 4)." in prompt


def test_character_without_a_reference_is_told_to_follow_the_description() -> None:
    prompt = compose(input_images=[InputImage(0, ("Mia",))])
    assert "No reference image of Rex: follow the description exactly." in prompt


def test_scene_comes_last() -> None:
    prompt = compose()
    assert prompt.endswith(f"Scene:\n{SCENE}")
    assert prompt.index(REX.description) < prompt.index(SCENE)


def test_same_inputs_give_the_same_prompt() -> None:
    assert compose() == compose()
    assert compose(characters=[REX, MIA]) != compose()


def test_accepts_backend_reference_images_as_input_images() -> None:
    refs = [
        ReferenceImage(
            number=3, filename="ref-3.png", content_type="image/png", data=b"", character_names=("Rex",)
        )
    ]
    assert "Input image 1 (library image 3) shows Rex." in compose(input_images=refs)


def test_plain_prompt_without_characters_references_or_style_goes_out_unchanged() -> None:
    assert compose_prompt([], "A lighthouse at dawn") == "A lighthouse at dawn"


def test_book_style_alone_still_composes() -> None:
    prompt = compose_prompt([], "A lighthouse at dawn", book_style="linocut")
    assert "linocut" in prompt
    assert prompt.endswith("A lighthouse at dawn")


def test_prompt_over_the_model_limit_is_refused_naming_the_prompt_field() -> None:
    long_character = CharacterBrief(name="Long", description="d" * 500)
    with pytest.raises(InvalidInput) as caught:
        compose_prompt([long_character], "a scene", max_chars=400)
    assert caught.value.field == "prompt"
    assert "at most 400" in caught.value.message
    fits = compose_prompt([long_character], "a scene", max_chars=10_000)
    assert len(fits) < 10_000


def test_empty_scene_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        compose_prompt([MIA], "  \n")
    assert caught.value.field == "prompt"
