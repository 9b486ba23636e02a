"""Fewer pages per booking: drop two indexes that no query reads.

Every index a booking touches is one more page in its commit (bench/bookings.py
--wal-pages). `audit_event.hash` was unique only as a safety net: `audit verify` checks
the chain itself, and a keyed hash can't be chosen to collide. `patient_link.patient_id`
served no query (links are always looked up by address first).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_event_hash'), type_='unique')
    with op.batch_alter_table('patient_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_link_patient_id'))


def downgrade() -> None:
    with op.batch_alter_table('patient_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_link_patient_id'), ['patient_id'], unique=False)
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_audit_event_hash'), ['hash'])
