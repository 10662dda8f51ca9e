"""Character reference sheets: one generation that draws a character as a turnaround sheet.

A sheet (front, three-quarter, side, back, and a row of expressions on a plain background)
is the best single reference a character can have: every later scene sees all sides of them.
It is an ordinary scene job built from the character's description and references; with
`make_main` its first picture becomes the character's first reference when the job succeeds,
in the same transaction that stores it, so a crash cannot leave the sheet stored but unlinked.
"""

from __future__ import annotations

from sqlmodel import Session, select

from characters import service
from characters.models import Character
from generation.models import Generation, JobStatus
from generation.schemas import GenerateRequest
from library.models import Image

SHEET_SCENE = (
    "A character reference sheet (turnaround) of {name}, the same character in every view: "
    "full body from the front, three-quarter view, side view and back view standing in a row, "
    "and below them a row of head-and-shoulders expressions (happy, sad, surprised, angry, "
    "sleepy). Plain light-grey background, even lighting, no scenery, no props, no text."
)
SHEET_SIZE = "1536x1024"


def sheet_request(name: str, character_id: int, *, wait: bool) -> GenerateRequest:
    """The scene request for a sheet: the character (description and references) and the layout."""
    return GenerateRequest(
        prompt=SHEET_SCENE.format(name=name), characters=[character_id], size=SHEET_SIZE, wait=wait
    )


def sheet_finished(session: Session, job: Generation) -> list[str]:
    """Finish hook: put a successful make_main sheet first in its character's references."""
    if job.main_reference_of is None or job.status != JobStatus.succeeded or not job.image_numbers:
        return []
    character = session.get(Character, job.main_reference_of)
    if character is None or character.workspace_id != job.workspace_id:
        return []
    image = session.exec(
        select(Image).where(Image.workspace_id == job.workspace_id, Image.number == job.image_numbers[0])
    ).first()
    if image is None:
        return []
    current = service.reference_numbers(session, [character.id])[character.id]  # type: ignore[list-item,index]
    numbers = [image.number, *(n for n in current if n != image.number)]
    service.set_references(session, character, numbers)
    return []
