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
from datetime import date, datetime, timedelta
from typing import Any, Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assistant.booking import audit, book, driver, outbox, policy as rules, results as r, statements as sql, waitlist
from assistant.booking.book import book_slot
from assistant.booking.phone_links import PhoneLinked, link_phone
from assistant.booking.events import claim_event
from assistant.booking.inputs import (
    AddressInput,
    CodeHolder,
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
    PatientLink,
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
    open_days,
    pending_question,
    booking_for_holder,
    find_bookings_of_identity,
    flagged_identities,
    release_of_day,
    staff_bookings,
)
from assistant.booking.records import (
    LockedPatient,
    TypedName,
    address_actor,
    authorised_booking,
    booking_view,
    clean_code,
    department_rules,
    find_address,
    id_number_matches,
    is_linked,
    lock_address,
    lock_address_by_id,
    lock_patient,
    patient_ref,
    requester_actor,
    verified_own_address,
)
from assistant.booking.uow import UnitOfWork
from assistant.config import Policy

__all__ = [
    # use cases that change something (this module)
    "book_slot", "cancel_booking", "reschedule_booking", "check_in", "mark_no_shows",
    "lift_suspension", "note_refusal", "record_export", "remember_locale", "remember_slow_speech", "set_opted_out",
    # a Telegram chat that shared its own number (phone_links.py)
    "link_phone", "PhoneLinked",
    # reads (queries.py) and inputs (inputs.py), re-exported so callers import one module
    "AddressProfile", "HospitalView", "StaffBookingRow", "active_suspensions",
    "address_bookings", "address_profile", "availability", "open_days", "hospital", "last_booked",
    "pending_question",
    "linked_patients", "list_departments", "booking_for_holder", "release_of_day",
    "staff_bookings", "find_bookings_of_identity", "flagged_identities", "AddressInput", "CodeHolder",
    "IdentityInput", "Requester", "ServiceContext", "Staff",
]

log = logging.getLogger(__name__)

# ---- cancelling and rescheduling (booking itself is in book.py) ------------------------



def cancel_booking(ctx: ServiceContext, *, code: str, requester: Requester, channel: str,
                   now: datetime, idempotency_key: str | None = None) -> r.Cancelled | r.Refusal:
    """Cancel before the deadline (staff may cancel at any time, for example when a
    clinic closes). A patient's cancellation counts towards a suspension of whoever
    caused it (see `liable_for`); the patient is told when someone else cancels."""

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
        if not is_staff:
            booking.counted_against = liable_for(session, booking)
        session.flush()
        waitlist.free_place(ctx, session, slot.id, "cancelled", now)
        actor = requester_actor(ctx, session, requester, channel)
        audit.append(session, ctx.keyring.audit_key, actor=actor, action="booking.cancelled",
                     subject=f"booking:{booking.code}",
                     details={"patient": patient_ref(patient), "by": booking.cancel_reason,
                              "counted_against": booking.counted_against},
                     at=now)
        _tell_patient(ctx, session, booking, outbox.CANCELLED_FOR_YOU, requester, actor, now)
        _suspend_liable_if_due(ctx, session, booking, policy, "cancellations", now)
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
        actor = requester_actor(ctx, session, requester, channel)
        staff = requester if isinstance(requester, Staff) else None
        # The new place is taken first: if it can't be, nothing changes. The booking keeps
        # its owner and its name, whoever moves it.
        placed = book.book_locked(ctx, db, LockedPatient(patient.id), slot, channel, now, actor,
                                  name=TypedName(old.name_encrypted, old.name_index)
                                  if old.name_encrypted else None,
                                  address_id=old.booked_by_address_id, staff=staff,
                                  replacing_id=old.id,
                                  acting_address_id=_acting_address_id(ctx, session, requester),
                                  notice=outbox.MOVED_FOR_YOU)
        if isinstance(placed, r.Refusal):
            return placed
        new = placed.result.booking
        old.status = CANCELLED
        old.cancel_reason = "rescheduled"
        old.cancelled_at = now
        old.updated_at = now
        session.flush()
        waitlist.free_place(ctx, session, old.slot_id, "rescheduled", now)
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
        verified = _verify_own_address(ctx, session, booking, actor, now)
        view = booking_view(ctx, session, booking)
        names = booking_names(ctx, session, booking)
        uow.commit()
        return r.CheckedIn(view, verified_address=verified, name=names[0],
                           other_names=names[1], checksum_verified=patient.checksum_verified)


def mark_no_shows(ctx: ServiceContext, *, now: datetime, day: date | None = None,
                  staff: Staff | None = None) -> r.NoShowReport:
    """Every booking still 'booked' on a visit day that is over (`day` only, if given)
    becomes a no-show, and whoever it counts against (`liable_for`) is suspended on
    reaching the no-show limit. Safe to run repeatedly. `staff`: who asked (the audit
    trail names them; the nightly job is the system)."""
    actor = audit.Actor(f"staff:{staff.username}", "desk") if staff else audit.SYSTEM
    marked = 0
    due: dict[tuple[str, int], Policy] = {}  # (identity|address, id) -> policy to apply
    with ctx.uow() as uow:
        session = uow.session
        candidates = session.execute(
            select(Booking.id, Booking.patient_id, Booking.booked_by_address_id, Department.id)
            .join(Department, Booking.department_id == Department.id)
            .where(Booking.status == BOOKED, Booking.visit_date < now.date() + timedelta(days=1),
                   *([Booking.visit_date == day] if day is not None else []))
            .order_by(Booking.patient_id, Booking.id)
        ).all()
        # Locks in the service layer's order: every owning address, then each patient.
        for address_id in sorted({row[2] for row in candidates if row[2] is not None}):
            lock_address_by_id(session, address_id)
        by_patient: dict[int, list[tuple[int, int]]] = {}
        for booking_id, patient_id, _, department_id in candidates:
            by_patient.setdefault(patient_id, []).append((booking_id, department_id))
        for patient_id, items in by_patient.items():
            patient = lock_patient(session, patient_id)
            for booking_id, department_id in items:
                booking = session.get(Booking, booking_id)
                department = session.get(Department, department_id)
                policy, tz = department_rules(ctx, session, department)
                if booking.status != BOOKED or now.astimezone(tz).date() <= booking.visit_date:
                    continue  # the visit day is not over yet in the hospital's zone
                booking.status = NO_SHOW
                booking.updated_at = now
                booking.counted_against = liable_for(session, booking)
                marked += 1
                audit.append(session, ctx.keyring.audit_key, actor=actor,
                             action="booking.no_show", subject=f"booking:{booking.code}",
                             details={"patient": patient_ref(patient),
                                      "counted_against": booking.counted_against}, at=now)
                subject = _liable_subject(booking)
                if subject is not None:
                    due[subject] = policy
        session.flush()
        suspended = {"identity": 0, "address": 0}
        for (scope, subject_id), policy in due.items():
            if _suspend_if_due(ctx, session, scope, subject_id, policy, "no_shows", now):
                suspended[scope] += 1
        uow.commit()
    return r.NoShowReport(marked=marked, suspended_patients=suspended["identity"],
                          suspended_addresses=suspended["address"])


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
        # Take the suspended subject's row lock: two staff lifting at once lift it once.
        if suspension.address_id is not None:
            lock_address_by_id(session, suspension.address_id)
            subject = {"address": suspension.address_id}
        else:
            subject = {"patient": patient_ref(lock_patient(session, suspension.patient_id))}
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
                     details={**subject, "reason": reason[:500]}, at=now)
        uow.commit()
        return r.SuspensionLifted(suspension.id)


def note_refusal(ctx: ServiceContext, address: AddressInput, rule: str, *, now: datetime) -> None:
    """Count a refusal of this address in the current clock hour, for the staff's
    flagged activity. At the hospital's `refusals_per_hour` the address is throttled
    until the hour ends: a bot trying identities or limits gets no more tries, and a
    person gets a kind "please wait". Inside a turn it joins the turn's transaction."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    with ctx.uow() as uow:
        found = lock_address(ctx, uow.session, address, now)
        if isinstance(found, r.Refusal):
            return  # an address that can't be read is counted nowhere
        refusals = driver.Cursor(uow.session.connection()).run(sql.COUNT_REFUSAL, {
            "address_id": found.id, "hour": hour, "rule": rule[:40]}).scalar()
        limit = _hospital_policy(ctx, uow.session).refusals_per_hour
        if limit and refusals >= limit and (found.throttled_until is None or found.throttled_until <= now):
            found.throttled_until = hour + timedelta(hours=1)
            uow.session.flush()
            audit.append(uow.session, ctx.keyring.audit_key, actor=audit.SYSTEM, action="address.throttled",
                         subject=address_actor(found), details={"refusals": refusals, "rule": rule[:40],
                                                                "until": found.throttled_until.isoformat()},
                         at=now)
        uow.commit()


def _hospital_policy(ctx: ServiceContext, session: Session) -> Policy:
    found = hospital(ctx)
    return ctx.settings.policy.overridden(found.policy_overrides if found is not None else None)


def record_export(ctx: ServiceContext, *, day: date, rows: int, staff: Staff, now: datetime) -> None:
    """A day's bookings left CareLine in a file: who took them, and how many."""
    with ctx.uow() as uow:
        audit.append(uow.session, ctx.keyring.audit_key, actor=audit.Actor(f"staff:{staff.username}", "web"),
                     action="bookings.exported", subject=f"day:{day.isoformat()}", details={"rows": rows}, at=now)
        uow.commit()


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


def remember_slow_speech(ctx: ServiceContext, address: AddressInput, *, now: datetime) -> None:
    """The caller asked for slower speech: every later call from this number gets it."""
    with ctx.uow() as uow:
        found = lock_address(ctx, uow.session, address, now)
        if isinstance(found, r.Refusal) or found.slow_speech:
            return
        found.slow_speech = True
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


# ---- consequences: who a cancellation or no-show counts against -----------------------


def liable_for(session: Session, booking: Booking) -> str | None:
    """A cancellation or no-show counts against the identity only when the booking came
    from an address the desk verified as the patient's own, or from the desk itself;
    otherwise against the address that made it, which is then the one suspended. So
    booking in someone's name and not coming can't get her suspended."""
    if booking.booked_by_address_id is None:
        return "identity" if booking.booked_by_staff else None
    if verified_own_address(session, booking.patient_id, booking.booked_by_address_id):
        return "identity"
    return "address"


def _liable_subject(booking: Booking) -> tuple[str, int] | None:
    if booking.counted_against == "identity":
        return ("identity", booking.patient_id)
    if booking.counted_against == "address" and booking.booked_by_address_id is not None:
        return ("address", booking.booked_by_address_id)
    return None


def _suspend_liable_if_due(ctx: ServiceContext, session: Session, booking: Booking,
                           policy: Policy, reason: str, now: datetime) -> bool:
    subject = _liable_subject(booking)
    if subject is None:
        return False
    return _suspend_if_due(ctx, session, subject[0], subject[1], policy, reason, now)


def _suspend_if_due(ctx: ServiceContext, session: Session, scope: str, subject_id: int,
                    policy: Policy, reason: str, now: datetime) -> bool:
    """Suspend an identity or an address when the cancellations or no-shows counted
    against it reach the rule's limit within its window."""
    rule = rules.suspension_rules(policy)[reason]
    if not rule.limit:
        return False
    counted = (Booking.patient_id == subject_id) if scope == "identity" else (
        Booking.booked_by_address_id == subject_id)
    moment = Booking.updated_at if reason == "no_shows" else Booking.cancelled_at
    status = NO_SHOW if reason == "no_shows" else CANCELLED
    times = session.execute(
        select(moment).where(counted, Booking.counted_against == scope, Booking.status == status,
                             moment > now - rule.window)
    ).scalars().all()
    owner = (Suspension.patient_id if scope == "identity" else Suspension.address_id) == subject_id
    last_start = session.execute(
        select(func.max(Suspension.starts_at)).where(owner, Suspension.rule == reason)
    ).scalar_one_or_none()
    if not rules.suspension_due(rule, times, now, last_start):
        return False
    suspension = Suspension(patient_id=subject_id if scope == "identity" else None,
                            address_id=subject_id if scope == "address" else None,
                            rule=reason, starts_at=now, ends_at=now + rule.length)
    session.add(suspension)
    session.flush()
    audit.append(session, ctx.keyring.audit_key, actor=audit.SYSTEM,
                 action="suspension.started", subject=f"suspension:{suspension.id}",
                 details={"scope": scope,
                          "patient" if scope == "identity" else "address": subject_id,
                          "rule": reason, "until": suspension.ends_at.isoformat()}, at=now)
    return True


# ---- the patient hears about it ---------------------------------------------------------


def _tell_patient(ctx: ServiceContext, session: Session, booking: Booking, message: str,
                  requester: Requester, actor: audit.Actor, now: datetime) -> None:
    acting = _acting_address_id(ctx, session, requester)
    if outbox.tell_patient(session, booking, message, acting_address_id=acting,
                           by_staff=isinstance(requester, Staff), now=now):
        audit.append(session, ctx.keyring.audit_key, actor=actor, action="notice.queued",
                     subject=f"booking:{booking.code}",
                     details={"patient": booking.patient_id, "notice": message}, at=now)


def _acting_address_id(ctx: ServiceContext, session: Session, requester: Requester) -> int | None:
    """The address acting: a code holder writing from the patient's own phone is her."""
    address = requester.via if isinstance(requester, CodeHolder) else requester
    if isinstance(address, AddressInput):
        found = find_address(ctx, session, address)
        return found.id if found is not None else None
    return None


def _verify_own_address(ctx: ServiceContext, session: Session, booking: Booking,
                        actor: audit.Actor, now: datetime) -> bool:
    """A check-in against the ID card verifies the address that booked "for me" as the
    patient's own: from then on its cancellations and no-shows count against her."""
    if booking.booked_by_address_id is None:
        return False
    link = session.execute(select(PatientLink).where(
        PatientLink.address_id == booking.booked_by_address_id,
        PatientLink.patient_id == booking.patient_id)).scalar_one_or_none()
    if link is None or link.relation != "self" or link.verified_at is not None:
        return False
    link.verified_at = now
    link.verified_by = actor.name
    audit.append(session, ctx.keyring.audit_key, actor=actor, action="link.verified",
                 subject=f"patient:{booking.patient_id}",
                 details={"address": booking.booked_by_address_id}, at=now)
    return True


def booking_names(ctx: ServiceContext, session: Session, booking: Booking) -> tuple[str, tuple[str, ...]]:
    """The name typed for this booking and the other names used for the identity, for
    the desk to compare with the ID card."""
    rows = session.execute(
        select(Booking.name_encrypted, Booking.name_index)
        .where(Booking.patient_id == booking.patient_id, Booking.name_encrypted.is_not(None))
        .order_by(Booking.id)
    ).all()
    own = ctx.keyring.decrypt(booking.name_encrypted) or ""
    others: dict[str, str] = {}
    for encrypted, index in rows:
        if index != booking.name_index and index not in others:
            others[index] = ctx.keyring.decrypt(encrypted) or ""
    return own, tuple(others.values())
