"""Response shapes of the image library (docs/API.md, section The image library).

The routes build these answers as plain dicts (`library.service.image_to_api`) for speed on
long lists; these models describe them in /openapi.json, and the Schemathesis contract test
checks that what the routes send matches.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ImageRead(BaseModel):
    number: int = Field(description="the image's number in this workspace's library; never reused")
    kind: Literal["upload", "generated"]
    width: int
    height: int
    format: Literal["png", "jpeg", "webp"]
    bytes: int
    sha256: str
    phash: str = Field(description="perceptual hash (hex), for near-duplicate search")
    url: str = Field(description="absolute, signed: fetchable without a header until it expires")
    thumbnail_url: str = Field(description="absolute, signed: a small WebP")
    characters: list[int] = Field(description="ids of the characters that use it as a reference")
    generation_id: str | None = Field(description="the generation that made it, for generated images")
    prompt: str | None = Field(description="the prompt sent upstream, for generated images")
    duplicate: bool = Field(description="true when an upload matched an image already stored")
    similar_to: list[int] = Field(description="near-duplicates found when it was uploaded")
    created_at: str


class ImageUpload(BaseModel):
    images: list[ImageRead]


class ImageList(BaseModel):
    items: list[ImageRead]
    total: int


class SimilarImage(BaseModel):
    number: int
    distance: int = Field(description="Hamming distance between perceptual hashes (0 = alike)")


class SimilarList(BaseModel):
    items: list[SimilarImage]
