"""The service layer's use cases and refusals, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from assistant.booking import results as r, service
from assistant.booking.models import Booking, Slot
from assistant.booking.service import IdentityInput, Staff
from tests.support import local, new_slot, person, phone

VISIT = date(2026, 12, 5)  # a Saturday; released 28 Nov 15:00, closes 4 Dec 16:00


def make_slot(services, dept, day=VISIT, hh=9, mm=0, **kw) -> int:
    return new_slot(services, dept, day, hh, mm, **kw)


def book(services, who, slot_id, now, **kw):
    return service.book_slot(services, identity_input=who, slot_id=slot_id, channel="sms",
                             now=now, booked_by=kw.pop("by", phone()), **kw)


def test_book_returns_code_and_takes_a_place(services, depts, now):
    slot_id = make_slot(services, depts["cardiology"], capacity=2)
    who = person()
    result = book(services, who, slot_id, now)
    assert isinstance(result, r.Booked)
    assert len(result.booking.code) == 8
    # The result is stored for replays, so it carries no part of the ID number.
    assert who.number[-4:] not in repr(r.to_json(result))
    assert service.availability(services, department_id=depts["cardiology"], date_from=VISIT,
                                date_to=VISIT, now=now)[0].free == 1


def test_open_days_and_the_soonest_slots_skip_full_closed_and_unreleased_places(services, depts, now):
    cardiology = depts["cardiology"]
    closed_day, full_day, open_day, later_day = (date(2026, 12, 1), date(2026, 12, 3), VISIT,
                                                 date(2026, 12, 7))
    make_slot(services, cardiology, closed_day, 10)  # closes 30 Nov 16:00, before `now`
    make_slot(services, cardiology, full_day, 9, capacity=0)
    make_slot(services, cardiology, later_day, 9, release_at=local(later_day, 8))  # not yet released
    late = make_slot(services, cardiology, open_day, 11)
    early = make_slot(services, cardiology, open_day, 9)
    other = make_slot(services, cardiology, date(2026, 12, 6), 9)
    span = dict(department_id=cardiology, date_from=closed_day, date_to=later_day, now=now)
    assert service.open_days(services, **span) == [open_day, date(2026, 12, 6)]
    assert [s.id for s in service.availability(services, **span)] == [early, late, other]
    assert [s.id for s in service.availability(services, **span, limit=2)] == [early, late]
    assert service.open_days(services, **{**span, "department_id": 10_000}) == []


def test_full_slot_is_refused(services, depts, now):
    slot_id = make_slot(services, depts["cardiology"], capacity=1)
    assert isinstance(book(services, person("Wang Fang"), slot_id, now), r.Booked)
    assert book(services, person("Li Wei"), slot_id, now, by=phone(1)) == r.SlotFull()


def test_invalid_id_is_refused_with_reason(services, depts, now):
    slot_id = make_slot(services, depts["cardiology"])
    bad = IdentityInput("cn_resident_id", "110105195003070010", "Wang Fang")
    result = book(services, bad, slot_id, now)
    assert isinstance(result, r.InvalidIdentity) and result.field == "id_number"
    assert result.reason == "checksum"


def test_known_id_with_another_name_is_booked_and_flagged_for_the_desk(services, depts, now):
    first = person("Wang Fang")
    book(services, first, make_slot(services, depts["cardiology"]), now)
    other_name = IdentityInput(first.kind, first.number, "Zhang San", first.birth_date)
    assert isinstance(book(services, other_name, make_slot(services, depts["eyes"]), now, by=phone(1)),
                      r.Booked)
    rows = {row.department_code: row for row in service.staff_bookings(services)}
    assert not rows["cardiology"].name_differs and rows["eyes"].name_differs


def test_booking_before_release_names_the_opening(services, depts, now):
    later = VISIT + timedelta(days=10)
    slot_id = make_slot(services, depts["cardiology"], day=later)
    result = book(services, person(), slot_id, now)
    assert result == r.NotYetOpen(opens_at=local(later - timedelta(days=7), 15))


def test_booking_closes_the_afternoon_before(services, depts):
    slot_id = make_slot(services, depts["cardiology"])
    late = local(VISIT - timedelta(days=1), 16, 0)
    assert book(services, person(), slot_id, late) == r.BookingClosed(closed_at=late)
    assert isinstance(book(services, person(), slot_id, late - timedelta(minutes=1)), r.Booked)


def test_one_booking_per_department_per_day(services, depts, now):
    who = person()
    assert isinstance(book(services, who, make_slot(services, depts["cardiology"], hh=9), now), r.Booked)
    result = book(services, who, make_slot(services, depts["cardiology"], hh=10), now)
    assert result == r.QuotaExceeded(quota="per_department_per_day", limit=1)


def test_two_per_visit_day(services, depts, now):
    who = person()
    for dept in ("cardiology", "eyes"):
        assert isinstance(book(services, who, make_slot(services, depts[dept]), now), r.Booked)
    result = book(services, who, make_slot(services, depts["bones"]), now)
    assert result == r.QuotaExceeded(quota="per_visit_day", limit=2)


def test_three_per_seven_days(services, depts, now):
    who = person()
    days = [date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 4)]
    for day in days:
        assert isinstance(book(services, who, make_slot(services, depts["cardiology"], day=day), now), r.Booked)
    result = book(services, who, make_slot(services, depts["cardiology"], day=date(2026, 12, 7)), now)
    assert result == r.QuotaExceeded(quota="per_7_days", limit=3)


def test_five_per_ninety_days(app, services, depts):
    who = person()
    # Spread visits 8 days apart so the 7-day rule never bites; release everything early.
    start = date(2026, 12, 2)
    release = local(start - timedelta(days=60), 8)
    now = local(start - timedelta(days=2), 9)
    for n in range(5):
        slot_id = make_slot(services, depts["cardiology"], day=start + timedelta(days=8 * n), release_at=release)
        assert isinstance(book(services, who, slot_id, now), r.Booked), n
    slot_id = make_slot(services, depts["cardiology"], day=start + timedelta(days=40), release_at=release)
    assert book(services, who, slot_id, now) == r.QuotaExceeded(quota="per_90_days", limit=5)


def test_one_address_books_for_at_most_three_patients(services, depts, now):
    family_phone = phone(7)
    for n, name in enumerate(["Wang Fang", "Li Wei", "Zhang Min"]):
        slot_id = make_slot(services, depts["cardiology"], hh=8 + n)
        assert isinstance(book(services, person(name), slot_id, now, by=family_phone,
                               relation="family"), r.Booked)
    slot_id = make_slot(services, depts["cardiology"], hh=12)
    assert book(services, person("Chen Jie"), slot_id, now, by=family_phone) == r.TooManyPatients(limit=3)
    assert len(service.linked_patients(services, family_phone)) == 3


def test_cancel_before_deadline_frees_the_place(services, depts, now):
    slot_id = make_slot(services, depts["cardiology"])
    booked = book(services, person(), slot_id, now)
    cancelled = service.cancel_booking(services, code=booked.booking.code, requester=phone(),
                                       channel="sms", now=now)
    assert isinstance(cancelled, r.Cancelled) and cancelled.booking.status == "cancelled"
    with services.uow.read_only() as uow:
        assert uow.session.get(Slot, slot_id).booked == 0


def test_cancel_after_deadline_is_refused_with_the_deadline(services, depts, now):
    booked = book(services, person(), make_slot(services, depts["cardiology"]), now)
    late = local(VISIT - timedelta(days=1), 16, 30)
    result = service.cancel_booking(services, code=booked.booking.code, requester=phone(),
                                    channel="sms", now=late)
    assert result == r.CancellationClosed(deadline=local(VISIT - timedelta(days=1), 16))


def test_stranger_cannot_cancel(services, depts, now):
    booked = book(services, person(), make_slot(services, depts["cardiology"]), now)
    result = service.cancel_booking(services, code=booked.booking.code, requester=phone(99),
                                    channel="sms", now=now)
    assert result == r.NotPermitted()


def test_three_cancellations_suspend_the_address_that_made_them_for_thirty_days(services, depts, now):
    who = person()
    for n in range(3):
        booked = book(services, who, make_slot(services, depts["cardiology"], hh=8 + n), now)
        assert isinstance(service.cancel_booking(services, code=booked.booking.code,
                                                 requester=phone(), channel="sms", now=now), r.Cancelled)
    # The desk never verified this phone as the patient's own: the phone is suspended
    # (for anyone it books for), the identity is not.
    result = book(services, who, make_slot(services, depts["eyes"]), now)
    assert result == r.Suspended(reason="cancellations", until=now + timedelta(days=30), scope="address")
    assert isinstance(book(services, person("Li Wei"), make_slot(services, depts["bones"]), now),
                      r.Suspended)
    assert isinstance(book(services, who, make_slot(services, depts["eyes"], hh=11), now, by=phone(7)),
                      r.Booked)


def test_reschedule_moves_atomically(services, depts, now):
    old_slot = make_slot(services, depts["cardiology"], hh=9)
    new_slot = make_slot(services, depts["cardiology"], hh=10)
    booked = book(services, person(), old_slot, now)
    moved = service.reschedule_booking(services, code=booked.booking.code, new_slot_id=new_slot,
                                       requester=phone(), channel="sms", now=now)
    assert isinstance(moved, r.Rescheduled) and moved.previous_code == booked.booking.code
    with services.uow.read_only() as uow:
        assert uow.session.get(Slot, old_slot).booked == 0
        assert uow.session.get(Slot, new_slot).booked == 1


def test_reschedule_to_full_slot_changes_nothing(services, depts, now):
    old_slot = make_slot(services, depts["cardiology"], hh=9)
    full_slot = make_slot(services, depts["cardiology"], hh=10)
    book(services, person("Li Wei"), full_slot, now, by=phone(3))
    booked = book(services, person(), old_slot, now)
    result = service.reschedule_booking(services, code=booked.booking.code, new_slot_id=full_slot,
                                        requester=phone(), channel="sms", now=now)
    assert result == r.SlotFull()
    with services.uow.read_only() as uow:
        assert uow.session.get(Slot, old_slot).booked == 1
        statuses = uow.session.execute(select(Booking.status)).scalars().all()
    assert sorted(statuses) == ["booked", "booked"]


def test_check_in_needs_the_matching_identity_on_the_day(services, depts, now):
    who = person()
    booked = book(services, who, make_slot(services, depts["cardiology"]), now)
    code = booked.booking.code
    on_the_day = local(VISIT, 8, 45)
    assert service.check_in(services, code=code, id_number=person("X").number, now=on_the_day) == r.BookingNotFound()
    assert service.check_in(services, code=code, id_number=who.number, now=now) == r.NotVisitDay(visit_date=VISIT)
    checked = service.check_in(services, code=code.lower(), id_number=who.number, now=on_the_day)
    assert isinstance(checked, r.CheckedIn) and checked.booking.status == "checked_in"


def test_no_shows_are_marked_after_the_day_and_three_suspend(services, depts, now):
    who = person()
    release = local(date(2026, 11, 1), 8)
    days = [date(2026, 12, 2), date(2026, 12, 12), date(2026, 12, 22)]
    for day in days:
        slot_id = make_slot(services, depts["cardiology"], day=day, release_at=release)
        assert isinstance(book(services, who, slot_id, now), r.Booked)
    assert service.mark_no_shows(services, now=local(date(2026, 12, 2), 20)) == r.NoShowReport(0, 0)
    assert service.mark_no_shows(services, now=local(date(2026, 12, 3), 0, 5)) == r.NoShowReport(1, 0)
    assert service.mark_no_shows(services, now=local(date(2026, 12, 13), 1)) == r.NoShowReport(1, 0)
    after = local(date(2026, 12, 23), 1)
    # An unverified phone made the bookings: it is what gets suspended.
    assert service.mark_no_shows(services, now=after) == r.NoShowReport(1, 0, 1)
    assert service.mark_no_shows(services, now=after) == r.NoShowReport(0, 0)
    slot_id = make_slot(services, depts["eyes"], day=date(2026, 12, 26), release_at=release)
    assert book(services, who, slot_id, after) == r.Suspended(
        reason="no_shows", until=after + timedelta(days=90), scope="address")


def test_staff_lift_suspension_with_reason(services, depts, now):
    who = person()
    for n in range(3):
        booked = book(services, who, make_slot(services, depts["cardiology"], hh=8 + n), now)
        service.cancel_booking(services, code=booked.booking.code, requester=phone(), channel="sms", now=now)
    [suspension] = service.active_suspensions(services, now=now)
    assert service.lift_suspension(services, suspension_id=suspension["id"], staff=Staff("alice"),
                                   reason="  ", now=now) == r.ReasonRequired()
    assert suspension["scope"] == "address" and suspension["who"].startswith("phone +86")
    assert phone().value[-4:] in suspension["who"] and "0013" not in suspension["who"]
    lifted = service.lift_suspension(services, suspension_id=suspension["id"], staff=Staff("alice"),
                                     reason="hospital cancelled the clinics", now=now)
    assert lifted == r.SuspensionLifted(suspension["id"])
    assert isinstance(book(services, who, make_slot(services, depts["eyes"]), now), r.Booked)


def test_idempotent_replay_returns_the_stored_result(services, depts, now):
    slot_id = make_slot(services, depts["cardiology"], capacity=3)
    first = book(services, person(), slot_id, now, idempotency_key="SM123")
    again = book(services, person(), slot_id, now, idempotency_key="SM123")
    assert first == again
    with services.uow.read_only() as uow:
        assert uow.session.execute(select(func.count()).select_from(Booking)).scalar_one() == 1


def test_lists_bookings_for_the_desk_by_id_and_for_the_address_that_made_them(services, depts, now):
    mother, son_phone = person("Wang Fang"), phone(5)
    book(services, mother, make_slot(services, depts["cardiology"]), now, by=son_phone, relation="family")
    assert [b.department_code for b in service.find_bookings_of_identity(services, mother)] == ["cardiology"]
    [named] = service.address_bookings(services, son_phone, now=now)
    assert named.name == "Wang Fang" and named.booking.department_code == "cardiology"
    assert service.address_bookings(services, phone(6), now=now) == []
