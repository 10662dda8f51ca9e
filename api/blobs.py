"""Serving a blob (library image, thumbnail, export file) from whichever store holds it.

A local file goes out as a `FileResponse` (sendfile, ranges). A remote object is streamed from
the store in chunks, never read whole into memory; with `S3_PRESIGN=true` the answer is instead
a 307 to a presigned URL that expires after PRESIGN_SECONDS, so the bytes do not pass through
the API at all. The `ETag`/`If-None-Match` check comes first in every case: a client with the
current version gets its 304 without a redirect.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from errors import NotFound
from storage.files import CHUNK, FileStore

PRESIGN_SECONDS = 300
# A browser may reuse the redirect itself for a while, but never past the URL's own expiry.
REDIRECT_CACHE_CONTROL = f"private, max-age={PRESIGN_SECONDS // 5}"


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()


def _attachment(filename: str) -> str:
    quoted = quote(filename)
    return (
        f"attachment; filename*=utf-8''{quoted}"
        if quoted != filename
        else f'attachment; filename="{filename}"'
    )


def _not_modified(request: Request, etag: str) -> bool:
    if_none_match = request.headers.get("if-none-match", "")
    return etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match.strip() == "*"


def serve_blob(
    request: Request,
    store: FileStore,
    key: str,
    media_type: str,
    *,
    cache_control: str,
    presign: bool,
    etag: str | None = None,
    filename: str | None = None,
) -> Response:
    headers = {"Cache-Control": cache_control}
    if etag is not None:
        headers["ETag"] = etag
        if _not_modified(request, etag):
            return Response(status_code=304, headers=headers)
    path = store.local_path(key)
    if path is not None:
        if not path.is_file():
            raise NotFound("the stored file is missing", code="file_missing")
        return FileResponse(path, media_type=media_type, headers=headers, filename=filename)
    if presign:
        url = store.presigned_url(key, seconds=PRESIGN_SECONDS, media_type=media_type, filename=filename)
        if url is not None:
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": REDIRECT_CACHE_CONTROL})
    try:
        handle, size = store.stream(key)
    except FileNotFoundError as exc:
        raise NotFound("the stored file is missing", code="file_missing") from exc
    headers["Content-Length"] = str(size)
    if filename is not None:
        headers["Content-Disposition"] = _attachment(filename)
    return StreamingResponse(_chunks(handle), media_type=media_type, headers=headers)
