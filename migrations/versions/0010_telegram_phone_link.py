"""A Telegram chat that shared its own phone number speaks for that phone's address.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # A plain column, no foreign key: SQLite can't add a constraint to a table, nor drop
    # a column that one names. phone_links.py sets it only to an address it has locked.
    op.add_column('channel_address', sa.Column('phone_address_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE channel_address DROP COLUMN phone_address_id")
