"""quotas and cost

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 08:44:57.790965
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('estimated_cost_usd', sa.Float(), nullable=True))

    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.add_column(sa.Column('daily_image_quota', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.drop_column('daily_image_quota')

    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_column('estimated_cost_usd')

