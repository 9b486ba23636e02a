"""Slower speech on the phone, remembered for the number that asked for it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('channel_address', sa.Column('slow_speech', sa.Boolean(), nullable=False,
                                               server_default=sa.false()))


def downgrade() -> None:
    op.execute("ALTER TABLE channel_address DROP COLUMN slow_speech")
