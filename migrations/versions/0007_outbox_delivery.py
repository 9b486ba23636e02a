"""Outbox delivery: claims, retries with backoff, and the provider's delivery record.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = (
    ('next_attempt_at', sa.DateTime()),
    ('claimed_by', sa.String(length=64)),
    ('claimed_until', sa.DateTime()),
    ('provider_ref', sa.String(length=64)),
    ('delivery_status', sa.String(length=32)),
    ('last_error', sa.String(length=200)),
)


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column('outbox', sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.execute(f"ALTER TABLE outbox DROP COLUMN {name}")
