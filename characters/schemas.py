"""Request and response shapes of the characters API (API.md, section Characters)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from storage.ids import ImageNumber

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# The description is what keeps a character consistent across scenes: required, never blank.
Description = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Style = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]

MAX_REFERENCES = 64


class CharacterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description
    style: Style | None = None


def _omit_default(schema: dict[str, object]) -> None:
    # Leaving the field out means "unchanged"; null is refused, so the schema shows no null default.
    schema.pop("default", None)


class CharacterUpdate(BaseModel):
    """Any subset of the fields. `name` and `description` may be left out, never null or blank;
    `style` may be null (no style)."""

    model_config = ConfigDict(extra="forbid")

    # The types carry no null, so /openapi.json and `_not_null` below agree (issue 12, defect 12).
    name: Name = Field(default=None, json_schema_extra=_omit_default)
    description: Description = Field(default=None, json_schema_extra=_omit_default)
    style: Style | None = None

    @field_validator("name", "description", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value


class ReferenceNumbers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    numbers: list[ImageNumber] = Field(max_length=MAX_REFERENCES)


class CharacterRead(BaseModel):
    id: int
    name: str
    description: str
    style: str | None
    reference_images: list[int]
    created_at: datetime
    updated_at: datetime


class CharacterList(BaseModel):
    items: list[CharacterRead]
    total: int


class ReferenceSheetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    make_main: bool = Field(default=False, description="the sheet becomes the character's first reference")
    wait: bool = True
