"""Seal the audit head, so that deleting the tail of the chain is noticed even when the
head row is rewritten to match.

The seal is an HMAC under the audit key, which stays outside the database, so this
migration can't compute it: the column starts empty, and the first append seals the
head (recording `audit.sealed` in the chain). See assistant/booking/audit.py.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seal', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('seal')
