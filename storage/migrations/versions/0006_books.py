"""books: books and their ordered pages; book, page, continuity and reference-sheet links on generation jobs (issue 9)

Revision ID: 0006
Revises: 0007
Create Date: 2026-11-30 22:45:08.921686
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op


revision: str = '0006'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('book',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('trim', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('style', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('style_images', sa.JSON(), nullable=False),
    sa.Column('cast', sa.JSON(), nullable=False),
    sa.Column('chain', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('text_position', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('quality', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('book', schema=None) as batch_op:
        batch_op.create_index('ix_book_workspace_created', ['workspace_id', 'created_at'], unique=False)

    op.create_table('book_page',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('book_id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
    sa.Column('scene', sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=True),
    sa.Column('characters', sa.JSON(), nullable=False),
    sa.Column('reference_images', sa.JSON(), nullable=False),
    sa.Column('image', sa.Integer(), nullable=True),
    sa.Column('candidates', sa.JSON(), nullable=False),
    sa.Column('generation_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['book.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('book_page', schema=None) as batch_op:
        batch_op.create_index('ix_book_page_book_position', ['book_id', 'position'], unique=False)

    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('book_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('page_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('waiting_on', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('main_reference_of', sa.Integer(), nullable=True))
        batch_op.create_index('ix_generation_book', ['book_id'], unique=False)
        batch_op.create_index('ix_generation_waiting_on', ['waiting_on'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_index('ix_generation_waiting_on')
        batch_op.drop_index('ix_generation_book')
        batch_op.drop_column('main_reference_of')
        batch_op.drop_column('waiting_on')
        batch_op.drop_column('page_id')
        batch_op.drop_column('book_id')

    with op.batch_alter_table('book_page', schema=None) as batch_op:
        batch_op.drop_index('ix_book_page_book_position')

    op.drop_table('book_page')
    with op.batch_alter_table('book', schema=None) as batch_op:
        batch_op.drop_index('ix_book_workspace_created')

    op.drop_table('book')
