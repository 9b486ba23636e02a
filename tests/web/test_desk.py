"""The front desk on the web: find, check in, no-shows; on SQLite and PostgreSQL.

The clerk types the ID number from the card. Tested as the desk and as someone who
knows a code but not the card: a wrong number is told nothing more than an unknown code,
and the full ID number and name never appear on a page.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from assistant.booking import results as r, service
from assistant.booking.models import AuditEvent, Booking, Slot
from tests.support import person, phone
from tests.web.conftest import csrf_token

VISIT = date(2026, 12, 2)  # the seed's "today" is 1 Dec; booking for the 2nd is open


def book(web_app, who, by=None, name_day=VISIT):
    with web_app.services.uow.read_only() as uow:
        slot_ids = uow.session.execute(select(Slot.id).where(Slot.visit_date == name_day,
                                                             Slot.booked < Slot.capacity)
                                       .order_by(Slot.starts_at)).scalars().all()
    for slot_id in slot_ids:
        result = service.book_slot(web_app.services, slot_id=slot_id, channel="sms", now=web_app.clock(),
                                   identity_input=who, booked_by=by or phone())
        if isinstance(result, r.Booked):
            return result.booking
    raise AssertionError("nothing could be booked")


def post(client, path, **data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/admin/desk")})


def test_find_by_code_or_by_id_number_shows_the_patient_masked(clerk_client, web_app):
    who = person("Wang Fang")
    booking = book(web_app, who)
    by_code = post(clerk_client, "/admin/desk/find", code=booking.code.lower()).get_data(as_text=True)
    by_id = post(clerk_client, "/admin/desk/find", id_number=who.number).get_data(as_text=True)
    for page in (by_code, by_id):
        assert booking.code in page
        assert who.number not in page and "Wang Fang" not in page
        assert who.number[-4:] in page  # the masked form keeps the last four
    nothing = post(clerk_client, "/admin/desk/find", id_number=person("Li Wei").number).get_data(as_text=True)
    assert booking.code not in nothing and "No bookings found." in nothing


def test_check_in_needs_the_number_on_the_card_and_verifies_her_own_phone(clerk_client, web_app):
    who = person("Wang Fang")
    booking = book(web_app, who, by=phone(7))
    web_app.clock.now = web_app.clock.now + timedelta(days=1)  # the visit day
    wrong = post(clerk_client, "/admin/desk/check-in", code=booking.code, id_number=person("Li Wei").number)
    unknown = post(clerk_client, "/admin/desk/check-in", code="ZZZZZZZZ", id_number=who.number)
    for refused in (wrong, unknown):  # the same answer: a wrong card confirms nothing
        assert refused.status_code == 302
    assert "No booking with that code matches" in clerk_client.get("/admin/desk").get_data(as_text=True)
    page = post(clerk_client, "/admin/desk/check-in", code=booking.code, id_number=who.number).get_data(as_text=True)
    assert "Checked in" in page and "Wang Fang" in page  # the name given, to compare with the card
    assert 'id="address-verified"' in page
    with web_app.services.uow.read_only() as uow:
        status = uow.session.execute(select(Booking.status).where(Booking.code == booking.code)).scalar_one()
        actors = uow.session.execute(select(AuditEvent.actor).where(AuditEvent.action == "booking.checked_in")).scalars().all()
    assert status == "checked_in" and actors == ["staff:clerk"]


def test_check_in_on_another_day_is_refused(clerk_client, web_app):
    who = person("Wang Fang")
    booking = book(web_app, who)
    post(clerk_client, "/admin/desk/check-in", code=booking.code, id_number=who.number)
    assert "That booking is for another day." in clerk_client.get("/admin/desk").get_data(as_text=True)


def test_no_shows_are_marked_for_a_finished_day_only_under_the_clerks_name(clerk_client, web_app):
    booking = book(web_app, person("Wang Fang"))
    early = post(clerk_client, "/admin/desk/no-shows", day=VISIT.isoformat())
    assert "only for a day that is over" in clerk_client.get(early.location).get_data(as_text=True)
    web_app.clock.now = web_app.clock.now + timedelta(days=2)
    day_page = clerk_client.get(f"/admin/desk/day?day={VISIT.isoformat()}").get_data(as_text=True)
    assert booking.code in day_page and "Mark the no-shows of this day" in day_page
    done = post(clerk_client, "/admin/desk/no-shows", day=VISIT.isoformat())
    assert "No-shows marked: 1." in clerk_client.get(done.location).get_data(as_text=True)
    with web_app.services.uow.read_only() as uow:
        assert uow.session.execute(select(Booking.status).where(Booking.code == booking.code)).scalar_one() == "no_show"
        actors = uow.session.execute(select(AuditEvent.actor).where(AuditEvent.action == "booking.no_show")).scalars().all()
    assert actors == ["staff:clerk"]


def test_a_bad_day_in_the_address_bar_shows_today(clerk_client):
    assert clerk_client.get("/admin/desk/day?day=not-a-day").status_code == 200
