"""Outside input images on a scene request (`{"url"}`, `{"b64_json"}`, `data:` URIs) become library numbers.

They are fetched or decoded first (URL fetches on the event loop, SSRF-safe), then validated
and stored in one write like an upload — deduplicated, so sending the same picture twice gives
the same number — and the request goes on with plain numbers. A bad entry is a 422 naming
`reference_images.<i>` (or `.url` / `.b64_json`) before any job exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anyio import to_thread

from config import Settings
from generation.schemas import Base64Reference, GenerateRequest, UrlReference
from library import sources

if TYPE_CHECKING:
    from services.runtime import Runtime


def _source(index: int, entry: object, settings: Settings) -> sources.ImageSource | None:
    field = f"reference_images.{index}"
    if isinstance(entry, UrlReference):
        return sources.ImageSource(f"{field}.url", url=entry.url)
    if isinstance(entry, Base64Reference):
        data = sources.decode_base64_image(entry.b64_json, f"{field}.b64_json", settings.max_upload_bytes)
        return sources.ImageSource(f"{field}.b64_json", data=data)
    if isinstance(entry, str):
        return sources.ImageSource(
            field, data=sources.decode_base64_image(entry, field, settings.max_upload_bytes)
        )
    return None


async def import_outside_references(rt: Runtime, workspace_id: int, body: GenerateRequest) -> GenerateRequest:
    """`body` with every outside reference replaced by its library number (unchanged if none)."""
    settings = rt.settings
    entries = body.reference_images or []
    wanted = [(i, source) for i, entry in enumerate(entries) if (source := _source(i, entry, settings))]
    if not wanted:
        return body
    blobs = [(source.field, await sources.load(source, settings, rt.url_resolver)) for _, source in wanted]

    def store() -> list[int]:
        with rt.session() as session:
            stored = sources.store_sources(session, settings, rt.store, rt.similarity, workspace_id, blobs)
            return [s.image.number for s in stored]

    numbers = await to_thread.run_sync(store)
    resolved: list[object] = list(entries)
    for (index, _), number in zip(wanted, numbers, strict=True):
        resolved[index] = number
    return body.model_copy(update={"reference_images": resolved})
