"""A fair release: release modes, draws and their requests, the waitlist, freed places
held off sale, day-before reminders, questions awaiting an answer, and claimed jobs.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30

Datetimes are stored as UTC without a zone (see models.UTCDateTime). SQLite can't add a
table CHECK to an existing table, so the slot's new checks ride on its new columns there.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0014'
down_revision: Union[str, Sequence[str], None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

HELD_CHECK = "held >= 0 AND booked + held <= capacity"
MODE_CHECK = "release_mode IN ('first_come', 'draw')"


def upgrade() -> None:
    op.add_column('schedule_template', sa.Column('release_mode', sa.String(length=16), nullable=True))
    op.add_column('schedule_template', sa.Column('draw_time', sa.Time(), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE slot ADD COLUMN release_mode VARCHAR(16) DEFAULT 'first_come' NOT NULL "
                   f"CONSTRAINT ck_slot_release_mode CHECK ({MODE_CHECK})")
        op.execute("ALTER TABLE slot ADD COLUMN held INTEGER DEFAULT 0 NOT NULL "
                   f"CONSTRAINT ck_slot_held_within_capacity CHECK ({HELD_CHECK})")
    else:
        op.add_column('slot', sa.Column('release_mode', sa.String(length=16), nullable=False,
                                        server_default=sa.text("'first_come'")))
        op.add_column('slot', sa.Column('held', sa.Integer(), nullable=False, server_default=sa.text('0')))
        op.create_check_constraint(op.f('ck_slot_release_mode'), 'slot', MODE_CHECK)
        op.create_check_constraint(op.f('ck_slot_held_within_capacity'), 'slot', HELD_CHECK)
    op.add_column('slot', sa.Column('requests_open_at', sa.DateTime(), nullable=True))
    op.add_column('slot', sa.Column('drawn', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_slot_draw_pending', 'slot', ['department_id', 'release_at'],
                    sqlite_where=sa.text("release_mode = 'draw' AND NOT drawn"),
                    postgresql_where=sa.text("release_mode = 'draw' AND NOT drawn"))
    op.add_column('booking', sa.Column('reminded_at', sa.DateTime(), nullable=True))
    op.add_column('booking', sa.Column('kept_at', sa.DateTime(), nullable=True))
    op.add_column('channel_address', sa.Column('question_until', sa.DateTime(), nullable=True))
    op.add_column('channel_address', sa.Column('throttled_until', sa.DateTime(), nullable=True))
    op.add_column('outbox', sa.Column('channel', sa.String(length=16), nullable=True))

    op.create_table(
        'draw',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('visit_date', sa.Date(), nullable=False),
        sa.Column('opens_at', sa.DateTime(), nullable=False),
        sa.Column('draw_at', sa.DateTime(), nullable=False),
        sa.Column('seed_hash', sa.String(length=64), nullable=False),
        sa.Column('seed_encrypted', sa.Text(), nullable=False),
        sa.Column('seed', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('drawn_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'drawn', 'cancelled')", name=op.f('ck_draw_status')),
        sa.ForeignKeyConstraint(['department_id'], ['department.id'],
                                name=op.f('fk_draw_department_id_department')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_draw')),
        sa.UniqueConstraint('department_id', 'visit_date', name=op.f('uq_draw_department_id')),
    )
    op.create_table(
        'waitlist_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('visit_date', sa.Date(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('address_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('part', sa.String(length=16), nullable=False),
        sa.Column('relation', sa.String(length=16), nullable=False),
        sa.Column('name_encrypted', sa.Text(), nullable=True),
        sa.Column('name_index', sa.String(length=64), nullable=True),
        sa.Column('draw_position', sa.Integer(), nullable=True),
        sa.Column('queue_key', sa.String(length=64), nullable=True),
        sa.Column('joined_at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('booking_id', sa.Integer(), nullable=True),
        sa.Column('left_reason', sa.String(length=32), nullable=True),
        sa.Column('left_at', sa.DateTime(), nullable=True),
        sa.CheckConstraint("part IN ('morning', 'afternoon', 'any')", name=op.f('ck_waitlist_entry_part')),
        sa.CheckConstraint("status IN ('waiting', 'offered', 'booked', 'left')",
                           name=op.f('ck_waitlist_entry_status')),
        sa.ForeignKeyConstraint(['address_id'], ['channel_address.id'],
                                name=op.f('fk_waitlist_entry_address_id_channel_address')),
        sa.ForeignKeyConstraint(['booking_id'], ['booking.id'],
                                name=op.f('fk_waitlist_entry_booking_id_booking')),
        sa.ForeignKeyConstraint(['department_id'], ['department.id'],
                                name=op.f('fk_waitlist_entry_department_id_department')),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'],
                                name=op.f('fk_waitlist_entry_patient_id_patient')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_entry')),
    )
    op.create_index('uq_waitlist_entry_active', 'waitlist_entry',
                    ['department_id', 'visit_date', 'patient_id'], unique=True,
                    sqlite_where=sa.text("status IN ('waiting', 'offered')"),
                    postgresql_where=sa.text("status IN ('waiting', 'offered')"))
    op.create_index('ix_waitlist_entry_queue', 'waitlist_entry',
                    ['department_id', 'visit_date', 'status'])
    op.create_table(
        'draw_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('draw_id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('address_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('part', sa.String(length=16), nullable=False),
        sa.Column('relation', sa.String(length=16), nullable=False),
        sa.Column('name_encrypted', sa.Text(), nullable=True),
        sa.Column('name_index', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('position', sa.Integer(), nullable=True),
        sa.Column('booking_id', sa.Integer(), nullable=True),
        sa.Column('refusal', sa.String(length=40), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint("part IN ('morning', 'afternoon', 'any')", name=op.f('ck_draw_request_part')),
        sa.CheckConstraint("status IN ('requested', 'placed', 'waitlisted', 'refused', 'withdrawn')",
                           name=op.f('ck_draw_request_status')),
        sa.ForeignKeyConstraint(['address_id'], ['channel_address.id'],
                                name=op.f('fk_draw_request_address_id_channel_address')),
        sa.ForeignKeyConstraint(['booking_id'], ['booking.id'], name=op.f('fk_draw_request_booking_id_booking')),
        sa.ForeignKeyConstraint(['draw_id'], ['draw.id'], name=op.f('fk_draw_request_draw_id_draw')),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_draw_request_patient_id_patient')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_draw_request')),
        sa.UniqueConstraint('draw_id', 'patient_id', name=op.f('uq_draw_request_draw_id')),
    )
    op.create_index('ix_draw_request_patient', 'draw_request', ['patient_id'])
    op.create_table(
        'freed_place',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('slot_id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('visit_date', sa.Date(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('freed_at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('release_at', sa.DateTime(), nullable=True),
        sa.Column('entry_id', sa.Integer(), nullable=True),
        sa.Column('offered_at', sa.DateTime(), nullable=True),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('offers_made', sa.Integer(), nullable=False),
        sa.Column('booking_id', sa.Integer(), nullable=True),
        sa.Column('resolved_at', sa.DateTime(), nullable=True),
        sa.CheckConstraint("status IN ('held', 'offered', 'taken', 'released', 'dropped')",
                           name=op.f('ck_freed_place_status')),
        sa.ForeignKeyConstraint(['booking_id'], ['booking.id'], name=op.f('fk_freed_place_booking_id_booking')),
        sa.ForeignKeyConstraint(['department_id'], ['department.id'],
                                name=op.f('fk_freed_place_department_id_department')),
        sa.ForeignKeyConstraint(['entry_id'], ['waitlist_entry.id'],
                                name=op.f('fk_freed_place_entry_id_waitlist_entry')),
        sa.ForeignKeyConstraint(['slot_id'], ['slot.id'], name=op.f('fk_freed_place_slot_id_slot')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_freed_place')),
    )
    op.create_index('ix_freed_place_status', 'freed_place', ['status', 'expires_at'])
    op.create_index(op.f('ix_freed_place_slot_id'), 'freed_place', ['slot_id'])
    op.create_table(
        'job_run',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('claimed_by', sa.String(length=64), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=False),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_job_run')),
    )


def downgrade() -> None:
    op.drop_table('job_run')
    op.drop_table('freed_place')
    op.drop_table('draw_request')
    op.drop_table('waitlist_entry')
    op.drop_table('draw')
    op.drop_index('ix_slot_draw_pending', table_name='slot')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('ck_slot_held_within_capacity'), 'slot', type_='check')
        op.drop_constraint(op.f('ck_slot_release_mode'), 'slot', type_='check')
    for table, column in (('outbox', 'channel'), ('channel_address', 'question_until'),
                          ('channel_address', 'throttled_until'),
                          ('booking', 'kept_at'), ('booking', 'reminded_at'), ('slot', 'drawn'),
                          ('slot', 'requests_open_at'), ('slot', 'held'), ('slot', 'release_mode'),
                          ('schedule_template', 'draw_time'), ('schedule_template', 'release_mode')):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
