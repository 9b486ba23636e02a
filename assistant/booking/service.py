"""The service layer: one function per use case, one transaction each.

Rule: every function here opens its own unit of work, applies the booking rules, writes
an audit event for each state change and commits once, returning a typed result or a
typed refusal from `results`. Locks are always taken in the same order (channel
address, then patient, then slots) so concurrent use cases cannot deadlock. Time is an
argument; nothing here reads the clock.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assistant.booking import audit, identity, policy as rules, results as r, statements as sql
from assistant.booking.events import claim_event
from assistant.booking.identity import IdentityRefusal, Keyring
from assistant.booking.models import (
    ACTIVE_STATUSES,
    BOOKED,
    CANCELLED,
    CHECKED_IN,
    NO_SHOW,
    Booking,
    ChannelAddress,
    Department,
    Hospital,
    Patient,
    PatientLink,
    ProcessedEvent,
    Slot,
    Suspension,
)
from assistant.booking.uow import UnitOfWork, UnitOfWorkFactory
from assistant.config import Policy, Settings

log = logging.getLogger(__name__)

# Booking codes avoid characters that look or sound alike (0/O, 1/I/L, 2/Z, 5/S, 8/B).
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY3467"
CODE_LENGTH = 8  # 24^8 ≈ 1.1e11 codes: unguessable at any rate a rate limiter allows


@dataclass(frozen=True)
class ServiceContext:
    uow: UnitOfWorkFactory
    keyring: Keyring
    settings: Settings


@dataclass(frozen=True)
class IdentityInput:
    """Who the booking is for, as the patient or a relative typed it."""

    kind: str
    number: str
    name: str
    birth_date: date | None = None


@dataclass(frozen=True)
class AddressInput:
    """Where a request came from: kind is phone, telegram or console."""

    kind: str
    value: str


@dataclass(frozen=True)
class Staff:
    username: str


Requester = AddressInput | IdentityInput | Staff


# ---- reading ---------------------------------------------------------------------------


def list_departments(ctx: ServiceContext) -> list[r.DepartmentView]:
    with ctx.uow.read_only() as uow:
        rows = uow.session.execute(
            select(Department, Hospital.timezone)
            .join(Hospital)
            .where(Department.active.is_(True))
            .order_by(Department.sort_order, Department.id)
        ).all()
        return [
            r.DepartmentView(d.id, d.code, dict(d.names), dict(d.keywords or {}), tz)
            for d, tz in rows
        ]


def availability(ctx: ServiceContext, *, department_id: int, date_from: date, date_to: date,
                 now: datetime) -> list[r.SlotView]:
    """Released slots with a free place that can still be booked at `now`."""
    with ctx.uow.read_only() as uow:
        department = uow.session.get(Department, department_id)
        if department is None or not department.active:
            return []
        policy, tz = _department_rules(ctx, uow.session, department)
        slots = uow.session.execute(
            select(Slot)
            .where(
                Slot.department_id == department_id,
                Slot.visit_date >= date_from,
                Slot.visit_date <= date_to,
                Slot.release_at <= now,
                Slot.booked < Slot.capacity,
            )
            .order_by(Slot.starts_at, Slot.id)
        ).scalars()
        return [
            _slot_view(slot)
            for slot in slots
            if now < rules.booking_closes_at(policy, slot.visit_date, tz)
        ]


def linked_patients(ctx: ServiceContext, address: AddressInput) -> list[r.LinkedPatient]:
    """The patients an address may book for, names decrypted for this turn only."""
    with ctx.uow.read_only() as uow:
        found = _find_address(ctx, uow.session, address)
        if found is None:
            return []
        rows = uow.session.execute(
            select(Patient, PatientLink.relation)
            .join(PatientLink, PatientLink.patient_id == Patient.id)
            .where(PatientLink.address_id == found.id)
            .order_by(PatientLink.created_at, PatientLink.id)
        ).all()
        return [
            r.LinkedPatient(p.id, ctx.keyring.decrypt(p.name_encrypted) or "?", p.id_last4, rel)
            for p, rel in rows
        ]


def patient_bookings(ctx: ServiceContext, identity_input: IdentityInput, *, now: datetime,
                     include_past: bool = False) -> list[r.BookingView] | r.Refusal:
    with ctx.uow.read_only() as uow:
        patient = _find_patient(ctx, uow.session, identity_input)
        if isinstance(patient, r.Refusal):
            return patient
        if patient is None:
            return []
        return _bookings_of(ctx, uow.session, [patient.id], now, include_past)


def address_bookings(ctx: ServiceContext, address: AddressInput, *, now: datetime,
                     include_past: bool = False) -> list[r.BookingView]:
    """Bookings of every patient linked to the address."""
    with ctx.uow.read_only() as uow:
        found = _find_address(ctx, uow.session, address)
        if found is None:
            return []
        patient_ids = uow.session.execute(
            select(PatientLink.patient_id).where(PatientLink.address_id == found.id)
        ).scalars().all()
        return _bookings_of(ctx, uow.session, patient_ids, now, include_past)


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


def staff_bookings(ctx: ServiceContext, *, day: date | None = None) -> list[StaffBookingRow]:
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
        rows = []
        for booking, slot, department, patient in uow.session.execute(query):
            number = ctx.keyring.decrypt(patient.id_encrypted) or ""
            name = ctx.keyring.decrypt(patient.name_encrypted) or ""
            rows.append(StaffBookingRow(
                booking.code, booking.status, department.code, slot.starts_at,
                booking.visit_date, identity.mask_id(number), identity.mask_name(name),
                booking.channel,
            ))
        return rows


# ---- booking -------------------------------------------------------------------------


def book_slot(ctx: ServiceContext, *, slot_id: int, channel: str, now: datetime,
              identity_input: IdentityInput | None = None, patient_ref: int | None = None,
              booked_by: AddressInput | None = None, staff: Staff | None = None,
              relation: str = "self", idempotency_key: str | None = None) -> r.Booked | r.Refusal:
    """Book one place in a slot for one real identity: typed in (`identity_input`), or
    a patient already linked to the booking address (`patient_ref`)."""

    def attempt(uow: UnitOfWork) -> tuple[r.Booked | r.Refusal, list[audit.Entry]]:
        connection = uow.session.connection()
        address_id, actor = None, audit.Actor(f"staff:{staff.username}" if staff else "anonymous", channel)
        if booked_by is not None:
            locked = _lock_address_row(ctx, connection, booked_by, now)
            if isinstance(locked, r.Refusal):
                return locked, []
            address_id, address_name = locked
            if staff is None:
                actor = audit.Actor(address_name, channel)
        if patient_ref is not None:
            row = connection.execute(sql.LOCK_PATIENT_BY_ID, {"patient_id": patient_ref}).first()
            if row is None or address_id is None:
                return r.NotPermitted(), []
            patient = LockedPatient(row.id, row.id_last4)
        elif identity_input is not None:
            patient = _lock_patient_row(ctx, connection, identity_input, now)
            if isinstance(patient, r.Refusal):
                return patient, []
        else:
            return r.InvalidIdentity(field="id_number", reason="empty"), []
        return _book_locked(ctx, connection, patient, slot_id, channel, now, actor,
                            address_id=address_id, staff=staff, replacing_id=None,
                            relation=relation, must_be_linked=patient_ref is not None)

    return _run_booking(ctx, "book", idempotency_key, now, attempt)


@dataclass(frozen=True)
class LockedPatient:
    """A patient whose row lock this transaction holds."""

    id: int
    id_last4: str


def _book_locked(ctx: ServiceContext, connection: Connection, patient: LockedPatient,
                 slot_id: int, channel: str, now: datetime, actor: audit.Actor, *,
                 address_id: int | None, staff: Staff | None, replacing_id: int | None,
                 relation: str = "self", must_be_linked: bool = False,
                 ) -> tuple[r.Booked | r.Refusal, list[audit.Entry]]:
    """Book with the patient's (and address's) row lock already held. `replacing_id` is
    left out of the quota counts: a reschedule moves a booking rather than adding one.
    Returns the result and the audit entries to append if it stands."""
    facts = connection.execute(sql.SUSPENSION_AND_LINKS, {
        "patient_id": patient.id, "address_id": address_id, "now": now}).one()
    new_link = address_id is not None and not facts.linked
    if new_link:
        if must_be_linked:
            return r.NotPermitted(), []
        limit = ctx.settings.policy.patients_per_address  # hospital-wide, not per department
        if limit and facts.links >= limit:
            return r.TooManyPatients(limit=limit), []
    slot = connection.execute(sql.SLOT_WITH_RULES, {"slot_id": slot_id}).first()
    if slot is None:
        return r.SlotNotFound(), []
    policy = ctx.settings.policy.overridden(slot.hospital_policy).overridden(slot.policy_overrides)
    tz = ZoneInfo(slot.timezone)
    if now < slot.release_at:
        return r.NotYetOpen(opens_at=slot.release_at), []
    closes_at = rules.booking_closes_at(policy, slot.visit_date, tz)
    if now >= closes_at:
        return r.BookingClosed(closed_at=closes_at), []
    if facts.until is not None:
        return r.Suspended(reason=facts.rule, until=facts.until), []
    held = [row for row in connection.execute(sql.HELD_BOOKINGS, {
        "patient_id": patient.id, "earliest": slot.visit_date - timedelta(days=90),
        "latest": slot.visit_date + timedelta(days=90)}) if row.id != replacing_id]
    for row in held:
        if row.slot_id == slot.id and row.status in ACTIVE_STATUSES:
            return r.AlreadyBooked(code=row.code), []
    breach = rules.quota_breach(policy, [rules.HeldBooking(row.visit_date, row.department_id) for row in held],
                                rules.HeldBooking(slot.visit_date, slot.department_id))
    if breach is not None:
        return r.QuotaExceeded(quota=breach.quota, limit=breach.limit), []
    if connection.execute(sql.TAKE_PLACE, {"slot_id": slot.id}).first() is None:
        return r.SlotFull(), []
    entries = []
    if new_link:
        link_relation = "family" if relation == "family" else "self"
        connection.execute(sql.INSERT_LINK, {"address_id": address_id, "patient_id": patient.id,
                                             "relation": link_relation, "now": now, "channel": channel})
        entries.append(audit.Entry(actor, "link.created", f"patient:{_patient_ref(patient)}",
                                   {"relation": link_relation}, now))
    code = _new_code()
    connection.execute(sql.INSERT_BOOKING, {
        "code": code, "patient_id": patient.id, "slot_id": slot.id,
        "department_id": slot.department_id, "visit_date": slot.visit_date, "channel": channel,
        "address_id": address_id, "staff": staff.username if staff else None,
        "replacing_id": replacing_id, "now": now})
    entries.append(audit.Entry(actor, "booking.created", f"booking:{code}", {
        "patient": _patient_ref(patient), "slot": slot.id, "department": slot.code,
        "starts_at": slot.starts_at.isoformat()}, now))
    view = r.BookingView(
        code=code, status=BOOKED, patient_ref=patient.id, id_last4=patient.id_last4,
        department_id=slot.department_id, department_code=slot.code,
        department_names=dict(slot.names), slot_id=slot.id, starts_at=slot.starts_at,
        ends_at=slot.ends_at, visit_date=slot.visit_date, channel=channel,
        cancel_deadline=rules.cancel_deadline(policy, slot.visit_date, tz))
    return r.Booked(view), entries


def _take_place(session: Session, slot_id: int) -> bool:
    """The capacity rule: only succeeds while booked < capacity, even under a race."""
    taken = session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked < Slot.capacity)
        .values(booked=Slot.booked + 1)
        .returning(Slot.id)
    ).first()
    return taken is not None


def _free_place(session: Session, slot_id: int) -> None:
    session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.booked > 0).values(booked=Slot.booked - 1)
    )


def _new_code() -> str:
    """A random code; the unique index catches the rare repeat and the booking is
    retried with another (see _run_booking)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


# ---- cancelling and rescheduling ------------------------------------------------------


def cancel_booking(ctx: ServiceContext, *, code: str, requester: Requester, channel: str,
                   now: datetime, idempotency_key: str | None = None) -> r.Cancelled | r.Refusal:
    """Cancel before the deadline (staff may cancel at any time, for example when a
    clinic closes). Patient cancellations count towards the cancellation suspension."""

    def attempt(uow: UnitOfWork) -> r.Cancelled | r.Refusal:
        session = uow.session
        found = _authorised_booking(ctx, session, code, requester)
        if isinstance(found, r.Refusal):
            return found
        booking, patient = found
        if booking.status != BOOKED:
            return r.NotActive(status=booking.status)
        slot = session.get(Slot, booking.slot_id)
        department = session.get(Department, booking.department_id)
        policy, tz = _department_rules(ctx, session, department)
        deadline = rules.cancel_deadline(policy, booking.visit_date, tz)
        is_staff = isinstance(requester, Staff)
        if now >= deadline and not is_staff:
            return r.CancellationClosed(deadline=deadline)
        booking.status = CANCELLED
        booking.cancel_reason = "staff" if is_staff else "patient"
        booking.cancelled_at = now
        booking.updated_at = now
        _free_place(session, slot.id)
        session.flush()
        actor = _requester_actor(ctx, requester, channel)
        audit.append(session, ctx.keyring.audit_key, actor=actor, action="booking.cancelled",
                     subject=f"booking:{booking.code}",
                     details={"patient": _patient_ref(patient), "by": booking.cancel_reason},
                     at=now)
        if not is_staff:
            _suspend_if_due(ctx, session, patient, policy, "cancellations", now)
        return r.Cancelled(_booking_view(ctx, session, booking, slot=slot, department=department))

    return _run(ctx, "cancel", idempotency_key, now, attempt)


def reschedule_booking(ctx: ServiceContext, *, code: str, new_slot_id: int,
                       requester: Requester, channel: str, now: datetime,
                       idempotency_key: str | None = None) -> r.Rescheduled | r.Refusal:
    """Move a booking atomically: the new place is taken before the old one is freed,
    and either both happen or neither does. A reschedule is not a cancellation."""

    def attempt(uow: UnitOfWork) -> tuple[r.Rescheduled | r.Refusal, list[audit.Entry]]:
        session = uow.session
        found = _authorised_booking(ctx, session, code, requester)
        if isinstance(found, r.Refusal):
            return found, []
        old, patient = found
        if old.status != BOOKED:
            return r.NotActive(status=old.status), []
        if old.slot_id == new_slot_id:
            return r.AlreadyBooked(code=old.code), []
        department = session.get(Department, old.department_id)
        policy, tz = _department_rules(ctx, session, department)
        deadline = rules.cancel_deadline(policy, old.visit_date, tz)
        if now >= deadline and not isinstance(requester, Staff):
            return r.CancellationClosed(deadline=deadline), []
        actor = _requester_actor(ctx, requester, channel)
        staff = requester if isinstance(requester, Staff) else None
        # The new place is taken first: if it can't be, nothing changes.
        booked, entries = _book_locked(ctx, session.connection(), LockedPatient(patient.id, patient.id_last4),
                                       new_slot_id, channel, now, actor,
                                       address_id=old.booked_by_address_id, staff=staff,
                                       replacing_id=old.id)
        if isinstance(booked, r.Refusal):
            return booked, []
        old.status = CANCELLED
        old.cancel_reason = "rescheduled"
        old.cancelled_at = now
        old.updated_at = now
        _free_place(session, old.slot_id)
        session.flush()
        entries.append(audit.Entry(actor, "booking.rescheduled", f"booking:{old.code}",
                                   {"patient": _patient_ref(patient), "to": booked.booking.code}, now))
        return r.Rescheduled(booking=booked.booking, previous_code=old.code), entries

    return _run_booking(ctx, "reschedule", idempotency_key, now, attempt)


# ---- at the hospital -----------------------------------------------------------------


def check_in(ctx: ServiceContext, *, code: str, id_number: str, now: datetime,
             staff: Staff | None = None) -> r.CheckedIn | r.Refusal:
    """Check in on the visit day: the booking code and the ID number must match."""
    with ctx.uow() as uow:
        session = uow.session
        booking = session.execute(
            select(Booking).where(Booking.code == _clean_code(code))
        ).scalar_one_or_none()
        if booking is None:
            return r.BookingNotFound()
        patient = _lock_patient(session, booking.patient_id)
        session.refresh(booking)  # re-read under the lock: a racing cancel may have won
        if not _id_number_matches(ctx, patient, id_number):
            # Same answer as an unknown code: a wrong ID must not confirm a code exists.
            return r.BookingNotFound()
        if booking.status != BOOKED:
            return r.NotActive(status=booking.status)
        department = session.get(Department, booking.department_id)
        _, tz = _department_rules(ctx, session, department)
        if now.astimezone(tz).date() != booking.visit_date:
            return r.NotVisitDay(visit_date=booking.visit_date)
        booking.status = CHECKED_IN
        booking.checked_in_at = now
        booking.updated_at = now
        session.flush()
        actor = audit.Actor(f"staff:{staff.username}", "desk") if staff else audit.Actor("kiosk", "desk")
        audit.append(session, ctx.keyring.audit_key, actor=actor, action="booking.checked_in",
                     subject=f"booking:{booking.code}",
                     details={"patient": _patient_ref(patient)}, at=now)
        view = _booking_view(ctx, session, booking)
        uow.commit()
        return r.CheckedIn(view)


def mark_no_shows(ctx: ServiceContext, *, now: datetime) -> r.NoShowReport:
    """Every booking still 'booked' on a visit day that is over becomes a no-show, and
    patients who reach the no-show limit are suspended. Safe to run repeatedly."""
    marked = suspended = 0
    with ctx.uow() as uow:
        session = uow.session
        candidates = session.execute(
            select(Booking.id, Booking.patient_id, Department.id)
            .join(Department, Booking.department_id == Department.id)
            .where(Booking.status == BOOKED, Booking.visit_date < now.date() + timedelta(days=1))
            .order_by(Booking.patient_id, Booking.id)
        ).all()
        by_patient: dict[int, list[tuple[int, int]]] = {}
        for booking_id, patient_id, department_id in candidates:
            by_patient.setdefault(patient_id, []).append((booking_id, department_id))
        for patient_id, items in by_patient.items():
            patient = _lock_patient(session, patient_id)
            marked_here = 0
            policy = None
            for booking_id, department_id in items:
                booking = session.get(Booking, booking_id)
                department = session.get(Department, department_id)
                policy, tz = _department_rules(ctx, session, department)
                if booking.status != BOOKED or now.astimezone(tz).date() <= booking.visit_date:
                    continue  # the visit day is not over yet in the hospital's zone
                booking.status = NO_SHOW
                booking.updated_at = now
                marked_here += 1
                audit.append(session, ctx.keyring.audit_key, actor=audit.SYSTEM,
                             action="booking.no_show", subject=f"booking:{booking.code}",
                             details={"patient": _patient_ref(patient)}, at=now)
            session.flush()
            if marked_here and policy is not None:
                marked += marked_here
                if _suspend_if_due(ctx, session, patient, policy, "no_shows", now):
                    suspended += 1
        uow.commit()
    return r.NoShowReport(marked=marked, suspended_patients=suspended)


def lift_suspension(ctx: ServiceContext, *, suspension_id: int, staff: Staff, reason: str,
                    now: datetime) -> r.SuspensionLifted | r.Refusal:
    reason = " ".join((reason or "").split())
    if not reason:
        return r.ReasonRequired()
    with ctx.uow() as uow:
        session = uow.session
        suspension = session.get(Suspension, suspension_id)
        if suspension is None or suspension.lifted_at is not None or suspension.ends_at <= now:
            return r.SuspensionNotFound()
        patient = _lock_patient(session, suspension.patient_id)
        suspension.lifted_at = now
        suspension.lifted_by = staff.username
        suspension.lift_reason = reason[:500]
        session.flush()
        audit.append(session, ctx.keyring.audit_key,
                     actor=audit.Actor(f"staff:{staff.username}", "admin"),
                     action="suspension.lifted", subject=f"suspension:{suspension.id}",
                     details={"patient": _patient_ref(patient), "reason": reason[:500]}, at=now)
        uow.commit()
        return r.SuspensionLifted(suspension.id)


def active_suspensions(ctx: ServiceContext, *, now: datetime) -> list[dict[str, Any]]:
    """Suspensions in force, for staff: patients shown masked."""
    with ctx.uow.read_only() as uow:
        rows = uow.session.execute(
            select(Suspension, Patient)
            .join(Patient, Suspension.patient_id == Patient.id)
            .where(Suspension.lifted_at.is_(None), Suspension.ends_at > now)
            .order_by(Suspension.ends_at)
        ).all()
        return [
            {"id": s.id, "rule": s.rule, "until": s.ends_at,
             "patient": identity.mask_id(ctx.keyring.decrypt(p.id_encrypted) or "")}
            for s, p in rows
        ]


# ---- addresses: language and opt-out ----------------------------------------------------


@dataclass(frozen=True)
class AddressProfile:
    locale: str | None
    opted_out: bool


def address_profile(ctx: ServiceContext, address: AddressInput) -> AddressProfile:
    with ctx.uow.read_only() as uow:
        found = _find_address(ctx, uow.session, address)
        if found is None:
            return AddressProfile(None, False)
        return AddressProfile(found.locale, found.opted_out_at is not None)


def remember_locale(ctx: ServiceContext, address: AddressInput, locale: str, *,
                    patient_ref: int | None, now: datetime) -> None:
    """Remember a language for the address and, if it is linked, for the patient."""
    with ctx.uow() as uow:
        session = uow.session
        found = _lock_address(ctx, session, address, now)
        if isinstance(found, r.Refusal):
            return
        found.locale = locale
        if patient_ref is not None and _is_linked(session, found.id, patient_ref):
            session.execute(update(Patient).where(Patient.id == patient_ref).values(locale=locale))
        uow.commit()


def set_opted_out(ctx: ServiceContext, address: AddressInput, opted_out: bool, *,
                  now: datetime) -> None:
    """STOP and START: stored, audited and honoured by every channel."""
    with ctx.uow() as uow:
        session = uow.session
        found = _lock_address(ctx, session, address, now)
        if isinstance(found, r.Refusal):
            return
        if (found.opted_out_at is not None) == opted_out:
            return
        found.opted_out_at = now if opted_out else None
        session.flush()
        audit.append(session, ctx.keyring.audit_key,
                     actor=audit.Actor(_address_actor(found), address.kind),
                     action="address.opted_out" if opted_out else "address.opted_in",
                     subject=_address_actor(found), details={}, at=now)
        uow.commit()


@dataclass(frozen=True)
class HospitalView:
    code: str
    names: dict[str, str]
    timezone: str
    desk_phone: str | None
    desk_hours: dict[str, str] | None


def hospital(ctx: ServiceContext) -> HospitalView | None:
    """The hospital this deployment serves (the first loaded one)."""
    with ctx.uow.read_only() as uow:
        found = uow.session.execute(select(Hospital).order_by(Hospital.id).limit(1)).scalar_one_or_none()
        if found is None:
            return None
        return HospitalView(found.code, dict(found.names), found.timezone, found.desk_phone,
                            dict(found.desk_hours) if found.desk_hours else None)


def last_booked(ctx: ServiceContext, address: AddressInput) -> tuple[r.LinkedPatient, r.DepartmentView] | None:
    """The newest booking this address made for a linked patient, for "book again"."""
    with ctx.uow.read_only() as uow:
        session = uow.session
        found = _find_address(ctx, session, address)
        if found is None:
            return None
        row = session.execute(
            select(Booking, Patient, PatientLink.relation, Department, Hospital.timezone)
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
        booking, patient, relation, department, tz = row
        return (
            r.LinkedPatient(patient.id, ctx.keyring.decrypt(patient.name_encrypted) or "?",
                            patient.id_last4, relation),
            r.DepartmentView(department.id, department.code, dict(department.names),
                             dict(department.keywords or {}), tz),
        )


def release_of_day(ctx: ServiceContext, *, department_id: int, day: date,
                   now: datetime) -> datetime | None:
    """When the first not-yet-released slot of that day opens, if any."""
    with ctx.uow.read_only() as uow:
        return uow.session.execute(
            select(func.min(Slot.release_at)).where(
                Slot.department_id == department_id, Slot.visit_date == day,
                Slot.release_at > now, Slot.capacity > Slot.booked)
        ).scalar_one_or_none()


# ---- the transaction runner and idempotency ------------------------------------------


def _run(ctx: ServiceContext, use_case: str, idempotency_key: str | None, now: datetime,
         attempt: Callable[[UnitOfWork], Any]) -> Any:
    """Run `attempt` in one transaction. A refusal rolls back everything `attempt`
    wrote; with an idempotency key, the result is stored and a replay gets it back."""
    with ctx.uow() as uow:
        session = uow.session
        if idempotency_key is not None:
            key = f"{use_case}:{idempotency_key}"
            if not claim_event(session, key, now):
                stored = session.get(ProcessedEvent, key)
                return r.from_json(stored.result)
        savepoint = session.begin_nested()
        result = attempt(uow)
        if isinstance(result, r.Refusal):
            savepoint.rollback()
        else:
            savepoint.commit()
        if idempotency_key is not None:
            session.execute(
                update(ProcessedEvent).where(ProcessedEvent.key == key)
                .values(result=r.to_json(result))
            )
        uow.commit()
        return result


CODE_ATTEMPTS = 3


def _run_booking(ctx: ServiceContext, use_case: str, idempotency_key: str | None, now: datetime,
                 attempt: Callable[[UnitOfWork], tuple[Any, list[audit.Entry]]]) -> Any:
    """The booking transaction, kept short: a replay is answered from its stored result;
    otherwise `attempt` runs, and only a success is kept, with its audit entries and
    result, in one commit. A refusal rolls everything back; its result is then stored
    on its own, so a replay of the same event is refused the same way."""
    key = f"{use_case}:{idempotency_key}" if idempotency_key is not None else None
    result = None
    for _ in range(CODE_ATTEMPTS):
        try:
            result = _booking_transaction(ctx, key, now, attempt)
        except IntegrityError:
            continue  # a booking code was drawn twice (about 1 in 10^11): draw again
        break
    if isinstance(result, r.Refusal) or result is _SUPERSEDED:
        return _settle(ctx, key, None if result is _SUPERSEDED else result, now)
    if result is None:
        raise RuntimeError("booking kept failing on the database's unique constraints")
    return result


_SUPERSEDED = object()  # a concurrent replay of the same event committed first


def _booking_transaction(ctx: ServiceContext, key: str | None, now: datetime, attempt) -> Any:
    with ctx.uow() as uow:
        connection = uow.session.connection()
        if key is not None:
            stored = connection.execute(sql.REPLAYED_RESULT, {"key": key}).scalar()
            if stored is not None:
                return r.from_json(stored)
        result, entries = attempt(uow)
        if isinstance(result, r.Refusal):
            return result  # leaving the unit of work rolls back what the attempt wrote
        audit.defer(uow.session, ctx.keyring.audit_key, entries)
        if key is not None and connection.execute(sql.STORE_RESULT, {
                "key": key, "now": now, "result": r.to_json(result)}).first() is None:
            return _SUPERSEDED
        uow.commit()
        return result


def _settle(ctx: ServiceContext, key: str | None, refusal: r.Refusal | None, now: datetime) -> Any:
    """Store a refusal for replays, unless the event already has a result: then that
    result is the answer."""
    if key is None:
        return refusal
    with ctx.uow() as uow:
        connection = uow.session.connection()
        if refusal is not None and connection.execute(sql.STORE_RESULT, {
                "key": key, "now": now, "result": r.to_json(refusal)}).first() is not None:
            uow.commit()
            return refusal
        return r.from_json(connection.execute(sql.REPLAYED_RESULT, {"key": key}).scalar())


def _lock_address_row(ctx: ServiceContext, connection: Connection, address: AddressInput,
                      now: datetime) -> tuple[int, str] | r.Refusal:
    """Create or lock the address row; its id and how the audit trail names it."""
    value = _normalised_address(ctx, address)
    if isinstance(value, r.Refusal):
        return value
    index = _address_index(ctx, address.kind, value)
    address_id = connection.execute(sql.LOCK_ADDRESS, {
        "kind": address.kind, "address_index": index,
        "address_encrypted": ctx.keyring.encrypt(value), "now": now}).scalar_one()
    return address_id, f"address:{address.kind}:{index[:12]}"


def _lock_patient_row(ctx: ServiceContext, connection: Connection, given: IdentityInput,
                      now: datetime) -> LockedPatient | r.Refusal:
    """Create or lock the patient. A known ID number with another name or birth date is
    how a bought ticket would be used, so it is refused."""
    valid = _validated_identity(ctx, given, now.date())
    if isinstance(valid, r.Refusal):
        return valid
    number, name, birth_date = valid
    name_index = ctx.keyring.blind_index("name", identity.name_for_index(name))
    row = connection.execute(sql.LOCK_PATIENT, {
        "id_kind": number.kind, "id_index": ctx.keyring.blind_index("id:" + number.kind, number.value),
        "id_encrypted": ctx.keyring.encrypt(number.value), "id_last4": number.value[-4:],
        "name_index": name_index, "name_encrypted": ctx.keyring.encrypt(name),
        "birth_date": birth_date, "now": now}).one()
    if row.name_index != name_index:
        return r.IdentityMismatch()
    if birth_date is not None and row.birth_date is not None and row.birth_date != birth_date:
        return r.IdentityMismatch()
    return LockedPatient(row.id, row.id_last4)


# ---- identities, addresses and locks -------------------------------------------------


def _validated_identity(ctx: ServiceContext, given: IdentityInput, today: date):
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


def _lock_patient(session: Session, patient_id: int) -> Patient:
    """Take the patient's row lock (an UPDATE) before anything is counted."""
    session.execute(
        update(Patient).where(Patient.id == patient_id).values(version=Patient.version + 1)
    )
    patient = session.get(Patient, patient_id, populate_existing=True)
    return patient


def _find_patient(ctx: ServiceContext, session: Session, given: IdentityInput) -> Patient | None | r.Refusal:
    number = identity.validate_id_number(
        given.kind, given.number, generic_pattern=ctx.settings.identity.generic_pattern
    )
    if isinstance(number, IdentityRefusal):
        return r.InvalidIdentity(field=number.field, reason=number.reason)
    id_index = ctx.keyring.blind_index("id:" + number.kind, number.value)
    return session.execute(select(Patient).where(Patient.id_index == id_index)).scalar_one_or_none()


def _normalised_address(ctx: ServiceContext, address: AddressInput) -> str | r.Refusal:
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


def _address_index(ctx: ServiceContext, kind: str, value: str) -> str:
    return ctx.keyring.blind_index("address:" + kind, value)


def _find_address(ctx: ServiceContext, session: Session, address: AddressInput) -> ChannelAddress | None:
    value = _normalised_address(ctx, address)
    if isinstance(value, r.Refusal):
        return None
    return session.execute(
        select(ChannelAddress).where(
            ChannelAddress.kind == address.kind,
            ChannelAddress.address_index == _address_index(ctx, address.kind, value),
        )
    ).scalar_one_or_none()


def _lock_address(ctx: ServiceContext, session: Session, address: AddressInput,
                  now: datetime) -> ChannelAddress | r.Refusal:
    locked = _lock_address_row(ctx, session.connection(), address, now)
    if isinstance(locked, r.Refusal):
        return locked
    return session.get(ChannelAddress, locked[0], populate_existing=True)


def _is_linked(session: Session, address_id: int, patient_id: int) -> bool:
    return session.execute(
        select(PatientLink.id).where(
            PatientLink.address_id == address_id, PatientLink.patient_id == patient_id)
    ).first() is not None


def _authorised_booking(ctx: ServiceContext, session: Session, code: str,
                        requester: Requester) -> tuple[Booking, Patient] | r.Refusal:
    booking = session.execute(
        select(Booking).where(Booking.code == _clean_code(code))
    ).scalar_one_or_none()
    if booking is None:
        return r.BookingNotFound()
    if isinstance(requester, AddressInput):
        address = _find_address(ctx, session, requester)
        allowed = address is not None and _is_linked(session, address.id, booking.patient_id)
    elif isinstance(requester, IdentityInput):
        patient = session.get(Patient, booking.patient_id)
        allowed = _id_number_matches(ctx, patient, requester.number, requester.kind)
    else:
        allowed = isinstance(requester, Staff)
    if not allowed:
        return r.NotPermitted()
    patient = _lock_patient(session, booking.patient_id)
    session.refresh(booking)  # re-read under the lock: a racing cancel may have won
    return booking, patient


def _id_number_matches(ctx: ServiceContext, patient: Patient, raw: str, kind: str | None = None) -> bool:
    number = identity.validate_id_number(
        kind or patient.id_kind, raw, generic_pattern=ctx.settings.identity.generic_pattern
    )
    if isinstance(number, IdentityRefusal):
        return False
    return ctx.keyring.blind_index("id:" + number.kind, number.value) == patient.id_index


def _clean_code(code: str) -> str:
    return "".join((code or "").split()).upper()[:32]


# ---- rules that need the database ----------------------------------------------------


def _department_rules(ctx: ServiceContext, session: Session, department: Department) -> tuple[Policy, ZoneInfo]:
    hospital = session.get(Hospital, department.hospital_id)
    policy = ctx.settings.policy.overridden(hospital.policy_overrides).overridden(
        department.policy_overrides
    )
    return policy, ZoneInfo(hospital.timezone)


def _suspend_if_due(ctx: ServiceContext, session: Session, patient: Patient, policy: Policy,
                    reason: str, now: datetime) -> bool:
    rule = rules.suspension_rules(policy)[reason]
    if not rule.limit:
        return False
    if reason == "no_shows":
        times_query = select(Booking.updated_at).where(
            Booking.patient_id == patient.id, Booking.status == NO_SHOW)
    else:
        times_query = select(Booking.cancelled_at).where(
            Booking.patient_id == patient.id, Booking.status == CANCELLED,
            Booking.cancel_reason == "patient")
    times = session.execute(times_query.where(
        (Booking.updated_at if reason == "no_shows" else Booking.cancelled_at) > now - rule.window
    )).scalars().all()
    last_start = session.execute(
        select(func.max(Suspension.starts_at)).where(
            Suspension.patient_id == patient.id, Suspension.rule == reason)
    ).scalar_one_or_none()
    if not rules.suspension_due(rule, times, now, last_start):
        return False
    suspension = Suspension(patient_id=patient.id, rule=reason, starts_at=now,
                            ends_at=now + rule.length)
    session.add(suspension)
    session.flush()
    audit.append(session, ctx.keyring.audit_key, actor=audit.SYSTEM,
                 action="suspension.started", subject=f"suspension:{suspension.id}",
                 details={"patient": _patient_ref(patient), "rule": reason,
                          "until": suspension.ends_at.isoformat()}, at=now)
    return True


# ---- views and actors ----------------------------------------------------------------


def _slot_view(slot: Slot) -> r.SlotView:
    return r.SlotView(slot.id, slot.department_id, slot.starts_at, slot.ends_at,
                      slot.visit_date, slot.capacity - slot.booked)


def _booking_view(ctx: ServiceContext, session: Session, booking: Booking, *,
                  slot: Slot | None = None, department: Department | None = None) -> r.BookingView:
    slot = slot or session.get(Slot, booking.slot_id)
    department = department or session.get(Department, booking.department_id)
    patient = session.get(Patient, booking.patient_id)
    policy, tz = _department_rules(ctx, session, department)
    return r.BookingView(
        code=booking.code, status=booking.status, patient_ref=patient.id,
        id_last4=patient.id_last4, department_id=department.id,
        department_code=department.code, department_names=dict(department.names),
        slot_id=slot.id, starts_at=slot.starts_at, ends_at=slot.ends_at,
        visit_date=booking.visit_date, channel=booking.channel,
        cancel_deadline=rules.cancel_deadline(policy, booking.visit_date, tz),
    )


def _bookings_of(ctx: ServiceContext, session: Session, patient_ids: Sequence[int],
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
    return [_booking_view(ctx, session, b) for b in session.execute(query).scalars()]


def _patient_ref(patient: Patient) -> str:
    """How logs and the audit trail name a patient: the row id and masked ID tail."""
    return f"{patient.id}/**{patient.id_last4}"


def _address_actor(address: ChannelAddress) -> str:
    return f"address:{address.kind}:{address.address_index[:12]}"


def _requester_actor(ctx: ServiceContext, requester: Requester, channel: str) -> audit.Actor:
    if isinstance(requester, Staff):
        return audit.Actor(f"staff:{requester.username}", channel)
    if isinstance(requester, AddressInput):
        value = _normalised_address(ctx, requester)
        if isinstance(value, str):
            return audit.Actor(
                f"address:{requester.kind}:{_address_index(ctx, requester.kind, value)[:12]}", channel)
    return audit.Actor("patient", channel)
