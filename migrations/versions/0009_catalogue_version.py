"""The catalogue's version: every change to a hospital or a department bumps it, so
each app instance knows when its cached copy of the departments is out of date.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('hospital', sa.Column('catalogue_version', sa.Integer(), nullable=False,
                                        server_default='0'))


def downgrade() -> None:
    op.execute("ALTER TABLE hospital DROP COLUMN catalogue_version")
