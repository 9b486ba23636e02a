"""The waitlist, and the freed places that go to it: never to whoever is fastest.

Rule: a place given back (a cancellation, the old half of a reschedule, a reminder
answered "release", a capacity raised) is not put back on sale. It is held (`slot.held`,
which first-come booking can't take) and offered down the day's waitlist, one patient
at a time, in order: the draw's order first, then those who joined later in a keyed
random order (`queue_key`), so joining the moment a day fills wins nothing. An offer waits
`offer_minutes` for "1"; declined or expired, it moves to the next patient, and that
patient leaves the list. Only when nobody on the list fits does the place go back on
sale, at the department's next release time, with the other places freed that day.
So a place cancelled "at an agreed moment" can't be caught by a buyer waiting for it.

Offers are claimed with conditional updates (an entry 'waiting' becomes 'offered' once),
so two places freed at once never go to one patient, on either database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from assistant.booking import audit, book, driver, policy as rules, results as r, statements as sql
from assistant.booking.inputs import AddressInput, ServiceContext
from assistant.booking.models import (
    BOOKED_FROM_LIST,
    DROPPED,
    HELD,
    LEFT,
    OFFER_OPEN,
    OFFERED,
    RELEASED,
    TAKEN,
    WAITING,
    Booking,
    ChannelAddress,
    Department,
    FreedPlace,
    OutboxMessage,
    Slot,
    WaitlistEntry,
)
from assistant.booking.records import (
    LockedPatient,
    TypedName,
    address_actor,
    department_rules,
    find_address,
    lock_address_by_id,
)
from assistant.booking.uow import UnitOfWork

PLACE_OFFERED = "place_offered"  # assistant/notices.py holds the sentences
LATE_ANSWERS = timedelta(hours=12)  # how long a late "1" to an expired offer is recognised
QUEUE_HEAD = 20  # entries read per place offered; more only if places race for them


def join(ctx: ServiceContext, session: Session, *, department_id: int, visit_date: date, patient_id: int,
         address_id: int, channel: str, part: str, relation: str, name_encrypted: str | None,
         name_index: str | None, joined_at: datetime) -> WaitlistEntry:
    """Join a day's waitlist after its draw (or on a first-come day). The place in the
    queue is a keyed hash, which nobody can predict or choose: not by speed, not by
    trying again."""
    entry = WaitlistEntry(department_id=department_id, visit_date=visit_date, patient_id=patient_id,
                          address_id=address_id, channel=channel, part=part, relation=relation,
                          name_encrypted=name_encrypted, name_index=name_index, joined_at=joined_at,
                          draw_position=None, status=WAITING,
                          queue_key=queue_key(ctx, department_id, visit_date, patient_id))
    session.add(entry)
    session.flush()
    return entry


def queue_key(ctx: ServiceContext, department_id: int, visit_date: date, patient_id: int) -> str:
    """The same for a patient who leaves and joins again: no second throw of the dice."""
    return ctx.keyring.blind_index("waitlist-order", f"{department_id}:{visit_date.isoformat()}:{patient_id}")


def queue_order():
    """The waitlist's order: the draw's order, then the keyed order of later joiners."""
    return (WaitlistEntry.draw_position.is_(None), WaitlistEntry.draw_position,
            WaitlistEntry.queue_key, WaitlistEntry.id)


def position_of(session: Session, entry: WaitlistEntry) -> int:
    """1 for the next patient to be offered a place, as the queue stands now."""
    if entry.draw_position is not None:
        ahead = or_(WaitlistEntry.draw_position < entry.draw_position)
    else:
        ahead = or_(WaitlistEntry.draw_position.is_not(None), WaitlistEntry.queue_key < entry.queue_key,
                    and_(WaitlistEntry.queue_key == entry.queue_key, WaitlistEntry.id < entry.id))
    count = session.execute(select(func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.department_id == entry.department_id, WaitlistEntry.visit_date == entry.visit_date,
        WaitlistEntry.status == WAITING, WaitlistEntry.id != entry.id, ahead)).scalar_one()
    return count + 1


# ---- freeing a place ------------------------------------------------------------------


def next_release(ctx: ServiceContext, session: Session, department_id: int, now: datetime) -> datetime:
    return rules.next_release(*department_rules(ctx, session, session.get(Department, department_id)), now)


def free_place(ctx: ServiceContext, session: Session, slot_id: int, reason: str, now: datetime,
               *, was_booked: bool = True) -> None:
    """A place in `slot_id` is given back: held off sale, and offered to the waitlist.
    `was_booked` False: the place is new (a capacity raised), not a booking's."""
    if was_booked:
        changed = session.execute(update(Slot).where(Slot.id == slot_id, Slot.booked > 0)
                                  .values(booked=Slot.booked - 1, held=Slot.held + 1)
                                  .returning(Slot.id)).first()
    else:
        changed = session.execute(update(Slot).where(Slot.id == slot_id, Slot.booked + Slot.held < Slot.capacity)
                                  .values(held=Slot.held + 1).returning(Slot.id)).first()
    if changed is None:
        return
    slot = session.get(Slot, slot_id)
    if slot.starts_at <= now:
        _unhold(session, slot_id)  # a place in the past helps nobody
        return
    session.add(FreedPlace(slot_id=slot_id, department_id=slot.department_id, visit_date=slot.visit_date,
                           reason=reason, freed_at=now, status=HELD, offers_made=0,
                           release_at=next_release(ctx, session, slot.department_id, now)))
    session.flush()
    offer_held(ctx, session, slot.department_id, slot.visit_date, now)


def _unhold(session: Session, slot_id: int) -> None:
    session.execute(update(Slot).where(Slot.id == slot_id, Slot.held > 0).values(held=Slot.held - 1))


# ---- offering --------------------------------------------------------------------------


def offer_held(ctx: ServiceContext, session: Session, department_id: int, visit_date: date,
               now: datetime) -> int:
    """Offer the day's held places down its waitlist; returns the offers made."""
    from assistant.booking.release import part_of_day

    held = session.execute(
        select(FreedPlace, Slot).join(Slot, FreedPlace.slot_id == Slot.id).where(
            FreedPlace.department_id == department_id, FreedPlace.visit_date == visit_date,
            FreedPlace.status == HELD, Slot.starts_at > now)
        .order_by(Slot.starts_at, FreedPlace.id)).all()
    if not held:
        return 0
    department = session.get(Department, department_id)
    policy, tz = department_rules(ctx, session, department)
    made = 0
    for place, slot in held:
        slot_part = part_of_day(slot.starts_at.astimezone(tz))
        # A patient whose phone or chat sent STOP can't hear an offer: she keeps her
        # place in the queue for when she sends START.
        # Only the head of the queue is read: a long list costs one short query a place.
        candidates = session.execute(
            select(WaitlistEntry.id, WaitlistEntry.part)
            .join(ChannelAddress, WaitlistEntry.address_id == ChannelAddress.id).where(
                WaitlistEntry.department_id == department_id, WaitlistEntry.visit_date == visit_date,
                WaitlistEntry.status == WAITING, ChannelAddress.opted_out_at.is_(None),
                WaitlistEntry.part.in_(("any", slot_part)))
            .order_by(*queue_order()).limit(QUEUE_HEAD)).all()
        for entry_id, part in candidates:
            # The claim: only one freed place can turn a waiting entry into an offer.
            claimed = session.execute(update(WaitlistEntry).where(
                WaitlistEntry.id == entry_id, WaitlistEntry.status == WAITING)
                .values(status=OFFERED).returning(WaitlistEntry.id)).first()
            if claimed is None:
                continue
            entry = session.get(WaitlistEntry, entry_id, populate_existing=True)
            expires_at = min(now + timedelta(minutes=max(policy.offer_minutes, 1)), slot.starts_at)
            place.status, place.entry_id, place.offered_at, place.expires_at = OFFER_OPEN, entry_id, now, expires_at
            place.offers_made += 1
            address = session.get(ChannelAddress, entry.address_id)
            # Turns look for an answer until then, and a little longer: a "1" sent just
            # too late is told so, not taken for a menu choice.
            if address.question_until is None or address.question_until < expires_at + LATE_ANSWERS:
                address.question_until = expires_at + LATE_ANSWERS
            if address.kind != "console":
                session.add(OutboxMessage(
                    address_id=entry.address_id, patient_id=entry.patient_id, message=PLACE_OFFERED,
                    params={"department": dict(department.names), "starts_at": slot.starts_at.isoformat(),
                            "expires_at": expires_at.isoformat(), "minutes": policy.offer_minutes},
                    locale=address.locale, status="pending", attempts=0, created_at=now,
                    channel=entry.channel))
            audit.append(session, ctx.keyring.audit_key, actor=audit.SYSTEM, action="offer.made",
                         subject=f"freed:{place.id}", details={
                             "slot": slot.id, "waitlist": entry_id, "patient": entry.patient_id,
                             "expires_at": expires_at.isoformat()}, at=now)
            made += 1
            break
    session.flush()
    return made


# ---- the patient's answer ----------------------------------------------------------------


@dataclass(frozen=True)
class OpenOffer:
    freed_id: int
    entry_id: int
    slot_id: int
    expires_at: datetime


def open_offer(session: Session, address_id: int, now: datetime) -> OpenOffer | None:
    row = session.execute(
        select(FreedPlace.id, FreedPlace.entry_id, FreedPlace.slot_id, FreedPlace.expires_at)
        .join(WaitlistEntry, FreedPlace.entry_id == WaitlistEntry.id)
        .where(FreedPlace.status == OFFER_OPEN, FreedPlace.expires_at > now,
               WaitlistEntry.address_id == address_id)
        .order_by(FreedPlace.offered_at.desc(), FreedPlace.id.desc()).limit(1)).first()
    return OpenOffer(*row) if row is not None else None


def missed_offer(session: Session, address_id: int, now: datetime) -> WaitlistEntry | None:
    """The offer this address let expire lately (within LATE_ANSWERS), if any."""
    return session.execute(select(WaitlistEntry).where(
        WaitlistEntry.address_id == address_id, WaitlistEntry.status == LEFT,
        WaitlistEntry.left_reason == "expired", WaitlistEntry.left_at > now - LATE_ANSWERS)
        .order_by(WaitlistEntry.left_at.desc()).limit(1)).scalar_one_or_none()


def answer_offer(ctx: ServiceContext, *, address: AddressInput, accept: bool, channel: str, now: datetime,
                 idempotency_key: str | None = None) -> r.Answered | r.Refusal:
    """"1" takes the offered place (the booking rules still apply), "2" passes it to
    the next patient on the list."""
    key = f"offer:{idempotency_key}" if idempotency_key is not None else None

    def attempt(uow: UnitOfWork, db: driver.Cursor) -> Any:
        session = uow.session
        replay = book.replayed(db, key)
        if replay is not None:
            return replay
        found = find_address(ctx, session, address)
        offer = open_offer(session, found.id, now) if found is not None else None
        if offer is None:
            return r.NothingToAnswer()
        lock_address_by_id(session, found.id)
        place = session.get(FreedPlace, offer.freed_id, populate_existing=True)
        entry = session.get(WaitlistEntry, offer.entry_id, populate_existing=True)
        if place.status != OFFER_OPEN or place.entry_id != entry.id:
            return r.NothingToAnswer()
        actor = audit.Actor(address_actor(found), channel)
        if not accept:
            _pass_on(ctx, session, place, entry, "declined", actor, now)
            return book.keep(ctx, uow, db, key, r.Answered("offer", False), [], now)
        db.run(sql.LOCK_PATIENT_BY_ID, {"patient_id": entry.patient_id})
        slot_row = db.run(sql.SLOT_WITH_RULES, {"slot_id": place.slot_id}).first()
        _unhold(session, place.slot_id)  # the offered place becomes the patient's
        placed = book.book_locked(
            ctx, db, LockedPatient(entry.patient_id), slot_row, entry.channel, now, actor,
            name=TypedName(entry.name_encrypted, entry.name_index) if entry.name_encrypted else None,
            address_id=entry.address_id, staff=None, replacing_id=None, acting_address_id=found.id,
            relation=entry.relation, closing_applies=False)
        if isinstance(placed, r.Refusal):
            return placed  # rolled back: the offer stands until it expires or is passed
        booking = placed.result.booking
        booking_id = session.execute(select(Booking.id).where(Booking.code == booking.code)).scalar_one()
        place.status, place.booking_id, place.resolved_at = TAKEN, booking_id, now
        entry.status, entry.booking_id = BOOKED_FROM_LIST, booking_id
        session.flush()
        entries = placed.entries + [audit.Entry(actor, "offer.accepted", f"freed:{place.id}",
                                                {"booking": booking.code}, now)]
        return book.keep(ctx, uow, db, key, r.Answered("offer", True, code=booking.code, booking=booking),
                         entries, now)

    return book.run_booking(ctx, key, now, attempt)


def _pass_on(ctx: ServiceContext, session: Session, place: FreedPlace, entry: WaitlistEntry, why: str,
             actor: audit.Actor, now: datetime) -> None:
    """The offer ends unanswered or declined: the patient leaves the list, and the place
    is held again for the next one."""
    entry.status, entry.left_reason, entry.left_at = LEFT, why, now
    place.status, place.entry_id, place.offered_at, place.expires_at = HELD, None, None, None
    session.flush()
    audit.append(session, ctx.keyring.audit_key, actor=actor, action=f"offer.{why}",
                 subject=f"freed:{place.id}", details={"waitlist": entry.id}, at=now)
    offer_held(ctx, session, place.department_id, place.visit_date, now)


# ---- the worker's rounds -------------------------------------------------------------------


@dataclass
class WaitlistReport:
    expired: int = 0
    offered: int = 0
    released: int = 0
    dropped: int = 0


def run_due(ctx: ServiceContext, now: datetime) -> WaitlistReport:
    """Expire unanswered offers (moving them on), offer held places, put back on sale the
    held places nobody waits for once their release time comes, and drop places whose
    time has passed. Each change is a conditional update: safe for several workers."""
    report = WaitlistReport()
    with ctx.uow() as uow:
        session = uow.session
        expired = session.execute(select(FreedPlace).where(
            FreedPlace.status == OFFER_OPEN, FreedPlace.expires_at <= now)
            .order_by(FreedPlace.expires_at, FreedPlace.id)).scalars().all()
        for place in expired:
            entry = session.get(WaitlistEntry, place.entry_id)
            _pass_on(ctx, session, place, entry, "expired", audit.SYSTEM, now)
            report.expired += 1
        days = session.execute(select(FreedPlace.department_id, FreedPlace.visit_date).where(
            FreedPlace.status == HELD).distinct()).all()
        for department_id, visit_date in days:
            report.offered += offer_held(ctx, session, department_id, visit_date, now)
        for place, slot in session.execute(
                select(FreedPlace, Slot).join(Slot, FreedPlace.slot_id == Slot.id).where(
                    FreedPlace.status.in_((HELD, OFFER_OPEN)), Slot.starts_at <= now)).all():
            place.status, place.resolved_at = DROPPED, now
            if place.entry_id is not None:
                session.execute(update(WaitlistEntry).where(WaitlistEntry.id == place.entry_id,
                                                            WaitlistEntry.status == OFFERED)
                                .values(status=LEFT, left_reason="passed", left_at=now))
            _unhold(session, slot.id)
            report.dropped += 1
        for place in session.execute(select(FreedPlace).where(
                FreedPlace.status == HELD, FreedPlace.release_at <= now)).scalars().all():
            place.status, place.resolved_at = RELEASED, now
            _unhold(session, place.slot_id)
            audit.append(session, ctx.keyring.audit_key, actor=audit.SYSTEM, action="place.released",
                         subject=f"freed:{place.id}", details={"slot": place.slot_id}, at=now)
            report.released += 1
        session.flush()
        uow.commit()
    return report


def close_day(session: Session, department_ids: list[int], day: date, now: datetime) -> None:
    """A closed day: its held places and open offers end, and its waitlist with them."""
    places = session.execute(select(FreedPlace).where(
        FreedPlace.department_id.in_(department_ids), FreedPlace.visit_date == day,
        FreedPlace.status.in_((HELD, OFFER_OPEN)))).scalars().all()
    for place in places:
        place.status, place.resolved_at = DROPPED, now
        _unhold(session, place.slot_id)
    session.execute(update(WaitlistEntry).where(
        WaitlistEntry.department_id.in_(department_ids), WaitlistEntry.visit_date == day,
        WaitlistEntry.status.in_((WAITING, OFFERED))).values(status=LEFT, left_reason="closed", left_at=now))
    session.flush()


def withdraw_places(session: Session, slot: Slot) -> None:
    """A slot leaves the schedule: its held places are dropped (their rows too, so the
    slot may go), and a patient offered one is back on the waitlist in her place."""
    places = session.execute(select(FreedPlace).where(FreedPlace.slot_id == slot.id)).scalars().all()
    for place in places:
        if place.status == OFFER_OPEN and place.entry_id is not None:
            session.execute(update(WaitlistEntry).where(WaitlistEntry.id == place.entry_id,
                                                        WaitlistEntry.status == OFFERED)
                            .values(status=WAITING))
        session.delete(place)
    slot.held = 0
    session.flush()


def hold_added_places(session: Session, slot: Slot, added: int, release_at: datetime, now: datetime) -> None:
    """Places a schedule adds to a slot already on sale are held, like freed ones: the
    worker offers them to the waitlist, else they go on sale at `release_at`."""
    for _ in range(added):
        session.add(FreedPlace(slot_id=slot.id, department_id=slot.department_id, visit_date=slot.visit_date,
                               reason="capacity", freed_at=now, status=HELD, offers_made=0,
                               release_at=release_at))
    slot.held += added
