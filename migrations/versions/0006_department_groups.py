"""Department groups: a large hospital's menu first offers areas (medicine, surgery…).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('hospital', sa.Column('department_groups', sa.JSON(), nullable=True))
    op.add_column('department', sa.Column('group_code', sa.String(length=64), nullable=True))


def downgrade() -> None:
    # In place (never rebuilt): departments are referenced by slots and bookings.
    op.execute("ALTER TABLE department DROP COLUMN group_code")
    op.execute("ALTER TABLE hospital DROP COLUMN department_groups")
