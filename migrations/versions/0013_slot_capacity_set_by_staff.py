"""A slot's capacity set by hand on the staff pages: slot generation keeps it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('slot', sa.Column('capacity_set_by_staff', sa.Boolean(), nullable=False,
                                    server_default=sa.false()))


def downgrade() -> None:
    op.execute("ALTER TABLE slot DROP COLUMN capacity_set_by_staff")
