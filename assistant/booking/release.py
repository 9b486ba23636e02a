"""Releasing places by draw: requests, a committed seed, a seeded order, and its check.

Rule: a department's day released in 'draw' mode takes requests (one per identity,
"morning", "afternoon" or "any time") from the moment booking would open until the draw
time. The draw's seed is chosen and its SHA-256 written to the audit trail before the
first request can arrive (a commitment); the seed itself is written only at the draw.
The order is the requests sorted by SHA-256("<seed>:<request number>"); in that order
a request is placed when everyone placed so far, with it, still fits the places of their
parts of the day (`assign`), and the rest join the day's waitlist in that order. `verify_draw` recomputes all of it from the seed and
the stored requests. docs/fairness.md states the algorithm for anyone to check.

Requests follow the booking rules (booking/book.py `admit`): the address's patient
limit, suspensions and quotas, with the identity's other waiting requests counted as
places. The draw checks suspensions and quotas again, as they stand at the draw.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Integer as Integer_, func, insert, select, update
from sqlalchemy.orm import Session

from assistant.booking import audit, book, driver, jobs, policy as rules, results as r, statements as sql
from assistant.booking.inputs import AddressInput, IdentityInput, ServiceContext
from assistant.booking.models import (
    BOOKED,
    PLACED,
    QUOTA_STATUSES,
    REFUSED,
    REQUESTED,
    WAITLISTED,
    WITHDRAWN,
    AuditEvent,
    Booking,
    ChannelAddress,
    Department,
    Draw,
    DrawRequest,
    Hospital,
    OutboxMessage,
    PatientLink,
    ScheduleException,
    Slot,
    Suspension,
    WaitlistEntry,
)
from assistant.booking.records import department_rules, patient_ref as masked_patient
from assistant.booking.uow import UnitOfWork

PARTS = ("morning", "afternoon", "any")
NOON = time(12, 0)

# What the draw tells each requester (assistant/notices.py holds the sentences).
DRAW_PLACED = "draw_placed"
DRAW_WAITLISTED = "draw_waitlisted"
DRAW_REFUSED = "draw_refused"
REQUESTED_FOR_YOU = "requested_for_you"  # someone else asked for a place in her name
DRAW_CANCELLED = "draw_cancelled"  # the day was closed before its draw


# ---- the algorithm (pure) ----------------------------------------------------------------


def seed_commitment(seed: str) -> str:
    """The hash published when requests open: SHA-256 of the seed's text."""
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def draw_order(seed: str, request_ids: Iterable[int]) -> list[int]:
    """The requests in the draw's order: by SHA-256("<seed>:<request number>")."""
    return sorted(request_ids, key=lambda rid: hashlib.sha256(f"{seed}:{rid}".encode("ascii")).digest())


def part_of_day(starts_at_local: datetime) -> str:
    return "morning" if starts_at_local.time() < NOON else "afternoon"


def fits(part: str, slot_part: str) -> bool:
    return part == "any" or part == slot_part


@dataclass(frozen=True)
class DrawPlace:
    """A slot's places given out by the draw: its part of the day and how many."""

    slot_id: int
    part: str
    free: int


def assign(order: Sequence[tuple[int, str]], places: Sequence[DrawPlace],
           refused: frozenset[int] = frozenset()) -> dict[int, int | None]:
    """Request id -> slot id (None: waitlisted), for requests in `order` ((id, part))
    and slots in `places`' order (by start time). `refused` requests get nothing.

    Who gets a place follows the order alone: a request is placed when the requests
    placed before it, with it, can all still be seated: the morning-only ones in
    morning places, the afternoon-only ones in afternoon places, and everyone in all
    places. So an "any time" request drawn early can't take the one morning place from
    a morning-only request drawn before a later one. Then the places are handed out in
    the order: morning-only and afternoon-only requests take the earliest place of
    their part, and the "any time" requests the earliest places left."""
    capacity = {"morning": 0, "afternoon": 0}
    for place in places:
        capacity[place.part] += place.free
    seated = {"morning": 0, "afternoon": 0, "any": 0}
    placed: list[tuple[int, str]] = []
    assigned: dict[int, int | None] = {}
    for request_id, part in order:
        if request_id in refused:
            continue
        assigned[request_id] = None
        seated[part] += 1
        if (seated["morning"] <= capacity["morning"] and seated["afternoon"] <= capacity["afternoon"]
                and sum(seated.values()) <= sum(capacity.values())):
            placed.append((request_id, part))
        else:
            seated[part] -= 1
    left = {place.slot_id: place.free for place in places}
    for wanted in ("morning", "afternoon", "any"):
        for request_id, part in placed:
            if part != wanted:
                continue
            slot_id = next(p.slot_id for p in places if left[p.slot_id] > 0 and fits(part, p.part))
            left[slot_id] -= 1
            assigned[request_id] = slot_id
    return assigned


# ---- opening a draw: the commitment ------------------------------------------------------


def open_draw(ctx: ServiceContext, session: Session, department_id: int, visit_date: date,
              now: datetime) -> Draw | None:
    """The day's draw, opened with a fresh secret seed and its commitment in the audit
    trail if it has none yet. None when the day has no draw slots."""
    found = session.execute(select(Draw).where(
        Draw.department_id == department_id, Draw.visit_date == visit_date)).scalar_one_or_none()
    if found is not None:
        return found
    window = session.execute(
        select(func.min(Slot.requests_open_at), func.min(Slot.release_at)).where(
            Slot.department_id == department_id, Slot.visit_date == visit_date,
            Slot.release_mode == "draw")).one()
    if window[0] is None:
        return None
    seed = secrets.token_hex(32)
    draw = Draw(department_id=department_id, visit_date=visit_date, opens_at=window[0],
                draw_at=window[1], seed_hash=seed_commitment(seed),
                seed_encrypted=ctx.keyring.encrypt(seed), status="open", created_at=now)
    nested = session.begin_nested()
    session.add(draw)
    try:
        session.flush()
    except Exception:  # another instance opened it first (unique department and day)
        nested.rollback()
        return session.execute(select(Draw).where(
            Draw.department_id == department_id, Draw.visit_date == visit_date)).scalar_one()
    nested.commit()
    audit.append(session, ctx.keyring.audit_key, actor=audit.SYSTEM, action="draw.opened",
                 subject=f"draw:{draw.id}",
                 details={"department": department_id, "visit_date": visit_date.isoformat(),
                          "seed_hash": draw.seed_hash, "draw_at": draw.draw_at.isoformat()}, at=now)
    return draw


def open_due_draws(ctx: ServiceContext, now: datetime) -> int:
    """Open every draw whose request window has begun (the worker runs this; a request
    arriving first opens its draw itself). A day whose window passed without one (slots
    made late, a worker away) is opened too, so that `run_draw` gives its places out."""
    with ctx.uow() as uow:
        session = uow.session
        due = session.execute(
            select(Slot.department_id, Slot.visit_date).where(
                Slot.release_mode == "draw", Slot.requests_open_at <= now, Slot.drawn.is_(False),
                Slot.starts_at > now)
            .group_by(Slot.department_id, Slot.visit_date)
            .except_(select(Draw.department_id, Draw.visit_date))).all()
        for department_id, visit_date in due:
            open_draw(ctx, session, department_id, visit_date, now)
        uow.commit()
        return len(due)


def cancel_draws(session: Session, department_ids: list[int], day: date, now: datetime) -> int:
    """A day closed before its draw: the draw is cancelled, its requests withdrawn, and
    every requester told (the closure's own transaction). Returns the requests."""
    draws = session.execute(select(Draw).where(
        Draw.department_id.in_(department_ids), Draw.visit_date == day, Draw.status == "open")).scalars().all()
    withdrawn = 0
    for draw in draws:
        draw.status = "cancelled"
        department = session.get(Department, draw.department_id)
        requests = session.execute(select(DrawRequest).where(
            DrawRequest.draw_id == draw.id, DrawRequest.status == REQUESTED)).scalars().all()
        notices = []
        for request in requests:
            request.status = WITHDRAWN
            notices.append(_notice(request, DRAW_CANCELLED, department, draw, now))
        notices = _deliverable(session, notices)
        if notices:
            session.execute(insert(OutboxMessage), notices)
        withdrawn += len(requests)
    session.flush()
    return withdrawn


# ---- requesting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DayPlace:
    """A department's day, with the rules `book.admit` reads from a slot."""

    department_id: int
    visit_date: date
    code: str
    names: dict
    policy_overrides: dict
    timezone: str
    hospital_policy: dict
    id: None = None  # no slot yet
    release_at: None = None
    release_mode: str = "draw"
    drawn: bool = False


@dataclass(frozen=True)
class PendingRequest:
    """A waiting request, counted like a booking against the identity's quotas."""

    visit_date: date
    department_id: int
    slot_id: None = None
    status: str = REQUESTED
    code: str = ""
    booked_by_address_id: int | None = None
    id: None = None


def request_place(ctx: ServiceContext, *, department_id: int, visit_date: date, part: str, channel: str,
                  now: datetime, booked_by: AddressInput, identity_input: IdentityInput | None = None,
                  patient_ref: int | None = None, relation: str = "self",
                  idempotency_key: str | None = None) -> r.Requested | r.Refusal:
    """Ask for a place: in the day's draw while its requests are open, or else on the
    waitlist of a released day (booking/waitlist.py). The address owns the request."""
    from assistant.booking import waitlist

    key = f"request:{idempotency_key}" if idempotency_key is not None else None
    if part not in PARTS:
        return book.settle(ctx, key, r.InvalidIdentity(field="part", reason="unknown"), now)
    prepared = book.prepare_parties(ctx, booked_by, identity_input, patient_ref, now)
    if isinstance(prepared, r.Refusal):
        return book.settle(ctx, key, prepared, now)
    address, given = prepared

    def attempt(uow: UnitOfWork, db: driver.Cursor) -> Any:
        session = uow.session
        replay, parties, _ = book.lock_parties(db, key, address, given, patient_ref, now, also=lambda: None)
        if replay is not None:
            return replay
        if isinstance(parties, r.Refusal):
            return parties
        day = _day_place(session, department_id, visit_date)
        if day is None:
            return r.SlotNotFound()
        window = _draw_window(session, department_id, visit_date)
        if window is not None and not window.drawn:
            if now < window.opens_at:
                return r.RequestsClosed(opens_at=window.opens_at)
            if now >= window.draw_at:
                return r.RequestsClosed()
            kind = "draw"
        else:
            kind = "waitlist"
            full = _full_day(session, department_id, visit_date, now)
            if full is not None:
                return full
        patient = parties.patient
        earlier = None if patient.is_new else _asked_before(session, kind, department_id, visit_date, patient.id)
        if earlier is not None and not _may_ask_again(session, earlier, parties.address_id, patient.id):
            return r.AlreadyRequested()
        this_day = (department_id, visit_date)
        admitted = book.admit(ctx, db, patient, day, now, name_index=parties.name.index if parties.name else None,
                              address_id=parties.address_id, address_is_new=parties.address_is_new,
                              staff=None, replacing_id=None, relation=relation,
                              pending=lambda: [p for p in pending_requests(session, patient.id)
                                               if (p.department_id, p.visit_date) != this_day])
        if isinstance(admitted, r.Refusal):
            return admitted
        actor = parties.actor(channel, None)
        entries = []
        if admitted.new_link:
            link_relation = "family" if relation == "family" else "self"
            db.run(sql.INSERT_LINK, {"address_id": parties.address_id, "patient_id": patient.id,
                                     "relation": link_relation, "now": now, "channel": channel,
                                     "name_encrypted": parties.name.encrypted if parties.name else None,
                                     "name_index": parties.name.index if parties.name else None})
            entries.append(audit.Entry(actor, "link.created", f"patient:{masked_patient(patient)}",
                                       {"relation": link_relation}, now))
        common = dict(patient_id=patient.id, address_id=parties.address_id, channel=channel, part=part,
                      relation="family" if relation == "family" else "self",
                      name_encrypted=parties.name.encrypted if parties.name else None,
                      name_index=parties.name.index if parties.name else None)
        if kind == "draw":
            draw = open_draw(ctx, session, department_id, visit_date, now)
            if earlier is not None:  # hers now: the same request number, so the same chance
                request = earlier
                for field_name, value in common.items():
                    setattr(request, field_name, value)
                request.status = REQUESTED
            else:
                request = DrawRequest(draw_id=draw.id, status=REQUESTED, created_at=now, **common)
                session.add(request)
            session.flush()
            entries.append(audit.Entry(actor, "draw.requested", f"draw:{draw.id}", {
                "request": request.id, "patient": masked_patient(patient), "part": part,
                "again": earlier is not None}, now))
            result = r.Requested("draw", department_id, dict(day.names), visit_date, part, draw_at=draw.draw_at)
        else:
            if earlier is not None:  # hers now, in the same place in the queue
                entry = earlier
                for field_name, value in common.items():
                    setattr(entry, field_name, value)
                session.flush()
            else:
                entry = waitlist.join(ctx, session, department_id=department_id, visit_date=visit_date,
                                      joined_at=now, **common)
            entries.append(audit.Entry(actor, "waitlist.joined", f"waitlist:{entry.id}", {
                "patient": masked_patient(patient), "department": department_id,
                "visit_date": visit_date.isoformat(), "part": part, "again": earlier is not None}, now))
            result = r.Requested("waitlist", department_id, dict(day.names), visit_date, part,
                                 position=waitlist.position_of(session, entry))
        if admitted.own is not None and admitted.own != parties.address_id:
            # Someone else asked in her name: she hears of it, as of a booking, and
            # the desk can withdraw it if it wasn't hers.
            db.run(sql.INSERT_NOTICE, {"address_id": admitted.own, "patient_id": patient.id, "now": now,
                                       "message": REQUESTED_FOR_YOU, "params": {
                                           "department": dict(day.names), "kind": kind,
                                           "starts_at": visit_noon(visit_date).isoformat()}})
            entries.append(audit.Entry(actor, "notice.queued", f"patient:{masked_patient(patient)}",
                                       {"notice": REQUESTED_FOR_YOU}, now))
        return book.keep(ctx, uow, db, key, result, entries, now)

    return book.run_booking(ctx, key, now, attempt)


def _day_place(session: Session, department_id: int, visit_date: date) -> DayPlace | None:
    row = session.execute(
        select(Department, Hospital).join(Hospital, Department.hospital_id == Hospital.id)
        .where(Department.id == department_id, Department.active.is_(True))).first()
    if row is None:
        return None
    department, hospital = row
    return DayPlace(department.id, visit_date, department.code, dict(department.names),
                    dict(department.policy_overrides or {}), hospital.timezone,
                    dict(hospital.policy_overrides or {}))


@dataclass(frozen=True)
class DrawWindow:
    opens_at: datetime
    draw_at: datetime
    drawn: bool


def _draw_window(session: Session, department_id: int, visit_date: date) -> DrawWindow | None:
    """The day's request window, if it is released by draw."""
    opens_at, draw_at, drawn = session.execute(
        select(func.min(Slot.requests_open_at), func.min(Slot.release_at),
               func.max(func.cast(Slot.drawn, Integer_))).where(
            Slot.department_id == department_id, Slot.visit_date == visit_date,
            Slot.release_mode == "draw")).one()
    if opens_at is None:
        return None
    return DrawWindow(opens_at, draw_at, bool(drawn))


def _full_day(session: Session, department_id: int, visit_date: date, now: datetime) -> r.Refusal | None:
    """A waitlist is joined only for a day that is on sale and full: before its release
    nobody may queue ahead of it, and a free place is booked, not waited for. A closed
    day has no waitlist: no place will come free on it."""
    slots = session.execute(select(Slot.release_at, Slot.release_mode, Slot.drawn,
                                   Slot.capacity - Slot.booked - Slot.held).where(
        Slot.department_id == department_id, Slot.visit_date == visit_date, Slot.capacity > 0)).all()
    if not slots or visit_date in closed_days(session, department_id, visit_date, visit_date):
        return r.SlotNotFound()
    waiting_for_sale = [s[0] for s in slots if s[0] > now or (s[1] == "draw" and not s[2])]
    if waiting_for_sale:
        return r.NotYetOpen(opens_at=max(min(waiting_for_sale), now))
    if sum(max(0, s[3]) for s in slots) > 0:
        return r.PlacesFree()
    return None


def closed_days(session: Session, department_id: int, first: date, last: date) -> set[date]:
    """The department's closed days between `first` and `last` (its own or the hospital's)."""
    department = session.get(Department, department_id)
    return set(session.execute(select(ScheduleException.day).where(
        ScheduleException.hospital_id == department.hospital_id, ScheduleException.kind == "closed",
        ScheduleException.day >= first, ScheduleException.day <= last,
        (ScheduleException.department_id.is_(None)) | (ScheduleException.department_id == department_id)))
        .scalars())


def _asked_before(session: Session, kind: str, department_id: int, visit_date: date,
                  patient_id: int) -> DrawRequest | WaitlistEntry | None:
    """The identity's request in that day's draw (any status), or its place on the
    day's waitlist (waiting or offered)."""
    if kind == "draw":
        return session.execute(
            select(DrawRequest).join(Draw, DrawRequest.draw_id == Draw.id).where(
                Draw.department_id == department_id, Draw.visit_date == visit_date,
                DrawRequest.patient_id == patient_id)).scalar_one_or_none()
    return session.execute(select(WaitlistEntry).where(
        WaitlistEntry.department_id == department_id, WaitlistEntry.visit_date == visit_date,
        WaitlistEntry.patient_id == patient_id,
        WaitlistEntry.status.in_(("waiting", "offered")))).scalar_one_or_none()


def _may_ask_again(session: Session, earlier: DrawRequest | WaitlistEntry, address_id: int | None,
                   patient_id: int) -> bool:
    """One request per identity, but not one a neighbour can spoil: a request the desk
    withdrew may be made again, and the patient's own phone or chat takes over one made
    in her name from elsewhere (keeping its request number or place in the queue)."""
    from assistant.booking.records import own_address_id

    if isinstance(earlier, DrawRequest) and earlier.status == WITHDRAWN:
        return True
    still_open = earlier.status in (REQUESTED, "waiting")
    return (still_open and address_id is not None and earlier.address_id != address_id
            and own_address_id(session, patient_id) == address_id)


def withdraw_request(ctx: ServiceContext, *, request_id: int, staff: str, now: datetime) -> bool:
    """The desk withdraws a request before its draw (made in a patient's name without
    her consent, or at her wish); she may then ask again. False if it can't be."""
    with ctx.uow() as uow:
        session = uow.session
        request = session.get(DrawRequest, request_id)
        if request is None or request.status != REQUESTED:
            return False
        draw = session.get(Draw, request.draw_id)
        if draw.status != "open":
            return False
        request.status = WITHDRAWN
        session.flush()
        audit.append(session, ctx.keyring.audit_key, actor=audit.Actor(f"staff:{staff}", "admin"),
                     action="draw.request_withdrawn", subject=f"draw:{draw.id}",
                     details={"request": request.id, "patient": request.patient_id}, at=now)
        uow.commit()
        return True


def pending_requests(session: Session, patient_id: int) -> list[PendingRequest]:
    rows = session.execute(
        select(Draw.visit_date, Draw.department_id, DrawRequest.address_id)
        .join(Draw, DrawRequest.draw_id == Draw.id)
        .where(DrawRequest.patient_id == patient_id, DrawRequest.status == REQUESTED)).all()
    return [PendingRequest(day, department_id, booked_by_address_id=address_id)
            for day, department_id, address_id in rows]


# ---- the draw ------------------------------------------------------------------------------


@dataclass
class DrawReport:
    draw_id: int
    requests: int = 0
    placed: int = 0
    waitlisted: int = 0
    refused: int = 0


def due_draws(ctx: ServiceContext, now: datetime) -> list[int]:
    with ctx.uow.read_only() as uow:
        return list(uow.session.execute(
            select(Draw.id).where(Draw.status == "open", Draw.draw_at <= now).order_by(Draw.draw_at, Draw.id)
        ).scalars())


def run_draw(ctx: ServiceContext, draw_id: int, *, now: datetime, worker: str) -> DrawReport | None:
    """Run one due draw in one transaction, claimed by its key: places by the seeded
    order, the rest to the waitlist, everyone told through the outbox, the seed
    revealed. None when it is not due or another worker ran it."""
    with ctx.uow() as uow:
        session = uow.session
        draw = session.get(Draw, draw_id)
        if draw is None or draw.status != "open" or draw.draw_at > now:
            return None
        if not jobs.claim_job(session, f"draw:{draw_id}", worker=worker, now=now):
            return None
        session.refresh(draw)
        if draw.status != "open":
            return None
        seed = ctx.keyring.decrypt(draw.seed_encrypted)
        department = session.get(Department, draw.department_id)
        policy, tz = department_rules(ctx, session, department)
        requests = {q.id: q for q in session.execute(
            select(DrawRequest).where(DrawRequest.draw_id == draw_id, DrawRequest.status == REQUESTED)
            .order_by(DrawRequest.id)).scalars()}
        order = draw_order(seed, requests)
        slots = session.execute(
            select(Slot).where(Slot.department_id == draw.department_id, Slot.visit_date == draw.visit_date,
                               Slot.release_mode == "draw").order_by(Slot.starts_at, Slot.id)).scalars().all()
        places = [DrawPlace(s.id, part_of_day(s.starts_at.astimezone(tz)), max(0, s.capacity - s.booked - s.held))
                  for s in slots]
        refused = _refusals_at_draw(session, policy, draw, [requests[rid] for rid in order], now)
        assigned = assign([(rid, requests[rid].part) for rid in order], places, frozenset(refused))
        slot_by_id = {s.id: s for s in slots}
        report = DrawReport(draw_id, requests=len(order))
        bookings, entries, notices, waiting, taken = [], [], [], [], defaultdict(int)
        placed_for_others: list[tuple[DrawRequest, str, datetime]] = []
        actor = audit.SYSTEM
        waitlist_position = 0
        for position, rid in enumerate(order, start=1):
            request = requests[rid]
            request.position = position
            if rid in refused:
                request.status, request.refusal = REFUSED, refused[rid]
                report.refused += 1
                notices.append(_notice(request, DRAW_REFUSED, department, draw, now, rule=refused[rid]))
                continue
            slot_id = assigned[rid]
            if slot_id is None:
                waitlist_position += 1
                request.status = WAITLISTED
                report.waitlisted += 1
                waiting.append({
                    "department_id": draw.department_id, "visit_date": draw.visit_date,
                    "patient_id": request.patient_id, "address_id": request.address_id,
                    "channel": request.channel, "part": request.part, "relation": request.relation,
                    "name_encrypted": request.name_encrypted, "name_index": request.name_index,
                    "joined_at": now, "draw_position": position, "status": "waiting"})
                notices.append(_notice(request, DRAW_WAITLISTED, department, draw, now,
                                       position=waitlist_position))
                continue
            slot = slot_by_id[slot_id]
            code = book.new_code()
            taken[slot_id] += 1
            request.status = PLACED
            report.placed += 1
            bookings.append({
                "code": code, "patient_id": request.patient_id, "slot_id": slot_id,
                "department_id": draw.department_id, "visit_date": draw.visit_date, "status": BOOKED,
                "channel": request.channel, "booked_by_address_id": request.address_id,
                "name_encrypted": request.name_encrypted, "name_index": request.name_index,
                "name_differs": False, "created_at": now, "updated_at": now})
            entries.append(audit.Entry(actor, "booking.created", f"booking:{code}", {
                "patient": request.patient_id, "slot": slot_id, "department": department.code,
                "starts_at": slot.starts_at.isoformat(), "draw": draw_id, "request": rid}, now))
            notices.append(_notice(request, DRAW_PLACED, department, draw, now, code=code,
                                   starts_at=slot.starts_at))
            placed_for_others.append((request, code, slot.starts_at))
        # Written as rows, not objects: a large draw is tens of thousands of them.
        if waiting:
            session.execute(insert(WaitlistEntry), waiting)
        if bookings:
            session.execute(insert(Booking), bookings)
            codes = {b["code"] for b in bookings}
            ids = {code: booking_id for code, booking_id in session.execute(
                select(Booking.code, Booking.id).where(
                    Booking.department_id == draw.department_id, Booking.visit_date == draw.visit_date,
                    Booking.created_at == now)).all() if code in codes}
            by_request = {e.details["request"]: ids[e.subject.split(":", 1)[1]] for e in entries}
            for rid, booking_id in by_request.items():
                requests[rid].booking_id = booking_id
        unsynchronised = {"synchronize_session": False}  # the session holds no slot that matters
        for slot_id, count in taken.items():
            session.execute(update(Slot).where(Slot.id == slot_id).values(booked=Slot.booked + count)
                            .execution_options(**unsynchronised))
        session.execute(update(Slot).where(Slot.department_id == draw.department_id,
                                           Slot.visit_date == draw.visit_date,
                                           Slot.release_mode == "draw").values(drawn=True)
                        .execution_options(**unsynchronised))
        notices += _told_in_her_name(session, draw, placed_for_others, now)
        notices = _deliverable(session, notices)
        if notices:
            session.execute(insert(OutboxMessage), notices)
        draw.status, draw.seed, draw.drawn_at = "drawn", seed, now
        session.flush()
        audit.defer(session, ctx.keyring.audit_key, [audit.Entry(actor, "draw.drawn", f"draw:{draw_id}", {
            "seed": seed, "seed_hash": draw.seed_hash, "requests": report.requests, "placed": report.placed,
            "waitlisted": report.waitlisted, "refused": {str(k): v for k, v in sorted(refused.items())},
            "places": {str(p.slot_id): [p.part, p.free] for p in places}}, now)] + entries)
        uow.commit()
        return report


def _notice(request: DrawRequest, message: str, department: Department, draw: Draw, now: datetime,
            **extra: Any) -> dict:
    """An outbox row telling a requester the draw's result (the sender renders it). A
    result without a time is dated at noon UTC: the visit day in any hospital's zone."""
    starts_at = extra.pop("starts_at", None) or visit_noon(draw.visit_date)
    params = {"department": dict(department.names), "visit_date": draw.visit_date.isoformat(),
              "starts_at": starts_at.isoformat(), **extra}
    return {"address_id": request.address_id, "patient_id": request.patient_id, "message": message,
            "params": params, "locale": None, "status": "pending", "attempts": 0, "created_at": now,
            "channel": request.channel, "draw_id": draw.id}


def _told_in_her_name(session: Session, draw: Draw, placed: list[tuple[DrawRequest, str, datetime]],
                      now: datetime) -> list[dict]:
    """A place the draw gave to a request made from another phone or chat than the
    patient's own: her own address gets the booking's code, to cancel it if it wasn't
    hers (as for any booking made in her name)."""
    own = _own_addresses(session, draw)
    notices = []
    for request, code, starts_at in placed:
        address = own.get(request.patient_id)
        if address is None or address == request.address_id:
            continue
        department = session.get(Department, draw.department_id)
        notices.append({"address_id": address, "patient_id": request.patient_id,
                        "message": "booked_for_you", "params": {
                            "code": code, "department": dict(department.names),
                            "starts_at": starts_at.isoformat(), "by": "someone"},
                        "locale": None, "status": "pending", "attempts": 0, "created_at": now,
                        "channel": None, "draw_id": draw.id})
    return notices


def _own_addresses(session: Session, draw: Draw) -> dict[int, int]:
    """Each requesting patient's own address: the one the desk verified, else the first
    that claimed "for me" (records.own_address_id, for the whole draw at once)."""
    links = session.execute(
        select(PatientLink.patient_id, PatientLink.address_id)
        .where(PatientLink.relation == "self",
               PatientLink.patient_id.in_(select(DrawRequest.patient_id).where(DrawRequest.draw_id == draw.id)))
        .order_by(PatientLink.patient_id, PatientLink.verified_at.is_(None), PatientLink.verified_at.desc(),
                  PatientLink.created_at, PatientLink.id)).all()
    own: dict[int, int] = {}
    for patient_id, address_id in links:
        own.setdefault(patient_id, address_id)
    return own


def visit_noon(day: date) -> datetime:
    """A notice about a day, not a time, is dated at noon UTC: that day in any zone."""
    return datetime.combine(day, time(12, 0), tzinfo=timezone.utc)


def _deliverable(session: Session, notices: list[dict]) -> list[dict]:
    """The notices in each address's language; none for a console address (the
    terminal and /try), which nothing delivers to."""
    if not notices:
        return []
    asking = DrawRequest.draw_id == notices[0]["draw_id"]
    requesters = select(DrawRequest.address_id).where(asking)
    their_own = select(PatientLink.address_id).where(
        PatientLink.relation == "self", PatientLink.patient_id.in_(select(DrawRequest.patient_id).where(asking)))
    known = {row.id: row for row in session.execute(
        select(ChannelAddress.id, ChannelAddress.kind, ChannelAddress.locale)
        .where(ChannelAddress.id.in_(requesters) | ChannelAddress.id.in_(their_own))).all()}
    kept = []
    for notice in notices:
        address = known.get(notice["address_id"])
        if address is None or address.kind == "console":
            continue
        kept.append({**{k: v for k, v in notice.items() if k != "draw_id"}, "locale": address.locale})
    return kept


def _refusals_at_draw(session: Session, policy, draw: Draw, ordered: list[DrawRequest],
                      now: datetime) -> dict[int, str]:
    """Requests that can no longer hold a place at the draw: a suspension began since,
    or bookings made since fill a quota. Read in three queries for the whole draw."""
    if not ordered:
        return {}
    # Subqueries, not lists of ids: a draw may have more requests than a statement may
    # have parameters (65,535 on PostgreSQL).
    asking = DrawRequest.draw_id == draw.id
    patients = select(DrawRequest.patient_id).where(asking)
    addresses = select(DrawRequest.address_id).where(asking)
    active = (Suspension.lifted_at.is_(None), Suspension.starts_at <= now, Suspension.ends_at > now)
    suspended_patients = set(session.execute(select(Suspension.patient_id).where(
        Suspension.patient_id.in_(patients), *active)).scalars())
    suspended_addresses = set(session.execute(select(Suspension.address_id).where(
        Suspension.address_id.in_(addresses), *active)).scalars())
    held: dict[int, list[rules.HeldBooking]] = defaultdict(list)
    for patient_id, day, department_id in session.execute(
            select(Booking.patient_id, Booking.visit_date, Booking.department_id).where(
                Booking.patient_id.in_(patients), Booking.status.in_(QUOTA_STATUSES),
                Booking.visit_date > draw.visit_date - timedelta(days=90),
                Booking.visit_date < draw.visit_date + timedelta(days=90))):
        held[patient_id].append(rules.HeldBooking(day, department_id))
    refused = {}
    for request in ordered:
        if request.patient_id in suspended_patients or request.address_id in suspended_addresses:
            refused[request.id] = "suspended"
            continue
        breach = rules.quota_breach(policy, held[request.patient_id],
                                    rules.HeldBooking(draw.visit_date, draw.department_id))
        if breach is not None:
            refused[request.id] = f"quota:{breach.quota}"
    return refused


# ---- verifying -------------------------------------------------------------------------------


@dataclass
class Verification:
    draw_id: int
    ok: bool
    problems: list[str] = field(default_factory=list)
    requests: int = 0
    placed: int = 0


def verify_draw(ctx: ServiceContext, draw_id: int) -> Verification:
    """Recompute the draw from its revealed seed and its stored requests, and compare:
    the commitment published before the requests, the order, and every booking made."""
    with ctx.uow.read_only() as uow:
        session = uow.session
        report = Verification(draw_id, ok=False)
        draw = session.get(Draw, draw_id)
        if draw is None:
            report.problems.append("no such draw")
            return report
        if draw.status != "drawn" or draw.seed is None:
            report.problems.append("the draw has not run yet: its seed is still secret")
            return report
        if seed_commitment(draw.seed) != draw.seed_hash:
            report.problems.append("the seed does not match the commitment")
        opened = _audit_details(session, "draw.opened", draw_id)
        drawn = _audit_details(session, "draw.drawn", draw_id)
        if opened is None or opened[1].get("seed_hash") != draw.seed_hash:
            report.problems.append("the commitment in the audit trail is missing or differs")
        first_request = session.execute(
            select(func.min(AuditEvent.id)).where(
                AuditEvent.action == "draw.requested",
                AuditEvent.subject == f"draw:{draw_id}")).scalar()
        if opened is not None and first_request is not None and first_request < opened[0]:
            report.problems.append("a request was recorded before the commitment")
        if drawn is None or drawn[1].get("seed") != draw.seed:
            report.problems.append("the revealed seed in the audit trail is missing or differs")
            return report
        details = drawn[1]
        requests = {q.id: q for q in session.execute(
            select(DrawRequest).where(DrawRequest.draw_id == draw_id,
                                      DrawRequest.status.in_((PLACED, WAITLISTED, REFUSED)))).scalars()}
        report.requests = len(requests)
        if len(requests) != details.get("requests"):
            report.problems.append(f"{len(requests)} requests stored, the draw counted {details.get('requests')}")
        order = draw_order(draw.seed, requests)
        places = [DrawPlace(int(slot_id), part, free)
                  for slot_id, (part, free) in details.get("places", {}).items()]
        starts = dict(session.execute(select(Slot.id, Slot.starts_at).where(
            Slot.id.in_([p.slot_id for p in places]))).all())
        places.sort(key=lambda p: (starts.get(p.slot_id) or datetime.max.replace(tzinfo=draw.draw_at.tzinfo), p.slot_id))
        refused = {int(k) for k in details.get("refused", {})}
        expected = assign([(rid, requests[rid].part) for rid in order], places, frozenset(refused))
        booked = dict(session.execute(
            select(Booking.id, Booking.slot_id).join(DrawRequest, DrawRequest.booking_id == Booking.id)
            .where(DrawRequest.draw_id == draw_id)).all())
        for position, rid in enumerate(order, start=1):
            request = requests[rid]
            if request.position != position:
                report.problems.append(f"request {rid} is at position {request.position}, expected {position}")
            want = expected.get(rid)
            got = booked.get(request.booking_id) if request.booking_id is not None else None
            if rid in refused:
                if request.status != REFUSED:
                    report.problems.append(f"request {rid} was refused at the draw but is {request.status}")
                continue
            if want != got:
                report.problems.append(f"request {rid} should have slot {want}, has {got}")
            if want is not None:
                report.placed += 1
        report.ok = not report.problems
        return report


def _audit_details(session: Session, action: str, draw_id: int) -> tuple[int, dict] | None:
    row = session.execute(select(AuditEvent.id, AuditEvent.details).where(
        AuditEvent.action == action, AuditEvent.subject == f"draw:{draw_id}")
        .order_by(AuditEvent.id).limit(1)).first()
    return (row[0], dict(row[1])) if row is not None else None



@dataclass(frozen=True)
class DrawRow:
    id: int
    department: str
    department_id: int
    visit_date: date
    status: str
    opens_at: datetime
    draw_at: datetime
    seed_hash: str
    seed: str | None
    requests: int


def list_draws(ctx: ServiceContext, *, day: date | None = None, limit: int = 200) -> list[DrawRow]:
    """Draws newest visit day first, with their request counts (for staff and the CLI)."""
    counts = (select(DrawRequest.draw_id, func.count().label("n")).group_by(DrawRequest.draw_id)
              .subquery())
    query = (select(Draw, Department.code, func.coalesce(counts.c.n, 0))
             .join(Department, Draw.department_id == Department.id)
             .outerjoin(counts, counts.c.draw_id == Draw.id)
             .order_by(Draw.visit_date.desc(), Draw.id.desc()).limit(limit))
    if day is not None:
        query = query.where(Draw.visit_date == day)
    with ctx.uow.read_only() as uow:
        return [DrawRow(d.id, code, d.department_id, d.visit_date, d.status, d.opens_at, d.draw_at,
                        d.seed_hash, d.seed, n) for d, code, n in uow.session.execute(query).all()]


# ---- what a conversation may ask for ------------------------------------------------------


@dataclass(frozen=True)
class RequestDay:
    """A day a patient may ask a place for: in its draw (`kind` "draw", until
    `closes_at`), or on its waitlist because it is full (`kind` "waitlist"). `parts`:
    the parts of the day its slots fall in."""

    day: date
    kind: str
    parts: tuple[str, ...]
    closes_at: datetime | None = None


def request_days(ctx: ServiceContext, *, department_id: int, now: datetime, days_ahead: int = 31,
                 limit: int = 4, kind: str | None = None) -> list[RequestDay]:
    """Days open for requests (draws first), then released days with no free place,
    whose waitlist a patient may join (until booking for the day closes). `kind`
    "draw" asks for the draws only, answered from an index when there is none."""
    with ctx.uow.read_only() as uow:
        session = uow.session
        if kind == "draw" and driver.Cursor(session.connection()).run(sql.DRAW_TAKING_REQUESTS, {
                "department_id": department_id, "now": now}).first() is None:
            return []
        department = session.get(Department, department_id)
        if department is None or not department.active:
            return []
        policy, tz = department_rules(ctx, session, department)
        today = now.astimezone(tz).date()
        rows = session.execute(
            select(Slot.visit_date, Slot.starts_at, Slot.release_mode, Slot.requests_open_at, Slot.release_at,
                   Slot.drawn, Slot.capacity - Slot.booked - Slot.held)
            .where(Slot.department_id == department_id, Slot.visit_date >= today,
                   Slot.visit_date <= today + timedelta(days=days_ahead), Slot.capacity > 0)
            .order_by(Slot.visit_date, Slot.starts_at)).all()
        closed = closed_days(session, department_id, today, today + timedelta(days=days_ahead))
    by_day: dict[date, list] = defaultdict(list)
    for row in rows:
        if row[0] not in closed:
            by_day[row[0]].append(row)
    draws, full = [], []
    for day, slots in by_day.items():
        parts = tuple(sorted({part_of_day(s[1].astimezone(tz)) for s in slots}, key=PARTS.index))
        drawing = [s for s in slots if s[2] == "draw" and not s[5]]
        if drawing and all(s[3] <= now < s[4] for s in drawing):
            draws.append(RequestDay(day, "draw", parts, min(s[4] for s in drawing)))
            continue
        on_sale = all(s[4] <= now and (s[2] == "first_come" or s[5]) for s in slots)
        if on_sale and sum(s[6] for s in slots) <= 0 and now < rules.booking_closes_at(policy, day, tz):
            full.append(RequestDay(day, "waitlist", parts))
    found = draws + full
    return [d for d in found if kind is None or d.kind == kind][:limit]


def public_record(ctx: ServiceContext, draw_id: int) -> dict[str, Any] | None:
    """What a hospital may publish about a draw, so that anyone can recompute it: the
    commitment and when it was made, the seed (after the draw), the places given out,
    and each request number with its part of the day and result. Nothing identifies a
    patient, and no booking code (a code with an ID's last four characters gives
    rights over a booking)."""
    with ctx.uow.read_only() as uow:
        session = uow.session
        draw = session.get(Draw, draw_id)
        if draw is None:
            return None
        department = session.get(Department, draw.department_id)
        tz = ZoneInfo(session.get(Hospital, department.hospital_id).timezone)
        opened = _audit_details(session, "draw.opened", draw_id)
        committed_at = session.get(AuditEvent, opened[0]).at if opened is not None else None
        record: dict[str, Any] = {
            "draw": draw.id, "department": department.code, "visit_date": draw.visit_date.isoformat(),
            "status": draw.status, "requests_open": draw.opens_at.astimezone(tz).isoformat(),
            "draw_time": draw.draw_at.astimezone(tz).isoformat(), "commitment": draw.seed_hash,
            "committed_at": committed_at.astimezone(tz).isoformat() if committed_at else None,
            "seed": draw.seed, "places": [], "requests": []}
        drawn = _audit_details(session, "draw.drawn", draw_id)
        if draw.status != "drawn" or drawn is None:
            return record  # before the draw: the commitment only
        starts = dict(session.execute(select(Slot.id, Slot.starts_at).where(
            Slot.department_id == draw.department_id, Slot.visit_date == draw.visit_date)).all())
        places = sorted(((starts[int(slot_id)], part, free) for slot_id, (part, free) in drawn[1]["places"].items()
                         if int(slot_id) in starts), key=lambda p: p[0])
        record["places"] = [{"starts_at": at.astimezone(tz).strftime("%H:%M"), "part": part, "free": free}
                            for at, part, free in places]
        given = dict(session.execute(
            select(DrawRequest.id, Slot.starts_at).join(Booking, DrawRequest.booking_id == Booking.id)
            .join(Slot, Booking.slot_id == Slot.id).where(DrawRequest.draw_id == draw_id)).all())
        for request in session.execute(select(DrawRequest).where(
                DrawRequest.draw_id == draw_id, DrawRequest.position.is_not(None))
                .order_by(DrawRequest.position)).scalars():
            result = {"number": request.id, "part": request.part, "position": request.position,
                      "result": request.status}
            if request.id in given:
                result["place"] = given[request.id].astimezone(tz).strftime("%H:%M")
            if request.refusal:
                result["refused_by"] = request.refusal
            record["requests"].append(result)
        return record
