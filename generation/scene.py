"""Turn a scene request into what will be sent: resolved characters, references, prompt, params.

This is the "validate before spending" step: everything the model would refuse, and every
unknown character or image number, is a 422 here, before a job exists or anything is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from characters import service as characters
from characters.models import Character
from errors import InvalidInput, NotFound
from generation.capabilities import ModelCapabilities, validate_scene_params
from generation.composer import CharacterBrief, InputImage, compose_prompt
from generation.schemas import GenerateRequest
from library.models import Image
from library.tags import characters_shown


@dataclass(frozen=True)
class PreparedScene:
    scene: str
    prompt: str
    model: str
    caps: ModelCapabilities
    # [{"id", "name", "reference_images": [numbers of the input images that show them]}]
    characters: list[dict[str, Any]]
    references: list[InputImage]  # in upload order: input image 1 first
    params: dict[str, Any]  # upstream parameters, as they will be sent

    @property
    def endpoint(self) -> str:
        return "edit" if self.references else "generate"


def _resolve_characters(session: Session, workspace_id: int, wanted: list[int | str]) -> list[Character]:
    found: list[Character] = []
    for index, ref in enumerate(wanted):
        try:
            if isinstance(ref, int):
                character = characters.get_character(session, workspace_id, ref)
            else:
                character = characters.find_character_by_name(session, workspace_id, ref)
        except NotFound as exc:
            raise InvalidInput(exc.message, field=f"characters.{index}", code="unknown_character") from exc
        if all(c.id != character.id for c in found):
            found.append(character)
    return found


def _choose_references(
    session: Session, workspace_id: int, chosen: list[Character], explicit: list[int] | None
) -> list[Image]:
    """Explicit numbers win; otherwise each named character's own list, in order, without repeats."""
    if explicit is not None:
        if len(set(explicit)) != len(explicit):
            raise InvalidInput("a reference image is listed twice", field="reference_images")
        return characters.images_by_number(session, workspace_id, explicit, "reference_images")
    lists = characters.reference_numbers(session, [c.id for c in chosen])  # type: ignore[misc]
    numbers: list[int] = []
    for character in chosen:
        numbers.extend(n for n in lists[character.id] if n not in numbers)  # type: ignore[index]
    return characters.images_by_number(session, workspace_id, numbers, "reference_images")


def prepare_scene(
    session: Session, workspace_id: int, body: GenerateRequest, default_model: str
) -> PreparedScene:
    model = body.model or default_model
    chosen = _resolve_characters(session, workspace_id, body.characters)
    images = _choose_references(session, workspace_id, chosen, body.reference_images)
    caps = validate_scene_params(
        model=model,
        prompt=body.prompt,
        size=body.size,
        quality=body.quality,
        n=body.n,
        background=body.background,
        output_format=body.output_format,
        output_compression=body.output_compression,
        reference_images=len(images),
    )
    users = characters_shown(session, [i.id for i in images])  # type: ignore[misc]
    names = {c.id: c.name for c in chosen}
    references = [
        InputImage(i.number, tuple(names[c] for c in users.get(i.id, []) if c in names))  # type: ignore[index]
        for i in images
    ]
    prompt = compose_prompt(
        [CharacterBrief(c.name, c.description, c.style) for c in chosen],
        body.prompt,
        book_style=body.style,
        input_images=references,
        max_chars=caps.max_prompt_chars,
    )
    params: dict[str, Any] = {
        "size": body.size,
        "quality": body.quality,
        "n": body.n,
        "background": body.background,
        "output_format": body.output_format,
    }
    if body.output_compression is not None:
        params["output_compression"] = body.output_compression
    if references and caps.edit_input_fidelity:
        params["input_fidelity"] = caps.edit_input_fidelity
    return PreparedScene(
        scene=body.prompt,
        prompt=prompt,
        model=caps.name,
        caps=caps,
        characters=[
            {
                "id": c.id,
                "name": c.name,
                "reference_images": [r.number for r in references if c.name in r.character_names],
            }
            for c in chosen
        ],
        references=references,
        params=params,
    )
