"""What one page's job sends: its characters, input images in a fixed order, and one prompt.

Input images go in this order: each page character's references (in cast order, each image
once), the page's own extra references, the continuity picture (an earlier page), then the
book's style images. When they exceed the model's limit (16), images are dropped in the
reverse order of importance: style images from the end first, then the continuity picture,
then the page's extras from the end, and last the character references, taking the last image
of the longest list each time, so every character keeps its first (main) reference longest.
Nothing is dropped silently: the answer lists every dropped number and why it was there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from books.models import Book, Page
from books.printing import generate_size
from books.schemas import Dropped
from characters import service as characters
from characters.models import Character
from errors import InvalidInput, NotFound
from generation.capabilities import validate_scene_params
from generation.composer import CHARACTER, CONTINUITY, STYLE, CharacterBrief, InputImage, compose_prompt
from generation.params import SceneParams
from generation.scene import PreparedScene
from library.models import Image
from library.tags import characters_shown


@dataclass(frozen=True)
class Continuity:
    """The earlier page a page should match; `number` None while that page is still being drawn."""

    page: int  # 1-based
    number: int | None


@dataclass
class PreparedPage:
    scene: PreparedScene
    dropped: list[Dropped] = field(default_factory=list)


@dataclass
class _Inputs:
    groups: list[tuple[Character, list[Image]]]
    extras: list[Image]
    continuity: Image | None
    style: list[Image]

    def count(self) -> int:
        return (
            sum(len(g) for _, g in self.groups) + len(self.extras) + len(self.style) + bool(self.continuity)
        )

    def trim_to(self, limit: int) -> list[Dropped]:
        dropped: list[Dropped] = []
        while self.count() > limit:
            if self.style:
                dropped.append(Dropped(number=self.style.pop().number, role=STYLE))
            elif self.continuity is not None:
                dropped.append(Dropped(number=self.continuity.number, role=CONTINUITY))
                self.continuity = None
            elif self.extras:
                dropped.append(Dropped(number=self.extras.pop().number, role="page"))
            else:
                longest = max(reversed(range(len(self.groups))), key=lambda i: len(self.groups[i][1]))
                character, images = self.groups[longest]
                dropped.append(Dropped(number=images.pop().number, role=CHARACTER, character=character.name))
        return dropped


def _image(session: Session, workspace_id: int, number: int, field: str) -> Image:
    try:
        return characters.images_by_number(session, workspace_id, [number], field)[0]
    except InvalidInput as exc:
        raise NotFound(exc.message, field=exc.field, code="unknown_image") from exc


def _inputs(
    session: Session, book: Book, page: Page, cast: list[Character], continuity: Continuity | None
) -> _Inputs:
    lists = characters.reference_numbers(session, [c.id for c in cast])  # type: ignore[misc]
    used: set[int] = set()
    groups = []
    for character in cast:
        numbers = [n for n in lists[character.id] if n not in used]  # type: ignore[index]
        used.update(numbers)
        groups.append(
            (character, characters.images_by_number(session, book.workspace_id, numbers, "characters"))
        )
    extras = [
        _image(session, book.workspace_id, n, "reference_images")
        for n in page.reference_images
        if n not in used
    ]
    used.update(page.reference_images)
    picture = None
    if continuity is not None and continuity.number is not None and continuity.number not in used:
        picture = _image(session, book.workspace_id, continuity.number, "continuity")
        used.add(continuity.number)
    style = [
        _image(session, book.workspace_id, n, "style_images") for n in book.style_images if n not in used
    ]
    return _Inputs(groups, extras, picture, style)


def prepare_page(
    session: Session,
    book: Book,
    page: Page,
    *,
    model: str,
    n: int,
    continuity: Continuity | None,
    quality: str | None = None,
    size: str | None = None,
) -> PreparedPage:
    """Validate and compose one page (422 before anything is spent), trimming inputs to the limit."""
    found = {c.id: c for c in characters_by_id(session, page.characters)}
    cast = [
        found[cid] for cid in page.characters if cid in found and found[cid].workspace_id == book.workspace_id
    ]
    inputs = _inputs(session, book, page, cast, continuity)
    caps = validate_scene_params(model=model, quality=quality or book.quality, n=n)
    dropped = inputs.trim_to(caps.max_input_images)
    users = characters_shown(
        session,
        [i.id for _, g in inputs.groups for i in g] + [i.id for i in inputs.extras],  # type: ignore[misc]
    )
    names = {c.id: c.name for c in cast}

    def shown(image: Image) -> InputImage:
        return InputImage(image.number, tuple(names[c] for c in users.get(image.id, []) if c in names))  # type: ignore[index]

    references = [shown(i) for _, g in inputs.groups for i in g] + [shown(i) for i in inputs.extras]
    if inputs.continuity is not None and continuity is not None:
        references.append(
            InputImage(inputs.continuity.number, role=CONTINUITY, label=f"page {continuity.page}")
        )
    references.extend(InputImage(i.number, role=STYLE) for i in inputs.style)
    scene = page.scene or page.text
    size = size or generate_size(caps, book.trim)
    validate_scene_params(
        model=model,
        prompt=scene,
        size=size,
        quality=quality or book.quality,
        n=n,
        reference_images=len(references),
    )
    prompt = compose_prompt(
        [CharacterBrief(c.name, c.description, c.style) for c in cast],
        scene,
        book_style=book.style,
        input_images=references,
        max_chars=caps.max_prompt_chars,
        text_space=None if book.text_position == "none" else book.text_position,
    )
    params = SceneParams(
        size=size,
        quality=quality or book.quality,
        n=n,
        input_fidelity=caps.edit_input_fidelity if references else None,
    )
    prepared = PreparedScene(
        scene=scene,
        prompt=prompt,
        model=caps.name,
        caps=caps,
        characters=[
            {
                "id": c.id,
                "name": c.name,
                "reference_images": [r.number for r in references if c.name in r.character_names],
            }
            for c in cast
        ],
        references=references,
        params=params,
    )
    return PreparedPage(prepared, dropped)


def characters_by_id(session: Session, ids: list[int]) -> list[Character]:
    if not ids:
        return []
    return list(session.exec(select(Character).where(col(Character.id).in_(ids))).all())
