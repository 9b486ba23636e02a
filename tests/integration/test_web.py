"""The web app factory: health check and the status page, on both databases."""

from __future__ import annotations

from assistant import jobs
from assistant.config import PROJECT_ROOT
from assistant.web import create_app


def test_health_check_reports_a_reachable_database(app):
    client = create_app(app).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "outbox_pending": 0}
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_health_check_says_unavailable_when_the_database_is_gone(app):
    from dataclasses import replace

    from sqlalchemy import create_engine

    unreachable = ("sqlite:////nonexistent/dir/careline.db" if app.settings.is_sqlite
                   else "postgresql+psycopg://postgres@127.0.0.1:1/test")
    broken = replace(app, engine=create_engine(unreachable))
    response = create_app(broken).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable"}


def test_status_page_lists_the_demo_departments_with_free_places(app):
    jobs.seed_file(app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    page = create_app(app).test_client().get("/").get_data(as_text=True)
    assert "Cardiology / 心内科 / Cardiología" in page
    assert "No hospital loaded yet" not in page


def test_health_check_reports_the_outbox_backlog(app, services, now):
    from datetime import date

    from assistant.booking import service
    from assistant.booking.service import AddressInput
    from tests.support import add_hospital, new_slot, person

    with services.uow() as uow:
        depts = add_hospital(uow.session)
        uow.commit()
    patient = person("Wang Fang")
    for dept, by in (("cardiology", AddressInput("phone", "+8613800000101")), ("eyes", AddressInput("telegram", "7001"))):
        booked = service.book_slot(services, identity_input=patient, channel="sms", now=now, booked_by=by,
                                   slot_id=new_slot(services, depts[dept], date(2026, 12, 5), 9),
                                   relation="self" if dept == "cardiology" else "family")
        assert booked.booking.code
    # The second booking was made by someone else: one notice waits for her phone.
    assert create_app(app).test_client().get("/healthz").get_json() == {"status": "ok", "outbox_pending": 1}
