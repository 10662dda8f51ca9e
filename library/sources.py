"""Images from outside the upload form: a URL, base64, or a `data:` URI, stored like any upload.

Each becomes bytes first (the URL through the SSRF-safe fetcher), then goes through exactly
the upload path (`library.prepare` + `store_processed`): the same sniffing, pixel limit,
metadata stripping and deduplication, so it gets a library number like any upload.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sqlmodel import Session

from config import Settings
from errors import InvalidInput, PayloadTooLarge
from library import service as library
from library.fetcher import FetchPolicy, Resolver, fetch_image
from library.similarity import SimilarityCache
from storage.files import FileStore


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        max_bytes=settings.max_upload_bytes,
        timeout_seconds=settings.url_import_timeout_seconds,
        allow_hosts=FetchPolicy.parse_allow_hosts(settings.url_import_allow_hosts),
    )


def decode_base64_image(value: str, field: str, max_bytes: int) -> bytes:
    """Plain base64 or a `data:image/...;base64,` URI to bytes; 422/413 naming `field`."""
    if value.startswith("data:"):
        header, sep, value = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise InvalidInput(
                "a data: URI must be 'data:<type>;base64,<data>'", field=field, code="invalid_base64"
            )
    compact = "".join(value.split())
    if len(compact) > (max_bytes + 2) // 3 * 4:
        raise PayloadTooLarge(f"image is over the limit of {max_bytes:,} bytes", field=field)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field} is not valid base64", field=field, code="invalid_base64") from None
    if not data:
        raise InvalidInput(f"{field} is empty", field=field, code="invalid_image")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"image is over the limit of {max_bytes:,} bytes", field=field)
    return data


@dataclass(frozen=True)
class ImageSource:
    """One outside image still to be imported: exactly one of `url` and `data` is set."""

    field: str  # where it came from in the request, for errors: "url", "reference_images.2.url"
    url: str | None = None
    data: bytes | None = None


async def load(source: ImageSource, settings: Settings, resolver: Resolver) -> bytes:
    """The bytes of a source (fetching a URL); refusals name `source.field`."""
    if source.data is not None:
        return source.data
    assert source.url is not None
    fetched = await fetch_image(source.url, fetch_policy(settings), resolver, field=source.field)
    return fetched.data


def store_sources(
    session: Session,
    settings: Settings,
    store: FileStore,
    similarity: SimilarityCache,
    workspace_id: int,
    blobs: list[tuple[str, bytes]],
    *,
    character_id: int | None = None,
) -> list[library.StoredImage]:
    """Validate every (field, bytes) first, then store them all in one transaction (deduplicated)."""
    processed = [library.prepare(settings, data, name=field, field=field) for field, data in blobs]
    return library.store_processed(
        session,
        settings,
        store,
        similarity,
        workspace_id,
        processed,
        kind="upload",
        character_id=character_id,
    )
