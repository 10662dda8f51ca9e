"""Pictures as the pages show them: signed thumbnail and file URLs, "image 26", and whom it shows.

One helper for every page, so the notation ("image 26"), the alt text and the "who" line are
the same on the scene form, the results, the library, the history and the detail view.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from characters import service as characters
from config import Settings
from library import service as library
from library.tags import characters_shown
from pages.render import image_url


def shown_image(settings: Settings, workspace_id: int, number: int, who: str = "") -> dict[str, Any]:
    return {
        "number": number,
        "thumb": image_url(settings, workspace_id, number, "thumbnail"),
        "file": image_url(settings, workspace_id, number, "file"),
        "alt": f"Image {number} — {who}" if who else f"Image {number}",
        "detail": f"/ui/images/{number}",
    }


def character_names(session: Session, workspace_id: int, ids: set[int]) -> dict[int, str]:
    return characters.names_by_id(session, workspace_id, ids)


def picture_items(
    session: Session, settings: Settings, workspace_id: int, numbers: list[int]
) -> tuple[list[dict[str, Any]], list[int]]:
    """The library images `numbers`, in that order, each with whom it shows; and the unknown numbers."""
    if not numbers:
        return [], []
    by_number = library.images_by_numbers(session, workspace_id, numbers)
    rows = list(by_number.values())
    shown = characters_shown(session, [image.id for image in rows])  # type: ignore[misc]
    names = character_names(session, workspace_id, {cid for ids in shown.values() for cid in ids})
    items = []
    for number in numbers:
        image = by_number.get(number)
        if image is None:
            continue
        ids = [cid for cid in shown.get(image.id, []) if cid in names]  # type: ignore[arg-type]
        who = ", ".join(names[cid] for cid in ids)
        extra = {"who": who, "character_ids": ids, "kind": image.kind}
        items.append({**shown_image(settings, workspace_id, number, who), **extra})
    return items, [n for n in numbers if n not in by_number]
