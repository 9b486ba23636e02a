"""Reconciliation: the bookings and slots as the audit trail tells them, against the tables.

Rule: reads only. The audit chain (audit.verify) proves the events were not edited; this
proves the tables say what the events say. From the events alone it rebuilds each
booking's patient, slot and status, and each slot's capacity and places booked, then
names every difference in plain words. Run it in a read-only unit of work, after
`consistent_reads`, so that every query sees the same moment.

What the events say:

- "booking.created" (subject "booking:<code>", details patient, slot): booked.
- "booking.cancelled", and "booking.rescheduled" for the old booking (its new booking
  has its own "booking.created"): cancelled, which frees the place.
- "booking.checked_in", "booking.no_show": those statuses; they still hold the place.
- "slots.generated": "capacities" {"<slot id>": capacity} of every slot created or
  changed, "removed_slots" [ids] deleted (schedule.py).
- "slot.capacity_changed": {"slot": id, "capacity": n}, for a capacity set by hand.

The "patient" detail is a patient row id: an integer, or in older events the string
"<id>/**<last 4 of the ID>". Slots that no event records a capacity for (created before
capacities were recorded, or outside slot generation) are compared on places booked only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from assistant.booking import audit
from assistant.booking.models import (
    ACTIVE_STATUSES,
    BOOKED,
    CANCELLED,
    CHECKED_IN,
    NO_SHOW,
    AuditEvent,
    Booking,
    Slot,
)

HOLDS_PLACE = frozenset(ACTIVE_STATUSES)  # booked, checked in, no-show; cancelled frees it

CREATED = "booking.created"
STATUS_AFTER = {
    "booking.cancelled": CANCELLED,
    "booking.rescheduled": CANCELLED,
    "booking.checked_in": CHECKED_IN,
    "booking.no_show": NO_SHOW,
}
SLOTS_GENERATED = "slots.generated"
CAPACITY_CHANGED = "slot.capacity_changed"
ACTIONS = (CREATED, *STATUS_AFTER, SLOTS_GENERATED, CAPACITY_CHANGED)

MISSING_EVENTS = "events missing — an older audit head may have been restored"
_BATCH = 2000


@dataclass
class _Booking:
    """One booking as the audit trail tells it."""

    patient: int | None
    slot: int | None
    status: str = BOOKED


@dataclass
class _Trail:
    bookings: dict[str, _Booking] = field(default_factory=dict)
    capacities: dict[int, int] = field(default_factory=dict)  # recorded slots only
    removed: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # the trail disagreeing with itself


@dataclass(frozen=True)
class Reconciliation:
    bookings: int  # rows in the booking table
    slots: int  # rows in the slot table
    slots_with_capacity: int  # of those, slots whose capacity the trail records
    differences: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class Check:
    """`assistant audit verify`: the chain and the reconciliation, read at one moment."""

    chain: audit.AuditReport
    reconciliation: Reconciliation

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.reconciliation.ok


def consistent_reads(session: Session) -> None:
    """Make the unit of work's queries see one moment. Call it before any other query.
    SQLite's read transaction already does (WAL: the snapshot is taken at the first
    read); PostgreSQL's READ COMMITTED would let a booking committed between two queries
    look like a booking without events, so the transaction is made REPEATABLE READ
    (only possible before its first query: a session already reading is left as it is)."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


def check(session: Session, key: bytes) -> Check:
    """Verify the chain and reconcile the tables with it, in one snapshot."""
    consistent_reads(session)
    return Check(chain=audit.verify(session, key), reconciliation=reconcile(session))


def reconcile(session: Session) -> Reconciliation:
    """Every difference between the tables and what the audit trail says they hold."""
    trail = rebuild(_relevant_events(session))
    booking_count, booking_differences = _booking_differences(session, trail)
    slot_count, with_capacity, slot_differences = _slot_differences(session, trail)
    return Reconciliation(
        bookings=booking_count, slots=slot_count, slots_with_capacity=with_capacity,
        differences=tuple(trail.problems + booking_differences + slot_differences))


# ---- the trail -------------------------------------------------------------------------


def _relevant_events(session: Session) -> Iterable[tuple[int, str, str, Any]]:
    return session.execute(
        select(AuditEvent.id, AuditEvent.action, AuditEvent.subject, AuditEvent.details)
        .where(AuditEvent.action.in_(ACTIONS))
        .order_by(AuditEvent.id)
        .execution_options(yield_per=_BATCH)
    )


def rebuild(events: Iterable[tuple[int, str, str, Any]]) -> _Trail:
    """Apply events (id, action, subject, details) in order; other actions are ignored."""
    trail = _Trail()
    for event_id, action, subject, details in events:
        details = details if isinstance(details, dict) else {}
        if action == CREATED:
            _created(trail, event_id, subject, details)
        elif action in STATUS_AFTER:
            _status_changed(trail, event_id, action, subject, details)
        elif action == SLOTS_GENERATED:
            for slot_id in details.get("removed_slots") or ():
                slot = _int(slot_id)
                if slot is not None:
                    trail.capacities.pop(slot, None)
                    trail.removed.add(slot)
            for slot_id, capacity in (details.get("capacities") or {}).items():
                _set_capacity(trail, event_id, slot_id, capacity)
        elif action == CAPACITY_CHANGED:
            _set_capacity(trail, event_id, details.get("slot"), details.get("capacity"))
    return trail


def _created(trail: _Trail, event_id: int, subject: str, details: dict) -> None:
    code = _code(subject)
    if code is None:
        trail.problems.append(f"event {event_id}: {CREATED} names no booking ({subject!r})")
        return
    if code in trail.bookings:
        trail.problems.append(f"booking {code} is created twice in the audit trail "
                              f"(again in event {event_id})")
    trail.bookings[code] = _Booking(patient=patient_id(details.get("patient")),
                                    slot=_int(details.get("slot")))


def _status_changed(trail: _Trail, event_id: int, action: str, subject: str,
                    details: dict) -> None:
    code = _code(subject)
    booking = trail.bookings.get(code) if code is not None else None
    if booking is None:
        trail.problems.append(f"booking {code or subject}: event {event_id} ({action}) "
                              f"has no {CREATED} event before it ({MISSING_EVENTS})")
        return
    if "patient" in details:
        named = patient_id(details["patient"])
        if named != booking.patient:
            trail.problems.append(
                f"booking {code}: event {event_id} ({action}) names patient {_shown(named)}, "
                f"its {CREATED} event patient {_shown(booking.patient)}")
    booking.status = STATUS_AFTER[action]


def _set_capacity(trail: _Trail, event_id: int, slot_id: Any, capacity: Any) -> None:
    slot, value = _int(slot_id), _int(capacity)
    if slot is None or value is None:
        trail.problems.append(f"event {event_id}: unreadable slot capacity "
                              f"({slot_id!r}: {capacity!r})")
        return
    trail.capacities[slot] = value
    trail.removed.discard(slot)  # SQLite may reuse a removed slot's id


def patient_id(value: Any) -> int | None:
    """The patient row id in an event: 7, or "7/**1234" in older events."""
    if isinstance(value, str):
        value = value.split("/", 1)[0]
    return _int(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _code(subject: str) -> str | None:
    if isinstance(subject, str) and subject.startswith("booking:") and len(subject) > 8:
        return subject[len("booking:"):]
    return None


def _shown(value: int | None) -> str:
    return "unreadable" if value is None else str(value)


# ---- the tables ------------------------------------------------------------------------


def _booking_differences(session: Session, trail: _Trail) -> tuple[int, list[str]]:
    differences = []
    seen: set[str] = set()
    count = 0
    rows = session.execute(
        select(Booking.code, Booking.patient_id, Booking.slot_id, Booking.status)
        .order_by(Booking.id)
        .execution_options(yield_per=_BATCH)
    )
    for code, patient, slot, status in rows:
        count += 1
        seen.add(code)
        told = trail.bookings.get(code)
        if told is None:
            differences.append(f"booking {code} has no audit events ({MISSING_EVENTS})")
            continue
        if patient != told.patient:
            differences.append(f"booking {code}: patient is {patient} in the table, "
                               f"{_shown(told.patient)} in the audit trail")
        if slot != told.slot:
            differences.append(f"booking {code}: slot is {slot} in the table, "
                               f"{_shown(told.slot)} in the audit trail")
        if status != told.status:
            differences.append(f"booking {code}: status is {_status(status)} in the table, "
                               f"{_status(told.status)} in the audit trail")
    for code in trail.bookings:
        if code not in seen:
            differences.append(f"booking {code} is in the audit trail but not in the table")
    return count, differences


def _slot_differences(session: Session, trail: _Trail) -> tuple[int, int, list[str]]:
    held: dict[int, int] = {}
    for booking in trail.bookings.values():
        if booking.status in HOLDS_PLACE and booking.slot is not None:
            held[booking.slot] = held.get(booking.slot, 0) + 1
    differences = []
    seen: set[int] = set()
    with_capacity = 0
    rows = session.execute(
        select(Slot.id, Slot.capacity, Slot.booked).order_by(Slot.id)
        .execution_options(yield_per=_BATCH)
    )
    for slot_id, capacity, booked in rows:
        seen.add(slot_id)
        recorded = trail.capacities.get(slot_id)
        if recorded is not None:
            with_capacity += 1
            if capacity != recorded:
                differences.append(f"slot {slot_id}: capacity is {capacity} in the table, "
                                   f"{recorded} in the audit trail")
        elif slot_id in trail.removed:
            differences.append(f"slot {slot_id} was removed in the audit trail "
                               f"but is in the table")
        if booked != held.get(slot_id, 0):
            differences.append(f"slot {slot_id}: {_places(booked)} booked in the table, "
                               f"{held.get(slot_id, 0)} in the audit trail")
    for slot_id, recorded in sorted(trail.capacities.items()):
        if slot_id not in seen:
            differences.append(f"slot {slot_id} is in the audit trail (capacity {recorded}) "
                               f"but not in the table")
    for slot_id, places in sorted(held.items()):
        if slot_id not in seen and slot_id not in trail.capacities:
            differences.append(f"slot {slot_id} is not in the table, but the audit trail "
                               f"holds {_places(places)} in it")
    return len(seen), with_capacity, differences


def _status(status: str) -> str:
    return {CHECKED_IN: "checked in", NO_SHOW: "no-show"}.get(status, status)


def _places(n: int) -> str:
    return f"{n} place" if n == 1 else f"{n} places"
