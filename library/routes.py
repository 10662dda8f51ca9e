"""Image library routes: uploads (streamed multipart or base64 JSON), listing, files, similar, delete.

Upload routes are `async` only to stream the body (storage/uploads.py); everything blocking —
reading spooled parts, Pillow, hashing, SQLite, file writes — runs in one worker-thread call.
File routes accept either the Bearer key or a signed URL (services/signing.py).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.blobs import serve_blob
from api.openapi import (
    KEYED,
    SIGNED_URL_EXTRA,
    CharacterIdPath,
    ImageNumberPath,
    OffsetQuery,
    bearer_scheme,
    error_responses,
    image_content,
    multipart_upload_body,
)
from api.request_body import read_capped
from characters.service import get_character
from config import Settings
from deps import CallerDep, RuntimeDep, SessionDep, SettingsDep, get_caller
from errors import BadRequest, InvalidInput
from library import service as library
from library import sources as outside
from library.schemas import ImageList, ImageRead, ImageUpload, SimilarList
from library.upload_body import UploadedFile, is_multipart, read_multipart
from services.bearer import parse_bearer
from services.runtime import Runtime
from services.signing import verify
from storage.db import end_read
from storage.ids import MAX_INT64, RowId
from storage.imaging import CONTENT_TYPES, ProcessedImage
from storage.space import with_reserve

router = APIRouter(tags=["images"], dependencies=[Depends(bearer_scheme)], responses=error_responses(*KEYED))
UPLOADED = {
    201: {"model": ImageUpload, "description": "Stored (any new image in the request makes it 201)"},
    **error_responses(400, 404, 413, 415, 503, 507),
}
FILE_CACHE_CONTROL = "private, max-age=3600"
BASE64_FIELD = "image_base64"


def _parse_character_id(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidInput("character_id must be an integer", field="character_id") from None
    if not 1 <= value <= MAX_INT64:
        raise InvalidInput(f"character_id must be between 1 and {MAX_INT64}", field="character_id")
    return value


def _ingest(
    session: Session,
    rt: Runtime,
    workspace_id: int,
    sources: list[tuple[str, Any]],
    *,
    character_id: int | None,
    field: str,
) -> tuple[list[dict[str, Any]], bool]:
    """Validate every file first (one bad file refuses the request), then store all at once."""
    if character_id is not None:
        get_character(session, workspace_id, character_id)  # 404 before any heavy work
        end_read(session)  # the write transaction starts fresh
    settings = rt.settings
    processed: list[ProcessedImage] = []
    for name, source in sources:
        data = source.read_bytes() if isinstance(source, UploadedFile) else source
        processed.append(library.prepare(settings, data, gate=rt.decode_gate, name=name, field=field))
        del data
    stored = library.store_processed(
        session,
        settings,
        rt.store,
        rt.similarity,
        workspace_id,
        processed,
        kind="upload",
        character_id=character_id,
    )
    return library.images_to_api(session, settings, stored), all(s.duplicate for s in stored)


@router.post(
    "/images",
    status_code=201,
    responses={
        **UPLOADED,
        200: {"model": ImageUpload, "description": "Every file was already in the library (`duplicate`)"},
    },
    openapi_extra=multipart_upload_body(with_character_id=True),
)
async def upload_images(
    request: Request, caller: CallerDep, session: SessionDep, rt: RuntimeDep
) -> JSONResponse:
    """Multipart `files` (one or more) and an optional `character_id` to append them to."""
    async with read_multipart(request, rt.settings, rt.scratch.path) as form:
        character_id = _parse_character_id(form.fields.get("character_id"))
        if not form.files:
            raise InvalidInput("send at least one image as a multipart 'files' part", field="files")
        sources: list[tuple[str, Any]] = [(part.filename, part) for part in form.files]
        images, all_duplicates = await run_in_threadpool(
            _ingest, session, rt, caller.workspace_id, sources, character_id=character_id, field="files"
        )
    return JSONResponse({"images": images}, status_code=200 if all_duplicates else 201)


async def _read_base64_json(request: Request, settings: Settings) -> bytes:
    limit = settings.max_upload_bytes * 4 // 3 + 64 * 1024
    body = await read_capped(request, limit, BASE64_FIELD)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="malformed_json") from None
    except RecursionError:
        raise BadRequest("request body nests JSON too deeply", code="malformed_json") from None
    value = payload.get(BASE64_FIELD) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput('send multipart \'files\' or JSON {"image_base64": "..."}', field=BASE64_FIELD)
    return outside.decode_base64_image(value.strip(), BASE64_FIELD, settings.max_upload_bytes)


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=4096)
    character_id: RowId | None = None


@router.post(
    "/images/import",
    status_code=201,
    responses={
        201: {
            "model": ImageUpload,
            "description": "Fetched and stored (200 when it was already in the library)",
        },
        200: {"model": ImageUpload, "description": "The same bytes were already in the library"},
        **error_responses(404, 413, 415, 503, 507),
    },
)
async def import_image(
    body: ImportRequest, caller: CallerDep, session: SessionDep, rt: RuntimeDep
) -> JSONResponse:
    """Fetch one image from a public URL (SSRF-safe, library/fetcher.py) and store it like an upload."""
    settings = rt.settings
    if body.character_id is not None:
        await run_in_threadpool(get_character, session, caller.workspace_id, body.character_id)
        end_read(session)
    data = await outside.load(outside.ImageSource("url", url=body.url), settings, rt.url_resolver)

    def store() -> tuple[list[dict[str, Any]], bool]:
        stored = outside.store_sources(
            session,
            settings,
            rt.store,
            rt.similarity,
            caller.workspace_id,
            [("url", data)],
            character_id=body.character_id,
        )
        return library.images_to_api(session, settings, stored), stored[0].duplicate

    images, duplicate = await run_in_threadpool(store)
    return JSONResponse({"images": images}, status_code=200 if duplicate else 201)


@router.post(
    "/characters/{character_id}/references",
    status_code=201,
    tags=["characters"],
    responses=UPLOADED,
    openapi_extra=multipart_upload_body(with_character_id=False, base64_json=True),
)
async def upload_references(
    character_id: CharacterIdPath, request: Request, caller: CallerDep, session: SessionDep, rt: RuntimeDep
) -> JSONResponse:
    """Store images in the library and append them to this character's reference list."""
    settings = rt.settings
    await run_in_threadpool(get_character, session, caller.workspace_id, character_id)
    if is_multipart(request):
        async with read_multipart(request, settings, rt.scratch.path, text_fields=frozenset()) as form:
            if not form.files:
                raise InvalidInput("send at least one image as a multipart 'files' part", field="files")
            sources: list[tuple[str, Any]] = [(part.filename, part) for part in form.files]
            images, _ = await run_in_threadpool(
                _ingest,
                session,
                rt,
                caller.workspace_id,
                sources,
                character_id=character_id,
                field="files",
            )
    else:
        data = await _read_base64_json(request, settings)
        images, _ = await run_in_threadpool(
            _ingest,
            session,
            rt,
            caller.workspace_id,
            [(BASE64_FIELD, data)],
            character_id=character_id,
            field=BASE64_FIELD,
        )
    return JSONResponse({"images": images}, status_code=201)


@router.get(
    "/images", responses={200: {"model": ImageList, "description": "Newest first"}, **error_responses(404)}
)
def list_images(
    caller: CallerDep,
    session: SessionDep,
    rt: RuntimeDep,
    character_id: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
    kind: Literal["upload", "generated"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> JSONResponse:
    rows, total = library.list_images(
        session,
        rt.similarity,
        caller.workspace_id,
        character_id=character_id,
        kind=kind,
        limit=limit,
        offset=offset,
    )
    return JSONResponse({"items": library.images_to_api(session, rt.settings, rows), "total": total})


@router.get("/images/{number}", responses={200: {"model": ImageRead}, **error_responses(404)})
def get_image(
    number: ImageNumberPath, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    image = library.get_image(session, caller.workspace_id, number)
    return JSONResponse(library.images_to_api(session, settings, [image])[0])


@router.get("/images/{number}/similar", responses={200: {"model": SimilarList}, **error_responses(404)})
def similar_images(
    number: ImageNumberPath,
    caller: CallerDep,
    session: SessionDep,
    rt: RuntimeDep,
    max_distance: Annotated[int | None, Query(ge=0, le=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    distance = rt.settings.near_duplicate_distance if max_distance is None else max_distance
    pairs = library.similar_images(session, rt.similarity, caller.workspace_id, number, distance, limit)
    return JSONResponse({"items": [{"number": n, "distance": d} for n, d in pairs]})


@router.delete("/images/{number}", status_code=204, responses=error_responses(404, 507))
def delete_image(number: ImageNumberPath, caller: CallerDep, session: SessionDep, rt: RuntimeDep) -> Response:
    # On a full disk SQLite cannot even log the delete: free the reserve and try once more.
    with_reserve(
        rt.settings.data_dir, lambda: library.delete_image(session, rt.store, caller.workspace_id, number)
    )
    return Response(status_code=204)


def file_reader(request: Request, session: SessionDep, settings: SettingsDep) -> int:
    """The workspace allowed to read: from the Bearer key, or else from a valid signature."""
    params = request.query_params
    if parse_bearer(request.headers.get("authorization")) is not None or "sig" not in params:
        return get_caller(request, session).workspace_id
    return verify(
        settings.signing_key, request.url.path, params.get("w"), params.get("exp"), params.get("sig")
    )


ReaderDep = Annotated[int, Depends(file_reader)]


def _serve(request: Request, rt: Runtime, key: str, media_type: str, etag: str) -> Response:
    return serve_blob(
        request,
        rt.store,
        key,
        media_type,
        cache_control=FILE_CACHE_CONTROL,
        presign=rt.settings.s3_presign,
        etag=etag,
    )


def _file_responses(*media_types: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": image_content(*media_types), "description": "The image bytes"},
        304: {"description": "Not modified (`If-None-Match` matched the `ETag`)"},
        307: {"description": "With `S3_PRESIGN=true`: a short-lived presigned URL of the object store"},
        **error_responses(403, 404),
    }


@router.get(
    "/images/{number}/file",
    response_class=Response,
    responses=_file_responses(*CONTENT_TYPES.values()),
    openapi_extra=SIGNED_URL_EXTRA,
)
def image_file(
    number: ImageNumberPath, request: Request, workspace_id: ReaderDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    image = library.get_image(session, workspace_id, number)
    return _serve(request, rt, image.file_key, CONTENT_TYPES[image.format], f'"{image.sha256}"')


@router.get(
    "/images/{number}/thumbnail",
    response_class=Response,
    responses=_file_responses("image/webp"),
    openapi_extra=SIGNED_URL_EXTRA,
)
def image_thumbnail(
    number: ImageNumberPath, request: Request, workspace_id: ReaderDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    image = library.get_image(session, workspace_id, number)
    return _serve(request, rt, image.thumb_key, "image/webp", f'"{image.sha256}-thumb"')
