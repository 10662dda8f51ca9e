"""What `/openapi.json` says about every route: the error shape, the bearer scheme, bounded ids.

The API answers every error with one shape (api_server's handlers), so the schema must say so
instead of FastAPI's default `{"detail": [...]}`; each route lists the statuses it can really
answer with, built here from one table so the descriptions stay the same everywhere. Path and
query ids and offsets are bounded to the database's integers (storage/ids.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from storage.ids import MAX_INT64

CharacterIdPath = Annotated[int, Path(ge=1, le=MAX_INT64, description="the character's id")]
ImageNumberPath = Annotated[int, Path(ge=0, le=MAX_INT64, description="the image's library number")]
GenerationIdPath = Annotated[str, Path(min_length=1, max_length=64, description="`gen_…`")]
RowIdPath = Annotated[int, Path(ge=1, le=MAX_INT64, description="a row id (book, page, export)")]
PageNumberPath = Annotated[int, Path(ge=1, le=MAX_INT64, description="a 1-based page number")]
# Every book and export route answers these (the book is looked up first).
BOOK_ERRORS = (400, 401, 404, 409, 422, 429, 500)
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_INT64, description="items to skip")]

# auto_error=False: the scheme only documents the header (and gives /docs its Authorize button);
# deps.get_caller still reads it, so a missing or bad key keeps the API's own 401 error shape.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key from `manage.py create-key`, sent as `Authorization: Bearer <key>`.",
)
metrics_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="metricsToken",
    description="The operator's `METRICS_TOKEN`, for the Prometheus scrape target only.",
)


class ErrorDetail(BaseModel):
    code: str = Field(description="a stable snake_case word, e.g. `validation_error`")
    message: str = Field(description="what went wrong and, where we can tell, how to fix it")
    field: str | None = Field(description="the offending field (dotted path or reference number), or null")


class ErrorBody(BaseModel):
    """Every error the API answers, validation errors included."""

    error: ErrorDetail


class GenerationErrorDetail(ErrorDetail):
    generation_id: str = Field(description="the failed generation, also readable at /generations/{id}")


class GenerationErrorBody(BaseModel):
    """A synchronous generation that failed: the error plus the id of the stored, failed job."""

    error: GenerationErrorDetail


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed body (not JSON, broken multipart)",
    401: "Missing or unknown API key",
    403: "Signed URL incomplete, wrong or expired",
    404: "Not found in this workspace",
    409: "Conflict (a name that exists, an idempotency key reused with another body)",
    413: "Upload or body too large",
    415: "Not an image type we take (PNG, JPEG, WebP)",
    422: "Invalid value; `field` names it",
    429: "Rate limit or quota reached; see `Retry-After`",
    500: "Unexpected server error",
    502: "The image backend refused the request",
    503: "Unavailable for now (image backend down after retries, or decoders busy); see `Retry-After`",
    504: "The image backend timed out",
    507: "The server's disk is full (deletes still work, to free space)",
}
# Every route behind an API key can answer these.
KEYED = (401, 422, 429, 500)


def error_responses(*statuses: int, model: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented with the error shape."""
    return {status: {"model": model, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}


BINARY = {"type": "string", "format": "binary"}


def image_content(*media_types: str) -> dict[str, Any]:
    return {media_type: {"schema": BINARY} for media_type in media_types}


def multipart_upload_body(*, with_character_id: bool, base64_json: bool = False) -> dict[str, Any]:
    """`openapi_extra` for the upload routes, which stream their body themselves (no Form params)."""
    properties: dict[str, Any] = {
        "files": {"type": "array", "items": BINARY, "minItems": 1, "description": "one or more images"}
    }
    if with_character_id:
        properties["character_id"] = {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_INT64,
            "description": "append the uploaded images to this character's references",
        }
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {"type": "object", "required": ["files"], "properties": properties},
            "encoding": {"files": {"contentType": "image/png, image/jpeg, image/webp"}},
        }
    }
    if base64_json:
        content["application/json"] = {
            "schema": {
                "type": "object",
                "required": ["image_base64"],
                "properties": {
                    "image_base64": {
                        "type": "string",
                        "minLength": 1,
                        "description": "the image as base64, or a `data:` URL",
                    }
                },
            }
        }
    return {"requestBody": {"required": True, "content": content}}


# The file routes also open with a signed URL (no header): `url`/`thumbnail_url` of an Image.
SIGNED_URL_EXTRA: dict[str, Any] = {
    "security": [{}],
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
        for name, text in (
            ("w", "signed URL: the workspace"),
            ("exp", "signed URL: expiry (Unix seconds)"),
            ("sig", "signed URL: the signature"),
        )
    ],
}
