"""The service layer: one function per use case, one transaction each.

Rule: every function here opens its own unit of work, applies the booking rules, writes
an audit event for each state change and commits once, returning a typed result or a
typed refusal from `results`. Booking itself lives in book.py and is re-exported here.
Locks are always taken in the same order (channel address, then patient, then slots)
so concurrent use cases cannot deadlock. Time is an argument; nothing here reads the
clock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assistant.booking import audit, book, driver, policy as rules, results as r, statements as sql
from assistant.booking.book import book_slot
from assistant.booking.events import claim_event
from assistant.booking.inputs import (
    AddressInput,
    IdentityInput,
    Requester,
    ServiceContext,
    Staff,
)
from assistant.booking.models import (
    BOOKED,
    CANCELLED,
    CHECKED_IN,
    NO_SHOW,
    Booking,
    Department,
    Patient,
    ProcessedEvent,
    Slot,
    Suspension,
)
from assistant.booking.queries import (
    AddressProfile,
    HospitalView,
    StaffBookingRow,
    active_suspensions,
    address_bookings,
    address_profile,
    availability,
    hospital,
    last_booked,
    linked_patients,
    list_departments,
    patient_bookings,
    release_of_day,
    staff_bookings,
)
from assistant.booking.records import (
    LockedPatient,
    address_actor,
    authorised_booking,
    booking_view,
    clean_code,
    department_rules,
    id_number_matches,
    is_linked,
    lock_address,
    lock_patient,
    patient_ref,
    requester_actor,
)
from assistant.booking.uow import UnitOfWork
from assistant.config import Policy

__all__ = [
    # use cases that change something (this module)
    "book_slot", "cancel_booking", "reschedule_booking", "check_in", "mark_no_shows",
    "lift_suspension", "remember_locale", "set_opted_out",
    # reads (queries.py) and inputs (inputs.py), re-exported so callers import one module
    "AddressProfile", "HospitalView", "StaffBookingRow", "active_suspensions",
    "address_bookings", "address_profile", "availability", "hospital", "last_booked",
    "linked_patients", "list_departments", "patient_bookings", "release_of_day",
    "staff_bookings", "AddressInput", "IdentityInput", "Requester", "ServiceContext", "Staff",
]

log = logging.getLogger(__name__)

# ---- cancelling and rescheduling (booking itself is in book.py) ------------------------


def _free_place(session: Session, slot_id: int) -> None:
    session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.booked > 0).values(booked=Slot.booked - 1)
    )



def cancel_booking(ctx: ServiceContext, *, code: str, requester: Requester, channel: str,
                   now: datetime, idempotency_key: str | None = None) -> r.Cancelled | r.Refusal:
    """Cancel before the deadline (staff may cancel at any time, for example when a
    clinic closes). Patient cancellations count towards the cancellation suspension."""

    def attempt(uow: UnitOfWork) -> r.Cancelled | r.Refusal:
        session = uow.session
        found = authorised_booking(ctx, session, code, requester)
        if isinstance(found, r.Refusal):
            return found
        booking, patient = found
        if booking.status != BOOKED:
            return r.NotActive(status=booking.status)
        slot = session.get(Slot, booking.slot_id)
        department = session.get(Department, booking.department_id)
        policy, tz = department_rules(ctx, session, department)
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
        actor = requester_actor(ctx, requester, channel)
        audit.append(session, ctx.keyring.audit_key, actor=actor, action="booking.cancelled",
                     subject=f"booking:{booking.code}",
                     details={"patient": patient_ref(patient), "by": booking.cancel_reason},
                     at=now)
        if not is_staff:
            _suspend_if_due(ctx, session, patient, policy, "cancellations", now)
        return r.Cancelled(booking_view(ctx, session, booking, slot=slot, department=department))

    return _run(ctx, "cancel", idempotency_key, now, attempt)


def reschedule_booking(ctx: ServiceContext, *, code: str, new_slot_id: int,
                       requester: Requester, channel: str, now: datetime,
                       idempotency_key: str | None = None) -> r.Rescheduled | r.Refusal:
    """Move a booking atomically: the new place is taken before the old one is freed,
    and either both happen or neither does. A reschedule is not a cancellation."""

    key = f"reschedule:{idempotency_key}" if idempotency_key is not None else None

    def attempt(uow: UnitOfWork, db: driver.Cursor) -> Any:
        replay = book.replayed(db, key)
        if replay is not None:
            return replay
        session = uow.session
        found = authorised_booking(ctx, session, code, requester)
        if isinstance(found, r.Refusal):
            return found
        old, patient = found
        if old.status != BOOKED:
            return r.NotActive(status=old.status)
        if old.slot_id == new_slot_id:
            return r.AlreadyBooked(code=old.code)
        department = session.get(Department, old.department_id)
        policy, tz = department_rules(ctx, session, department)
        deadline = rules.cancel_deadline(policy, old.visit_date, tz)
        if now >= deadline and not isinstance(requester, Staff):
            return r.CancellationClosed(deadline=deadline)
        slot = db.run(sql.SLOT_WITH_RULES, {"slot_id": new_slot_id}).first()
        if slot is None:
            return r.SlotNotFound()
        actor = requester_actor(ctx, requester, channel)
        staff = requester if isinstance(requester, Staff) else None
        # The new place is taken first: if it can't be, nothing changes.
        placed = book.book_locked(ctx, db, LockedPatient(patient.id, patient.id_last4), slot,
                                  channel, now, actor, address_id=old.booked_by_address_id,
                                  staff=staff, replacing_id=old.id)
        if isinstance(placed, r.Refusal):
            return placed
        new = placed.result.booking
        old.status = CANCELLED
        old.cancel_reason = "rescheduled"
        old.cancelled_at = now
        old.updated_at = now
        _free_place(session, old.slot_id)
        session.flush()
        entries = placed.entries + [audit.Entry(actor, "booking.rescheduled", f"booking:{old.code}",
                                                {"patient": patient_ref(patient), "to": new.code}, now)]
        return book.keep(ctx, uow, db, key, r.Rescheduled(booking=new, previous_code=old.code),
                         entries, now)

    return book.run_booking(ctx, key, now, attempt)


# ---- at the hospital -----------------------------------------------------------------


def check_in(ctx: ServiceContext, *, code: str, id_number: str, now: datetime,
             staff: Staff | None = None) -> r.CheckedIn | r.Refusal:
    """Check in on the visit day: the booking code and the ID number must match."""
    with ctx.uow() as uow:
        session = uow.session
        booking = session.execute(
            select(Booking).where(Booking.code == clean_code(code))
        ).scalar_one_or_none()
        if booking is None:
            return r.BookingNotFound()
        patient = lock_patient(session, booking.patient_id)
        session.refresh(booking)  # re-read under the lock: a racing cancel may have won
        if not id_number_matches(ctx, patient, id_number):
            # Same answer as an unknown code: a wrong ID must not confirm a code exists.
            return r.BookingNotFound()
        if booking.status != BOOKED:
            return r.NotActive(status=booking.status)
        department = session.get(Department, booking.department_id)
        _, tz = department_rules(ctx, session, department)
        if now.astimezone(tz).date() != booking.visit_date:
            return r.NotVisitDay(visit_date=booking.visit_date)
        booking.status = CHECKED_IN
        booking.checked_in_at = now
        booking.updated_at = now
        session.flush()
        actor = audit.Actor(f"staff:{staff.username}", "desk") if staff else audit.Actor("kiosk", "desk")
        audit.append(session, ctx.keyring.audit_key, actor=actor, action="booking.checked_in",
                     subject=f"booking:{booking.code}",
                     details={"patient": patient_ref(patient)}, at=now)
        view = booking_view(ctx, session, booking)
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
            patient = lock_patient(session, patient_id)
            marked_here = 0
            policy = None
            for booking_id, department_id in items:
                booking = session.get(Booking, booking_id)
                department = session.get(Department, department_id)
                policy, tz = department_rules(ctx, session, department)
                if booking.status != BOOKED or now.astimezone(tz).date() <= booking.visit_date:
                    continue  # the visit day is not over yet in the hospital's zone
                booking.status = NO_SHOW
                booking.updated_at = now
                marked_here += 1
                audit.append(session, ctx.keyring.audit_key, actor=audit.SYSTEM,
                             action="booking.no_show", subject=f"booking:{booking.code}",
                             details={"patient": patient_ref(patient)}, at=now)
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
        patient = lock_patient(session, suspension.patient_id)
        session.refresh(suspension)  # re-read under the lock: another lift may have won
        if suspension.lifted_at is not None:
            return r.SuspensionNotFound()
        suspension.lifted_at = now
        suspension.lifted_by = staff.username
        suspension.lift_reason = reason[:500]
        session.flush()
        audit.append(session, ctx.keyring.audit_key,
                     actor=audit.Actor(f"staff:{staff.username}", "admin"),
                     action="suspension.lifted", subject=f"suspension:{suspension.id}",
                     details={"patient": patient_ref(patient), "reason": reason[:500]}, at=now)
        uow.commit()
        return r.SuspensionLifted(suspension.id)


# ---- addresses: language and opt-out ----------------------------------------------------


def remember_locale(ctx: ServiceContext, address: AddressInput, locale: str, *,
                    patient_ref: int | None, now: datetime) -> None:
    """Remember a language for the address and, if it is linked, for the patient."""
    with ctx.uow() as uow:
        session = uow.session
        found = lock_address(ctx, session, address, now)
        if isinstance(found, r.Refusal):
            return
        found.locale = locale
        if patient_ref is not None and is_linked(session, found.id, patient_ref):
            session.execute(update(Patient).where(Patient.id == patient_ref).values(locale=locale))
        uow.commit()


def set_opted_out(ctx: ServiceContext, address: AddressInput, opted_out: bool, *,
                  now: datetime) -> None:
    """STOP and START: stored, audited and honoured by every channel."""
    with ctx.uow() as uow:
        session = uow.session
        found = lock_address(ctx, session, address, now)
        if isinstance(found, r.Refusal):
            return
        if (found.opted_out_at is not None) == opted_out:
            return
        found.opted_out_at = now if opted_out else None
        session.flush()
        audit.append(session, ctx.keyring.audit_key,
                     actor=audit.Actor(address_actor(found), address.kind),
                     action="address.opted_out" if opted_out else "address.opted_in",
                     subject=address_actor(found), details={}, at=now)
        uow.commit()


# ---- transactions and idempotency ----------------------------------------------------


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
                 details={"patient": patient_ref(patient), "rule": reason,
                          "until": suspension.ends_at.isoformat()}, at=now)
    return True


