"""Read-only questions behind the staff's fairness pages: the draws with their
commitments and requests, and a day's waitlists with their offers and held places.

Rule: every function runs in one read-only unit of work and changes nothing. Patients
leave this module masked (the ID number, and the name typed for the request), never in
full. A draw's seed leaves it only once the draw has written it out (`Draw.seed`); the
secret copy kept until then (`Draw.seed_encrypted`) is never read here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select

from assistant.booking import identity
from assistant.booking.inputs import ServiceContext
from assistant.booking.models import (
    HELD,
    OFFER_OPEN,
    AuditEvent,
    Booking,
    Department,
    Draw,
    DrawRequest,
    FreedPlace,
    Patient,
    Slot,
    WaitlistEntry,
)
from assistant.booking.records import id_number_of
from assistant.booking.waitlist import queue_order


def _masked(ctx: ServiceContext, patient: Patient, name_encrypted: str | None) -> tuple[str, str]:
    """The ID number and the typed name, masked ("" for a name never given)."""
    name = ctx.keyring.decrypt(name_encrypted) or ""
    return identity.mask_id(id_number_of(ctx, patient)), identity.mask_name(name)


# ---- a draw --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    """One request of a draw, as staff see it."""

    number: int  # the request's number (its id): the draw's order is computed from it
    position: int | None  # 1-based place in the draw's order; None before the draw
    masked_id: str
    masked_name: str
    part: str  # morning | afternoon | any
    status: str  # requested | placed | waitlisted | refused | withdrawn
    booking_code: str | None  # placed: the booking the draw made
    refusal: str | None  # refused: the rule broken at the draw ("suspended", "quota:per_7_days")
    requested_at: datetime


@dataclass(frozen=True)
class DrawDetail:
    id: int
    department_id: int
    department_code: str
    department_names: dict[str, str]
    visit_date: date
    status: str  # open | drawn
    opens_at: datetime
    draw_at: datetime
    seed_hash: str  # the commitment
    committed_at: datetime | None  # when the commitment went into the audit trail
    commitment_event: int | None  # that audit event's number
    seed: str | None  # None until the draw
    drawn_at: datetime | None
    requests: tuple[RequestRow, ...]
    counts: dict[str, int] = field(default_factory=dict)  # status -> requests


def draw_detail(ctx: ServiceContext, draw_id: int) -> DrawDetail | None:
    """A draw and its requests: in the draw's order once it has run, else in the order
    they came in (the order is unknowable before the draw)."""
    with ctx.uow.read_only() as uow:
        session = uow.session
        draw = session.get(Draw, draw_id)
        if draw is None:
            return None
        department = session.get(Department, draw.department_id)
        committed = session.execute(
            select(AuditEvent.id, AuditEvent.at).where(
                AuditEvent.action == "draw.opened", AuditEvent.subject == f"draw:{draw_id}")
            .order_by(AuditEvent.id).limit(1)).first()
        rows = session.execute(
            select(DrawRequest, Patient, Booking.code)
            .join(Patient, DrawRequest.patient_id == Patient.id)
            .outerjoin(Booking, DrawRequest.booking_id == Booking.id)
            .where(DrawRequest.draw_id == draw_id)
            .order_by(DrawRequest.position.is_(None), DrawRequest.position, DrawRequest.id)).all()
        requests = []
        for request, patient, code in rows:
            masked_id, masked_name = _masked(ctx, patient, request.name_encrypted)
            requests.append(RequestRow(request.id, request.position, masked_id, masked_name, request.part,
                                       request.status, code, request.refusal, request.created_at))
        return DrawDetail(
            draw.id, department.id, department.code, dict(department.names), draw.visit_date, draw.status,
            draw.opens_at, draw.draw_at, draw.seed_hash,
            committed[1] if committed is not None else None, committed[0] if committed is not None else None,
            draw.seed if draw.status == "drawn" else None, draw.drawn_at, tuple(requests),
            dict(Counter(row.status for row in requests)))


# ---- a day's waitlists ------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitlistRow:
    position: int | None  # 1 is offered the next place that fits; None: not waiting
    masked_id: str
    masked_name: str
    part: str
    joined_at: datetime
    draw_position: int | None  # from the draw; None for those who joined later
    status: str  # waiting | offered | booked | left
    left_reason: str | None  # declined | expired | passed | closed


@dataclass(frozen=True)
class OfferRow:
    """A freed place offered to one patient, waiting for her "1"."""

    starts_at: datetime
    masked_id: str
    masked_name: str
    offered_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class HeldRow:
    """A freed place nobody on the list fits: off sale until its release time."""

    starts_at: datetime
    reason: str  # cancelled | rescheduled | capacity | reminder
    freed_at: datetime
    release_at: datetime | None


@dataclass(frozen=True)
class DepartmentWaitlist:
    department_id: int
    department_code: str
    department_names: dict[str, str]
    entries: tuple[WaitlistRow, ...]
    offers: tuple[OfferRow, ...]
    held: tuple[HeldRow, ...]


def waitlist_day(ctx: ServiceContext, day: date) -> list[DepartmentWaitlist]:
    """Per department with anything on `day` (in menu order): its waitlist in the order
    places are offered, its open offers and its held places, soonest slot first."""
    with ctx.uow.read_only() as uow:
        session = uow.session
        entries: dict[int, list[WaitlistRow]] = {}
        positions: Counter[int] = Counter()
        for entry, patient in session.execute(
                select(WaitlistEntry, Patient).join(Patient, WaitlistEntry.patient_id == Patient.id)
                .where(WaitlistEntry.visit_date == day)
                .order_by(WaitlistEntry.department_id, *queue_order())).all():
            position = None
            if entry.status == "waiting":
                positions[entry.department_id] += 1
                position = positions[entry.department_id]
            masked_id, masked_name = _masked(ctx, patient, entry.name_encrypted)
            entries.setdefault(entry.department_id, []).append(WaitlistRow(
                position, masked_id, masked_name, entry.part, entry.joined_at, entry.draw_position,
                entry.status, entry.left_reason))
        offers: dict[int, list[OfferRow]] = {}
        for place, starts_at, entry, patient in session.execute(
                select(FreedPlace, Slot.starts_at, WaitlistEntry, Patient)
                .join(Slot, FreedPlace.slot_id == Slot.id)
                .join(WaitlistEntry, FreedPlace.entry_id == WaitlistEntry.id)
                .join(Patient, WaitlistEntry.patient_id == Patient.id)
                .where(FreedPlace.visit_date == day, FreedPlace.status == OFFER_OPEN)
                .order_by(Slot.starts_at, FreedPlace.id)).all():
            masked_id, masked_name = _masked(ctx, patient, entry.name_encrypted)
            offers.setdefault(place.department_id, []).append(
                OfferRow(starts_at, masked_id, masked_name, place.offered_at, place.expires_at))
        held: dict[int, list[HeldRow]] = {}
        for place, starts_at in session.execute(
                select(FreedPlace, Slot.starts_at).join(Slot, FreedPlace.slot_id == Slot.id)
                .where(FreedPlace.visit_date == day, FreedPlace.status == HELD)
                .order_by(Slot.starts_at, FreedPlace.id)).all():
            held.setdefault(place.department_id, []).append(
                HeldRow(starts_at, place.reason, place.freed_at, place.release_at))
        wanted = set(entries) | set(offers) | set(held)
        if not wanted:
            return []
        departments = session.execute(select(Department).where(Department.id.in_(wanted))
                                      .order_by(Department.sort_order, Department.id)).scalars().all()
        return [DepartmentWaitlist(d.id, d.code, dict(d.names), tuple(entries.get(d.id, ())),
                                   tuple(offers.get(d.id, ())), tuple(held.get(d.id, ())))
                for d in departments]
