"""The rules a race could break, raced with real threads on SQLite and PostgreSQL.

Every racer waits at a `threading.Barrier`, so the use cases really overlap. Whatever
happens, each racer must get a typed result (never an exception), and afterwards the
tables must agree with the results: a slot's `booked` column equals its active
bookings, quotas hold, and an idempotency key books once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any, Callable

import pytest
from sqlalchemy import func, select

from assistant.booking import policy as rules, results as r, service
from assistant.booking.models import (
    ACTIVE_STATUSES,
    QUOTA_STATUSES,
    AuditEvent,
    Booking,
    Patient,
    ProcessedEvent,
    Slot,
)
from assistant.booking.service import AddressInput, IdentityInput, Staff
from tests.support import add_hospital, add_slot, person, phone

VISIT = date(2026, 12, 5)  # released 28 Nov 15:00, closes 4 Dec 16:00; `now` is 1 Dec 09:00
DEPARTMENTS = ("cardiology", "eyes", "bones", "skin", "teeth")
BARRIER_TIMEOUT = 60
RESULT_TIMEOUT = 120


# ---- helpers --------------------------------------------------------------------------


def race(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run action(0..count-1) on `count` threads released together; return each result,
    or the exception it raised, in thread order."""
    barrier = threading.Barrier(count)

    def racer(index: int) -> Any:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        return action(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(racer, index) for index in range(count)]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=RESULT_TIMEOUT))
            except Exception as exc:  # reported by assert_no_exceptions
                outcomes.append(exc)
    return outcomes


def assert_no_exceptions(outcomes: list[Any]) -> None:
    raised = [o for o in outcomes if isinstance(o, BaseException)]
    assert not raised, f"{len(raised)} racer(s) raised instead of returning a result: " + "; ".join(
        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}" for e in raised[:3]
    )


def name_for(n: int) -> str:
    letters = ""
    n += 26
    while n:
        n, rest = divmod(n, 26)
        letters = chr(ord("a") + rest) + letters
    return f"Li {letters.title()}"


def patient(n: int) -> IdentityInput:
    """A distinct, valid identity per n (birth date and sequence both differ)."""
    return person(name_for(n), birth=date(1940, 1, 1) + timedelta(days=37 * n), sequence=n % 1000)


def telegram(n: int) -> AddressInput:
    return AddressInput("telegram", str(700_000_000 + n))


def setup_hospital(services) -> dict[str, int]:
    with services.uow() as uow:
        ids = add_hospital(uow.session, departments=DEPARTMENTS)
        uow.commit()
    return ids


def make_slot(services, dept: int, day: date = VISIT, hh: int = 9, mm: int = 0, **kw) -> int:
    with services.uow() as uow:
        slot_id = add_slot(uow.session, dept, day, hh, mm, **kw)
        uow.commit()
    return slot_id


def book(services, who: IdentityInput, slot_id: int, now, *, by: AddressInput | None,
         staff: Staff | None = None, **kw):
    return service.book_slot(services, identity_input=who, slot_id=slot_id,
                             channel="desk" if staff else "sms", now=now, booked_by=by,
                             staff=staff, **kw)


def slot_accounts(services) -> list[tuple[int, int, int, int]]:
    """(slot id, booked column, capacity, active bookings) for every slot."""
    with services.uow.read_only() as uow:
        active = dict(uow.session.execute(
            select(Booking.slot_id, func.count())
            .where(Booking.status.in_(ACTIVE_STATUSES))
            .group_by(Booking.slot_id)
        ).all())
        return [
            (slot.id, slot.booked, slot.capacity, active.get(slot.id, 0))
            for slot in uow.session.execute(select(Slot).order_by(Slot.id)).scalars()
        ]


def assert_slots_consistent(services) -> None:
    for slot_id, booked, capacity, active in slot_accounts(services):
        assert booked == active, f"slot {slot_id}: booked column {booked}, active bookings {active}"
        assert 0 <= booked <= capacity, f"slot {slot_id}: booked {booked} of {capacity}"


def count_rows(services, model, *where) -> int:
    with services.uow.read_only() as uow:
        return uow.session.execute(
            select(func.count()).select_from(model).where(*where)
        ).scalar_one()


# ---- capacity -------------------------------------------------------------------------


@pytest.mark.parametrize(("racers", "capacity"), [(40, 7), (32, 36)],
                         ids=["more-racers-than-places", "fewer-racers-than-places"])
def test_capacity_race_books_exactly_the_free_places(services, now, racers, capacity):
    depts = setup_hospital(services)
    slot_id = make_slot(services, depts["cardiology"], capacity=capacity)

    outcomes = race(racers, lambda i: book(services, patient(i), slot_id, now, by=phone(i)))

    assert_no_exceptions(outcomes)
    booked = [o for o in outcomes if isinstance(o, r.Booked)]
    others = [o for o in outcomes if not isinstance(o, r.Booked)]
    assert len(booked) == min(racers, capacity)
    assert others == [r.SlotFull()] * (racers - len(booked))
    assert len({b.booking.code for b in booked}) == len(booked)
    with services.uow.read_only() as uow:
        assert uow.session.get(Slot, slot_id).booked == len(booked)
    assert count_rows(services, Booking, Booking.slot_id == slot_id,
                      Booking.status.in_(ACTIVE_STATUSES)) == len(booked)
    assert_slots_consistent(services)


def test_capacity_race_between_new_phone_patients_and_desk_bookings(services, now):
    """New patients booking by phone (their first booking creates the address and its
    link) race desk bookings made by staff (no address). The two paths take different
    locks, and all of them share the audit head: nobody may fail (a deadlock is an
    exception too) or overbook."""
    depts = setup_hospital(services)
    racers, capacity = 40, 7
    slot_id = make_slot(services, depts["cardiology"], capacity=capacity)

    def attempt(i: int):
        if i % 2:
            return book(services, patient(i), slot_id, now, by=None, staff=Staff("desk"))
        return book(services, patient(i), slot_id, now, by=phone(i))

    outcomes = race(racers, attempt)

    assert_no_exceptions(outcomes)
    booked = [o for o in outcomes if isinstance(o, r.Booked)]
    assert len(booked) == capacity
    assert [o for o in outcomes if not isinstance(o, r.Booked)] == [r.SlotFull()] * (racers - capacity)
    with services.uow.read_only() as uow:
        assert uow.session.get(Slot, slot_id).booked == capacity
    assert_slots_consistent(services)


# ---- quotas ---------------------------------------------------------------------------


def test_one_identity_from_many_threads_keeps_every_quota(services, now):
    """One identity books from two phones and two Telegram chats at once, across
    5 departments x 6 days that are all open: the quotas must hold anyway."""
    depts = setup_hospital(services)
    days = [VISIT - timedelta(days=3) + timedelta(days=n) for n in range(6)]  # 2..7 Dec
    slots = [make_slot(services, depts[code], day=day, hh=9)
             for day in days for code in DEPARTMENTS]
    assert len(service.availability(services, department_id=depts["eyes"],
                                    date_from=days[0], date_to=days[-1], now=now)) == 6
    who = patient(1)
    addresses = [phone(1), telegram(1), phone(2), telegram(2)]
    # A returning patient: known, and linked to every address by a booking that staff
    # cancelled (which counts towards no quota). So no racer waits on creating the
    # patient row, and only the patient's row lock can keep the quota counts apart.
    for n, address in enumerate(addresses):
        # A slot each: a cancelled place is held for the waitlist, not booked again.
        warm_up = make_slot(services, depts["cardiology"], day=days[0] + timedelta(days=30 + n),
                            release_at=now - timedelta(days=1))
        first = book(services, who, warm_up, now, by=address)
        assert isinstance(first, r.Booked), first
        assert isinstance(service.cancel_booking(services, code=first.booking.code,
                                                 requester=Staff("desk"), channel="desk",
                                                 now=now), r.Cancelled)
    racers = 40

    outcomes = race(racers, lambda i: book(services, who, slots[i % len(slots)], now,
                                           by=addresses[i % len(addresses)]))

    assert_no_exceptions(outcomes)
    booked = [o for o in outcomes if isinstance(o, r.Booked)]
    refused = [o for o in outcomes if not isinstance(o, r.Booked)]
    assert all(isinstance(o, (r.QuotaExceeded, r.AlreadyBooked)) for o in refused), {
        type(o).__name__ for o in refused}
    policy = services.settings.policy
    # Every visit day falls in one 7-day window: that quota is the binding one.
    assert len(booked) == policy.per_7_days
    with services.uow.read_only() as uow:
        patient_ids = uow.session.execute(select(Patient.id)).scalars().all()
        assert len(patient_ids) == 1
        held = [
            rules.HeldBooking(day, dept) for day, dept in uow.session.execute(
                select(Booking.visit_date, Booking.department_id)
                .where(Booking.patient_id == patient_ids[0], Booking.status.in_(QUOTA_STATUSES))
            )
        ]
    assert rules.quotas_respected(policy, held) is None
    assert len(held) == len(booked) == count_rows(services, Booking, Booking.status == "booked")
    assert_slots_consistent(services)


# ---- idempotency ----------------------------------------------------------------------


def test_concurrent_replays_of_one_key_book_once(services, now):
    depts = setup_hospital(services)
    slot_id = make_slot(services, depts["cardiology"], capacity=5)
    who, sender = patient(3), phone(3)
    racers = 20

    outcomes = race(racers, lambda i: book(services, who, slot_id, now, by=sender,
                                           idempotency_key="SM-replayed-0001"))

    assert_no_exceptions(outcomes)
    assert isinstance(outcomes[0], r.Booked)
    assert all(o == outcomes[0] for o in outcomes)
    assert count_rows(services, Booking) == 1
    assert count_rows(services, ProcessedEvent) == 1
    with services.uow.read_only() as uow:
        assert uow.session.get(Slot, slot_id).booked == 1
    assert_slots_consistent(services)


# ---- cancelling and rescheduling ------------------------------------------------------


def test_cancel_racing_reschedule_leaves_one_consistent_state(services, now):
    depts = setup_hospital(services)
    rounds = 10
    for n in range(rounds):
        who, sender = patient(100 + n), phone(100 + n)  # fresh: 3 cancellations suspend
        old_slot = make_slot(services, depts["cardiology"], hh=8, mm=n * 5)
        new_slot = make_slot(services, depts["eyes"], hh=14, mm=n * 5)
        booked = book(services, who, old_slot, now, by=sender)
        assert isinstance(booked, r.Booked)
        code = booked.booking.code

        def act(i: int):
            if i == 0:
                return service.cancel_booking(services, code=code, requester=sender,
                                              channel="sms", now=now)
            return service.reschedule_booking(services, code=code, new_slot_id=new_slot,
                                              requester=sender, channel="telegram", now=now)

        cancelled, moved = race(2, act)

        assert_no_exceptions([cancelled, moved])
        with services.uow.read_only() as uow:
            old = uow.session.execute(
                select(Booking.status, Booking.cancel_reason).where(Booking.code == code)
            ).one()
            in_new = uow.session.execute(
                select(Booking.code, Booking.status).where(Booking.slot_id == new_slot)
            ).all()
            old_booked = uow.session.get(Slot, old_slot).booked
            new_booked = uow.session.get(Slot, new_slot).booked
        if isinstance(cancelled, r.Cancelled):
            assert moved == r.NotActive(status="cancelled"), (n, moved)
            assert tuple(old) == ("cancelled", "patient")
            assert in_new == [] and new_booked == 0
        else:
            assert isinstance(moved, r.Rescheduled), (n, cancelled, moved)
            assert cancelled == r.NotActive(status="cancelled"), (n, cancelled)
            assert tuple(old) == ("cancelled", "rescheduled")
            assert [tuple(b) for b in in_new] == [(moved.booking.code, "booked")]
            assert new_booked == 1
        assert old_booked == 0
        assert_slots_consistent(services)


def test_reschedule_racing_bookings_into_the_old_slot(services, now):
    """While a patient moves out of a slot, others book into it at the desk. The move
    locks its new slot and then its old one, the bookers lock the old one, and all of
    them append to the audit chain: nobody may fail, and the counts must agree."""
    depts = setup_hospital(services)
    racers = 32
    for n in range(3):
        mover, sender = patient(200 + n), phone(200 + n)
        old_slot = make_slot(services, depts["bones"], hh=8 + n, capacity=racers + 1)
        new_slot = make_slot(services, depts["skin"], hh=8 + n)
        booked = book(services, mover, old_slot, now, by=sender)
        assert isinstance(booked, r.Booked)

        def act(i: int):
            if i == 0:
                return service.reschedule_booking(services, code=booked.booking.code,
                                                  new_slot_id=new_slot, requester=sender,
                                                  channel="sms", now=now)
            return book(services, patient(300 + 40 * n + i), old_slot, now, by=None,
                        staff=Staff("desk"))

        outcomes = race(racers, act)

        assert_no_exceptions(outcomes)
        assert isinstance(outcomes[0], r.Rescheduled), outcomes[0]
        assert all(isinstance(o, r.Booked) for o in outcomes[1:])
        with services.uow.read_only() as uow:
            assert uow.session.get(Slot, old_slot).booked == racers - 1
            assert uow.session.get(Slot, new_slot).booked == 1
        assert_slots_consistent(services)


def test_check_in_racing_staff_cancel_leaves_one_consistent_state(services, now):
    """On the visit day the patient checks in at the kiosk while staff cancel the same
    booking (a clinic closed): exactly one of them wins, and the slot agrees."""
    depts = setup_hospital(services)
    today = now.date()  # 1 Dec; `now` is 09:00 in Beijing, the same day
    booked_at = now - timedelta(days=2)
    for n in range(12):
        who = patient(400 + n)
        slot_id = make_slot(services, depts["eyes"], day=today, hh=10, mm=n * 4)
        booked = book(services, who, slot_id, booked_at, by=phone(400 + n))
        assert isinstance(booked, r.Booked), booked
        code = booked.booking.code

        def act(i: int):
            if i == 0:
                return service.check_in(services, code=code, id_number=who.number, now=now)
            return service.cancel_booking(services, code=code, requester=Staff("desk"),
                                          channel="desk", now=now)

        checked, cancelled = race(2, act)

        assert_no_exceptions([checked, cancelled])
        with services.uow.read_only() as uow:
            status = uow.session.execute(
                select(Booking.status).where(Booking.code == code)).scalar_one()
            place_taken = uow.session.get(Slot, slot_id).booked
        winners = [type(o).__name__ for o in (checked, cancelled) if not isinstance(o, r.Refusal)]
        assert len(winners) == 1, (
            f"round {n}: {winners} both succeeded; the booking is now {status!r} "
            f"and its slot's booked column is {place_taken}")
        if isinstance(checked, r.CheckedIn):
            assert cancelled == r.NotActive(status="checked_in"), (n, cancelled)
            assert (status, place_taken) == ("checked_in", 1)
        else:
            assert checked == r.NotActive(status="cancelled"), (n, checked)
            assert isinstance(cancelled, r.Cancelled)
            assert (status, place_taken) == ("cancelled", 0)
        assert_slots_consistent(services)


# ---- suspensions ---------------------------------------------------------------------


def test_two_staff_lifting_one_suspension_lift_it_once(services, now):
    """Two staff members lift the same suspension at once: one lift is recorded, the
    other is told there is nothing left to lift."""
    depts = setup_hospital(services)
    for n in range(8):
        who, sender = patient(600 + n), phone(600 + n)
        for k in range(services.settings.policy.cancel_limit):  # cancellations suspend
            booked = book(services, who, make_slot(services, depts["eyes"], hh=8 + k, mm=n * 5),
                          now, by=sender)
            assert isinstance(booked, r.Booked), booked
            assert isinstance(service.cancel_booking(services, code=booked.booking.code,
                                                     requester=sender, channel="sms", now=now),
                              r.Cancelled)
        [suspension] = [s for s in service.active_suspensions(services, now=now)]
        suspension_id = suspension["id"]

        outcomes = race(2, lambda i: service.lift_suspension(
            services, suspension_id=suspension_id, staff=Staff(f"staff{i}"),
            reason=f"clinic closed ({i})", now=now))

        assert_no_exceptions(outcomes)
        assert sorted(type(o).__name__ for o in outcomes) == [
            "SuspensionLifted", "SuspensionNotFound"], (n, outcomes)
        assert count_rows(services, AuditEvent, AuditEvent.action == "suspension.lifted",
                          AuditEvent.subject == f"suspension:{suspension_id}") == 1
        assert service.active_suspensions(services, now=now) == []


# ---- the nightly no-show job ----------------------------------------------------------


def test_no_show_job_racing_new_bookings_of_the_same_patients(services, now):
    """The nightly job marks yesterday's missed visits while the same patients book
    their next visit: every booking and every mark must go through."""
    depts = setup_hospital(services)
    patients = 31
    yesterday = now.date() + timedelta(days=1)  # 2 Dec; the race runs on 3 Dec
    for n in range(patients):
        slot_id = make_slot(services, depts["cardiology"], day=yesterday, hh=8, mm=n)
        assert isinstance(book(services, patient(500 + n), slot_id, now, by=phone(500 + n)), r.Booked)
    early = now - timedelta(days=10)
    next_visit = make_slot(services, depts["eyes"], day=yesterday + timedelta(days=7),
                           capacity=patients, release_at=early)
    job_time = now + timedelta(days=2)  # 3 Dec 09:00 in Beijing: 2 Dec is over

    def act(i: int):
        if i == patients:
            return service.mark_no_shows(services, now=job_time)
        return book(services, patient(500 + i), next_visit, job_time, by=phone(500 + i))

    outcomes = race(patients + 1, act)

    assert_no_exceptions(outcomes)
    assert outcomes[-1] == r.NoShowReport(marked=patients, suspended_patients=0)
    assert all(isinstance(o, r.Booked) for o in outcomes[:-1])
    assert count_rows(services, Booking, Booking.status == "no_show") == patients
    with services.uow.read_only() as uow:
        assert uow.session.get(Slot, next_visit).booked == patients
    assert_slots_consistent(services)  # a no-show keeps its place: still active
