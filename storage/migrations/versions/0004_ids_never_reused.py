"""character ids are never reused

Revision ID: 0004
Revises: 0005
Create Date: 2026-11-30 23:00:00.000000

SQLite hands a deleted row's id to the next insert unless the table is AUTOINCREMENT, so
deleting the newest character let the next one take its id, and old generations (which name
characters by id) then named the wrong one. SQLite cannot add AUTOINCREMENT to a table, so the
table is recreated (batch mode copies every row); `storage.db.migrate` turns foreign keys off
around migrations, so dropping the old table does not cascade into the reference lists.

The sequence starts above every id a character ever had that is still on record: the highest
row left, and every id a stored generation names.

It runs after 0005 (image tags), which reached main first: a database already at 0005 gets it next.

PostgreSQL (and other databases) take ids from a sequence that never goes back: nothing to do.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _highest_named_id(bind: sa.Connection) -> int:
    highest = bind.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM character")).scalar_one()
    for (characters,) in bind.execute(sa.text("SELECT characters FROM generation")):
        named = json.loads(characters) if isinstance(characters, str) else characters
        for entry in named or []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), int):
                highest = max(highest, entry["id"])
    return int(highest)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # Rows that point at characters, kept aside: when this runs with foreign keys on (alembic
    # called directly, not through storage.db.migrate), dropping the old table cascades.
    referring = [
        name
        for (name,) in bind.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        if any(row[2] == "character" for row in bind.execute(sa.text(f'PRAGMA foreign_key_list("{name}")')))
    ]
    for name in referring:
        bind.execute(sa.text(f'CREATE TEMP TABLE "keep_{name}" AS SELECT * FROM "{name}"'))
    with op.batch_alter_table("character", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass
    for name in referring:
        bind.execute(sa.text(f'INSERT OR IGNORE INTO "{name}" SELECT * FROM "keep_{name}"'))
        bind.execute(sa.text(f'DROP TABLE "keep_{name}"'))
    highest = _highest_named_id(bind)
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'character'"))
    if highest:
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('character', :seq)"), {"seq": highest}
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("character", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
