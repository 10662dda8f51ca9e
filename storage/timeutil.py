"""One clock for rows: every timestamp is timezone-aware UTC, also after a trip through SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(value: datetime | None) -> str | None:
    """`2026-11-30T23:10:00Z`: the one timestamp format in answers, the same as pydantic writes."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite drops the zone; this puts UTC back on read so API answers never mix naive times."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def timestamp_column(nullable: bool = False) -> Column[Any]:
    """A fresh column (SQLAlchemy needs one Column object per table)."""
    return Column(UTCDateTime(), nullable=nullable)
