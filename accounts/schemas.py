"""Response shape of `GET /usage` (docs/API.md, section Usage).

`accounts.usage.report_to_api` builds the answer as a dict; this model describes it in
/openapi.json. Each row carries the one grouping field that `group_by` asks for.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class UsageSums(BaseModel):
    generations: int
    images: int
    input_tokens: int
    output_tokens: int
    text_tokens: int
    image_tokens: int
    estimated_cost_usd: float


class UsageRow(UsageSums):
    day: str | None = Field(default=None, description="with group_by=day: YYYY-MM-DD (UTC)")
    model: str | None = Field(default=None, description="with group_by=model")
    key_id: int | None = Field(default=None, description="with group_by=key")
    key_name: str | None = Field(default=None, description="with group_by=key")


class UsageRead(BaseModel):
    from_: str = Field(alias="from", description="first day, YYYY-MM-DD (UTC)")
    to: str = Field(description="last day, included")
    group_by: Literal["day", "model", "key"]
    rows: list[UsageRow]
    total: UsageSums
