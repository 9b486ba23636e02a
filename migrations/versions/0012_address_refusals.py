"""Refusals counted per phone or chat and clock hour, for the staff's flagged activity.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

Datetimes are stored as UTC without a zone (see models.UTCDateTime).
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'address_refusal',
        sa.Column('address_id', sa.Integer(), nullable=False),
        sa.Column('hour', sa.DateTime(), nullable=False),
        sa.Column('refusals', sa.Integer(), nullable=False),
        sa.Column('last_rule', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['address_id'], ['channel_address.id'],
                                name=op.f('fk_address_refusal_address_id_channel_address')),
        sa.PrimaryKeyConstraint('address_id', 'hour', name=op.f('pk_address_refusal')),
    )


def downgrade() -> None:
    op.drop_table('address_refusal')
