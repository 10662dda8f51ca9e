"""exports: print-ready exports of a book, their file keys and warnings (issue 10)

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-30 23:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op


revision: str = '0009'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('book_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('format', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('profile', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('paper', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('cover_image', sa.Integer(), nullable=True),
    sa.Column('back_image', sa.Integer(), nullable=True),
    sa.Column('folder', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=True),
    sa.Column('cover_bytes', sa.Integer(), nullable=True),
    sa.Column('file_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('cover_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('spine_in', sa.Float(), nullable=True),
    sa.Column('previews', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['book_id'], ['book.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.create_index('ix_export_book_created', ['book_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.drop_index('ix_export_book_created')
    op.drop_table('export')
