"""The dashboard, on SQLite and PostgreSQL: places booked per department and day as
server-drawn SVG, checked against the database itself, and the outbox's backlog and
failures shown without a patient's number or a message's contents."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from assistant.booking import results as r, service
from assistant.booking.dashboard import safe_error
from assistant.booking.models import ChannelAddress, OutboxMessage, Slot
from tests.support import person, phone

SVG = re.compile(r"<svg\b.*?</svg>", re.S)
SVG_NS = "{http://www.w3.org/2000/svg}"


def today(web_app) -> date:
    return web_app.clock().astimezone(ZoneInfo(service.hospital(web_app.services).timezone)).date()


def department(web_app, code: str) -> int:
    return next(d.id for d in service.list_departments(web_app.services) if d.code == code)


def day_in_db(web_app, department_id: int, day: date) -> tuple[int, int, int]:
    """(slots, booked, capacity) counted straight from the slot table."""
    with web_app.services.uow.read_only() as uow:
        row = uow.session.execute(
            select(func.count(), func.coalesce(func.sum(Slot.booked), 0), func.coalesce(func.sum(Slot.capacity), 0))
            .where(Slot.department_id == department_id, Slot.visit_date == day)).one()
    return int(row[0]), int(row[1]), int(row[2])


def cell(page: str, department_id: int, day: date) -> str:
    section = page.split(f'id="dept-{department_id}"', 1)[1].split("</section>", 1)[0]
    found = re.search(rf'<td data-day="{day.isoformat()}">([^<]*)</td>', section)
    assert found, f"no cell for {day}"
    return found.group(1)


def charts(page: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in SVG.findall(page)]


def test_clerk_and_admin_see_the_dashboard_and_anyone_else_is_sent_to_log_in(flask_app, clerk_client, admin_client):
    assert clerk_client.get("/admin/dashboard").status_code == 200
    assert admin_client.get("/admin/dashboard").status_code == 200
    anonymous = flask_app.test_client().get("/admin/dashboard")
    assert anonymous.status_code == 302 and anonymous.location.startswith("/admin/login?next=/admin/dashboard")
    assert 'href="/admin/dashboard"' in clerk_client.get("/admin/").get_data(as_text=True)


def test_a_booking_shows_in_its_department_and_day_as_the_database_counts_it(web_app, clerk_client):
    cardiology = department(web_app, "cardiology")
    now = web_app.clock()
    first = today(web_app)
    slot = service.availability(web_app.services, department_id=cardiology, date_from=first,
                                date_to=first + timedelta(days=13), now=now)[0]
    assert isinstance(service.book_slot(web_app.services, identity_input=person(), slot_id=slot.id,
                                        channel="sms", now=now, booked_by=phone()), r.Booked)
    assert isinstance(service.book_slot(web_app.services, identity_input=person("Li Wei"), slot_id=slot.id,
                                        channel="sms", now=now, booked_by=phone(1)), r.Booked)
    slots, booked, capacity = day_in_db(web_app, cardiology, slot.visit_date)
    assert slots and booked >= 2 and capacity > booked

    page = clerk_client.get("/admin/dashboard").get_data(as_text=True)
    assert cell(page, cardiology, slot.visit_date) == f"{booked}/{capacity}"
    chart = next(c for c in charts(page) if c.get("aria-labelledby") == f"chart-title-{cardiology}")
    group = next(g for g in chart.iter(f"{SVG_NS}g") if g.get("data-day") == slot.visit_date.isoformat())
    assert f"{booked}/{capacity}" in [t.text for t in group.iter(f"{SVG_NS}text")]
    assert f"{booked} of {capacity} places booked" in group.find(f"{SVG_NS}title").text
    # The filled part of the bar is the booked share of the day's places.
    plot, fill = [rect for rect in group.iter(f"{SVG_NS}rect")]
    assert abs(float(fill.get("height")) - float(plot.get("height")) * booked / capacity) < 0.1


def test_a_day_without_slots_shows_as_closed(web_app, clerk_client):
    cardiology = department(web_app, "cardiology")
    days = [today(web_app) + timedelta(days=n) for n in range(14)]
    closed = next(day for day in days if day_in_db(web_app, cardiology, day)[0] == 0)  # the demo's weekend
    open_day = next(day for day in days if day_in_db(web_app, cardiology, day)[0] > 0)
    page = clerk_client.get("/admin/dashboard").get_data(as_text=True)
    assert cell(page, cardiology, closed) == "closed"
    assert cell(page, cardiology, open_day) != "closed"
    chart = next(c for c in charts(page) if c.get("aria-labelledby") == f"chart-title-{cardiology}")
    group = next(g for g in chart.iter(f"{SVG_NS}g") if g.get("data-day") == closed.isoformat())
    assert "closed" in group.find(f"{SVG_NS}title").text


def test_every_chart_is_valid_svg_without_styles_or_scripts(web_app, admin_client):
    page = admin_client.get("/admin/dashboard").get_data(as_text=True)
    found = charts(page)  # ET raises on anything that is not well-formed XML
    assert len(found) == len(service.list_departments(web_app.services)) > 1
    for chart in found:
        assert chart.tag == f"{SVG_NS}svg" and "dept-chart" in chart.get("class").split()
        assert chart.find(f"{SVG_NS}title") is not None
        assert len(chart.findall(f"{SVG_NS}g")) == 14
        assert all(g.find(f"{SVG_NS}title") is not None for g in chart.findall(f"{SVG_NS}g"))
    assert 'id="dashboard-chart"' in page and 'id="outbox-status"' in page
    assert "style=" not in page and "<style" not in page and "<script" not in page


def test_the_outbox_shows_its_backlog_and_failures_but_no_number_or_contents(web_app, clerk_client):
    now = web_app.clock()
    slot = service.availability(web_app.services, department_id=department(web_app, "cardiology"),
                                date_from=today(web_app), date_to=today(web_app) + timedelta(days=13), now=now)[0]
    booked = service.book_slot(web_app.services, identity_input=person(), slot_id=slot.id, channel="sms",
                               now=now, booked_by=phone(7))
    number = phone(7).value  # "+86 138 0013 8007"
    with web_app.services.uow() as uow:
        address_id = uow.session.execute(select(ChannelAddress.id)).scalars().first()
        notice = {"code": booked.booking.code, "department": {"en": "Cardiology"},
                  "starts_at": slot.starts_at.isoformat(), "by": "staff"}
        uow.session.add_all([
            OutboxMessage(address_id=address_id, message="booked_for_you", params=notice, locale="en",
                          status="pending", attempts=0, created_at=now - timedelta(hours=3, minutes=5)),
            OutboxMessage(address_id=address_id, message="booked_for_you", params=notice, locale="en",
                          status="pending", attempts=2, created_at=now - timedelta(minutes=30),
                          last_error="twilio unreachable: ConnectTimeout"),
            OutboxMessage(address_id=address_id, message="cancelled_for_you", params=notice, locale="en",
                          status="failed", attempts=6, created_at=now - timedelta(hours=1),
                          last_error=f"twilio refused: HTTP 400, code 21211 for {number}"),
            OutboxMessage(address_id=address_id, message="moved_for_you", params=notice, locale="en",
                          status="sent", attempts=1, created_at=now - timedelta(hours=2), sent_at=now,
                          provider_ref="SM123", delivery_status="undelivered"),
        ])
        uow.commit()
    with web_app.services.uow.read_only() as uow:
        pending = uow.session.execute(select(func.count()).select_from(OutboxMessage)
                                      .where(OutboxMessage.status == "pending")).scalar_one()

    page = clerk_client.get("/admin/dashboard").get_data(as_text=True)
    outbox = page.split('id="outbox-status"', 1)[1].split("</section>", 1)[0]
    assert f'data-figure="pending">{pending}<' in outbox
    assert 'data-figure="retrying">1<' in outbox and 'data-figure="failed">1<' in outbox
    assert 'data-figure="undelivered">1<' in outbox
    assert "3 h 5 min" in outbox  # the oldest pending message's age
    assert "code 21211" in outbox and "Cancelled for the patient" in outbox and "Not delivered:" in outbox
    digits = re.sub(r"\D", "", number)
    for shown in (number, digits, digits[-8:], booked.booking.code, slot.starts_at.isoformat()):
        assert shown not in page


def test_an_error_is_masked_and_shortened():
    assert safe_error("code 21211 to +86 138-0013-8000, chat 123456789") == "code 21211 to •••, chat •••"
    assert len(safe_error("x" * 300)) == 80
