"""Staff accounts for /admin, and the failed-login counters that throttle guessing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

Datetimes are stored as UTC without a zone (see models.UTCDateTime).
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'staff_user',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_login_at', sa.DateTime(), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'clerk')", name=op.f('ck_staff_user_role')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_user')),
        sa.UniqueConstraint('username', name=op.f('uq_staff_user_username')),
    )
    op.create_table(
        'login_throttle',
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle')),
    )


def downgrade() -> None:
    op.drop_table('login_throttle')
    op.drop_table('staff_user')
