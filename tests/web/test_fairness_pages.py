"""The fair-release pages, on SQLite and PostgreSQL: the draws with their commitment,
seed and check, a day's waitlists with their offers and held places, the weekly
schedule's release mode and draw time, and the labels of the new refusals.

A draw is built as patients make one (release.request_place) and run as the worker
runs it (release.run_draw). Patients must appear masked everywhere: every page is also
searched for the full ID numbers, names and phone numbers, which must not be there.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from assistant.booking import identity, release, results as r, service
from assistant.booking.models import (
    AuditEvent,
    Booking,
    Draw,
    DrawRequest,
    ScheduleTemplate,
    Slot,
    Suspension,
    WaitlistEntry,
)
from tests.support import add_slot, department_id, person, phone
from tests.web.conftest import csrf_token

TZ = ZoneInfo("Asia/Shanghai")
VISIT = date(2026, 12, 8)  # a Tuesday: the demo's ophthalmology has no slots of its own then
NAMES = ("Zhang Wei", "Li Xiuying", "Wang Fang", "Liu Yang", "Chen Jing", "Yang Min")
MORNING, AFTERNOON, SUSPENDED = (0, 1, 2, 3), 4, 5  # who asks for what (index into NAMES)


def text_of(response) -> str:
    assert response.status_code == 200, response.status_code
    body = unescape(response.get_data(as_text=True))
    assert "<script" not in body and "style=" not in body  # the CSP forbids both
    return body.replace("<wbr>", "")  # long hashes are written with break opportunities


def rows(app, query):
    with app.services.uow.read_only() as uow:
        found = uow.session.execute(query).all()
        uow.session.expunge_all()
        return found


def section(body: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}"[^>]*>(.*?)</section>', body, re.S)
    assert found, section_id
    return found.group(1)


def cells(html: str, css: str = "masked") -> list[str]:
    return re.findall(rf'<td class="{css}">([^<]*)</td>', html)


@pytest.fixture
def draw(web_app):
    """Ophthalmology on 8 December by draw: two morning places and one afternoon place,
    requests open from an hour ago until six hours from now. Four patients ask for the
    morning, one for the afternoon, and one more is suspended after asking."""
    services, now = web_app.services, web_app.clock()
    opens, draw_at = now - timedelta(hours=1), now + timedelta(hours=6)
    with services.uow() as uow:
        eyes = department_id(uow.session, "ophthalmology")
        slots = [add_slot(uow.session, eyes, VISIT, hh, release_at=draw_at, requests_open_at=opens)
                 for hh in (9, 10, 14)]
        uow.commit()
    people = [person(name, sequence=300 + n) for n, name in enumerate(NAMES)]
    for n, who in enumerate(people):
        asked = release.request_place(services, department_id=eyes, visit_date=VISIT,
                                      part="afternoon" if n == AFTERNOON else "morning", channel="sms",
                                      now=now + timedelta(minutes=n), booked_by=phone(300 + n),
                                      identity_input=who)
        assert isinstance(asked, r.Requested) and asked.kind == "draw", asked
    requests = [q for (q,) in rows(web_app, select(DrawRequest.patient_id).order_by(DrawRequest.id))]
    with services.uow() as uow:  # suspended since asking: the draw refuses the request
        uow.session.add(Suspension(patient_id=requests[SUSPENDED], rule="no_shows", starts_at=now,
                                   ends_at=now + timedelta(days=90)))
        uow.commit()
    [(draw_id,)] = rows(web_app, select(Draw.id))
    return {"id": draw_id, "department": eyes, "slots": slots, "draw_at": draw_at, "people": people,
            "patients": requests}


def run_draw(web_app, draw):
    web_app.clock.now = draw["draw_at"]
    report = release.run_draw(web_app.services, draw["id"], now=draw["draw_at"], worker="test")
    assert (report.requests, report.placed, report.waitlisted, report.refused) == (6, 3, 2, 1)
    return report


def secrets(draw) -> list[str]:
    found = []
    for n, who in enumerate(draw["people"]):
        e164 = identity.normalise_phone_address(phone(300 + n).value, "CN")
        found += [who.number, who.number[4:-4], who.name, e164, e164[3:]]
    return found


def assert_masked(body: str, draw) -> None:
    for secret in secrets(draw):
        assert secret not in body, secret


# ---- the draws --------------------------------------------------------------------------------


def test_before_the_draw_the_page_shows_the_commitment_and_keeps_the_seed_secret(web_app, admin_client, draw):
    [(seed_hash, seed_encrypted, status)] = rows(web_app, select(Draw.seed_hash, Draw.seed_encrypted, Draw.status))
    secret_seed = web_app.services.keyring.decrypt(seed_encrypted)
    [(event, at)] = rows(web_app, select(AuditEvent.id, AuditEvent.at).where(AuditEvent.action == "draw.opened"))

    listing = text_of(admin_client.get("/admin/draws"))
    table = re.search(r'<table id="draws">(.*?)</table>', listing, re.S).group(1)
    assert "Ophthalmology" in table and VISIT.isoformat() in table and "Taking requests" in table
    assert seed_hash in table and "Secret until the draw" in table
    assert ">6<" in table  # the requests

    body = text_of(admin_client.get(f"/admin/draws/{draw['id']}"))
    commitment = section(body, "draw-commitment")
    assert seed_hash in commitment and f"(event {event})" in commitment
    assert at.astimezone(TZ).strftime("%Y-%m-%d %H:%M") in commitment
    assert "Secret until the draw" in commitment
    assert secret_seed not in body and secret_seed not in listing
    assert "has not run yet" in section(body, "draw-check") and "docs/fairness.md" in body
    assert "Verified" not in body
    assert_masked(body + listing, draw)
    # The requests in the order they came in, masked, with nothing placed yet.
    masked = cells(section(body, "draw-requests"))
    assert masked[0::2] == [identity.mask_id(who.number) for who in draw["people"]]
    assert masked[1::2] == [identity.mask_name(who.name) for who in draw["people"]]
    assert body.count("Waiting for the draw") == 1 + 6  # the count's heading, then each request


def test_after_the_draw_the_page_shows_the_seed_the_order_and_that_it_verifies(web_app, admin_client, draw):
    run_draw(web_app, draw)
    [(seed, seed_hash)] = rows(web_app, select(Draw.seed, Draw.seed_hash))
    body = text_of(admin_client.get(f"/admin/draws/{draw['id']}"))
    assert seed in section(body, "draw-commitment") and seed_hash in section(body, "draw-commitment")
    check = section(body, "draw-check")
    assert "Verified: the seed matches the commitment" in check and "(6 requests, 3 placed)" in check
    assert_masked(body, draw)

    ordered = rows(web_app, select(DrawRequest, Booking.code, DrawRequest.patient_id)
                   .outerjoin(Booking, DrawRequest.booking_id == Booking.id).order_by(DrawRequest.position))
    by_patient = {patient: who for patient, who in zip(draw["patients"], draw["people"])}
    table = section(body, "draw-requests")
    assert cells(table)[0::2] == [identity.mask_id(by_patient[p].number) for _, _, p in ordered]
    rows_html = re.findall(r"<tr>\s*<td>(\d+)</td>\s*<td>(\d+)</td>(.*?)</tr>", table, re.S)
    assert [(int(pos), int(num)) for pos, num, _ in rows_html] == [(q.position, q.id) for q, _, _ in ordered]
    assert [q.id for q, _, _ in ordered] == release.draw_order(seed, [q.id for q, _, _ in ordered])
    for (q, code, _), (_, _, rest) in zip(ordered, rows_html):
        if q.status == "placed":
            assert f"Placed: <span class=\"masked\">{code}</span>" in rest
        elif q.status == "waitlisted":
            assert "On the waitlist" in rest
        else:
            assert q.status == "refused" and "Refused at the draw: Suspended at the time of the draw" in rest
    counts = section(body, "draw-counts")
    assert re.search(r"<td>6</td><td>0</td><td>3</td><td>2</td><td>1</td><td>0</td>", counts), counts

    listing = text_of(admin_client.get("/admin/draws", query_string={"day": VISIT.isoformat()}))
    assert seed in listing and "Drawn" in listing
    assert "No draws for this day." in text_of(admin_client.get("/admin/draws?day=2026-12-09"))
    assert "Please give a date such as" in text_of(admin_client.get("/admin/draws?day=soon"))


def test_a_tampered_draw_is_shown_as_not_verified(web_app, admin_client, draw):
    run_draw(web_app, draw)
    with web_app.services.uow() as uow:
        last = uow.session.execute(select(DrawRequest).order_by(DrawRequest.position.desc())).scalars().first()
        last.position = 1  # moved up the queue by someone
        uow.commit()
    check = section(text_of(admin_client.get(f"/admin/draws/{draw['id']}")), "draw-check")
    assert "NOT verified" in check and "expected" in check


def test_an_unknown_draw_goes_back_to_the_list(admin_client):
    response = admin_client.get("/admin/draws/999", follow_redirects=True)
    assert "That draw no longer exists." in text_of(response)


# ---- the waitlists ----------------------------------------------------------------------------


def test_the_waitlist_lists_the_draws_losers_in_order_then_offers_and_held_places(web_app, clerk_client, draw):
    run_draw(web_app, draw)
    waiting = rows(web_app, select(WaitlistEntry.patient_id, WaitlistEntry.draw_position)
                   .order_by(WaitlistEntry.draw_position))
    by_patient = {patient: who for patient, who in zip(draw["patients"], draw["people"])}
    losers = [by_patient[patient] for patient, _ in waiting]
    assert len(losers) == 2 and all(who.name in [NAMES[n] for n in MORNING] for who in losers)

    # The day is full: someone else joins its waitlist after the draw, behind the draw's losers.
    later = person("Zhao Lei", sequence=399)
    joined = release.request_place(web_app.services, department_id=draw["department"], visit_date=VISIT,
                                   part="morning", channel="sms", now=draw["draw_at"] + timedelta(minutes=1),
                                   booked_by=phone(399), identity_input=later)
    assert isinstance(joined, r.Requested) and joined.kind == "waitlist", joined

    body = text_of(clerk_client.get("/admin/waitlist", query_string={"day": VISIT.isoformat()}))
    eyes = section(body, "waitlist-ophthalmology")
    waitlist = re.search(r'<table class="waitlist">(.*?)</table>', eyes, re.S).group(1)
    assert cells(waitlist)[0::2] == [identity.mask_id(who.number) for who in losers + [later]]
    assert cells(waitlist)[1::2] == [identity.mask_name(who.name) for who in losers + [later]]
    assert re.findall(r"<tr>\s*<td>(\d+)</td>", waitlist) == ["1", "2", "3"]
    assert cells(waitlist, "draw-position") == [str(position) for _, position in waiting] + ["Joined later"]
    assert_masked(body, draw)
    assert later.number not in body and later.name not in body

    # The afternoon patient cancels: nobody waiting wants an afternoon, so the place is
    # held for the next release. A morning patient cancels: the first loser is offered it.
    placed = dict(rows(web_app, select(DrawRequest.patient_id, Booking.code)
                       .join(Booking, DrawRequest.booking_id == Booking.id)))
    when = draw["draw_at"] + timedelta(minutes=5)
    afternoon_patient = draw["patients"][AFTERNOON]
    morning_patient = next(p for p in placed if p != afternoon_patient)
    for patient in (afternoon_patient, morning_patient):
        n = draw["patients"].index(patient)
        cancelled = service.cancel_booking(web_app.services, code=placed[patient], requester=phone(300 + n),
                                           channel="sms", now=when)
        assert isinstance(cancelled, r.Cancelled), cancelled
    web_app.clock.now = when

    body = text_of(clerk_client.get(f"/admin/waitlist?day={VISIT.isoformat()}"))
    eyes = section(body, "waitlist-ophthalmology")
    waitlist = re.search(r'<table class="waitlist">(.*?)</table>', eyes, re.S).group(1)
    assert cells(waitlist)[0::2] == [identity.mask_id(who.number) for who in losers + [later]]
    assert "Offered a place" in waitlist and re.findall(r"<tr>\s*<td>(\d+)</td>", waitlist) == ["1", "2"]
    offers = re.search(r'<table class="offers">(.*?)</table>', eyes, re.S).group(1)
    assert cells(offers)[0] == identity.mask_id(losers[0].number)
    assert (when + timedelta(minutes=30)).astimezone(TZ).strftime("%Y-%m-%d %H:%M") in offers
    held = re.search(r'<table class="held">(.*?)</table>', eyes, re.S).group(1)
    assert "14:00" in held and "Cancelled" in held
    assert "2026-12-02 08:00" in held  # the department's next release time
    assert_masked(body, draw)


def test_a_day_without_a_waitlist_says_so_and_a_bad_day_is_today(clerk_client, web_app):
    body = text_of(clerk_client.get("/admin/waitlist?day=2026-12-20"))
    assert "Nobody is waiting for a place on this day" in body
    body = text_of(clerk_client.get("/admin/waitlist?day=someday"))
    assert "Please give a date such as" in body and "Waitlists of 2026-12-01" in body


# ---- who may open what ----------------------------------------------------------------------


def test_a_clerk_may_read_the_waitlists_but_not_the_draws(clerk_client, admin_client, draw):
    assert clerk_client.get("/admin/draws").status_code == 403
    assert clerk_client.get(f"/admin/draws/{draw['id']}").status_code == 403
    assert clerk_client.get("/admin/waitlist").status_code == 200
    home = text_of(clerk_client.get("/admin/"))
    assert "/admin/waitlist" in home and "/admin/draws" not in home
    home = text_of(admin_client.get("/admin/"))
    assert "/admin/waitlist" in home and "/admin/draws" in home


# ---- the weekly schedule's release ------------------------------------------------------------


def post(client, path: str, data: dict):
    return client.post(path, data={"csrf_token": csrf_token(client, "/admin/"), **data})


SATURDAYS = {"weekday": "5", "start": "09:00", "end": "10:00", "slot_minutes": "30", "capacity": "2",
             "release_days_ahead": "", "release_time": "", "doctor": ""}


def test_a_schedule_saves_its_release_mode_and_draw_time_and_slots_follow(web_app, admin_client):
    with web_app.services.uow.read_only() as uow:
        children = department_id(uow.session, "pediatrics")
    new = f"/admin/departments/{children}/schedules/new"
    form = text_of(admin_client.get(new))
    assert 'name="release_mode"' in form and 'name="draw_time"' in form
    assert "The department's rule (now: First come)" in form

    bad_time = post(admin_client, new, {**SATURDAYS, "release_mode": "draw", "draw_time": "25:00"})
    assert bad_time.status_code == 422 and '"Draw time" needs a time such as 08:30.' in unescape(bad_time.get_data(as_text=True))
    assert 'value="25:00"' in bad_time.get_data(as_text=True)
    bad_mode = post(admin_client, new, {**SATURDAYS, "release_mode": "lottery"})
    assert bad_mode.status_code == 422 and "Please choose how the places are released" in unescape(
        bad_mode.get_data(as_text=True))
    pointless = post(admin_client, new, {**SATURDAYS, "release_mode": "first_come", "draw_time": "19:30"})
    assert pointless.status_code == 422 and "A draw time applies only to places released by draw" in unescape(
        pointless.get_data(as_text=True))
    assert rows(web_app, select(ScheduleTemplate.id).where(ScheduleTemplate.department_id == children,
                                                           ScheduleTemplate.weekday == 5)) == []

    assert post(admin_client, new, {**SATURDAYS, "release_mode": "draw", "draw_time": "19:30"}).status_code == 302
    [(template_id, mode, draw_time)] = rows(web_app, select(
        ScheduleTemplate.id, ScheduleTemplate.release_mode, ScheduleTemplate.draw_time).where(
        ScheduleTemplate.department_id == children, ScheduleTemplate.weekday == 5))
    assert (mode, draw_time) == ("draw", time(19, 30))
    [(details, actor)] = rows(web_app, select(AuditEvent.details, AuditEvent.actor).where(
        AuditEvent.action == "schedule.created"))
    assert (details["after"]["release_mode"], details["after"]["draw_time"], actor) == ("draw", "19:30", "staff:admin")
    department_page = text_of(admin_client.get(f"/admin/departments/{children}"))
    assert "Draw at 19:30" in department_page
    edit = text_of(admin_client.get(f"/admin/schedules/{template_id}"))
    assert '<option value="draw" selected>' in edit and 'value="19:30"' in edit

    # Slot generation reads them: requests open 7 days ahead at 15:00, the draw at 19:30.
    assert post(admin_client, "/admin/slots/generate", {"days": "14"}).status_code == 302
    saturday = date(2026, 12, 12)
    [(slot_mode, opens, draw_at)] = rows(web_app, select(Slot.release_mode, Slot.requests_open_at, Slot.release_at)
                                         .where(Slot.template_id == template_id, Slot.visit_date == saturday,
                                                Slot.starts_at == datetime.combine(saturday, time(9), tzinfo=TZ)))
    assert slot_mode == "draw"
    assert opens == datetime.combine(date(2026, 12, 5), time(15), tzinfo=TZ)
    assert draw_at == datetime.combine(date(2026, 12, 5), time(19, 30), tzinfo=TZ)

    # Back to first come: the draw time goes, and the next generation sells at 15:00.
    changed = post(admin_client, f"/admin/schedules/{template_id}",
                   {**SATURDAYS, "release_mode": "first_come", "draw_time": ""})
    assert changed.status_code == 302
    assert rows(web_app, select(ScheduleTemplate.release_mode, ScheduleTemplate.draw_time).where(
        ScheduleTemplate.id == template_id)) == [("first_come", None)]
    [(updated,)] = rows(web_app, select(AuditEvent.details).where(AuditEvent.action == "schedule.updated"))
    assert updated["before"]["release_mode"] == "draw" and updated["after"]["draw_time"] is None
    post(admin_client, "/admin/slots/generate", {"days": "14"})
    assert set(rows(web_app, select(Slot.release_mode, Slot.requests_open_at, Slot.release_at).where(
        Slot.template_id == template_id, Slot.visit_date == saturday))) == {
        ("first_come", None, datetime.combine(date(2026, 12, 5), time(15), tzinfo=TZ))}
    assert "First come" in text_of(admin_client.get(f"/admin/departments/{children}"))


def test_the_booking_rules_page_explains_and_checks_the_release_rules(web_app, admin_client):
    shown = text_of(admin_client.get("/admin/policy"))
    for rule in ("release_mode", "draw_time", "offer_minutes", "reminder_time", "refusals_per_hour"):
        assert f'id="policy-{rule}"' in shown
    refused = post(admin_client, "/admin/policy", {"release_mode": "lottery"})
    assert refused.status_code == 422
    assert 'release_mode must be "first_come" or "draw".' in unescape(refused.get_data(as_text=True))


# ---- the new refusals on the flags page ---------------------------------------------------------


@pytest.mark.parametrize("rule,words", [("already_requested", "Already asked for a place that day"),
                                        ("requests_closed", "Requests for the draw not open, or closed"),
                                        ("nothing_to_answer", "Answered an offer or reminder that was no longer open")])
def test_a_burst_of_the_new_refusals_is_labelled(web_app, admin_client, rule, words):
    for _ in range(5):
        service.note_refusal(web_app.services, phone(77), rule, now=web_app.clock())
    bursts = section(text_of(admin_client.get("/admin/flags")), "flag-refusals")
    assert words in bursts and rule not in bursts


def test_an_admin_withdraws_a_request_before_the_draw_and_a_clerk_cannot(web_app, admin_client, clerk_client,
                                                                      draw):
    [(request_id,)] = rows(web_app, select(DrawRequest.id).order_by(DrawRequest.id).limit(1))
    url = f"/admin/draws/{draw['id']}/requests/{request_id}/withdraw"
    assert clerk_client.post(url, data={"csrf_token": csrf_token(clerk_client, "/admin/waitlist")}).status_code == 403
    page = text_of(admin_client.get(f"/admin/draws/{draw['id']}"))
    assert url in page  # each open request has its button
    token = csrf_token(admin_client, f"/admin/draws/{draw['id']}")
    done = admin_client.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert "The request was withdrawn" in text_of(done)
    [(status,)] = rows(web_app, select(DrawRequest.status).where(DrawRequest.id == request_id))
    assert status == "withdrawn"
    [(actor,)] = rows(web_app, select(AuditEvent.actor).where(AuditEvent.action == "draw.request_withdrawn"))
    assert actor.startswith("staff:")
    run_again = admin_client.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert "can no longer be withdrawn" in text_of(run_again)
