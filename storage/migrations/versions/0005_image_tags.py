"""image tags: which characters a picture shows, apart from their reference lists

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30 22:55:00

Generated pictures made before this revision are tagged with their job's characters, so
filters and the pages find old scenes too.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'image_character',
        sa.Column('image_id', sa.Integer(), nullable=False),
        sa.Column('character_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['character_id'], ['character.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['image_id'], ['image.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('image_id', 'character_id'),
    )
    with op.batch_alter_table('image_character', schema=None) as batch_op:
        batch_op.create_index('ix_image_character_character', ['character_id'], unique=False)
    _tag_old_outputs()


def _tag_old_outputs() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT image.id, generation.characters FROM image"
            " JOIN generation ON generation.id = image.generation_id"
        )
    ).all()
    known = {row[0] for row in bind.execute(sa.text("SELECT id FROM character")).all()}
    pairs = set()
    for image_id, characters in rows:
        listed = json.loads(characters) if isinstance(characters, str) else characters
        for entry in listed or []:
            if isinstance(entry, dict) and entry.get('id') in known:
                pairs.add((image_id, entry['id']))
    if pairs:
        bind.execute(
            sa.text("INSERT INTO image_character (image_id, character_id) VALUES (:i, :c)"),
            [{"i": i, "c": c} for i, c in sorted(pairs)],
        )


def downgrade() -> None:
    with op.batch_alter_table('image_character', schema=None) as batch_op:
        batch_op.drop_index('ix_image_character_character')
    op.drop_table('image_character')
