"""Initial schema: hospitals, schedules, slots, patients, bookings, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Datetimes are stored as UTC without a zone (see models.UTCDateTime).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=100), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_event_hash'))
    )
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_event_id', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_head_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    # The audit chain starts from a genesis hash; appends lock this one row.
    op.execute("INSERT INTO audit_head (id, last_event_id, last_hash, event_count) "
               "VALUES (1, 0, '" + "0" * 64 + "', 0)")
    op.create_table('channel_address',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('address_index', sa.String(length=64), nullable=False),
    sa.Column('address_encrypted', sa.Text(), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('opted_out_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('phone', 'telegram', 'console')", name=op.f('ck_channel_address_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_address')),
    sa.UniqueConstraint('kind', 'address_index', name=op.f('uq_channel_address_kind'))
    )
    op.create_table('hospital',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('desk_phone', sa.String(length=32), nullable=True),
    sa.Column('desk_hours', sa.JSON(), nullable=True),
    sa.Column('policy_overrides', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hospital')),
    sa.UniqueConstraint('code', name=op.f('uq_hospital_code'))
    )
    op.create_table('patient',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('id_kind', sa.String(length=32), nullable=False),
    sa.Column('id_index', sa.String(length=64), nullable=False),
    sa.Column('id_encrypted', sa.Text(), nullable=False),
    sa.Column('id_last4', sa.String(length=4), nullable=False),
    sa.Column('name_index', sa.String(length=64), nullable=False),
    sa.Column('name_encrypted', sa.Text(), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient')),
    sa.UniqueConstraint('id_index', name=op.f('uq_patient_id_index'))
    )
    op.create_table('processed_event',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', sa.DateTime(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_processed_event'))
    )
    op.create_table('department',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('policy_overrides', sa.JSON(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], name=op.f('fk_department_hospital_id_hospital')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_department')),
    sa.UniqueConstraint('hospital_id', 'code', name=op.f('uq_department_hospital_id'))
    )
    op.create_table('patient_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_via', sa.String(length=16), nullable=False),
    sa.CheckConstraint("relation IN ('self', 'family')", name=op.f('ck_patient_link_relation')),
    sa.ForeignKeyConstraint(['address_id'], ['channel_address.id'], name=op.f('fk_patient_link_address_id_channel_address')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_patient_link_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_link')),
    sa.UniqueConstraint('address_id', 'patient_id', name=op.f('uq_patient_link_address_id'))
    )
    with op.batch_alter_table('patient_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_link_patient_id'), ['patient_id'], unique=False)

    op.create_table('suspension',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('lifted_at', sa.DateTime(), nullable=True),
    sa.Column('lifted_by', sa.String(length=64), nullable=True),
    sa.Column('lift_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_suspension_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suspension'))
    )
    with op.batch_alter_table('suspension', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suspension_patient_id'), ['patient_id'], unique=False)

    op.create_table('doctor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_doctor_department_id_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_doctor')),
    sa.UniqueConstraint('department_id', 'code', name=op.f('uq_doctor_department_id'))
    )
    op.create_table('schedule_exception',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=True),
    sa.Column('end_time', sa.Time(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.CheckConstraint("kind IN ('closed', 'hours')", name=op.f('ck_schedule_exception_kind')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_schedule_exception_department_id_department')),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], name=op.f('fk_schedule_exception_hospital_id_hospital')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_exception'))
    )
    op.create_table('schedule_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('doctor_id', sa.Integer(), nullable=True),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('slot_minutes', sa.Integer(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('release_days_ahead', sa.Integer(), nullable=True),
    sa.Column('release_time', sa.Time(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint('capacity >= 0', name=op.f('ck_schedule_template_capacity')),
    sa.CheckConstraint('end_time > start_time', name=op.f('ck_schedule_template_hours')),
    sa.CheckConstraint('slot_minutes > 0', name=op.f('ck_schedule_template_slot_minutes')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_schedule_template_weekday')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_schedule_template_department_id_department')),
    sa.ForeignKeyConstraint(['doctor_id'], ['doctor.id'], name=op.f('fk_schedule_template_doctor_id_doctor')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_template'))
    )
    op.create_table('slot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('doctor_id', sa.Integer(), nullable=True),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('booked', sa.Integer(), nullable=False),
    sa.Column('release_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('booked >= 0 AND booked <= capacity', name=op.f('ck_slot_booked_within_capacity')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_slot_times')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_slot_department_id_department')),
    sa.ForeignKeyConstraint(['doctor_id'], ['doctor.id'], name=op.f('fk_slot_doctor_id_doctor')),
    sa.ForeignKeyConstraint(['template_id'], ['schedule_template.id'], name=op.f('fk_slot_template_id_schedule_template')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slot')),
    sa.UniqueConstraint('template_id', 'starts_at', name=op.f('uq_slot_template_id'))
    )
    with op.batch_alter_table('slot', schema=None) as batch_op:
        batch_op.create_index('ix_slot_department_day', ['department_id', 'visit_date'], unique=False)

    op.create_table('booking',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('slot_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('booked_by_address_id', sa.Integer(), nullable=True),
    sa.Column('booked_by_staff', sa.String(length=64), nullable=True),
    sa.Column('rescheduled_from_id', sa.Integer(), nullable=True),
    sa.Column('cancel_reason', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('checked_in_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('booked', 'cancelled', 'checked_in', 'no_show')", name=op.f('ck_booking_status')),
    sa.ForeignKeyConstraint(['booked_by_address_id'], ['channel_address.id'], name=op.f('fk_booking_booked_by_address_id_channel_address')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_booking_department_id_department')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_booking_patient_id_patient')),
    sa.ForeignKeyConstraint(['rescheduled_from_id'], ['booking.id'], name=op.f('fk_booking_rescheduled_from_id_booking')),
    sa.ForeignKeyConstraint(['slot_id'], ['slot.id'], name=op.f('fk_booking_slot_id_slot')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking')),
    sa.UniqueConstraint('code', name=op.f('uq_booking_code'))
    )
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.create_index('ix_booking_patient_day', ['patient_id', 'visit_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_booking_slot_id'), ['slot_id'], unique=False)
        batch_op.create_index('uq_booking_active_slot_patient', ['slot_id', 'patient_id'], unique=True, sqlite_where=sa.text("status <> 'cancelled'"), postgresql_where=sa.text("status <> 'cancelled'"))



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.drop_index('uq_booking_active_slot_patient', sqlite_where=sa.text("status <> 'cancelled'"), postgresql_where=sa.text("status <> 'cancelled'"))
        batch_op.drop_index(batch_op.f('ix_booking_slot_id'))
        batch_op.drop_index('ix_booking_patient_day')

    op.drop_table('booking')
    with op.batch_alter_table('slot', schema=None) as batch_op:
        batch_op.drop_index('ix_slot_department_day')

    op.drop_table('slot')
    op.drop_table('schedule_template')
    op.drop_table('schedule_exception')
    op.drop_table('doctor')
    with op.batch_alter_table('suspension', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suspension_patient_id'))

    op.drop_table('suspension')
    with op.batch_alter_table('patient_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_link_patient_id'))

    op.drop_table('patient_link')
    op.drop_table('department')
    op.drop_table('processed_event')
    op.drop_table('patient')
    op.drop_table('hospital')
    op.drop_table('channel_address')
    op.drop_table('audit_head')
    op.drop_table('audit_event')
