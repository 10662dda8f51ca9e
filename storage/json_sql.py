"""Database-specific SQL over JSON columns: kept in storage/ so domains stay dialect-free."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import Session


def json_list_has_id(session: Session, column: str, value: int) -> Any:
    """SQL: the JSON list in `table.column` holds an object whose "id" is `value`.

    `column` is a trusted, dotted column name from our own code, never user input.
    """
    if session.get_bind().dialect.name == "postgresql":
        return text(f"{column}::jsonb @> jsonb_build_array(jsonb_build_object('id', :cid))").bindparams(
            cid=value
        )
    return text(
        f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_extract(value, '$.id') = :cid)"
    ).bindparams(cid=value)
