"""Release by draw, on both databases: requests follow the booking rules, the seed is
committed before the first request and revealed only at the draw, the draw is
deterministic from its seed, `verify_draw` recomputes it and catches tampering, and a
draw runs once however many workers try."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from assistant.booking import release, results as r, service
from assistant.booking.models import AuditEvent, Booking, ChannelAddress, Draw, DrawRequest, OutboxMessage, Slot, WaitlistEntry
from tests.support import add_hospital, add_slot, person, phone, utc, local

VISIT = date(2026, 12, 7)  # a Monday; the tests' clock is 1 December, 09:00 in Shanghai


@pytest.fixture
def eyes(services, now):
    """Eyes on 7 December: two morning places and one afternoon place, by draw, with
    requests open from an hour ago until six hours from now."""
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        opens, draw_at = now - timedelta(hours=1), now + timedelta(hours=6)
        slots = [add_slot(uow.session, depts["eyes"], VISIT, hh, capacity=1, release_at=draw_at,
                          requests_open_at=opens) for hh in (9, 10, 14)]
        uow.commit()
    return {"department": depts["eyes"], "slots": slots, "draw_at": draw_at, "depts": depts}


def name_of(n: int) -> str:
    return "Patient " + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 26] * (1 + n // 26)


def ask(services, eyes, now, n: int, part: str = "any", **kw):
    return release.request_place(services, department_id=eyes["department"], visit_date=VISIT, part=part,
                                 channel="sms", now=now, booked_by=kw.pop("address", phone(n)),
                                 identity_input=kw.pop("who", None) or person(name_of(n)), **kw)


def test_a_request_is_taken_while_requests_are_open_and_says_when_the_draw_is(services, eyes, now):
    result = ask(services, eyes, now, 1, part="morning")
    assert isinstance(result, r.Requested), result
    assert (result.kind, result.part, result.draw_at) == ("draw", "morning", eyes["draw_at"])


def test_requests_are_refused_before_the_window_and_after_the_draw_time(services, eyes, now):
    early = ask(services, eyes, now - timedelta(hours=2), 1)
    late = ask(services, eyes, eyes["draw_at"], 2)
    assert isinstance(early, r.RequestsClosed) and early.opens_at == now - timedelta(hours=1)
    assert isinstance(late, r.RequestsClosed)


def test_one_request_per_identity_from_any_address(services, eyes, now):
    who = person("Li Na")
    assert isinstance(ask(services, eyes, now, 1, who=who), r.Requested)
    again = ask(services, eyes, now, 2, who=who)  # the same ID from another phone
    assert isinstance(again, r.AlreadyRequested)


def test_the_address_patient_limit_applies_to_requests(services, eyes, now):
    results = [ask(services, eyes, now, 0, address=phone(0), who=person("Family " + name_of(n))) for n in range(4)]
    assert all(isinstance(x, r.Requested) for x in results[:3])
    assert isinstance(results[3], r.TooManyPatients)


def test_first_come_booking_of_a_draw_slot_is_refused_before_the_draw(services, eyes, now):
    result = service.book_slot(services, slot_id=eyes["slots"][0], channel="sms", now=now + timedelta(hours=7),
                               identity_input=person(), booked_by=phone(9))
    assert isinstance(result, r.NotYetOpen)


def test_the_commitment_is_written_before_the_first_request_and_the_seed_only_at_the_draw(services, eyes, now):
    ask(services, eyes, now, 1)
    with services.uow.read_only() as uow:
        seed_hash, seed, seed_encrypted = uow.session.execute(
            select(Draw.seed_hash, Draw.seed, Draw.seed_encrypted)).one()
        events = uow.session.execute(select(AuditEvent.action, AuditEvent.details)
                                     .order_by(AuditEvent.id)).all()
    actions = [action for action, _ in events]
    assert actions.index("draw.opened") < actions.index("draw.requested")
    assert events[actions.index("draw.opened")][1]["seed_hash"] == seed_hash
    assert seed is None  # secret until the draw
    secret = services.keyring.decrypt(seed_encrypted)
    assert secret not in str([details for _, details in events])
    assert release.seed_commitment(secret) == seed_hash


def run(services, eyes, worker="w1"):
    with services.uow.read_only() as uow:
        draw_id = uow.session.execute(select(Draw.id)).scalar_one()
    return draw_id, release.run_draw(services, draw_id, now=eyes["draw_at"], worker=worker)


def test_the_draw_places_as_many_as_fit_and_waitlists_the_rest_in_the_draws_order(services, eyes, now):
    for n in range(6):
        assert isinstance(ask(services, eyes, now, n, part="any" if n % 2 else "morning"), r.Requested)
    draw_id, report = run(services, eyes)
    assert (report.requests, report.placed, report.waitlisted) == (6, 3, 3)
    with services.uow.read_only() as uow:
        s = uow.session
        draw = s.get(Draw, draw_id)
        status, seed, seed_hash = draw.status, draw.seed, draw.seed_hash
        requests = [(q.id, q.status, q.patient_id) for q in
                    s.execute(select(DrawRequest).order_by(DrawRequest.position)).scalars()]
        slots = [(x.booked, x.drawn) for x in s.execute(select(Slot).order_by(Slot.starts_at)).scalars()]
        waitlist = s.execute(select(WaitlistEntry.patient_id).order_by(WaitlistEntry.draw_position)).scalars().all()
        notices = s.execute(select(OutboxMessage.message)).scalars().all()
    assert status == "drawn" and release.seed_commitment(seed) == seed_hash
    assert [rid for rid, _, _ in requests] == release.draw_order(seed, [rid for rid, _, _ in requests])
    assert slots == [(1, True)] * 3
    assert waitlist == [patient for _, state, patient in requests if state == "waitlisted"]
    assert sorted(notices) == ["draw_placed"] * 3 + ["draw_waitlisted"] * 3
    assert release.verify_draw(services, draw_id).ok


def test_a_morning_request_never_gets_an_afternoon_place(services, eyes, now):
    for n in range(3):
        ask(services, eyes, now, n, part="morning")
    draw_id, report = run(services, eyes)
    with services.uow.read_only() as uow:
        afternoon = uow.session.get(Slot, eyes["slots"][2]).booked
    assert (report.placed, report.waitlisted, afternoon) == (2, 1, 0)
    # The afternoon place nobody asked for goes on sale after the draw, first come.
    later = service.book_slot(services, slot_id=eyes["slots"][2], channel="sms", now=eyes["draw_at"],
                              identity_input=person("Late"), booked_by=phone(50))
    assert isinstance(later, r.Booked)


def test_the_order_is_fixed_by_the_seed(services, eyes, now):
    ids = list(range(1, 200))
    assert release.draw_order("ab" * 32, ids) == release.draw_order("ab" * 32, list(reversed(ids)))
    assert release.draw_order("ab" * 32, ids) != release.draw_order("cd" * 32, ids)
    places = [release.DrawPlace(1, "morning", 1), release.DrawPlace(2, "afternoon", 2)]
    assert release.assign([(5, "afternoon"), (6, "morning"), (7, "any"), (8, "any")], places) == {
        5: 2, 6: 1, 7: 2, 8: None}


def test_verify_catches_a_booking_moved_after_the_draw(services, eyes, now):
    for n in range(4):
        ask(services, eyes, now, n)
    draw_id, _ = run(services, eyes)
    with services.uow() as uow:
        placed = uow.session.execute(select(DrawRequest).where(DrawRequest.status == "placed")
                                     .order_by(DrawRequest.position)).scalars().all()
        first, second = (uow.session.get(Booking, q.booking_id) for q in placed[:2])
        first.slot_id, second.slot_id = second.slot_id, first.slot_id  # swapped by someone
        uow.commit()
    report = release.verify_draw(services, draw_id)
    assert not report.ok and any("should have slot" in p for p in report.problems)


def test_verify_catches_a_seed_that_does_not_match_its_commitment(services, eyes, now):
    for n in range(3):
        ask(services, eyes, now, n)
    draw_id, _ = run(services, eyes)
    with services.uow() as uow:
        uow.session.execute(update(Draw).values(seed="00" * 32))
        uow.commit()
    report = release.verify_draw(services, draw_id)
    assert "the seed does not match the commitment" in report.problems


def test_verify_catches_a_request_moved_up_the_queue(services, eyes, now):
    for n in range(5):
        ask(services, eyes, now, n)
    draw_id, _ = run(services, eyes)
    with services.uow() as uow:
        last = uow.session.execute(select(DrawRequest).order_by(DrawRequest.position.desc())).scalars().first()
        last.position = 1
        uow.commit()
    assert not release.verify_draw(services, draw_id).ok


def test_a_draw_runs_once_however_many_workers_try(services, eyes, now):
    for n in range(5):
        ask(services, eyes, now, n)
    with services.uow.read_only() as uow:
        draw_id = uow.session.execute(select(Draw.id)).scalar_one()
    results = []

    def worker(name):
        results.append(release.run_draw(services, draw_id, now=eyes["draw_at"], worker=name))

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for x in results if x is not None) == 1
    with services.uow.read_only() as uow:
        assert uow.session.execute(select(Booking)).scalars().all().__len__() == 3
    assert release.verify_draw(services, draw_id).ok


def test_a_draw_is_not_run_before_its_time(services, eyes, now):
    ask(services, eyes, now, 1)
    with services.uow.read_only() as uow:
        draw_id = uow.session.execute(select(Draw.id)).scalar_one()
    assert release.run_draw(services, draw_id, now=eyes["draw_at"] - timedelta(seconds=1), worker="w") is None


def test_a_suspension_that_began_after_the_request_is_refused_at_the_draw(services, eyes, now):
    from assistant.booking.models import Suspension

    ask(services, eyes, now, 1)
    ask(services, eyes, now, 2)
    with services.uow() as uow:
        patient_id = uow.session.execute(select(DrawRequest.patient_id).order_by(DrawRequest.id)).scalars().first()
        uow.session.add(Suspension(patient_id=patient_id, rule="no_shows", starts_at=now,
                                   ends_at=now + timedelta(days=90)))
        uow.commit()
    draw_id, report = run(services, eyes)
    assert (report.placed, report.refused) == (1, 1)
    assert release.verify_draw(services, draw_id).ok


def test_open_due_draws_publishes_the_commitment_when_requests_open(services, eyes, now):
    assert release.open_due_draws(services, now) == 1
    assert release.open_due_draws(services, now) == 0
    with services.uow.read_only() as uow:
        assert uow.session.execute(select(AuditEvent.action).where(
            AuditEvent.action == "draw.opened")).scalars().all() == ["draw.opened"]


def test_the_day_has_local_times(eyes):
    assert release.part_of_day(local(VISIT, 11, 59)) == "morning"
    assert release.part_of_day(local(VISIT, 12, 0)) == "afternoon"
    assert utc(local(VISIT, 9)).hour == 1


def test_a_request_in_her_name_from_another_phone_is_told_to_her_and_so_is_its_place(services, eyes, now):
    """Knowing her ID number is not enough to act unseen: her own phone hears of a
    request made elsewhere, and of the place it won, with the code to cancel it."""
    her = person("Zhou Min")
    # Her own phone: she booked for herself before (Cardiology, another day).
    with services.uow() as uow:
        earlier = add_slot(uow.session, eyes["depts"]["cardiology"], VISIT + timedelta(days=14), 9,
                           release_at=now - timedelta(days=1))
        uow.commit()
    assert isinstance(service.book_slot(services, slot_id=earlier, channel="sms", now=now, identity_input=her,
                                        booked_by=phone(1)), r.Booked)
    assert isinstance(ask(services, eyes, now, 2, who=her), r.Requested)  # a neighbour's phone
    draw_id, report = run(services, eyes)
    assert report.placed == 1
    with services.uow.read_only() as uow:
        own = uow.session.execute(select(OutboxMessage.message, OutboxMessage.params).join(
            ChannelAddress, OutboxMessage.address_id == ChannelAddress.id).order_by(OutboxMessage.id)).all()
        code = uow.session.execute(select(Booking.code).where(Booking.department_id == eyes["department"])).scalar_one()
    messages = [m for m, _ in own]
    assert "requested_for_you" in messages and "draw_placed" in messages
    told = [p for m, p in own if m == "booked_for_you"]
    assert told and told[0]["code"] == code


def test_a_schedule_change_leaves_a_day_whose_draw_is_open_as_it_was(services, eyes, now):
    """Staff switch the schedule to first come while the day takes requests: the day
    keeps its draw and its draw time; only days not yet opened change."""
    from assistant.booking import schedule
    from assistant.booking.models import ScheduleTemplate

    ask(services, eyes, now, 1)
    with services.uow() as uow:
        template = ScheduleTemplate(department_id=eyes["department"], weekday=VISIT.weekday(),
                                    start_time=local(VISIT, 9).time(), end_time=local(VISIT, 11).time(),
                                    slot_minutes=60, capacity=1, release_mode="first_come")
        uow.session.add(template)
        uow.session.flush()
        uow.session.execute(update(Slot).where(Slot.department_id == eyes["department"])
                            .values(template_id=template.id))
        uow.commit()
    with services.uow() as uow:
        schedule.generate_slots(uow.session, base_policy=services.settings.policy, start=VISIT, days=1,
                                audit_key=services.keyring.audit_key, now=now)
        uow.commit()
    with services.uow.read_only() as uow:
        kept = uow.session.execute(select(Slot.release_mode, Slot.release_at).where(
            Slot.department_id == eyes["department"], Slot.template_id.is_not(None))).all()
    assert kept and all(mode == "draw" and at == eyes["draw_at"] for mode, at in kept)


def test_closing_a_day_before_its_draw_cancels_the_draw_and_tells_every_requester(services, eyes, now):
    from assistant.booking import admin_config

    for n in range(3):
        ask(services, eyes, now, n)
    admin_config.close_day(services, day=VISIT, department_id=eyes["department"], reason="Doctor away",
                           confirmed_codes=(), staff="admin", now=now + timedelta(hours=1))
    with services.uow.read_only() as uow:
        status = uow.session.execute(select(Draw.status)).scalar_one()
        requests = uow.session.execute(select(DrawRequest.status)).scalars().all()
        told = uow.session.execute(select(OutboxMessage.message)).scalars().all()
    assert status == "cancelled" and requests == ["withdrawn"] * 3
    assert told.count("draw_cancelled") == 3
    assert release.due_draws(services, eyes["draw_at"]) == []


def test_the_published_record_lets_anyone_recompute_the_draw_and_names_nobody(services, eyes, now):
    people = [person(name_of(n)) for n in range(5)]
    for n, who in enumerate(people):
        ask(services, eyes, now, n, who=who, part="morning" if n % 2 else "any")
    before = release.public_record(services, 1)
    assert before["seed"] is None and before["commitment"] and before["requests"] == []
    draw_id, _ = run(services, eyes)
    record = release.public_record(services, draw_id)
    assert release.seed_commitment(record["seed"]) == record["commitment"]
    # An outsider's check, from the record alone: the order, and who got which place.
    numbers = [q["number"] for q in record["requests"]]
    assert release.draw_order(record["seed"], numbers) == numbers
    places = [release.DrawPlace(n, p["part"], p["free"]) for n, p in enumerate(record["places"])]
    parts = {q["number"]: q["part"] for q in record["requests"]}
    recomputed = release.assign([(n, parts[n]) for n in numbers], places)
    got = {q["number"]: q.get("place") for q in record["requests"]}
    assert {n: (record["places"][slot]["starts_at"] if slot is not None else None)
            for n, slot in recomputed.items()} == got
    text = str(record)
    with services.uow.read_only() as uow:
        codes = uow.session.execute(select(Booking.code)).scalars().all()
    assert not any(code in text for code in codes)
    assert not any(who.number in text or who.name in text for who in people)


def her_own_phone(services, eyes, now, who):
    """She booked for herself before from phone(1): that phone is her own."""
    with services.uow() as uow:
        earlier = add_slot(uow.session, eyes["depts"]["cardiology"], VISIT + timedelta(days=14), 9,
                           release_at=now - timedelta(days=1))
        uow.commit()
    assert isinstance(service.book_slot(services, slot_id=earlier, channel="sms", now=now, identity_input=who,
                                        booked_by=phone(1)), r.Booked)


def test_a_neighbour_cannot_spoil_her_request_her_own_phone_takes_it_over(services, eyes, now):
    her = person("Zhou Min")
    her_own_phone(services, eyes, now, her)
    assert isinstance(ask(services, eyes, now, 2, who=her), r.Requested)  # the neighbour, first
    assert isinstance(ask(services, eyes, now, 3, who=her), r.AlreadyRequested)  # another stranger
    mine = ask(services, eyes, now, 1, who=her, part="morning")
    assert isinstance(mine, r.Requested) and mine.part == "morning"
    with services.uow.read_only() as uow:
        requests = uow.session.execute(select(DrawRequest)).scalars().all()
        owner = uow.session.execute(select(ChannelAddress.id).join(
            DrawRequest, DrawRequest.address_id == ChannelAddress.id)).scalar_one()
        own = service.find_address(services, uow.session, phone(1)).id
        assert len(requests) == 1 and requests[0].part == "morning"
    assert owner == own
    _, report = run(services, eyes)
    assert report.placed == 1
    with services.uow.read_only() as uow:
        assert uow.session.execute(select(Booking.booked_by_address_id)).scalars().all()[-1] == own


def test_the_desk_withdraws_a_request_made_in_her_name_and_she_may_ask_again(services, eyes, now):
    her = person("Zhou Min")
    assert isinstance(ask(services, eyes, now, 2, who=her), r.Requested)  # a stranger claimed "for me"
    assert isinstance(ask(services, eyes, now, 1, who=her), r.AlreadyRequested)
    with services.uow.read_only() as uow:
        request_id = uow.session.execute(select(DrawRequest.id)).scalar_one()
    assert release.withdraw_request(services, request_id=request_id, staff="desk", now=now)
    assert not release.withdraw_request(services, request_id=request_id, staff="desk", now=now)
    again = ask(services, eyes, now, 1, who=her)
    assert isinstance(again, r.Requested)
    draw_id, report = run(services, eyes)
    assert report.requests == 1 and release.verify_draw(services, draw_id).ok
