"""Compose the prompt sent to the image model: characters first, then the scene.

Consistency comes from two things the model can see: each character's saved description,
stated verbatim every time, and the reference images, with the prompt saying which input
image shows whom. The function is pure and deterministic (same inputs, same prompt), because
the composed prompt is stored with the job and shown to authors so they can reproduce it.

With no characters, no input images and no book style the scene goes out unchanged, so the
plain `{"prompt": "..."}` text-to-image call sends exactly what the client wrote.

A book has one look: its style is stated once, and a character's own style note is left out
when there is one (two style lines contradict each other and the model averages them). Input
images have a role: a character reference, an earlier page kept for continuity (same world,
light and palette, not the same composition) or a style image (the art style only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from errors import InvalidInput
from generation.capabilities import MAX_PROMPT_CHARS


@dataclass(frozen=True)
class CharacterBrief:
    name: str
    description: str
    style: str | None = None


class ShownImage(Protocol):
    """An input image as the composer needs it; `backends.base.ReferenceImage` fits."""

    @property
    def number(self) -> int: ...

    @property
    def character_names(self) -> Sequence[str]: ...

    @property
    def role(self) -> str: ...


# Roles of an input image: why it is attached, which the prompt tells the model.
CHARACTER = "character"
CONTINUITY = "continuity"
STYLE = "style"


@dataclass(frozen=True)
class InputImage:
    number: int
    character_names: tuple[str, ...] = ()
    # Characters the picture shows who are not in this scene: said, so the model is not misled.
    others: tuple[str, ...] = ()
    role: str = CHARACTER
    # For continuity: which page it is ("page 1"); said in the prompt so the model knows.
    label: str | None = None


CONTINUITY_RULE = "same world, light and palette; not the same composition"
STYLE_RULE = "for the art style only: match the medium, palette and line, not the content"
TEXT_SPACE = (
    "Leave the {where} quarter of the picture calm and uncluttered (sky, ground or plain colour) "
    "for the page's printed words. Draw no text, letters or speech bubbles."
)

CONSISTENCY_RULE = (
    "Keep every character exactly as shown in their reference images: the same face, hair, "
    "body shape, clothing, colours and proportions. Do not redesign, restyle, age or swap them."
)


def join_words(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _shows(image: ShownImage) -> str:
    """What an input image is for: an earlier page, the art style, or who it shows."""
    role = image.role
    if role == CONTINUITY:
        label = getattr(image, "label", None) or "an earlier page"
        return f"is {label} of this book, for continuity: {CONTINUITY_RULE}"
    if role == STYLE:
        return f"is a style reference, {STYLE_RULE}"
    names = list(image.character_names)
    others = list(getattr(image, "others", ()))
    if others:
        who = "who is" if len(others) == 1 else "who are"
        if not names:
            return f"shows {join_words(others)}, {who} not in this scene; use it only as visual reference"
        return f"shows {join_words(names)} and also {join_words(others)}, {who} not in this scene"
    if names:
        return f"shows {join_words(names)}"
    return "shows no named character; use it as visual reference"


def _positions_of(name: str, images: Sequence[ShownImage]) -> list[str]:
    return [
        f"{position} (library image {image.number})"
        for position, image in enumerate(images, start=1)
        if name in image.character_names
    ]


def compose_prompt(
    characters: Sequence[CharacterBrief],
    scene: str,
    *,
    book_style: str | None = None,
    input_images: Sequence[ShownImage] = (),
    max_chars: int = MAX_PROMPT_CHARS,
    text_space: str | None = None,
) -> str:
    """The prompt for one scene.

    `input_images` are in upload order: the first is "input image 1". Pass the model's
    `max_prompt_chars`; a prompt over it raises InvalidInput(field="prompt") before anything
    is spent. `text_space` ("top"/"bottom") asks for a quiet band where a book prints its words.
    """
    if not scene.strip():
        raise InvalidInput("prompt must not be empty", field="prompt")
    if not characters and not input_images and not book_style and not text_space:
        prompt = scene
    else:
        prompt = _compose(characters, scene, book_style, input_images, text_space)
    if len(prompt) > max_chars:
        raise InvalidInput(
            f"the composed prompt is {len(prompt):,} characters (scene {len(scene):,}, the rest character "
            f"descriptions and instructions); the model takes at most {max_chars:,}. "
            "Shorten the scene or the character descriptions, or use fewer characters.",
            field="prompt",
        )
    return prompt


def _compose(
    characters: Sequence[CharacterBrief],
    scene: str,
    book_style: str | None,
    input_images: Sequence[ShownImage],
    text_space: str | None = None,
) -> str:
    parts = ["Create an illustration of the scene described at the end."]
    if book_style:
        parts.append(f"Book style, for the whole picture (the only style to follow): {book_style}")
    if text_space:
        parts.append(TEXT_SPACE.format(where=text_space))
    if characters:
        lines = [f"Characters in this scene ({len(characters)}). {CONSISTENCY_RULE}"]
        for index, character in enumerate(characters, start=1):
            lines.append(f"{index}. {character.name}")
            lines.append(f"Description of {character.name}: {character.description}")
            if character.style and not book_style:
                lines.append(f"Style of {character.name}: {character.style}")
            positions = _positions_of(character.name, input_images)
            if positions:
                noun = "image" if len(positions) == 1 else "images"
                lines.append(f"{character.name} is shown in input {noun} {join_words(positions)}.")
            else:
                lines.append(f"No reference image of {character.name}: follow the description exactly.")
        parts.append("\n".join(lines))
    if input_images:
        lines = [f"Input images ({len(input_images)}), in the order they are attached:"]
        for position, image in enumerate(input_images, start=1):
            lines.append(f"- Input image {position} (library image {image.number}) {_shows(image)}.")
        parts.append("\n".join(lines))
    parts.append(f"Scene:\n{scene}")
    return "\n\n".join(parts)
