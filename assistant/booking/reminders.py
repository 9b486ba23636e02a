"""The day-before reminder, and the questions we send that wait for a "1" or a "2".

Rule: at the department's reminder time on the day before a visit, the address that
made each booking is asked "1 to keep it, 2 to release it", on the channel it booked
from and in its language. Addresses that sent STOP, and the console, are skipped.
Silence keeps the booking. "2" cancels it without counting against anyone (releasing
a place we asked about is what we want) and hands the place to the waitlist. A day's
reminders are one job, claimed by its key, so they go out once.

`pending_question` is what a turn asks before reading "1" or "2" as a menu choice: an
open waitlist offer first, then a reminder not yet answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.booking import audit, book, driver, jobs, policy as rules, release, results as r, waitlist
from assistant.booking.inputs import AddressInput, ServiceContext
from assistant.booking.models import (
    BOOKED,
    CANCELLED,
    Booking,
    ChannelAddress,
    Department,
    Hospital,
    OutboxMessage,
    Slot,
    FreedPlace,
)
from assistant.booking.records import (
    address_actor,
    booking_view,
    find_address,
    lock_address_by_id,
    lock_patient,
    rules_for,
)
from assistant.booking.uow import UnitOfWork

REMINDER = "reminder"  # assistant/notices.py holds the sentence


@dataclass
class ReminderReport:
    queued: int = 0
    skipped: int = 0


def send_reminders(ctx: ServiceContext, now: datetime, *, worker: str) -> ReminderReport:
    """Queue the reminders that are due, one job per department and visit day."""
    report = ReminderReport()
    with ctx.uow.read_only() as uow:
        departments = uow.session.execute(
            select(Department, Hospital).join(Hospital, Department.hospital_id == Hospital.id)).all()
        due = []
        for department, hospital in departments:
            policy, tz = rules_for(ctx, hospital.policy_overrides, department.policy_overrides, hospital.timezone)
            today = now.astimezone(tz).date()
            if now >= rules.local_moment(today, policy.reminder_time, tz):
                due.append((department.id, today + timedelta(days=1)))
    for department_id, visit_date in due:
        with ctx.uow() as uow:
            session = uow.session
            if not jobs.claim_job(session, f"reminders:{department_id}:{visit_date.isoformat()}",
                                  worker=worker, now=now):
                continue
            queued, skipped = _queue_day(ctx, session, department_id, visit_date, now)
            uow.commit()
        report.queued += queued
        report.skipped += skipped
    return report


def _queue_day(ctx: ServiceContext, session: Session, department_id: int, visit_date: date,
               now: datetime) -> tuple[int, int]:
    department = session.get(Department, department_id)
    rows = session.execute(
        select(Booking, Slot, ChannelAddress).join(Slot, Booking.slot_id == Slot.id)
        .join(ChannelAddress, Booking.booked_by_address_id == ChannelAddress.id)
        .where(Booking.department_id == department_id, Booking.visit_date == visit_date,
               Booking.status == BOOKED, Booking.reminded_at.is_(None), Slot.starts_at > now)
        .order_by(Booking.id)).all()
    queued = skipped = 0
    for booking, slot, address in rows:
        if address.kind == "console" or address.opted_out_at is not None:
            skipped += 1
            continue
        booking.reminded_at = now
        if address.question_until is None or address.question_until < slot.starts_at:
            address.question_until = slot.starts_at
        session.add(OutboxMessage(
            address_id=address.id, patient_id=booking.patient_id, message=REMINDER,
            params={"code": booking.code, "department": dict(department.names),
                    "starts_at": slot.starts_at.isoformat()},
            locale=address.locale, status="pending", attempts=0, created_at=now, channel=booking.channel))
        queued += 1
    if queued:
        audit.append(session, ctx.keyring.audit_key, actor=audit.SYSTEM, action="reminders.queued",
                     subject=f"department:{department_id}",
                     details={"visit_date": visit_date.isoformat(), "queued": queued, "skipped": skipped},
                     at=now)
    session.flush()
    return queued, skipped


# ---- questions waiting for an answer ----------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """An offer or a reminder this address may answer now, or an offer it let expire
    lately ("missed_offer": a late "1" is told, not taken for a menu choice)."""

    kind: str  # offer | reminder | missed_offer
    department_names: Mapping[str, str]
    starts_at: datetime
    asked_at: datetime
    expires_at: datetime
    code: str | None = None


def pending_question(ctx: ServiceContext, session: Session, address_id: int, now: datetime) -> Question | None:
    offer = waitlist.open_offer(session, address_id, now)
    if offer is not None:
        place = session.get(FreedPlace, offer.freed_id)
        slot = session.get(Slot, offer.slot_id)
        department = session.get(Department, slot.department_id)
        return Question("offer", dict(department.names), slot.starts_at, place.offered_at, offer.expires_at)
    row = _reminded_booking(session, address_id, now)
    if row is None:
        missed = waitlist.missed_offer(session, address_id, now)
        if missed is None:
            return None
        department = session.get(Department, missed.department_id)
        return Question("missed_offer", dict(department.names), release.visit_noon(missed.visit_date), missed.left_at,
                        missed.left_at)
    booking, slot, department = row
    return Question("reminder", dict(department.names), slot.starts_at, booking.reminded_at, slot.starts_at,
                    code=booking.code)


def _reminded_booking(session: Session, address_id: int, now: datetime) -> Any:
    return session.execute(
        select(Booking, Slot, Department).join(Slot, Booking.slot_id == Slot.id)
        .join(Department, Booking.department_id == Department.id)
        .where(Booking.booked_by_address_id == address_id, Booking.status == BOOKED,
               Booking.reminded_at.is_not(None), Booking.kept_at.is_(None), Slot.starts_at > now)
        .order_by(Booking.reminded_at.desc(), Booking.id.desc()).limit(1)).first()


def answer_reminder(ctx: ServiceContext, *, address: AddressInput, keep: bool, channel: str, now: datetime,
                    idempotency_key: str | None = None) -> r.Answered | r.Refusal:
    """"1" keeps the booking; "2" releases it to the waitlist, counted against nobody."""
    key = f"reminder:{idempotency_key}" if idempotency_key is not None else None

    def attempt(uow: UnitOfWork, db: driver.Cursor) -> Any:
        session = uow.session
        replay = book.replayed(db, key)
        if replay is not None:
            return replay
        found = find_address(ctx, session, address)
        row = _reminded_booking(session, found.id, now) if found is not None else None
        if row is None:
            return r.NothingToAnswer()
        lock_address_by_id(session, found.id)
        lock_patient(session, row[0].patient_id)
        booking = session.get(Booking, row[0].id, populate_existing=True)
        if booking.status != BOOKED or booking.kept_at is not None:
            return r.NothingToAnswer()
        actor = audit.Actor(address_actor(found), channel)
        if keep:
            booking.kept_at = now
            session.flush()
            entries = [audit.Entry(actor, "reminder.kept", f"booking:{booking.code}", {}, now)]
            return book.keep(ctx, uow, db, key, r.Answered("reminder", True, code=booking.code), entries, now)
        booking.status, booking.cancel_reason = CANCELLED, "released"
        booking.cancelled_at = booking.updated_at = now
        booking.counted_against = None
        session.flush()
        view = booking_view(ctx, session, booking)
        waitlist.free_place(ctx, session, booking.slot_id, "reminder", now)
        entries = [audit.Entry(actor, "booking.cancelled", f"booking:{booking.code}", {
            "patient": booking.patient_id, "by": "reminder", "counted_against": None}, now)]
        return book.keep(ctx, uow, db, key, r.Answered("reminder", False, code=booking.code, booking=view),
                         entries, now)

    return book.run_booking(ctx, key, now, attempt)
