"""Rights follow the booking; identities keep no plain-text parts; keys are checked.

- patient: the birth date is encrypted, and the last four ID characters and the name
  are gone (masks and tails come from the decrypted number; names live with each
  booking and link, since anyone may type one). Generic identities carry a document
  type and issuing country, and whether a checksum verified them.
- booking: the name typed for it (encrypted and blind-indexed), whether it differs from
  earlier bookings of the identity, and whom a cancellation or no-show counted against.
- patient_link: the name that address gave, and the desk's verification of a 'self'
  claim.
- suspension: of an identity or of an address.
- outbox: notices to send after commit. key_check: the keys' check values.

Moving data needs the keys (birth dates are encrypted here), so `assistant db upgrade`
passes its keyring in `config.attributes["keyring"]`. A database with patients can't be
migrated without it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""
from datetime import date
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import context, op


revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _keyring(bind):
    keyring = context.config.attributes.get("keyring")
    has_patients = bind.execute(sa.text("SELECT 1 FROM patient LIMIT 1")).first() is not None
    if keyring is None and has_patients:
        raise RuntimeError("migration 0005 re-encrypts patients' data: run it with "
                           "`assistant db upgrade`, which holds the keys")
    return keyring


def upgrade() -> None:
    bind = op.get_bind()
    keyring = _keyring(bind)
    # `patient` is changed in place, never rebuilt: bookings, links and suspensions point
    # at it, and SQLite's rebuild would drop it under them (foreign_keys is on).
    op.add_column('patient', sa.Column('id_document', sa.String(length=32), nullable=True))
    op.add_column('patient', sa.Column('id_country', sa.String(length=2), nullable=True))
    op.add_column('patient', sa.Column('checksum_verified', sa.Boolean(), nullable=False,
                                       server_default=sa.true()))
    op.add_column('patient', sa.Column('birth_date_encrypted', sa.Text(), nullable=True))
    with op.batch_alter_table('patient_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('name_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('verified_by', sa.String(length=64), nullable=True))
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('name_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('name_differs', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('counted_against', sa.String(length=16), nullable=True))
        batch_op.create_check_constraint(
            'counted_against', "counted_against IN ('identity', 'address')")
    with op.batch_alter_table('suspension', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address_id', sa.Integer(), nullable=True))
        batch_op.alter_column('patient_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_suspension_address_id_channel_address'),
                                    'channel_address', ['address_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_suspension_address_id'), ['address_id'], unique=False)
        batch_op.create_check_constraint('one_subject', "(patient_id IS NULL) <> (address_id IS NULL)")
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f('ck_outbox_status')),
    sa.ForeignKeyConstraint(['address_id'], ['channel_address.id'], name=op.f('fk_outbox_address_id_channel_address')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_outbox_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_status_id', ['status', 'id'], unique=False)
    op.create_table('key_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('blind_index_check', sa.String(length=64), nullable=False),
    sa.Column('encryption_check', sa.Text(), nullable=False),
    sa.Column('rotation', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_key_check_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_key_check'))
    )

    if keyring is not None:
        _move_identity_data(bind, keyring)

    for column in ('birth_date', 'name_encrypted', 'name_index', 'id_last4'):
        op.execute(f"ALTER TABLE patient DROP COLUMN {column}")


def _move_identity_data(bind, keyring) -> None:
    patients = bind.execute(sa.text(
        "SELECT id, id_kind, birth_date, name_encrypted, name_index FROM patient")).all()
    for patient_id, kind, born, name_encrypted, name_index in patients:
        if isinstance(born, str):
            born = date.fromisoformat(born)
        bind.execute(sa.text(
            "UPDATE patient SET birth_date_encrypted = :born, checksum_verified = :verified "
            "WHERE id = :id"), {"id": patient_id, "verified": kind == "cn_resident_id",
                                "born": keyring.encrypt(born.isoformat()) if born else None})
        names = {"id": patient_id, "name": name_encrypted, "index": name_index}
        bind.execute(sa.text("UPDATE booking SET name_encrypted = :name, name_index = :index "
                             "WHERE patient_id = :id"), names)
        bind.execute(sa.text("UPDATE patient_link SET name_encrypted = :name, name_index = :index "
                             "WHERE patient_id = :id"), names)


def downgrade() -> None:
    bind = op.get_bind()
    keyring = _keyring(bind)
    op.add_column('patient', sa.Column('id_last4', sa.String(length=4), nullable=False, server_default=''))
    op.add_column('patient', sa.Column('name_index', sa.String(length=64), nullable=False, server_default=''))
    op.add_column('patient', sa.Column('name_encrypted', sa.Text(), nullable=False, server_default=''))
    op.add_column('patient', sa.Column('birth_date', sa.Date(), nullable=True))
    if keyring is not None:
        rows = bind.execute(sa.text("SELECT id, id_encrypted, birth_date_encrypted FROM patient")).all()
        for patient_id, id_encrypted, born in rows:
            name = bind.execute(sa.text(
                "SELECT name_encrypted, name_index FROM booking WHERE patient_id = :id "
                "AND name_encrypted IS NOT NULL ORDER BY id LIMIT 1"), {"id": patient_id}).first()
            born_text = keyring.decrypt(born) if born else None
            bind.execute(sa.text(
                "UPDATE patient SET id_last4 = :last4, birth_date = :born, name_encrypted = :name, "
                "name_index = :index WHERE id = :id"), {
                    "id": patient_id, "last4": (keyring.decrypt(id_encrypted) or "")[-4:],
                    "born": date.fromisoformat(born_text) if born_text else None,
                    "name": name[0] if name else "", "index": name[1] if name else ""})
    op.drop_table('key_check')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_id')
    op.drop_table('outbox')
    op.execute("DELETE FROM suspension WHERE patient_id IS NULL")
    with op.batch_alter_table('suspension', schema=None) as batch_op:
        batch_op.drop_constraint('one_subject', type_='check')
        batch_op.drop_index(batch_op.f('ix_suspension_address_id'))
        batch_op.drop_constraint(batch_op.f('fk_suspension_address_id_channel_address'), type_='foreignkey')
        batch_op.alter_column('patient_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('address_id')
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.drop_constraint('counted_against', type_='check')
        batch_op.drop_column('counted_against')
        batch_op.drop_column('name_differs')
        batch_op.drop_column('name_index')
        batch_op.drop_column('name_encrypted')
    with op.batch_alter_table('patient_link', schema=None) as batch_op:
        batch_op.drop_column('verified_by')
        batch_op.drop_column('verified_at')
        batch_op.drop_column('name_index')
        batch_op.drop_column('name_encrypted')
    for column in ('birth_date_encrypted', 'checksum_verified', 'id_country', 'id_document'):
        op.execute(f"ALTER TABLE patient DROP COLUMN {column}")
