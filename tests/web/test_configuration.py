"""/admin configuration (admins only), on SQLite and PostgreSQL: departments, weekly
schedules, slot generation, the calendar and capacities, closed days and booking rules.

Driven as an admin in a browser would: take the CSRF token from the page, post the form,
follow the redirect. Every change must reach what patients see (the catalogue, the
slots), be audited under the admin's name, and leave the audit trail and the tables in
agreement (reconcile); bad input must come back kindly with what was typed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from assistant.booking import identity, queries, reconcile, results as r, service
from assistant.booking.models import (
    AuditEvent,
    Booking,
    ChannelAddress,
    Department,
    Hospital,
    OutboxMessage,
    ScheduleException,
    ScheduleTemplate,
    Slot,
    Suspension,
)
from tests.support import person, phone
from tests.web.conftest import csrf_token

TZ = ZoneInfo("Asia/Shanghai")
VISIT = date(2026, 12, 3)  # a Thursday: released, and still bookable at the fixtures' `now`


def post(client, path: str, data: dict, *, token_from: str = "/admin/", **kw):
    return client.post(path, data={"csrf_token": csrf_token(client, token_from), **data}, **kw)


def page(response) -> str:
    return unescape(response.get_data(as_text=True))


def rows(app, query):
    with app.services.uow.read_only() as uow:
        found = uow.session.execute(query).scalars().all()
        uow.session.expunge_all()  # kept readable after the unit of work ends
        return found


def audit_events(app, action: str) -> list[AuditEvent]:
    return rows(app, select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))


def department_id(app, code: str) -> int:
    return rows(app, select(Department.id).where(Department.code == code))[0]


def slot_at(app, code: str, day: date, hh: int, mm: int = 0) -> Slot:
    starts = datetime.combine(day, time(hh, mm), tzinfo=TZ)
    return rows(app, select(Slot).where(Slot.department_id == department_id(app, code),
                                        Slot.starts_at == starts))[0]


def book(app, slot_id: int, who, address, now):
    result = service.book_slot(app.services, identity_input=who, slot_id=slot_id, channel="sms",
                               now=now, booked_by=address)
    assert isinstance(result, r.Booked), result
    return result.booking


def trail_agrees(app) -> bool:
    with app.services.uow.read_only() as uow:
        return reconcile.check(uow.session, app.services.keyring.audit_key).ok


DERMATOLOGY = {"code": "dermatology", "name_en": "Dermatology (Skin)", "name_zh_Hans": "皮肤科",
               "name_es": "Dermatología (piel)", "keywords_en": "skin, rash", "keywords_zh_Hans": "皮肤，皮疹",
               "keywords_es": "", "sort_order": "7", "active": "1"}


def test_an_admin_creates_a_department_and_patients_can_find_it(admin_client, web_app):
    form = page(admin_client.get("/admin/departments/new"))
    assert 'id="department-form"' in form and 'name="name_zh_Hans"' in form
    created = post(admin_client, "/admin/departments/new", DERMATOLOGY)
    assert created.status_code == 302
    found = {d.code: d for d in service.list_departments(web_app.services)}["dermatology"]
    assert found.names == {"en": "Dermatology (Skin)", "zh_Hans": "皮肤科", "es": "Dermatología (piel)"}
    assert found.keywords == {"en": ["skin", "rash"], "zh_Hans": ["皮肤", "皮疹"]}
    assert created.location == f"/admin/departments/{found.id}"
    event = audit_events(web_app, "department.created")[-1]
    assert (event.actor, event.subject) == ("staff:admin", "department:dermatology")

    edited = post(admin_client, f"/admin/departments/{found.id}", {**DERMATOLOGY, "active": ""})
    assert edited.status_code == 302
    assert "dermatology" not in {d.code for d in service.list_departments(web_app.services)}
    assert "dermatology" in page(admin_client.get("/admin/departments"))


@pytest.mark.parametrize("change,message", [
    ({"code": "cardiology"}, "Another department already has the code cardiology."),
    ({"code": "Skin Clinic!"}, "A department code is 1 to 64 small letters"),
    ({"sort_order": "first"}, '"Order in the menu" needs a whole number from 0 to 9999.'),
    ({"keywords_en": "Heart"}, 'The keyword "Heart" already leads to the department cardiology.'),
    ({"name_en": " ", "name_zh_Hans": "", "name_es": ""}, "Please give the department a name"),
])
def test_a_department_form_that_cant_be_saved_comes_back_as_typed(admin_client, web_app, change, message):
    response = post(admin_client, "/admin/departments/new", {**DERMATOLOGY, **change})
    assert response.status_code == 422
    shown = page(response)
    assert message in shown and 'class="flash error"' in shown
    assert 'value="Dermatología (piel)"' in shown or change.get("name_es") == ""  # nothing typed is lost
    assert "skin, rash" in shown or "keywords_en" in change
    assert len(rows(web_app, select(Department.id))) == 6  # the demo hospital's, unchanged


def test_a_weekly_schedule_gives_slots_with_its_times_and_capacity(admin_client, web_app):
    post(admin_client, "/admin/departments/new", DERMATOLOGY)
    dermatology = department_id(web_app, "dermatology")
    assert 'id="template-form"' in page(admin_client.get(f"/admin/departments/{dermatology}/schedules/new"))
    schedule = {"weekday": "3", "start": "13:00", "end": "14:00", "slot_minutes": "20", "capacity": "5",
                "release_days_ahead": "", "release_time": "", "doctor": ""}
    bad = post(admin_client, f"/admin/departments/{dermatology}/schedules/new", {**schedule, "end": "12:00"})
    assert bad.status_code == 422 and "The end time must be later than the start time." in page(bad)
    assert 'value="12:00"' in page(bad)
    assert post(admin_client, f"/admin/departments/{dermatology}/schedules/new", schedule).status_code == 302
    twin = post(admin_client, f"/admin/departments/{dermatology}/schedules/new", schedule)
    assert twin.status_code == 422 and "already has a schedule starting then" in page(twin)

    generated = post(admin_client, "/admin/slots/generate", {"days": "14"}, token_from="/admin/slots",
                     follow_redirects=True)
    assert "Slots: 6 created" in page(generated)  # two Thursdays, three slots each
    made = rows(web_app, select(Slot).where(Slot.department_id == dermatology).order_by(Slot.starts_at))
    assert [s.starts_at.astimezone(TZ).strftime("%m-%d %H:%M") for s in made[:3]] == [
        "12-03 13:00", "12-03 13:20", "12-03 13:40"]
    assert {(s.capacity, s.ends_at - s.starts_at) for s in made} == {(5, timedelta(minutes=20))}
    assert audit_events(web_app, "slots.generation_requested")[-1].actor == "staff:admin"
    refused = post(admin_client, "/admin/slots/generate", {"days": "0"}, follow_redirects=True)
    assert '"Days ahead" needs a whole number from 1 to 366.' in page(refused)

    template_id = rows(web_app, select(ScheduleTemplate.id).where(
        ScheduleTemplate.department_id == dermatology))[0]
    changed = post(admin_client, f"/admin/schedules/{template_id}", {**schedule, "capacity": "6"})
    assert changed.status_code == 302
    assert "already has slots, so it can't be deleted" in page(
        post(admin_client, f"/admin/schedules/{template_id}/delete", {}, follow_redirects=True))
    post(admin_client, f"/admin/schedules/{template_id}/active", {"active": "0"})
    assert rows(web_app, select(ScheduleTemplate.active).where(ScheduleTemplate.id == template_id)) == [False]
    post(admin_client, "/admin/slots/generate", {"days": "14"})
    assert rows(web_app, select(Slot.id).where(Slot.department_id == dermatology)) == []  # free ones go
    actions = [e.action for e in rows(web_app, select(AuditEvent).where(AuditEvent.actor == "staff:admin"))]
    assert {"schedule.created", "schedule.updated", "schedule.switched_off"} <= set(actions)
    assert trail_agrees(web_app)


def test_an_unused_schedule_can_be_deleted(admin_client, web_app):
    eyes = department_id(web_app, "ophthalmology")
    post(admin_client, f"/admin/departments/{eyes}/schedules/new",
         {"weekday": "6", "start": "9:00", "end": "10:00", "slot_minutes": "30", "capacity": "1"})
    template_id = rows(web_app, select(ScheduleTemplate.id).where(
        ScheduleTemplate.department_id == eyes, ScheduleTemplate.weekday == 6))[0]
    assert "The schedule is deleted." in page(
        post(admin_client, f"/admin/schedules/{template_id}/delete", {}, follow_redirects=True))
    assert audit_events(web_app, "schedule.deleted")[-1].actor == "staff:admin"


def test_the_calendar_shows_booked_of_capacity_and_a_capacity_never_drops_below_its_bookings(
        admin_client, web_app, now):
    slot = slot_at(web_app, "cardiology", VISIT, 9)
    book(web_app, slot.id, person(), phone(1), now)
    cardiology = department_id(web_app, "cardiology")
    calendar = page(admin_client.get(f"/admin/slots?department={cardiology}&start={VISIT}&days=14"))
    assert 'id="calendar"' in calendar and 'id="generate-form"' in calendar
    assert f'<a href="/admin/slots/{slot.id}">1/3</a>' in calendar
    assert "2026-12-16" in calendar  # 14 days shown
    assert "Please give a date" in page(admin_client.get("/admin/slots?start=tomorrow", follow_redirects=True))

    too_low = post(admin_client, f"/admin/slots/{slot.id}", {"capacity": "0"})
    assert too_low.status_code == 422
    assert "Places already booked in this slot: 1. Its capacity can't be less than that." in page(too_low)
    assert '"Places in this slot" needs a whole number' in page(
        post(admin_client, f"/admin/slots/{slot.id}", {"capacity": "lots"}))
    assert slot_at(web_app, "cardiology", VISIT, 9).capacity == 3
    assert post(admin_client, f"/admin/slots/{slot.id}", {"capacity": "1"}).status_code == 302
    assert slot_at(web_app, "cardiology", VISIT, 9).capacity == 1
    event = audit_events(web_app, "slot.capacity_changed")[-1]
    assert event.actor == "staff:admin" and event.details == {"slot": slot.id, "capacity": 1, "was": 3}
    assert trail_agrees(web_app)
    # The nightly generation keeps what staff set; the schedule's number stays for the rest.
    generated = post(admin_client, "/admin/slots/generate", {"days": "28"}, token_from="/admin/slots")
    assert generated.status_code == 302
    assert slot_at(web_app, "cardiology", VISIT, 9).capacity == 1
    assert slot_at(web_app, "cardiology", VISIT, 10).capacity == 3


def test_closing_a_day_shows_its_bookings_masked_then_cancels_them_for_nobody(admin_client, web_app, now):
    slot = slot_at(web_app, "cardiology", VISIT, 9)
    who = person("Wang Fang")
    booking = book(web_app, slot.id, who, phone(2), now)
    cardiology = department_id(web_app, "cardiology")
    closing = {"day": VISIT.isoformat(), "department": str(cardiology), "reason": "Water leak"}

    check = post(admin_client, "/admin/closures/check", closing, token_from="/admin/closures")
    shown = page(check)
    assert check.status_code == 200 and booking.code in shown
    assert identity.mask_id(who.number) in shown and "W*** F***" in shown
    assert who.number not in shown and "Wang Fang" not in shown
    assert rows(web_app, select(ScheduleException.id).where(ScheduleException.day == VISIT)) == []
    assert rows(web_app, select(Booking.status).where(Booking.code == booking.code)) == ["booked"]

    confirmed = post(admin_client, "/admin/closures/confirm", {**closing, "codes": booking.code},
                     follow_redirects=True)
    assert "2026-12-03 is closed. Bookings cancelled: 1." in page(confirmed)
    cancelled = rows(web_app, select(Booking).where(Booking.code == booking.code))[0]
    assert (cancelled.status, cancelled.counted_against, cancelled.cancel_reason) == (
        "cancelled", None, "closure")
    freed = slot_at(web_app, "cardiology", VISIT, 9)
    assert (freed.booked, freed.capacity) == (0, 0)  # freed, and nobody books a closed day
    assert {s.capacity for s in rows(web_app, select(Slot).where(
        Slot.department_id == cardiology, Slot.visit_date == VISIT))} == {0}
    own = rows(web_app, select(ChannelAddress.id).where(ChannelAddress.id == cancelled.booked_by_address_id))
    notice = rows(web_app, select(OutboxMessage).where(OutboxMessage.patient_id == cancelled.patient_id))[-1]
    assert (notice.address_id, notice.message) == (own[0], "cancelled_for_you")
    assert notice.params["code"] == booking.code and notice.params["by"] == "staff"
    assert rows(web_app, select(Suspension.id)) == []
    by_admin = {e.action: e for e in rows(web_app, select(AuditEvent).where(
        AuditEvent.actor == "staff:admin"))}
    assert by_admin["booking.cancelled"].details["counted_against"] is None
    assert {"closure.created", "notice.queued", "slot.capacity_changed"} <= set(by_admin)
    assert trail_agrees(web_app)

    again = post(admin_client, "/admin/closures/check", closing)
    assert again.status_code == 422 and "2026-12-03 is already closed." in page(again)
    assert "Water leak" in page(admin_client.get("/admin/closures"))
    closure_id = rows(web_app, select(ScheduleException.id).where(ScheduleException.day == VISIT))[0]
    reopened = post(admin_client, f"/admin/closures/{closure_id}/remove", {}, follow_redirects=True)
    assert "is open again" in page(reopened)
    assert slot_at(web_app, "cardiology", VISIT, 9).capacity == 3
    assert rows(web_app, select(Booking.status).where(Booking.code == booking.code)) == ["cancelled"]
    assert trail_agrees(web_app)


def test_a_closure_confirmed_on_an_old_list_shows_the_new_one_and_changes_nothing(admin_client, web_app, now):
    first = book(web_app, slot_at(web_app, "general", VISIT, 8).id, person(), phone(3), now)
    closing = {"day": VISIT.isoformat(), "department": "", "reason": ""}  # the whole hospital
    assert first.code in page(post(admin_client, "/admin/closures/check", closing))
    later = book(web_app, slot_at(web_app, "orthopedics", VISIT, 8).id, person(), phone(4), now)
    stale = post(admin_client, "/admin/closures/confirm", {**closing, "codes": first.code})
    assert stale.status_code == 200 and "changed while you were looking" in page(stale)
    assert first.code in page(stale) and later.code in page(stale)
    assert rows(web_app, select(Booking.status).distinct()) == ["booked"]
    assert rows(web_app, select(ScheduleException.id).where(ScheduleException.day == VISIT)) == []
    done = post(admin_client, "/admin/closures/confirm", {**closing, "codes": f"{first.code},{later.code}"})
    assert done.status_code == 302
    assert rows(web_app, select(Booking.status).distinct()) == ["cancelled"]
    assert rows(web_app, select(Slot.id).where(Slot.visit_date == VISIT, Slot.capacity > 0)) == []


@pytest.mark.parametrize("change,message", [
    ({"day": "2026-11-30"}, "That day is already over."),
    ({"day": "2026-02-30"}, "Please give a date such as 2026-12-24."),
    ({"day": ""}, "Please give a date such as 2026-12-24."),
    ({"department": "cardiology"}, "Please choose what closes"),  # never taken for the whole hospital
])
def test_a_closure_that_cant_be_made_is_refused_kindly(admin_client, web_app, change, message):
    response = post(admin_client, "/admin/closures/check",
                    {"day": "2026-12-25", "department": "", "reason": "Holiday", **change})
    assert response.status_code == 422 and message in page(response)
    assert 'value="Holiday"' in page(response)
    assert rows(web_app, select(ScheduleException.id).where(ScheduleException.kind == "closed")) == [
        rows(web_app, select(ScheduleException.id).where(ScheduleException.day == date(2027, 1, 1)))[0]]


def test_a_day_without_bookings_closes_at_once(admin_client, web_app):
    closed = post(admin_client, "/admin/closures/check",
                  {"day": "2026-12-25", "department": "", "reason": "Holiday"}, follow_redirects=True)
    assert "2026-12-25 is closed. Bookings cancelled: 0." in page(closed)
    assert rows(web_app, select(Slot.id).where(Slot.visit_date == date(2026, 12, 25), Slot.capacity > 0)) == []


def test_booking_rules_are_explained_and_a_bad_value_is_refused_kindly(admin_client, web_app):
    shown = page(admin_client.get("/admin/policy"))
    assert "per_7_days" in shown and "within any 7 days" in shown and 'id="policy-form"' in shown
    bad = post(admin_client, "/admin/policy", {"per_7_days": "four", "per_90_days": "9"},
               token_from="/admin/policy")
    assert bad.status_code == 422 and "per_7_days must be a whole number, 0 or more." in page(bad)
    assert 'value="four"' in page(bad) and 'value="9"' in page(bad)
    late = post(admin_client, "/admin/policy", {"release_time": "25:00"})
    assert "release_time must be a time such as 15:00." in page(late)
    assert rows(web_app, select(Hospital.policy_overrides)) == [{}]

    assert post(admin_client, "/admin/policy", {"per_7_days": "4", "close_time": "17:30"}).status_code == 302
    assert rows(web_app, select(Hospital.policy_overrides)) == [{"per_7_days": 4, "close_time": "17:30"}]
    eyes = department_id(web_app, "ophthalmology")
    saved = post(admin_client, f"/admin/departments/{eyes}/policy",
                 {"open_days_ahead": "5", "release_time": "8:30"})
    assert saved.status_code == 302
    policy, _ = queries.catalogue_rules(web_app.services, eyes)
    assert (policy.open_days_ahead, policy.release_time, policy.per_7_days) == (5, time(8, 30), 4)
    events = audit_events(web_app, "policy.changed")
    assert [(e.actor, e.subject) for e in events] == [("staff:admin", "hospital:demo"),
                                                       ("staff:admin", "department:ophthalmology")]
    # The demo's ophthalmology is released by draw (config/demo_hospital.toml).
    assert events[-1].details["before"] == {"open_days_ahead": 3, "release_time": "08:00",
                                            "release_mode": "draw", "draw_time": "20:00"}


def _configuration_pages(app) -> list[tuple[str, str]]:
    department = f"/admin/departments/{department_id(app, 'cardiology')}"
    schedule = f"/admin/schedules/{rows(app, select(ScheduleTemplate.id))[0]}"
    slot = f"/admin/slots/{slot_at(app, 'cardiology', VISIT, 9).id}"
    both = ["/admin/departments/new", department, f"{department}/schedules/new", schedule, slot,
            "/admin/policy", f"{department}/policy"]
    return ([("GET", path) for path in both + ["/admin/departments", "/admin/closures", "/admin/slots"]]
            + [("POST", path) for path in both + [f"{schedule}/active", f"{schedule}/delete",
                                                  "/admin/closures/check", "/admin/closures/confirm",
                                                  "/admin/closures/1/remove", "/admin/slots/generate"]])


def test_a_clerk_gets_403_on_every_configuration_page(clerk_client, web_app):
    token = csrf_token(clerk_client, "/admin/")
    for method, path in _configuration_pages(web_app):
        data = {"csrf_token": token} if method == "POST" else None
        response = clerk_client.open(path, method=method, data=data)
        assert response.status_code == 403, (method, path)
    assert "/admin/departments" not in page(clerk_client.get("/admin/"))


def test_every_configuration_page_works_without_scripts_or_inline_styles(admin_client, web_app):
    for method, path in _configuration_pages(web_app):
        if method == "GET":
            response = admin_client.get(path)
            assert response.status_code == 200, path
            html = response.get_data(as_text=True)
            assert "<script" not in html and "style=" not in html, path
            assert 'name="csrf_token"' in html
    home = page(admin_client.get("/admin/"))
    assert all(f'href="/admin/{p}"' in home for p in ("departments", "closures", "slots", "policy"))
