"""Turn a scene request into what will be sent: resolved characters, references, prompt, params.

This is the "validate before spending" step: everything the model would refuse, and every
unknown character or image number, is a 422 here, before a job exists or anything is called.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from characters import service as characters
from characters.models import Character
from errors import InvalidInput, NotFound
from generation.backends.base import FitsPrompt
from generation.capabilities import (
    SEEDING_BACKENDS,
    ModelCapabilities,
    resolve_model,
    validate_sampling,
    validate_scene_params,
)
from generation.composer import CharacterBrief, InputImage, compose_prompt, join_words
from generation.masks import load_mask
from generation.params import SceneParams
from generation.schemas import GenerateRequest
from library.models import Image
from library.tags import characters_shown
from storage.files import FileStore


def added_characters(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cast members a reference image brought in (rule: pictures bring their characters)."""
    return [
        {"id": e["id"], "name": e["name"], "reference_images": e["reference_images"]}
        for e in entries
        if e.get("added_from_references")
    ]


def left_out_references(entries: list[dict[str, Any]]) -> list[int]:
    return sorted({n for e in entries for n in e.get("left_out", [])})


@dataclass(frozen=True)
class PreparedScene:
    scene: str
    prompt: str
    model: str
    caps: ModelCapabilities
    # [{"id", "name", "reference_images": [numbers of the input images that show them]}]
    characters: list[dict[str, Any]]
    references: list[InputImage]  # in upload order: input image 1 first
    params: SceneParams  # upstream parameters, as they will be sent
    warnings: list[str] = field(default_factory=list)  # for the author, shown by the dry run
    left_out: list[int] = field(default_factory=list)  # references that did not fit the model

    @property
    def added_characters(self) -> list[dict[str, Any]]:
        return added_characters(self.characters)

    @property
    def endpoint(self) -> str:
        return "edit" if self.references else "generate"


def _resolve_characters(session: Session, workspace_id: int, wanted: list[int | str]) -> list[Character]:
    found: list[Character] = []
    for index, ref in enumerate(wanted):
        try:
            character = characters.get_by_ref(session, workspace_id, ref)
        except NotFound as exc:
            raise InvalidInput(exc.message, field=f"characters.{index}", code="unknown_character") from exc
        if all(c.id != character.id for c in found):
            found.append(character)
    return found


def _fair_share(lists: list[list[int]], limit: int) -> tuple[list[int], list[int]]:
    """Each character's references from the front, in turn, up to `limit`; (sent, left out).

    The chosen ones go out grouped by character (Mia's first, then Otto's), as when all fit.
    """
    taken: set[int] = set()
    depth = 0
    while len(taken) < limit and any(depth < len(numbers) for numbers in lists):
        for numbers in lists:
            if depth < len(numbers) and len(taken) < limit:
                taken.add(numbers[depth])
        depth += 1
    ordered: list[int] = []
    for numbers in lists:
        ordered.extend(n for n in numbers if n in taken and n not in ordered)
    left_out: list[int] = []
    for numbers in lists:
        left_out.extend(n for n in numbers if n not in taken and n not in left_out)
    return ordered, left_out


def _choose_references(
    session: Session, workspace_id: int, chosen: list[Character], explicit: list[int] | None, limit: int
) -> tuple[list[Image], list[int]]:
    """Explicit numbers win; otherwise a fair share of each named character's own list."""
    if explicit is not None:
        if len(set(explicit)) != len(explicit):
            raise InvalidInput("a reference image is listed twice", field="reference_images")
        return characters.images_by_number(session, workspace_id, explicit, "reference_images"), []
    lists = characters.reference_numbers(session, [c.id for c in chosen])  # type: ignore[misc]
    numbers, left_out = _fair_share([lists[c.id] for c in chosen], limit)  # type: ignore[index]
    return characters.images_by_number(session, workspace_id, numbers, "reference_images"), left_out


def _shown_characters(
    session: Session, workspace_id: int, images: list[Image]
) -> tuple[dict[int, list[int]], dict[int, Character]]:
    """Whom each image shows (image id -> character ids) and those characters, by id."""
    shown = characters_shown(session, [i.id for i in images])  # type: ignore[misc]
    ids = sorted({cid for cids in shown.values() for cid in cids})
    rows = session.exec(
        select(Character).where(Character.workspace_id == workspace_id, col(Character.id).in_(ids))
    ).all()
    return shown, {c.id: c for c in rows}  # type: ignore[misc]


def _join_numbers(numbers: list[int]) -> str:
    words = [f"image {n}" for n in numbers]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def prepare_scene(
    session: Session,
    workspace_id: int,
    body: GenerateRequest,
    default_model: str,
    today: date,
    *,
    backend: str,
    store: FileStore,
    fit: FitsPrompt | None = None,
) -> PreparedScene:
    """Resolve, choose, compose and validate.

    A reference image that shows a character brings that character (description and all) into
    the scene when the request names no cast; `"characters": []` or a named cast is kept as
    given, and an image showing someone outside it is said so in the prompt and warned about.
    `today` comes from the app's clock: whether a model is still live is a question of dates.
    """
    model = body.model or default_model
    limit = resolve_model(model, today).max_input_images
    chosen = _resolve_characters(session, workspace_id, body.characters)
    images, left_out = _choose_references(session, workspace_id, chosen, body.reference_numbers(), limit)
    picture = body.picture()
    caps = validate_scene_params(
        model=model, prompt=body.prompt, reference_images=len(images), today=today, **picture
    )
    validate_sampling(
        caps,
        backend,
        seed=body.seed,
        guidance_scale=body.guidance_scale,
        steps=body.steps,
        strength=body.strength,
        negative_prompt=body.negative_prompt,
        reference_images=len(images),
    )
    if body.mask is not None and not caps.takes_mask:
        raise InvalidInput(f"{caps.name} does not take a mask", field="mask", code="unsupported_parameter")
    mask = None
    if body.mask is not None:
        mask = load_mask(session, store, workspace_id, body.mask, images[0] if images else None)
    users, known = _shown_characters(session, workspace_id, images)
    added: list[Character] = []
    if "characters" not in body.model_fields_set:
        for image in images:
            for cid in users.get(image.id, []):  # type: ignore[arg-type]
                if cid in known and all(c.id != cid for c in chosen + added):
                    added.append(known[cid])
    cast = chosen + added
    in_scene = {c.id for c in cast}
    references = [
        InputImage(
            i.number,
            tuple(known[c].name for c in users.get(i.id, []) if c in in_scene),  # type: ignore[arg-type]
            tuple(known[c].name for c in users.get(i.id, []) if c in known and c not in in_scene),  # type: ignore[arg-type]
        )
        for i in images
    ]
    warnings = [
        f"Image {r.number} shows {join_words(list(r.others))}, who {'is' if len(r.others) == 1 else 'are'} "
        "not in this scene."
        for r in references
        if r.others
    ]
    if left_out:
        warnings.append(
            f"{_join_numbers(left_out).capitalize()} {'was' if len(left_out) == 1 else 'were'} left out: "
            f"{caps.name} takes at most {caps.max_input_images} reference images."
        )
    briefs = [CharacterBrief(c.name, c.description, c.style) for c in cast]
    prompt = compose_prompt(
        briefs, body.prompt, book_style=body.style, input_images=references, max_chars=caps.max_prompt_chars
    )
    if fit is not None:  # a token-limited text encoder: the dry run says what was sent instead
        fitted = fit.fit_prompt(prompt, briefs, body.prompt, body.style)
        prompt = fitted.prompt
        if fitted.note is not None:
            warnings.append(f"Prompt: {fitted.note}.")
    fidelity = caps.edit_input_fidelity if references else None
    seed = body.seed
    if seed is None and caps.seed and backend not in SEEDING_BACKENDS:
        seed = secrets.randbelow(2**32)  # chosen here so the job records the seed actually used
    params = SceneParams(
        **picture,
        input_fidelity=fidelity or None,
        mask=mask.number if mask is not None else None,
        seed=seed,
        guidance_scale=body.guidance_scale,
        steps=body.steps,
        strength=body.strength,
        negative_prompt=body.negative_prompt,
    )
    lists = characters.reference_numbers(session, [c.id for c in chosen]) if left_out else {}  # type: ignore[misc]
    entries: list[dict[str, Any]] = []
    for c in cast:
        entry: dict[str, Any] = {
            "id": c.id,
            "name": c.name,
            "reference_images": [r.number for r in references if c.name in r.character_names],
        }
        if c in added:
            entry["added_from_references"] = True
        dropped = [n for n in lists.get(c.id, []) if n in left_out]  # type: ignore[arg-type]
        if dropped:
            entry["left_out"] = dropped
        entries.append(entry)
    return PreparedScene(
        scene=body.prompt,
        prompt=prompt,
        model=caps.name,
        caps=caps,
        characters=entries,
        references=references,
        params=params,
        warnings=warnings,
        left_out=left_out,
    )
