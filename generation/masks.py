"""The mask of a masked edit: a library PNG with an alpha channel, the size of input image 1.

OpenAI redraws where the mask's alpha is 0 and keeps the rest; a mask without alpha, in
another format or of another size is refused upstream after the job was paid for, so it is a
422 naming `mask` here, before anything is spent.
"""

from __future__ import annotations

import io

from PIL import Image as PILImage
from sqlmodel import Session

from errors import InvalidInput, NotFound
from library import service as library
from library.models import Image
from storage.files import FileStore

MAX_MASK_BYTES = 4 * 1024 * 1024  # OpenAI's limit for the mask file


def has_alpha(data: bytes) -> bool:
    with PILImage.open(io.BytesIO(data)) as image:
        return image.mode in ("RGBA", "LA", "RGBa", "La", "PA") or "transparency" in image.info


def check_mask(mask: Image, data: bytes, first: Image | None, *, field: str = "mask") -> None:
    """Refuse a mask OpenAI would refuse; `first` is input image 1 (None: there is none)."""
    if first is None:
        raise InvalidInput(
            "a mask edits an input image: give reference_images (or characters) too", field=field
        )
    if mask.format != "png":
        raise InvalidInput(f"the mask must be a PNG, image {mask.number} is {mask.format}", field=field)
    if mask.bytes > MAX_MASK_BYTES:
        raise InvalidInput(f"the mask must be under {MAX_MASK_BYTES // (1024 * 1024)} MB", field=field)
    if not has_alpha(data):
        raise InvalidInput(
            f"image {mask.number} has no alpha channel: paint the area to redraw transparent", field=field
        )
    if (mask.width, mask.height) != (first.width, first.height):
        raise InvalidInput(
            f"the mask is {mask.width}x{mask.height} but input image {first.number} is "
            f"{first.width}x{first.height}; they must be the same size",
            field=field,
        )


def load_mask(
    session: Session, store: FileStore, workspace_id: int, number: int, first: Image | None
) -> Image:
    """The checked mask image row (422 `mask` for an unknown number too: it is a bad field)."""
    try:
        mask = library.get_image(session, workspace_id, number)
    except NotFound as exc:
        raise InvalidInput(exc.message, field="mask", code="unknown_image") from exc
    with store.open(mask.file_key) as handle:
        data = handle.read()
    check_mask(mask, data, first)
    return mask
