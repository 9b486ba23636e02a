"""Schedules: weekly templates and exceptions turned into concrete slots.

Rule: generation is a reconciliation over a date range and safe to repeat. It creates
missing slots, updates capacity and release time, and removes slots that no longer
match a template, but it never deletes a slot that has bookings and never sets a
capacity below the places already booked. Such conflicts are reported for staff.
Every slot it creates or changes is recorded with its capacity in the audit trail, and
every slot it removes by id, so `reconcile.py` can rebuild capacities from the trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from assistant.booking import audit, policy as rules, waitlist
from assistant.booking.models import (
    Booking,
    Department,
    Draw,
    Hospital,
    ScheduleException,
    ScheduleTemplate,
    Slot,
)
from assistant.config import Policy


@dataclass(frozen=True)
class PlannedSlot:
    template_id: int
    department_id: int
    doctor_id: int | None
    starts_at: datetime
    ends_at: datetime
    visit_date: date
    capacity: int
    release_at: datetime  # first-come: the sale; draw: the draw
    release_mode: str = "first_come"
    requests_open_at: datetime | None = None


@dataclass
class GenerationReport:
    created: int = 0
    updated: int = 0
    removed: int = 0
    # Slots whose patients staff must contact: off the schedule or over the new capacity.
    kept_with_bookings: list[int] = field(default_factory=list)


# Slots recorded per "slots.generated" event: a large generation is split so that no
# single JSON value is huge.
AUDIT_SLOTS_PER_EVENT = 500


@dataclass
class _Recorded:
    """What generation did to each slot, for the audit trail."""

    changed: list[Slot] = field(default_factory=list)  # created or updated; ids after flush
    removed: list[int] = field(default_factory=list)


def plan_day(template: ScheduleTemplate, day: date, exceptions: list[ScheduleException],
             policy: Policy, tz: ZoneInfo) -> list[PlannedSlot]:
    """The slots one template gives on one local day, after closures and changed hours."""
    if day.weekday() != template.weekday or not template.active:
        return []
    start, end = template.start_time, template.end_time
    for exception in exceptions:
        if exception.kind == "closed":
            return []
        if exception.kind == "hours" and exception.start_time and exception.end_time:
            # Changed hours narrow (or move) the day: keep the template's slots inside them.
            start, end = max(start, exception.start_time), min(end, exception.end_time)
    days_ahead = template.release_days_ahead if template.release_days_ahead is not None else policy.open_days_ahead
    release_time = template.release_time or policy.release_time
    release_at = rules.release_moment(day, days_ahead, release_time, tz)
    mode = template.release_mode or policy.release_mode
    requests_open_at = None
    if mode == "draw":
        requests_open_at = release_at
        release_at = rules.draw_moment(release_at, template.draw_time or policy.draw_time, tz)
    planned = []
    cursor = datetime.combine(day, start, tzinfo=tz)
    day_end = datetime.combine(day, end, tzinfo=tz)
    length = timedelta(minutes=template.slot_minutes)
    while cursor + length <= day_end:
        planned.append(PlannedSlot(
            template.id, template.department_id, template.doctor_id, cursor,
            cursor + length, day, template.capacity, release_at, mode, requests_open_at,
        ))
        cursor += length
    return planned


def generate_slots(session: Session, *, base_policy: Policy, start: date, days: int,
                   audit_key: bytes, now: datetime) -> GenerationReport:
    """Reconcile slots for `days` local days from `start` (inclusive)."""
    report = GenerationReport()
    end = start + timedelta(days=days - 1)
    templates = session.execute(
        select(ScheduleTemplate, Department, Hospital)
        .join(Department, ScheduleTemplate.department_id == Department.id)
        .join(Hospital, Department.hospital_id == Hospital.id)
        .order_by(ScheduleTemplate.id)
    ).all()
    exceptions = session.execute(
        select(ScheduleException).where(ScheduleException.day >= start, ScheduleException.day <= end)
    ).scalars().all()
    planned: dict[tuple[int, datetime], PlannedSlot] = {}
    rules_of = {}
    for template, department, hospital in templates:
        tz = ZoneInfo(hospital.timezone)
        policy = base_policy.overridden(hospital.policy_overrides).overridden(department.policy_overrides)
        rules_of[department.id] = (policy, tz)
        active = template.active and department.active
        for offset in range(days):
            day = start + timedelta(days=offset)
            relevant = [
                e for e in exceptions
                if e.day == day and e.hospital_id == hospital.id
                and e.department_id in (None, department.id)
            ]
            if active:
                for slot in plan_day(template, day, relevant, policy, tz):
                    planned[(slot.template_id, slot.starts_at)] = slot

    existing = session.execute(
        select(Slot).where(
            Slot.template_id.is_not(None), Slot.visit_date >= start, Slot.visit_date <= end
        )
    ).scalars().all()
    # A day whose draw is open or done keeps how and when it was released: its requests
    # were taken, and its commitment published, for that. A slot added to a drawn day is
    # on sale like the draw's leftovers.
    draws = session.execute(select(Draw.department_id, Draw.visit_date, Draw.status).where(
        Draw.visit_date >= start, Draw.visit_date <= end)).all()
    drawn_days = {(department, day) for department, day, status in draws if status == "drawn"}
    released_by_draw = {(department, day) for department, day, _ in draws}
    seen = set()
    recorded = _Recorded()
    for slot in existing:
        key = (slot.template_id, slot.starts_at)
        wanted = planned.get(key)
        if wanted is None:
            _remove_or_close(session, slot, report, recorded)
            continue
        seen.add(key)
        # A capacity staff set by hand stays; the schedule's otherwise, never below the
        # places booked or held.
        capacity = slot.capacity if slot.capacity_set_by_staff else max(wanted.capacity, slot.booked + slot.held)
        on_sale = slot.release_at <= now and (slot.release_mode == "first_come" or slot.drawn)
        if on_sale and capacity > slot.capacity:
            policy, tz = rules_of[slot.department_id]
            waitlist.hold_added_places(session, slot, capacity - slot.capacity,
                                       rules.next_release(policy, tz, now), now)
        settled = slot.drawn or (slot.department_id, slot.visit_date) in released_by_draw
        release_at = slot.release_at if settled else wanted.release_at
        if (slot.capacity, slot.release_at, slot.ends_at) != (capacity, release_at, wanted.ends_at):
            slot.capacity, slot.release_at, slot.ends_at = capacity, release_at, wanted.ends_at
            report.updated += 1
            recorded.changed.append(slot)
        if not settled and (slot.release_mode, slot.requests_open_at) != (
                wanted.release_mode, wanted.requests_open_at):
            slot.release_mode, slot.requests_open_at = wanted.release_mode, wanted.requests_open_at
        if wanted.capacity < slot.booked:
            report.kept_with_bookings.append(slot.id)
    for key, wanted in sorted(planned.items(), key=lambda item: (item[1].starts_at, item[0][0])):
        if key in seen:
            continue
        new = Slot(
            department_id=wanted.department_id, doctor_id=wanted.doctor_id,
            template_id=wanted.template_id, starts_at=wanted.starts_at, ends_at=wanted.ends_at,
            visit_date=wanted.visit_date, capacity=wanted.capacity, booked=0,
            release_at=wanted.release_at, release_mode=wanted.release_mode,
            requests_open_at=wanted.requests_open_at,
            drawn=(wanted.department_id, wanted.visit_date) in drawn_days,
        )
        session.add(new)
        recorded.changed.append(new)
        report.created += 1
    session.flush()
    if report.created or report.updated or report.removed:
        subject = f"slots:{start.isoformat()}..{end.isoformat()}"
        summary = {"created": report.created, "updated": report.updated,
                   "removed": report.removed, "kept_with_bookings": report.kept_with_bookings}
        audit.defer(session, audit_key, [
            audit.Entry(audit.SYSTEM, "slots.generated", subject, details, now)
            for details in generation_details(summary, recorded.removed,
                                              {slot.id: slot.capacity for slot in recorded.changed})
        ])
    return report


def generation_details(summary: dict, removed: list[int], capacities: dict[int, int],
                       per_event: int = AUDIT_SLOTS_PER_EVENT) -> list[dict]:
    """The details of the "slots.generated" events for one run: the summary counts,
    then "removed_slots" (ids deleted) and "capacities" ({"<slot id>": capacity} of every
    slot created or changed), at most `per_event` slots an event. Removed ids come first,
    so a reader applying the events in order sees a reused id's removal before its new
    capacity. "removed" stays the count it always was."""
    items: list[tuple[str, int, int | None]] = [("removed", slot_id, None) for slot_id in removed]
    items += [("capacity", slot_id, capacity) for slot_id, capacity in sorted(capacities.items())]
    chunks = [items[i:i + per_event] for i in range(0, len(items), per_event)] or [[]]
    events = []
    for number, chunk in enumerate(chunks, start=1):
        details = dict(summary) if number == 1 else {}
        details["removed_slots"] = [slot_id for kind, slot_id, _ in chunk if kind == "removed"]
        details["capacities"] = {str(slot_id): capacity for kind, slot_id, capacity in chunk
                                 if kind == "capacity"}
        if len(chunks) > 1:
            details["part"] = [number, len(chunks)]
        events.append(details)
    return events


def _remove_or_close(session: Session, slot: Slot, report: GenerationReport,
                     recorded: _Recorded) -> None:
    # Places held for the waitlist go with the slot; a patient offered one waits again.
    waitlist.withdraw_places(session, slot)
    has_bookings = session.execute(select(exists().where(Booking.slot_id == slot.id))).scalar()
    if has_bookings:
        # Keep it (its bookings refer to it), but let nobody else in.
        if slot.capacity != slot.booked:
            slot.capacity = slot.booked
            report.updated += 1
            recorded.changed.append(slot)
        if slot.booked:  # only patients still holding a place need a call
            report.kept_with_bookings.append(slot.id)
        return
    session.execute(delete(Slot).where(Slot.id == slot.id))
    recorded.removed.append(slot.id)
    report.removed += 1
