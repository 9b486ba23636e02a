"""Freed places go to the waitlist, never to whoever is fastest; on both databases.

A cancelled place is held and offered down the list: "1" takes it, "2" or silence for
the offer's minutes passes it on. With nobody waiting, it goes back on sale only at the
next release time. So a cancel-and-rebook transfer to a buyer can't succeed. Two places
freed at once never go to one patient (real threads)."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from assistant.booking import release, reminders, results as r, service, waitlist
from assistant.booking.models import Booking, FreedPlace, OutboxMessage, Slot, WaitlistEntry
from assistant.booking.records import find_address
from tests.support import add_hospital, add_slot, local, person, phone

VISIT = date(2026, 12, 7)


@pytest.fixture
def full_day(services, now):
    """Cardiology on 7 December: two places at 9:00, both booked, and two patients on the
    day's waitlist (joined in that order)."""
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        slot = add_slot(uow.session, depts["cardiology"], VISIT, 9, capacity=2, release_at=now - timedelta(days=1))
        uow.commit()
    codes = []
    for n in range(2):
        booked = service.book_slot(services, slot_id=slot, channel="sms", now=now,
                                   identity_input=person("Holder " + "AB"[n]), booked_by=phone(n))
        assert isinstance(booked, r.Booked), booked
        codes.append(booked.booking.code)
    positions = []
    for n in range(2):
        joined = join(services, depts["cardiology"], now + timedelta(minutes=n), 10 + n)
        assert isinstance(joined, r.Requested) and joined.kind == "waitlist", joined
        positions.append(joined.position)
    # Joiners queue in a keyed random order: whoever is first, the other is second.
    with services.uow.read_only() as uow:
        queue = uow.session.execute(select(WaitlistEntry.address_id).order_by(*waitlist.queue_order())).scalars().all()
        by_address = {found.id: n for n in (10, 11)
                      for found in [find_address(services, uow.session, phone(n))]}
    first, second = (by_address[a] for a in queue)
    assert positions[0] in (1, 2) and positions[1] == (1 if first == 11 else 2)
    return {"slot": slot, "codes": codes, "department": depts["cardiology"], "depts": depts,
            "first": phone(first), "second": phone(second)}


def join(services, department_id, when, n, part="any"):
    return release.request_place(services, department_id=department_id, visit_date=VISIT, part=part,
                                 channel="sms", now=when, booked_by=phone(n),
                                 identity_input=person("Waiting " + "ABCDEFGH"[n % 8]))


def free(services, full_day, when):
    return service.availability(services, department_id=full_day["department"], date_from=VISIT,
                                date_to=VISIT, now=when)


def cancel(services, code, n, when):
    return service.cancel_booking(services, code=code, requester=phone(n), channel="sms", now=when)


def offers(services):
    with services.uow.read_only() as uow:
        return [(p.status, p.entry_id) for p in uow.session.execute(
            select(FreedPlace).order_by(FreedPlace.id)).scalars()]


def entry_status(services):
    """The waitlist's statuses, in its queue's order."""
    with services.uow.read_only() as uow:
        return [e.status for e in uow.session.execute(
            select(WaitlistEntry).order_by(*waitlist.queue_order())).scalars()]


def test_joiners_queue_by_a_keyed_order_that_joining_again_cannot_change(services, now):
    a = waitlist.queue_key(services, 1, VISIT, 7)
    assert a == waitlist.queue_key(services, 1, VISIT, 7)
    assert a != waitlist.queue_key(services, 1, VISIT, 8) and a != waitlist.queue_key(services, 2, VISIT, 7)


def test_a_cancelled_place_is_offered_to_the_first_on_the_list_not_sold(services, full_day, now):
    when = now + timedelta(hours=1)
    assert isinstance(cancel(services, full_day["codes"][0], 0, when), r.Cancelled)
    assert entry_status(services) == ["offered", "waiting"]
    with services.uow.read_only() as uow:
        slot = uow.session.get(Slot, full_day["slot"])
        held = (slot.booked, slot.held)
        message = uow.session.execute(select(OutboxMessage.message, OutboxMessage.params)).all()[-1]
    assert held == (1, 1)
    assert message[0] == waitlist.PLACE_OFFERED and message[1]["minutes"] == 30
    # The fastest bot can't take it: it is not on sale.
    grab = service.book_slot(services, slot_id=full_day["slot"], channel="sms", now=when,
                             identity_input=person("Buyer"), booked_by=phone(40))
    assert isinstance(grab, r.SlotFull)
    assert free(services, full_day, when) == []


def test_one_takes_the_offered_place(services, full_day, now):
    when = now + timedelta(hours=1)
    cancel(services, full_day["codes"][0], 0, when)
    taken = waitlist.answer_offer(services, address=full_day["first"], accept=True, channel="sms",
                                  now=when + timedelta(minutes=5))
    assert isinstance(taken, r.Answered) and taken.accepted and taken.code, taken
    assert entry_status(services) == ["booked", "waiting"]
    with services.uow.read_only() as uow:
        slot = uow.session.get(Slot, full_day["slot"])
        assert (slot.booked, slot.held) == (2, 0)
    assert offers(services)[0][0] == "taken"


def test_two_passes_it_to_the_next_patient(services, full_day, now):
    when = now + timedelta(hours=1)
    cancel(services, full_day["codes"][0], 0, when)
    passed = waitlist.answer_offer(services, address=full_day["first"], accept=False, channel="sms", now=when)
    assert isinstance(passed, r.Answered) and not passed.accepted
    assert entry_status(services) == ["left", "offered"]
    # The one who passed answering "1" now takes nothing: it is the next patient's.
    stranger = waitlist.answer_offer(services, address=full_day["first"], accept=True, channel="sms", now=when)
    assert isinstance(stranger, r.NothingToAnswer)


def test_an_unanswered_offer_expires_and_moves_on(services, full_day, now):
    when = now + timedelta(hours=1)
    cancel(services, full_day["codes"][0], 0, when)
    assert waitlist.run_due(services, when + timedelta(minutes=29)).expired == 0
    moved = waitlist.run_due(services, when + timedelta(minutes=30))
    assert (moved.expired, entry_status(services)) == (1, ["left", "offered"])
    late = waitlist.answer_offer(services, address=full_day["first"], accept=True, channel="sms",
                                 now=when + timedelta(minutes=31))
    assert isinstance(late, r.NothingToAnswer)


def test_with_nobody_waiting_a_place_goes_back_on_sale_only_at_the_next_release(services, full_day, now):
    when = now + timedelta(hours=1)  # 10:00 in Shanghai; release time is 15:00
    cancel(services, full_day["codes"][0], 0, when)
    for waiting in (full_day["first"], full_day["second"]):  # both waiting patients pass
        waitlist.answer_offer(services, address=waiting, accept=False, channel="sms", now=when)
    assert offers(services) == [("held", None)]
    waitlist.run_due(services, local(date(2026, 12, 1), 14, 59))
    assert free(services, full_day, when) == []
    released = waitlist.run_due(services, local(date(2026, 12, 1), 15, 0))
    assert released.released == 1
    assert len(free(services, full_day, local(date(2026, 12, 1), 15, 0))) == 1


def test_a_cancel_and_rebook_transfer_to_a_buyer_fails(services, full_day, now):
    """A scalper cancels at the agreed moment; the buyer's bot is waiting to book."""
    when = now + timedelta(hours=1)
    cancel(services, full_day["codes"][1], 1, when)
    for delay in (0, 1, 60):
        grab = service.book_slot(services, slot_id=full_day["slot"], channel="sms",
                                 now=when + timedelta(seconds=delay),
                                 identity_input=person("Buyer"), booked_by=phone(41))
        assert isinstance(grab, r.SlotFull)
    with services.uow.read_only() as uow:
        owners = uow.session.execute(select(Booking.booked_by_address_id).where(
            Booking.status == "booked")).scalars().all()
    assert len(owners) == 1


def test_an_offer_answered_from_the_right_phone_still_follows_the_quotas(services, full_day, now):
    """The patient on the list booked Cardiology that day another way meanwhile: "1"
    is refused kindly and the offer stands for its minutes."""
    with services.uow() as uow:
        other = add_slot(uow.session, full_day["department"], VISIT, 10, capacity=1,
                         release_at=now - timedelta(days=1))
        uow.commit()
    when = now + timedelta(hours=1)
    with services.uow.read_only() as uow:
        patient_id = uow.session.execute(select(WaitlistEntry.patient_id)
                                         .order_by(*waitlist.queue_order())).scalars().first()
    booked = service.book_slot(services, slot_id=other, channel="sms", now=when, patient_ref=patient_id,
                               booked_by=full_day["first"])
    assert isinstance(booked, r.Booked)
    cancel(services, full_day["codes"][0], 0, when)
    taken = waitlist.answer_offer(services, address=full_day["first"], accept=True, channel="sms", now=when)
    assert isinstance(taken, r.QuotaExceeded)


def test_a_raised_capacity_goes_to_the_waitlist_first(services, full_day, now):
    from assistant.booking import admin_config

    admin_config.set_slot_capacity(services, full_day["slot"], 3, staff="admin", now=now + timedelta(hours=1))
    assert entry_status(services) == ["offered", "waiting"]
    assert offers(services)[0][0] == "offered"


@pytest.mark.postgres
def test_two_places_freed_at_once_go_to_two_patients(services, full_day, now, database_url):
    """Both holders cancel at the same moment, in threads: each waiting patient gets
    one offer, never one patient both."""
    if not database_url.startswith("postgresql"):
        pytest.skip("real concurrency needs PostgreSQL's row locks")
    when = now + timedelta(hours=1)
    barrier = threading.Barrier(2)
    results = []

    def cancel_one(n):
        barrier.wait()
        results.append(cancel(services, full_day["codes"][n], n, when))

    threads = [threading.Thread(target=cancel_one, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(x, r.Cancelled) for x in results), results
    assert entry_status(services) == ["offered", "offered"]
    assert sorted(entry for _, entry in offers(services)) == sorted(set(entry for _, entry in offers(services)))


# ---- reminders -----------------------------------------------------------------------------


@pytest.fixture
def reminded(services, full_day, now):
    """The day before the visit, at the reminder time (10:00 in Shanghai)."""
    when = local(VISIT - timedelta(days=1), 10, 0)
    report = reminders.send_reminders(services, when, worker="w1")
    return when, report


def test_reminders_go_out_once_the_day_before(services, full_day, now, reminded):
    when, report = reminded
    assert report.queued == 2
    assert reminders.send_reminders(services, when + timedelta(minutes=5), worker="w2").queued == 0
    with services.uow.read_only() as uow:
        sent = uow.session.execute(select(OutboxMessage.message).where(
            OutboxMessage.message == reminders.REMINDER)).scalars().all()
    assert len(sent) == 2


def test_reminders_skip_an_address_that_sent_stop(services, full_day, now):
    service.set_opted_out(services, phone(0), True, now=now)
    report = reminders.send_reminders(services, local(VISIT - timedelta(days=1), 10, 0), worker="w1")
    assert (report.queued, report.skipped) == (1, 1)


def test_reminders_wait_for_the_reminder_time(services, full_day, now):
    assert reminders.send_reminders(services, local(VISIT - timedelta(days=1), 9, 59), worker="w").queued == 0


def test_one_keeps_the_booking(services, full_day, reminded):
    when, _ = reminded
    kept = reminders.answer_reminder(services, address=phone(0), keep=True, channel="sms", now=when)
    assert isinstance(kept, r.Answered) and kept.accepted and kept.code == full_day["codes"][0]
    again = reminders.answer_reminder(services, address=phone(0), keep=False, channel="sms", now=when)
    assert isinstance(again, r.NothingToAnswer)  # answered already: "2" now releases nothing


def test_two_releases_the_place_to_the_waitlist_without_counting_against_anyone(services, full_day, reminded):
    when, _ = reminded
    released = reminders.answer_reminder(services, address=phone(0), keep=False, channel="sms", now=when)
    assert isinstance(released, r.Answered) and not released.accepted
    with services.uow.read_only() as uow:
        booking = uow.session.execute(select(Booking).where(Booking.code == full_day["codes"][0])).scalar_one()
        assert (booking.status, booking.cancel_reason, booking.counted_against) == ("cancelled", "released", None)
    assert entry_status(services) == ["offered", "waiting"]


def test_silence_keeps_the_booking(services, full_day, reminded):
    when, _ = reminded
    waitlist.run_due(services, when + timedelta(hours=20))
    with services.uow.read_only() as uow:
        statuses = uow.session.execute(select(Booking.status)).scalars().all()
    assert statuses == ["booked", "booked"]


def test_someone_else_cant_answer_a_reminder(services, full_day, reminded):
    when, _ = reminded
    stranger = reminders.answer_reminder(services, address=phone(33), keep=False, channel="sms", now=when)
    assert isinstance(stranger, r.NothingToAnswer)
    assert isinstance(service.cancel_booking(services, code=full_day["codes"][0], requester=phone(33),
                                             channel="sms", now=when), r.Refusal)


def test_pending_question_prefers_an_open_offer(services, full_day, now):
    when = now + timedelta(hours=1)
    cancel(services, full_day["codes"][0], 0, when)
    with services.uow.read_only() as uow:
        address_id = uow.session.execute(select(WaitlistEntry.address_id)
                                         .order_by(*waitlist.queue_order())).scalars().first()
        question = reminders.pending_question(services, uow.session, address_id, when)
    assert question.kind == "offer" and question.expires_at == when + timedelta(minutes=30)


def test_a_waitlist_is_joined_only_for_a_full_day_on_sale(services, now):
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        add_slot(uow.session, depts["bones"], VISIT, 9, capacity=1, release_at=now - timedelta(days=1))
        add_slot(uow.session, depts["eyes"], VISIT, 9, capacity=1, release_at=now + timedelta(days=1))
        uow.commit()
    free = join(services, depts["bones"], now, 20)
    early = join(services, depts["eyes"], now, 21)
    nothing = release.request_place(services, department_id=depts["cardiology"], visit_date=VISIT, part="any",
                                    channel="sms", now=now, booked_by=phone(22), identity_input=person("Nobody"))
    assert isinstance(free, r.PlacesFree)
    assert isinstance(early, r.NotYetOpen) and early.opens_at == now + timedelta(days=1)
    assert isinstance(nothing, r.SlotNotFound)


def test_a_closed_day_has_no_waitlist_to_join(services, full_day, now):
    from assistant.booking import admin_config

    with services.uow.read_only() as uow:
        codes = tuple(uow.session.execute(select(Booking.code).where(Booking.status == "booked")).scalars())
    admin_config.close_day(services, day=VISIT, department_id=full_day["department"], reason="Flooded",
                           confirmed_codes=codes, staff="admin", now=now + timedelta(hours=1))
    assert entry_status(services) == ["left", "left"]
    late = join(services, full_day["department"], now + timedelta(hours=2), 15)
    assert isinstance(late, r.SlotNotFound)
    assert release.request_days(services, department_id=full_day["department"], now=now + timedelta(hours=2)) == []
