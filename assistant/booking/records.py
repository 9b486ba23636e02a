"""Finding, creating and locking the rows use cases work on, and shaping them for callers.

Rule: the building blocks the service layer and its queries share. Lookups go by blind
index, never by a plain ID number, name or phone number. Locks are row locks taken by an
UPDATE (or a locking upsert), in the order the use cases rely on: channel address, then
patient, then slots. Nothing here commits.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assistant.booking import audit, driver, identity, policy as rules, results as r, statements as sql
from assistant.booking.database import is_read_only, transaction_cache
from assistant.booking.identity import IdentityRefusal
from assistant.booking.inputs import (
    AddressInput,
    CodeHolder,
    IdentityInput,
    Requester,
    ServiceContext,
    Staff,
)
from assistant.booking.models import (
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
    # Created by this transaction, so it has no bookings, links or suspensions yet.
    is_new: bool = False


@dataclass(frozen=True)
class TypedName:
    """The name given with a booking, encrypted and blind-indexed."""

    encrypted: str
    index: str


@dataclass(frozen=True)
class PreparedAddress:
    """A channel address checked, blinded and encrypted, ready to create or lock."""

    kind: str
    index: str
    encrypted: str



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
    """An identity checked, blinded and encrypted, ready to create or lock its patient,
    with the name typed for this booking."""

    id_kind: str
    id_document: str | None
    id_country: str | None
    checksum_verified: bool
    id_index: str
    id_encrypted: str
    birth_date_encrypted: str | None
    name: TypedName


def prepare_identity(ctx: ServiceContext, given: IdentityInput, today: date) -> PreparedIdentity | r.Refusal:
    valid = validated_identity(ctx, given, today)
    if isinstance(valid, r.Refusal):
        return valid
    number, name, birth_date, document, country = valid
    return PreparedIdentity(
        id_kind=number.kind, id_document=document, id_country=country,
        checksum_verified=number.kind == identity.CN_RESIDENT_ID,
        id_index=ctx.keyring.blind_index(identity.id_purpose(number.kind, document, country), number.value),
        id_encrypted=ctx.keyring.encrypt(number.value),
        birth_date_encrypted=ctx.keyring.encrypt(birth_date.isoformat()) if birth_date else None,
        name=typed_name(ctx, name))


def typed_name(ctx: ServiceContext, name: str) -> TypedName:
    return TypedName(ctx.keyring.encrypt(name),
                     ctx.keyring.blind_index(identity.name_purpose(), identity.name_for_index(name)))


def lock_patient_row(db: driver.Cursor, given: PreparedIdentity, now: datetime) -> driver.Rows:
    """Create or lock the patient; one row: id and version (0: created just now). The
    identity is the ID number alone, so a name typed with it can't lock anyone out."""
    return db.run(sql.LOCK_PATIENT, {
        "id_kind": given.id_kind, "id_document": given.id_document, "id_country": given.id_country,
        "checksum_verified": given.checksum_verified, "id_index": given.id_index,
        "id_encrypted": given.id_encrypted, "birth_date_encrypted": given.birth_date_encrypted,
        "now": now})


def validated_identity(ctx: ServiceContext, given: IdentityInput, today: date):
    """(number, name, birth date, document, country), or a refusal."""
    settings = ctx.settings.identity
    if given.kind not in settings.kinds:
        return r.InvalidIdentity(field="id_number", reason="unknown_kind")
    document = country = None
    if given.kind == identity.GENERIC:
        document = (given.document or "").strip().lower()
        if document not in settings.generic_documents:
            return r.InvalidIdentity(field="document", reason="unknown_document")
        country = (given.country or "").strip().upper()
        if len(country) != 2 or not country.isascii() or not country.isalpha():
            return r.InvalidIdentity(field="country", reason="invalid")
    number = identity.validate_id_number(
        given.kind, given.number, generic_pattern=settings.generic_pattern,
        stated_birth_date=given.birth_date, today=today,
    )
    if isinstance(number, IdentityRefusal):
        return r.InvalidIdentity(field=number.field, reason=number.reason)
    name = identity.validate_name(given.name)
    if isinstance(name, IdentityRefusal):
        return r.InvalidIdentity(field=name.field, reason=name.reason)
    birth_date = number.birth_date or given.birth_date
    if birth_date is not None:
        checked = identity.validate_birth_date(birth_date, today)
        if isinstance(checked, IdentityRefusal):
            return r.InvalidIdentity(field=checked.field, reason=checked.reason)
    return number, name, birth_date, document, country


def lock_patient(session: Session, patient_id: int) -> Patient:
    """Take the patient's row lock (an UPDATE) before anything is counted."""
    session.execute(
        update(Patient).where(Patient.id == patient_id).values(version=Patient.version + 1)
    )
    patient = session.get(Patient, patient_id, populate_existing=True)
    return patient


def find_patient(ctx: ServiceContext, session: Session, given: IdentityInput) -> Patient | None | r.Refusal:
    """For staff (the desk types the number from the card)."""
    number = identity.validate_id_number(
        given.kind, given.number, generic_pattern=ctx.settings.identity.generic_pattern
    )
    if isinstance(number, IdentityRefusal):
        return r.InvalidIdentity(field=number.field, reason=number.reason)
    purpose = identity.id_purpose(number.kind, (given.document or "").strip().lower(),
                                  (given.country or "").strip().upper())
    id_index = ctx.keyring.blind_index(purpose, number.value)
    return session.execute(select(Patient).where(Patient.id_index == id_index)).scalar_one_or_none()


def id_number_of(ctx: ServiceContext, patient: Patient) -> str:
    """The decrypted ID number, for masks and tails; never stored or logged."""
    return ctx.keyring.decrypt(patient.id_encrypted) or ""


def last4_of(ctx: ServiceContext, patient: Patient) -> str:
    return id_number_of(ctx, patient)[-4:]


def normalised_address(ctx: ServiceContext, address: AddressInput) -> str | r.Refusal:
    if address.kind == "phone":
        # The provider delivered this number, so it is served even when the phone
        # library can't validate it (a new number range, a short code).
        value = identity.normalise_phone_address(address.value, ctx.settings.default_phone_region)
        return r.InvalidAddress() if value is None else value
    if address.kind == "telegram":
        value = (address.value or "").strip()
        if not value.lstrip("-").isdigit() or len(value) > 20:
            return r.InvalidAddress()
        return str(int(value))
    if address.kind == "console":
        value = (address.value or "").strip()
        return value if value else r.InvalidAddress()
    return r.InvalidAddress()


def address_index(ctx: ServiceContext, kind: str, value: str) -> str:
    return ctx.keyring.blind_index(identity.address_purpose(kind), value)


@dataclass(frozen=True)
class AddressRow:
    """An address as the reads see it: no lock, nothing to change."""

    id: int
    kind: str
    locale: str | None
    opted_out_at: datetime | None
    slow_speech: bool
    phone_address_id: int | None
    address_encrypted: str
    question_until: datetime | None = None  # a waitlist offer or reminder may await an answer
    throttled_until: datetime | None = None  # too many refusals this hour (service.note_refusal)


def find_address(ctx: ServiceContext, session: Session, address: AddressInput) -> AddressRow | None:
    """The address's row. Found once per transaction (a turn asks from several places);
    not finding it is remembered only in a read-only transaction, which can't create it.
    Every turn asks, so the statement goes straight to the driver."""
    held = transaction_cache(session)
    key = ("address", address)
    if key in held:
        return held[key]
    value = normalised_address(ctx, address)
    if isinstance(value, r.Refusal):
        return None
    row = driver.Cursor(session.connection()).run(sql.FIND_ADDRESS, {
        "kind": address.kind, "address_index": address_index(ctx, address.kind, value)}).first()
    found = AddressRow(*row) if row is not None else None
    if found is not None or is_read_only(session):
        held[key] = found
    return found


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
    """The booking, locked, if `requester` has rights over it. Rights follow the booking:
    the address that made it owns it; a code holder with the ID's last four characters
    may act on it; staff may act on any. A link to the patient, or knowing her ID number,
    gives none. Every refusal is the same `NotPermitted`, so nobody learns whether a code
    exists. Locks: the owning address, then the patient (the service layer's order)."""
    booking = session.execute(
        select(Booking).where(Booking.code == clean_code(code))
    ).scalar_one_or_none()
    if booking is None:
        return r.NotPermitted()
    if isinstance(requester, AddressInput):
        address = find_address(ctx, session, requester)
        allowed = address is not None and address.id == booking.booked_by_address_id
    elif isinstance(requester, CodeHolder):
        patient = session.get(Patient, booking.patient_id)
        allowed = last4_matches(id_number_of(ctx, patient), requester.id_last4)
    else:
        allowed = isinstance(requester, Staff)
    if not allowed:
        return r.NotPermitted()
    if booking.booked_by_address_id is not None:
        lock_address_by_id(session, booking.booked_by_address_id)
    patient = lock_patient(session, booking.patient_id)
    session.refresh(booking)  # re-read under the lock: a racing cancel may have won
    return booking, patient


def last4_matches(number: str, typed: str) -> bool:
    typed = "".join((typed or "").split()).upper().replace("*", "X")
    return len(number) >= 4 and len(typed) == 4 and hmac.compare_digest(number[-4:], typed)


def lock_address_by_id(session: Session, address_id: int) -> None:
    session.execute(update(ChannelAddress).where(ChannelAddress.id == address_id)
                    .values(version=ChannelAddress.version + 1))


def id_number_matches(ctx: ServiceContext, patient: Patient, raw: str, kind: str | None = None) -> bool:
    number = identity.validate_id_number(
        kind or patient.id_kind, raw, generic_pattern=ctx.settings.identity.generic_pattern
    )
    if isinstance(number, IdentityRefusal):
        return False
    purpose = identity.id_purpose(number.kind, patient.id_document, patient.id_country)
    return hmac.compare_digest(ctx.keyring.blind_index(purpose, number.value), patient.id_index)


def own_address_id(session: Session, patient_id: int) -> int | None:
    """Where notices for the patient go: the address the desk verified as hers, else the
    first that booked "for me" with her ID. A later, conflicting "for me" is kept as a
    link for staff to see and changes nothing."""
    return session.execute(
        select(PatientLink.address_id)
        .where(PatientLink.patient_id == patient_id, PatientLink.relation == "self")
        .order_by(PatientLink.verified_at.is_(None), PatientLink.verified_at.desc(),
                  PatientLink.created_at, PatientLink.id)
        .limit(1)
    ).scalar_one_or_none()


def verified_own_address(session: Session, patient_id: int, address_id: int | None) -> bool:
    """Did the desk verify `address_id` as the patient's own (a checked-in "for me")?"""
    if address_id is None:
        return False
    return session.execute(
        select(PatientLink.id).where(
            PatientLink.address_id == address_id, PatientLink.patient_id == patient_id,
            PatientLink.relation == "self", PatientLink.verified_at.is_not(None))
    ).first() is not None


def clean_code(code: str) -> str:
    return "".join((code or "").split()).upper()[:32]


def department_rules(ctx: ServiceContext, session: Session, department: Department) -> tuple[Policy, ZoneInfo]:
    hospital = session.get(Hospital, department.hospital_id)
    return rules_for(ctx, hospital.policy_overrides, department.policy_overrides, hospital.timezone)


def rules_for(ctx: ServiceContext, hospital_overrides: dict | None, department_overrides: dict | None,
              timezone: str) -> tuple[Policy, ZoneInfo]:
    """The settings' policy, overridden by the hospital's, then by the department's."""
    policy = ctx.settings.policy.overridden(hospital_overrides).overridden(department_overrides)
    return policy, ZoneInfo(timezone)


def booking_view(ctx: ServiceContext, session: Session, booking: Booking, *,
                  slot: Slot | None = None, department: Department | None = None) -> r.BookingView:
    slot = slot or session.get(Slot, booking.slot_id)
    department = department or session.get(Department, booking.department_id)
    policy, tz = department_rules(ctx, session, department)
    return r.BookingView(
        code=booking.code, status=booking.status, patient_ref=booking.patient_id,
        department_id=department.id,
        department_code=department.code, department_names=dict(department.names),
        slot_id=slot.id, starts_at=slot.starts_at, ends_at=slot.ends_at,
        visit_date=booking.visit_date, channel=booking.channel,
        cancel_deadline=rules.cancel_deadline(policy, booking.visit_date, tz),
    )


def patient_ref(patient: Patient | LockedPatient) -> int:
    """How logs and the audit trail name a patient: the row id, no part of the ID."""
    return patient.id


def address_actor(address: ChannelAddress | AddressRow | int) -> str:
    """How the audit trail names an address: its row id, which survives key rotation."""
    return f"address:{address if isinstance(address, int) else address.id}"


def requester_actor(ctx: ServiceContext, session: Session, requester: Requester,
                    channel: str) -> audit.Actor:
    if isinstance(requester, Staff):
        return audit.Actor(f"staff:{requester.username}", channel)
    address = requester.via if isinstance(requester, CodeHolder) else requester
    if isinstance(address, AddressInput):
        found = find_address(ctx, session, address)
        if found is not None:
            prefix = "code_holder@" if isinstance(requester, CodeHolder) else ""
            return audit.Actor(prefix + address_actor(found), channel)
    return audit.Actor("code_holder", channel)
