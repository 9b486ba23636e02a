"""Read-only questions to the service layer: departments, free places, bookings.

Rule: every function here runs in one read-only unit of work (a plain BEGIN on SQLite,
so it never waits behind writers' BEGIN IMMEDIATE) and changes nothing. Names are
decrypted only for the caller's turn; staff views show masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from assistant.booking import driver, identity, phone_links, policy as rules, results as r, statements as sql
from assistant.booking.catalogue import HospitalView, catalogue
from assistant.booking.inputs import AddressInput, IdentityInput, ServiceContext
from assistant.config import Policy
from assistant.booking.models import (
    BOOKED,
    Booking,
    ChannelAddress,
    Department,
    Hospital,
    Patient,
    PatientLink,
    Slot,
    Suspension,
)
from assistant.booking.records import (
    AddressRow,
    booking_view,
    clean_code,
    find_address,
    find_patient,
    id_number_of,
    last4_matches,
    last4_of,
    rules_for,
)


def list_departments(ctx: ServiceContext) -> list[r.DepartmentView]:
    """Active departments in menu order, from the catalogue."""
    return list(catalogue(ctx.uow).departments)


def availability(ctx: ServiceContext, *, department_id: int, date_from: date, date_to: date,
                 now: datetime, limit: int | None = None) -> list[r.SlotView]:
    """Released slots with a free place that can still be booked at `now`, soonest first
    (the first `limit` of them)."""
    rules_of = catalogue_rules(ctx, department_id)
    if rules_of is None:
        return []  # no such department, or closed
    policy, tz = rules_of
    # Booking closes day by day, earlier days first: start at the first day still open,
    # so that a LIMIT counts only places that can be booked.
    date_from = max(date_from, now.astimezone(tz).date())
    while date_from <= date_to and now >= rules.booking_closes_at(policy, date_from, tz):
        date_from += timedelta(days=1)
    if date_from > date_to:
        return []
    values = {"department_id": department_id, "date_from": date_from, "date_to": date_to, "now": now}
    with ctx.uow.read_only() as uow:
        db = driver.Cursor(uow.session.connection())
        rows = (db.run(sql.AVAILABLE_SLOTS, values) if limit is None
                else db.run(sql.FIRST_AVAILABLE_SLOTS, {**values, "limit": limit}))
        return [r.SlotView(*row) for row in rows
                if now < rules.booking_closes_at(policy, row.visit_date, tz)]


def open_days(ctx: ServiceContext, *, department_id: int, date_from: date, date_to: date,
              now: datetime) -> list[date]:
    """The days with a released slot that has a free place and can still be booked."""
    rules_of = catalogue_rules(ctx, department_id)
    if rules_of is None:
        return []
    policy, tz = rules_of
    with ctx.uow.read_only() as uow:
        rows = driver.Cursor(uow.session.connection()).run(sql.OPEN_DAYS, {
            "department_id": department_id, "date_from": date_from, "date_to": date_to, "now": now})
        return [row.visit_date for row in rows if now < rules.booking_closes_at(policy, row.visit_date, tz)]


def catalogue_rules(ctx: ServiceContext, department_id: int) -> tuple[Policy, ZoneInfo] | None:
    """An active department's booking rules and zone, from the catalogue (what
    records.department_rules reads from the rows)."""
    found = catalogue(ctx.uow).rules.get(department_id)
    return rules_for(ctx, *found) if found is not None else None


def linked_patients(ctx: ServiceContext, address: AddressInput) -> list[r.LinkedPatient]:
    """The patients an address may book for, by the names it gave them; decrypted for
    this turn only."""
    with ctx.uow.read_only() as uow:
        found = find_address(ctx, uow.session, address)
        if found is None:
            return []
        rows = uow.session.execute(
            select(Patient, PatientLink)
            .join(PatientLink, PatientLink.patient_id == Patient.id)
            .where(PatientLink.address_id == found.id)
            .order_by(PatientLink.created_at, PatientLink.id)
        ).all()
        return [
            r.LinkedPatient(p.id, ctx.keyring.decrypt(link.name_encrypted) or "?",
                            last4_of(ctx, p), link.relation)
            for p, link in rows
        ]


def address_bookings(ctx: ServiceContext, address: AddressInput, *, now: datetime,
                     include_past: bool = False) -> list[r.NamedBooking]:
    """The bookings this address made: the only ones it may see. Bookings others made
    for the same patients stay hidden (a link lets an address book, nothing more)."""
    with ctx.uow.read_only() as uow:
        session = uow.session
        found = find_address(ctx, session, address)
        if found is None:
            return []
        query = (select(Booking).join(Slot, Booking.slot_id == Slot.id)
                 .where(Booking.booked_by_address_id == found.id)
                 .order_by(Slot.starts_at, Booking.id))
        if not include_past:
            query = query.where(Booking.status == BOOKED, Slot.ends_at > now)
        return [r.NamedBooking(booking_view(ctx, session, b), ctx.keyring.decrypt(b.name_encrypted) or "")
                for b in session.execute(query).scalars()]


def booking_for_holder(ctx: ServiceContext, *, code: str, id_last4: str,
                       now: datetime) -> r.NamedBooking | None:
    """An upcoming booking for whoever holds its code and the ID's last four characters
    (a booking a relative made). None, the same for a wrong code or a wrong tail."""
    with ctx.uow.read_only() as uow:
        session = uow.session
        booking = session.execute(
            select(Booking).where(Booking.code == clean_code(code))).scalar_one_or_none()
        if booking is None or booking.status != BOOKED:
            return None
        patient = session.get(Patient, booking.patient_id)
        if not last4_matches(id_number_of(ctx, patient), id_last4):
            return None
        view = booking_view(ctx, session, booking)
        if view.ends_at <= now:
            return None
        return r.NamedBooking(view, ctx.keyring.decrypt(booking.name_encrypted) or "")


@dataclass(frozen=True)
class StaffBookingRow:
    """A booking as staff see it: identity masked, never in full."""

    code: str
    status: str
    department_code: str
    starts_at: datetime
    visit_date: date
    masked_id: str
    masked_name: str
    channel: str
    name_differs: bool = False  # the name differs from earlier bookings of this ID
    checksum_verified: bool = True  # False: a generic ID, never checked by a checksum


def staff_bookings(ctx: ServiceContext, *, day: date | None = None,
                   patient_id: int | None = None, code: str | None = None) -> list[StaffBookingRow]:
    with ctx.uow.read_only() as uow:
        query = (
            select(Booking, Slot, Department, Patient)
            .join(Slot, Booking.slot_id == Slot.id)
            .join(Department, Booking.department_id == Department.id)
            .join(Patient, Booking.patient_id == Patient.id)
            .order_by(Slot.starts_at, Booking.id)
        )
        if day is not None:
            query = query.where(Booking.visit_date == day)
        if patient_id is not None:
            query = query.where(Booking.patient_id == patient_id)
        if code is not None:
            query = query.where(Booking.code == clean_code(code))
        rows = []
        for booking, slot, department, patient in uow.session.execute(query):
            name = ctx.keyring.decrypt(booking.name_encrypted) or ""
            rows.append(StaffBookingRow(
                booking.code, booking.status, department.code, slot.starts_at,
                booking.visit_date, identity.mask_id(id_number_of(ctx, patient)),
                identity.mask_name(name), booking.channel, booking.name_differs,
                patient.checksum_verified,
            ))
        return rows


def find_bookings_of_identity(ctx: ServiceContext, identity_input: IdentityInput) -> list[StaffBookingRow] | r.Refusal:
    """For the desk: the bookings of the ID number on a card (looked up by its blind
    index), shown masked."""
    with ctx.uow.read_only() as uow:
        patient = find_patient(ctx, uow.session, identity_input)
        if isinstance(patient, r.Refusal):
            return patient
        if patient is None:
            return []
        patient_id = patient.id
    return staff_bookings(ctx, patient_id=patient_id)


def active_suspensions(ctx: ServiceContext, *, now: datetime) -> list[dict[str, Any]]:
    """Suspensions in force, for staff: of identities (shown masked) and of addresses
    (phone numbers masked)."""
    with ctx.uow.read_only() as uow:
        rows = uow.session.execute(
            select(Suspension, Patient, ChannelAddress)
            .outerjoin(Patient, Suspension.patient_id == Patient.id)
            .outerjoin(ChannelAddress, Suspension.address_id == ChannelAddress.id)
            .where(Suspension.lifted_at.is_(None), Suspension.ends_at > now)
            .order_by(Suspension.ends_at)
        ).all()
        return [
            {"id": s.id, "rule": s.rule, "until": s.ends_at,
             "scope": "identity" if p is not None else "address",
             "who": (identity.mask_id(id_number_of(ctx, p)) if p is not None
                     else f"{a.kind} {mask_address(ctx, a)}")}
            for s, p, a in rows
        ]


@dataclass(frozen=True)
class FlaggedIdentity:
    """An identity staff should look at: more than one address claims to be hers, or
    her bookings were made under different names. Shown masked."""

    masked_id: str
    own_claims: int  # addresses that booked "for me" with this ID number
    verified_claims: int  # of those, how many the desk verified
    names: int  # different names typed for it
    checksum_verified: bool


def flagged_identities(ctx: ServiceContext) -> list[FlaggedIdentity]:
    with ctx.uow.read_only() as uow:
        session = uow.session
        claims = dict(session.execute(
            select(PatientLink.patient_id, func.count())
            .where(PatientLink.relation == "self").group_by(PatientLink.patient_id)).all())
        verified = dict(session.execute(
            select(PatientLink.patient_id, func.count())
            .where(PatientLink.relation == "self", PatientLink.verified_at.is_not(None))
            .group_by(PatientLink.patient_id)).all())
        names = dict(session.execute(
            select(Booking.patient_id, func.count(func.distinct(Booking.name_index)))
            .where(Booking.name_index.is_not(None)).group_by(Booking.patient_id)).all())
        flagged = sorted(pid for pid in set(claims) | set(names)
                         if claims.get(pid, 0) > 1 or names.get(pid, 0) > 1)
        patients = {p.id: p for p in session.execute(
            select(Patient).where(Patient.id.in_(flagged))).scalars()} if flagged else {}
        return [FlaggedIdentity(identity.mask_id(id_number_of(ctx, patients[pid])),
                                claims.get(pid, 0), verified.get(pid, 0), names.get(pid, 0),
                                patients[pid].checksum_verified)
                for pid in flagged]


def mask_address(ctx: ServiceContext, address: ChannelAddress | AddressRow) -> str:
    value = ctx.keyring.decrypt(address.address_encrypted) or ""
    if address.kind == "phone":
        return identity.mask_phone(value)
    return "*" * max(len(value) - 4, 0) + value[-4:]  # a chat id: its last four only


@dataclass(frozen=True)
class AddressProfile:
    locale: str | None
    opted_out: bool
    slow_speech: bool = False
    # A Telegram chat that shared its own number acts as that phone (phone_links.py).
    speaks_for: AddressInput | None = None
    # Until when a waitlist offer or a reminder may be waiting for this address's answer.
    question_until: datetime | None = None
    # Refused too often this hour: until then its attempts are turned away kindly.
    throttled_until: datetime | None = None


def address_profile(ctx: ServiceContext, address: AddressInput) -> AddressProfile:
    with ctx.uow.read_only() as uow:
        found = find_address(ctx, uow.session, address)
        if found is None:
            return AddressProfile(None, False)
        return AddressProfile(found.locale, found.opted_out_at is not None, found.slow_speech,
                              phone_links.speaks_for(ctx, uow.session, found), found.question_until,
                              found.throttled_until)


def hospital(ctx: ServiceContext) -> HospitalView | None:
    """The hospital this deployment serves (the first loaded one), from the catalogue."""
    return catalogue(ctx.uow).hospital


def last_booked(ctx: ServiceContext, address: AddressInput) -> tuple[r.LinkedPatient, r.DepartmentView] | None:
    """The newest booking this address made for a linked patient, for "book again"."""
    with ctx.uow.read_only() as uow:
        session = uow.session
        found = find_address(ctx, session, address)
        if found is None:
            return None
        row = session.execute(
            select(Booking, Patient, PatientLink, Department, Hospital.timezone)
            .join(Patient, Booking.patient_id == Patient.id)
            .join(PatientLink, (PatientLink.patient_id == Patient.id) & (PatientLink.address_id == found.id))
            .join(Department, Booking.department_id == Department.id)
            .join(Hospital, Department.hospital_id == Hospital.id)
            .where(Booking.booked_by_address_id == found.id, Department.active.is_(True))
            .order_by(Booking.created_at.desc(), Booking.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        booking, patient, link, department, tz = row
        return (
            r.LinkedPatient(patient.id, ctx.keyring.decrypt(link.name_encrypted) or "?",
                            last4_of(ctx, patient), link.relation),
            r.DepartmentView(department.id, department.code, dict(department.names),
                             dict(department.keywords or {}), tz),
        )


def release_of_day(ctx: ServiceContext, *, department_id: int, day: date,
                   now: datetime) -> datetime | None:
    """When the first not-yet-released slot of that day opens (a draw's day: when its
    requests open), if any."""
    with ctx.uow.read_only() as uow:
        return uow.session.execute(
            select(func.min(func.coalesce(Slot.requests_open_at, Slot.release_at))).where(
                Slot.department_id == department_id, Slot.visit_date == day,
                func.coalesce(Slot.requests_open_at, Slot.release_at) > now, Slot.capacity > Slot.booked)
        ).scalar_one_or_none()


def pending_question(ctx: ServiceContext, address: AddressInput, now: datetime):
    """The offer or reminder this address may answer now (booking/reminders.py), or
    None. Most turns are settled by the address row the turn has already read."""
    from assistant.booking import reminders

    with ctx.uow.read_only() as uow:
        found = find_address(ctx, uow.session, address)
        if found is None or found.question_until is None or found.question_until <= now:
            return None
        return reminders.pending_question(ctx, uow.session, found.id, now)
