"""generation jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 08:38:18.939751
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('generation',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('scene', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('prompt', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('backend', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('characters', sa.JSON(), nullable=False),
    sa.Column('reference_numbers', sa.JSON(), nullable=False),
    sa.Column('response_format', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('request_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('image_numbers', sa.JSON(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('usage', sa.JSON(), nullable=True),
    sa.Column('revised_prompts', sa.JSON(), nullable=True),
    sa.Column('error_code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('error_message', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('error_field', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('error_status', sa.Integer(), nullable=True),
    sa.Column('error_retry_after', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workspace_id', 'idempotency_key', name='uq_generation_idempotency')
    )
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.create_index('ix_generation_status', ['status'], unique=False)
        batch_op.create_index('ix_generation_workspace_created', ['workspace_id', 'created_at'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_index('ix_generation_workspace_created')
        batch_op.drop_index('ix_generation_status')

    op.drop_table('generation')
    
