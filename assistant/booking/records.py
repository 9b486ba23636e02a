"""Finding, creating and locking the rows use cases work on, and shaping them for callers.

Rule: the building blocks the service layer and its queries share. Lookups go by blind
index, never by a plain ID number, name or phone number. Locks are row locks taken by an
UPDATE (or a locking upsert), in the order the use cases rely on: channel address, then
patient, then slots. Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assistant.booking import audit, driver, identity, policy as rules, results as r, statements as sql
from assistant.booking.identity import IdentityRefusal
from assistant.booking.inputs import AddressInput, IdentityInput, Requester, ServiceContext, Staff
from assistant.booking.models import (
    BOOKED,
    Booking,
    ChannelAddress,
    Department,
    Hospital,
    Patient,
    PatientLink,
    Slot,
)
from assistant.config import Policy


@dataclass(frozen=True)
class LockedPatient:
    """A patient whose row lock this transaction holds."""

    id: int
    id_last4: str
    # Created by this transaction, so it has no bookings, links or suspensions yet.
    is_new: bool = False


@dataclass(frozen=True)
class PreparedAddress:
    """A channel address checked, blinded and encrypted, ready to create or lock."""

    kind: str
    index: str
    encrypted: str

    @property
    def actor(self) -> str:
        """How the audit trail names the address."""
        return f"address:{self.kind}:{self.index[:12]}"


def prepare_address(ctx: ServiceContext, address: AddressInput) -> PreparedAddress | r.Refusal:
    value = normalised_address(ctx, address)
    if isinstance(value, r.Refusal):
        return value
    return PreparedAddress(address.kind, address_index(ctx, address.kind, value),
                           ctx.keyring.encrypt(value))


def lock_address_row(db: driver.Cursor, address: PreparedAddress, now: datetime) -> driver.Rows:
    """Create or lock the address row; one row: its id."""
    return db.run(sql.LOCK_ADDRESS, {"kind": address.kind, "address_index": address.index,
                                     "address_encrypted": address.encrypted, "now": now})


@dataclass(frozen=True)
class PreparedIdentity:
    """An identity checked, blinded and encrypted, ready to create or lock its patient."""

    id_kind: str
    id_index: str
    id_encrypted: str
    id_last4: str
    name_index: str
    name_encrypted: str
    birth_date: date | None


def prepare_identity(ctx: ServiceContext, given: IdentityInput, today: date) -> PreparedIdentity | r.Refusal:
    valid = validated_identity(ctx, given, today)
    if isinstance(valid, r.Refusal):
        return valid
    number, name, birth_date = valid
    return PreparedIdentity(
        id_kind=number.kind, id_index=ctx.keyring.blind_index("id:" + number.kind, number.value),
        id_encrypted=ctx.keyring.encrypt(number.value), id_last4=number.value[-4:],
        name_index=ctx.keyring.blind_index("name", identity.name_for_index(name)),
        name_encrypted=ctx.keyring.encrypt(name), birth_date=birth_date)


def lock_patient_row(db: driver.Cursor, given: PreparedIdentity, now: datetime) -> driver.Rows:
    """Create or lock the patient; read the row with `locked_patient`."""
    return db.run(sql.LOCK_PATIENT, {
        "id_kind": given.id_kind, "id_index": given.id_index, "id_encrypted": given.id_encrypted,
        "id_last4": given.id_last4, "name_index": given.name_index,
        "name_encrypted": given.name_encrypted, "birth_date": given.birth_date, "now": now})


def locked_patient(given: PreparedIdentity, row) -> LockedPatient | r.Refusal:
    """A known ID number with another name or birth date is how a bought ticket would be
    used, so it is refused."""
    if row.name_index != given.name_index:
        return r.IdentityMismatch()
    if given.birth_date is not None and row.birth_date is not None and row.birth_date != given.birth_date:
        return r.IdentityMismatch()
    return LockedPatient(row.id, row.id_last4, is_new=row.version == 0)


def validated_identity(ctx: ServiceContext, given: IdentityInput, today: date):
    if given.kind not in ctx.settings.identity.kinds:
        return r.InvalidIdentity(field="id_number", reason="unknown_kind")
    number = identity.validate_id_number(
        given.kind, given.number, generic_pattern=ctx.settings.identity.generic_pattern,
        stated_birth_date=given.birth_date, today=today,
    )
    if isinstance(number, IdentityRefusal):
        return r.InvalidIdentity(field=number.field, reason=number.reason)
    name = identity.validate_name(given.name)
    if isinstance(name, IdentityRefusal):
        return r.InvalidIdentity(field=name.field, reason=name.reason)
    birth_date = given.birth_date or number.birth_date
    if birth_date is not None:
        checked = identity.validate_birth_date(birth_date, today)
        if isinstance(checked, IdentityRefusal):
            return r.InvalidIdentity(field=checked.field, reason=checked.reason)
    return number, name, birth_date


def lock_patient(session: Session, patient_id: int) -> Patient:
    """Take the patient's row lock (an UPDATE) before anything is counted."""
    session.execute(
        update(Patient).where(Patient.id == patient_id).values(version=Patient.version + 1)
    )
    patient = session.get(Patient, patient_id, populate_existing=True)
    return patient


def find_patient(ctx: ServiceContext, session: Session, given: IdentityInput) -> Patient | None | r.Refusal:
    number = identity.validate_id_number(
        given.kind, given.number, generic_pattern=ctx.settings.identity.generic_pattern
    )
    if isinstance(number, IdentityRefusal):
        return r.InvalidIdentity(field=number.field, reason=number.reason)
    id_index = ctx.keyring.blind_index("id:" + number.kind, number.value)
    return session.execute(select(Patient).where(Patient.id_index == id_index)).scalar_one_or_none()


def normalised_address(ctx: ServiceContext, address: AddressInput) -> str | r.Refusal:
    if address.kind == "phone":
        value = identity.normalise_phone(address.value, ctx.settings.default_phone_region)
        if isinstance(value, IdentityRefusal):
            return r.InvalidIdentity(field=value.field, reason=value.reason)
        return value
    if address.kind == "telegram":
        value = (address.value or "").strip()
        if not value.lstrip("-").isdigit():
            return r.InvalidIdentity(field="address", reason="invalid")
        return str(int(value))
    if address.kind == "console":
        value = (address.value or "").strip()
        return value if value else r.InvalidIdentity(field="address", reason="empty")
    return r.InvalidIdentity(field="address", reason="unknown_kind")


def address_index(ctx: ServiceContext, kind: str, value: str) -> str:
    return ctx.keyring.blind_index("address:" + kind, value)


def find_address(ctx: ServiceContext, session: Session, address: AddressInput) -> ChannelAddress | None:
    value = normalised_address(ctx, address)
    if isinstance(value, r.Refusal):
        return None
    return session.execute(
        select(ChannelAddress).where(
            ChannelAddress.kind == address.kind,
            ChannelAddress.address_index == address_index(ctx, address.kind, value),
        )
    ).scalar_one_or_none()


def lock_address(ctx: ServiceContext, session: Session, address: AddressInput,
                  now: datetime) -> ChannelAddress | r.Refusal:
    prepared = prepare_address(ctx, address)
    if isinstance(prepared, r.Refusal):
        return prepared
    address_id = lock_address_row(driver.Cursor(session.connection()), prepared, now).scalar()
    return session.get(ChannelAddress, address_id, populate_existing=True)


def is_linked(session: Session, address_id: int, patient_id: int) -> bool:
    return session.execute(
        select(PatientLink.id).where(
            PatientLink.address_id == address_id, PatientLink.patient_id == patient_id)
    ).first() is not None


def authorised_booking(ctx: ServiceContext, session: Session, code: str,
                        requester: Requester) -> tuple[Booking, Patient] | r.Refusal:
    booking = session.execute(
        select(Booking).where(Booking.code == clean_code(code))
    ).scalar_one_or_none()
    if booking is None:
        return r.BookingNotFound()
    if isinstance(requester, AddressInput):
        address = find_address(ctx, session, requester)
        allowed = address is not None and is_linked(session, address.id, booking.patient_id)
    elif isinstance(requester, IdentityInput):
        patient = session.get(Patient, booking.patient_id)
        allowed = id_number_matches(ctx, patient, requester.number, requester.kind)
    else:
        allowed = isinstance(requester, Staff)
    if not allowed:
        return r.NotPermitted()
    patient = lock_patient(session, booking.patient_id)
    session.refresh(booking)  # re-read under the lock: a racing cancel may have won
    return booking, patient


def id_number_matches(ctx: ServiceContext, patient: Patient, raw: str, kind: str | None = None) -> bool:
    number = identity.validate_id_number(
        kind or patient.id_kind, raw, generic_pattern=ctx.settings.identity.generic_pattern
    )
    if isinstance(number, IdentityRefusal):
        return False
    return ctx.keyring.blind_index("id:" + number.kind, number.value) == patient.id_index


def clean_code(code: str) -> str:
    return "".join((code or "").split()).upper()[:32]


def department_rules(ctx: ServiceContext, session: Session, department: Department) -> tuple[Policy, ZoneInfo]:
    hospital = session.get(Hospital, department.hospital_id)
    policy = ctx.settings.policy.overridden(hospital.policy_overrides).overridden(
        department.policy_overrides
    )
    return policy, ZoneInfo(hospital.timezone)


def slot_view(slot: Slot) -> r.SlotView:
    return r.SlotView(slot.id, slot.department_id, slot.starts_at, slot.ends_at,
                      slot.visit_date, slot.capacity - slot.booked)


def booking_view(ctx: ServiceContext, session: Session, booking: Booking, *,
                  slot: Slot | None = None, department: Department | None = None) -> r.BookingView:
    slot = slot or session.get(Slot, booking.slot_id)
    department = department or session.get(Department, booking.department_id)
    patient = session.get(Patient, booking.patient_id)
    policy, tz = department_rules(ctx, session, department)
    return r.BookingView(
        code=booking.code, status=booking.status, patient_ref=patient.id,
        id_last4=patient.id_last4, department_id=department.id,
        department_code=department.code, department_names=dict(department.names),
        slot_id=slot.id, starts_at=slot.starts_at, ends_at=slot.ends_at,
        visit_date=booking.visit_date, channel=booking.channel,
        cancel_deadline=rules.cancel_deadline(policy, booking.visit_date, tz),
    )


def bookings_of(ctx: ServiceContext, session: Session, patient_ids: Sequence[int],
                 now: datetime, include_past: bool) -> list[r.BookingView]:
    if not patient_ids:
        return []
    query = (
        select(Booking).join(Slot, Booking.slot_id == Slot.id)
        .where(Booking.patient_id.in_(patient_ids))
        .order_by(Slot.starts_at, Booking.id)
    )
    if not include_past:
        query = query.where(Booking.status == BOOKED, Slot.ends_at > now)
    return [booking_view(ctx, session, b) for b in session.execute(query).scalars()]


def patient_ref(patient: Patient) -> str:
    """How logs and the audit trail name a patient: the row id and masked ID tail."""
    return f"{patient.id}/**{patient.id_last4}"


def address_actor(address: ChannelAddress) -> str:
    return f"address:{address.kind}:{address.address_index[:12]}"


def requester_actor(ctx: ServiceContext, requester: Requester, channel: str) -> audit.Actor:
    if isinstance(requester, Staff):
        return audit.Actor(f"staff:{requester.username}", channel)
    if isinstance(requester, AddressInput):
        value = normalised_address(ctx, requester)
        if isinstance(value, str):
            return audit.Actor(
                f"address:{requester.kind}:{address_index(ctx, requester.kind, value)[:12]}", channel)
    return audit.Actor("patient", channel)
