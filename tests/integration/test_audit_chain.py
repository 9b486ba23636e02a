"""The audit chain notices edited, deleted, truncated and swapped events, through the
service API and through `assistant audit verify`; an older head put back, seal and all,
is caught by the reconciliation of bookings with their events."""

from __future__ import annotations

import json
import re
from datetime import date
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy import JSON, bindparam, select, text

from assistant.booking import audit, reconcile, results as r, service
from assistant.booking.models import AuditEvent, AuditHead
from assistant.cli import main
from tests.conftest import keys_environ
from tests.support import add_hospital, add_slot, person, phone

VISIT = date(2026, 12, 5)
# A patient's row id (older events add "/**" and the ID's last 4); an address's row id
# (older events: its kind and a blinded prefix).
PATIENT_REF = re.compile(r"\d+(/\*\*[0-9A-Z]{4})?")
ACTOR = re.compile(r"system|anonymous|patient|kiosk|staff:[\w.-]+|"
                   r"address:(\d+|(phone|telegram|console):[0-9a-f]{12})")


def verify(services) -> audit.AuditReport:
    with services.uow.read_only() as uow:
        return audit.verify(uow.session, services.keyring.audit_key)


def cli_env(app) -> dict[str, str]:
    return {
        "ASSISTANT_DATABASE_URL": app.settings.database_url,
        "ASSISTANT_INSTANCE_PATH": str(app.settings.instance_path),
        "ASSISTANT_GENERATE_SECRETS": "false",
        **keys_environ(),
    }


def cli_verify(app):
    return CliRunner().invoke(main, ["audit", "verify"], env=cli_env(app))


def execute(app, sql: str, **params) -> None:
    statement = text(sql)
    if "details" in params:
        statement = statement.bindparams(bindparam("details", type_=JSON))
    with app.engine.begin() as connection:
        connection.execute(statement, params)


def events(services) -> list[SimpleNamespace]:
    """Plain copies of the events, readable after the session is gone."""
    columns = [c.name for c in AuditEvent.__table__.columns]
    with services.uow.read_only() as uow:
        rows = uow.session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
        return [SimpleNamespace(**{c: getattr(e, c) for c in columns}) for e in rows]


@pytest.fixture
def people():
    return [person("Wang Fang"), person("Li Wei"), person("Zhang Min")]


@pytest.fixture
def chain(services, now, people):
    """A few bookings, a cancellation and a reschedule: about a dozen events."""
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        slots = [add_slot(uow.session, depts["cardiology"], VISIT, h, capacity=2) for h in (9, 10, 11)]
        uow.commit()
    codes = []
    for n, who in enumerate(people):
        booked = service.book_slot(services, identity_input=who, slot_id=slots[n], channel="sms",
                                   now=now, booked_by=phone(n))
        assert isinstance(booked, r.Booked), booked
        codes.append(booked.booking.code)
    assert isinstance(service.cancel_booking(services, code=codes[1], requester=phone(1),
                                             channel="sms", now=now), r.Cancelled)
    assert isinstance(service.reschedule_booking(services, code=codes[2], new_slot_id=slots[0],
                                                 requester=phone(2), channel="sms", now=now),
                      r.Rescheduled)
    found = events(services)
    assert len(found) >= 8
    return found


def test_untouched_chain_verifies(services, chain):
    report = verify(services)
    assert report.ok, report.problems
    assert report.checked == len(chain)


def test_edited_details_are_reported(app, services, chain):
    target = next(e for e in chain[1:-1] if e.action == "booking.created")
    execute(app, "UPDATE audit_event SET details = :details WHERE id = :id",
            details={**target.details, "slot": 999}, id=target.id)
    report = verify(services)
    assert f"event {target.id}: contents do not match its hash" in report.problems
    assert len(report.problems) == 1, report.problems


def test_edited_actor_is_reported(app, services, chain):
    target = chain[len(chain) // 2]
    execute(app, "UPDATE audit_event SET actor = 'staff:mallory' WHERE id = :id", id=target.id)
    assert verify(services).problems == (f"event {target.id}: contents do not match its hash",)


def test_deleted_middle_event_is_reported(app, services, chain):
    middle = chain[len(chain) // 2]
    execute(app, "DELETE FROM audit_event WHERE id = :id", id=middle.id)
    report = verify(services)
    assert not report.ok
    assert f"event {middle.id} is missing (next is {middle.id + 1})" in report.problems
    assert f"event {middle.id + 1}: does not follow the event before it" in report.problems
    assert report.checked == len(chain) - 1


def test_deleted_first_event_is_reported(app, services, chain):
    execute(app, "DELETE FROM audit_event WHERE id = :id", id=chain[0].id)
    report = verify(services)
    assert f"event {chain[0].id} is missing (next is {chain[1].id})" in report.problems


def test_deleted_newest_event_is_reported(app, services, chain):
    newest = chain[-1]
    execute(app, "DELETE FROM audit_event WHERE id = :id", id=newest.id)
    report = verify(services)
    assert not report.ok
    assert f"the newest event should be {newest.id}, found {newest.id - 1}" in report.problems
    assert f"{len(chain)} events were written, {len(chain) - 1} remain" in report.problems


def test_deleted_tail_and_head_row_are_reported(app, services, chain):
    execute(app, "DELETE FROM audit_event WHERE id = :id", id=chain[-1].id)
    execute(app, "DELETE FROM audit_head")
    assert "the audit head is missing" in verify(services).problems


def rewrite_head_to(app, event) -> None:
    """What someone with the database but not the key does after deleting the tail."""
    execute(app, "UPDATE audit_head SET last_event_id = :id, last_hash = :hash, "
                 "event_count = :count WHERE id = 1", id=event.id, hash=event.hash, count=event.id)


def book_once_more(services, now) -> None:
    with services.uow() as uow:
        slot_id = add_slot(uow.session, add_hospital(uow.session, code="more")["eyes"], VISIT, 9)
        uow.commit()
    booked = service.book_slot(services, identity_input=person("Chen Jie"), slot_id=slot_id,
                               channel="telegram", now=now,
                               booked_by=service.AddressInput("telegram", "42"))
    assert isinstance(booked, r.Booked), booked


def test_the_first_change_seals_the_head(chain):
    assert chain[0].action == audit.SEALED
    assert chain[0].details == {"newest_event": 0, "events": 0}
    assert not any(e.action == audit.SEALED for e in chain[1:])


def test_deleted_tail_with_the_head_rewritten_to_match_is_reported(app, services, chain):
    for event in chain[-2:]:
        execute(app, "DELETE FROM audit_event WHERE id = :id", id=event.id)
    rewrite_head_to(app, chain[-3])
    report = verify(services)
    assert report.problems == (
        "the audit head does not match its seal: it was changed outside CareLine",)
    assert report.newest_event == chain[-3].id


def test_the_next_change_records_a_rewritten_head_and_still_books(app, services, chain, now):
    execute(app, "DELETE FROM audit_event WHERE id = :id", id=chain[-1].id)
    rewrite_head_to(app, chain[-2])

    book_once_more(services, now)

    after = events(services)
    altered = after[len(chain) - 1]
    assert (altered.id, altered.action) == (chain[-1].id, audit.HEAD_ALTERED)
    assert altered.details == {"newest_event": chain[-2].id, "events": chain[-2].id}
    report = verify(services)  # the new head is sealed again; the record stays in the chain
    assert report.problems == (f"event {altered.id}: CareLine found the audit head changed outside it",)


def test_a_removed_seal_is_reported_and_stays_reported(app, services, chain, now):
    execute(app, "UPDATE audit_head SET seal = NULL WHERE id = 1")
    assert verify(services).problems == ("the audit head has lost its seal",)

    book_once_more(services, now)

    resealed = events(services)[len(chain)]
    assert resealed.action == audit.SEALED
    assert verify(services).problems == (f"event {resealed.id}: the audit head had lost its seal",)


def test_a_wiped_chain_with_a_reset_head_is_reported(app, services, chain):
    execute(app, "DELETE FROM audit_event")
    execute(app, "UPDATE audit_head SET last_event_id = 0, last_hash = :genesis, "
                 "event_count = 0, seal = NULL WHERE id = 1", genesis=audit.GENESIS_HASH)
    assert verify(services).problems == ("the audit trail is empty, but bookings exist",)


def test_swapped_details_are_reported(app, services, chain):
    first, second = [e for e in chain if e.action == "booking.created"][:2]
    assert first.details != second.details
    execute(app, "UPDATE audit_event SET details = :details WHERE id = :id",
            details=second.details, id=first.id)
    execute(app, "UPDATE audit_event SET details = :details WHERE id = :id",
            details=first.details, id=second.id)
    report = verify(services)
    assert set(report.problems) == {f"event {first.id}: contents do not match its hash",
                                    f"event {second.id}: contents do not match its hash"}


def test_rehashed_event_without_the_key_is_reported(app, services, chain):
    # Someone with database access but not the key recomputes the hash with a guess.
    target = chain[2]
    details = {**target.details, "department": "eyes"}
    forged = audit.event_hash(b"not the key", target.prev_hash, {
        "id": target.id, "at": target.at.isoformat(timespec="microseconds"),
        "actor": target.actor, "channel": target.channel, "action": target.action,
        "subject": target.subject, "details": details})
    execute(app, "UPDATE audit_event SET details = :details, hash = :hash WHERE id = :id",
            details=details, hash=forged, id=target.id)
    report = verify(services)
    assert f"event {target.id}: contents do not match its hash" in report.problems
    assert f"event {target.id + 1}: does not follow the event before it" in report.problems


def test_new_events_continue_a_verified_chain(services, chain, now):
    with services.uow() as uow:
        head = uow.session.get(AuditHead, 1)
        assert (head.last_event_id, head.last_hash, head.event_count) == (
            chain[-1].id, chain[-1].hash, len(chain))
        depts = add_hospital(uow.session, code="second")
        slot_id = add_slot(uow.session, depts["eyes"], VISIT, 9)
        uow.commit()
    booked = service.book_slot(services, identity_input=person("Chen Jie"), slot_id=slot_id,
                               channel="telegram", now=now,
                               booked_by=service.AddressInput("telegram", "42"))
    assert isinstance(booked, r.Booked), booked
    after = events(services)
    assert after[len(chain)].prev_hash == chain[-1].hash
    report = verify(services)
    assert report.ok, report.problems
    assert report.checked == len(after) > len(chain)


def test_cli_verify_passes_then_names_the_problem(app, services, chain):
    before = cli_verify(app)
    assert before.exit_code == 0, before.output
    assert (f"audit trail intact: {len(chain)} events; "
            f"newest event {chain[-1].id}, hash {chain[-1].hash}; "
            f"bookings and slots reconcile\n") == before.output
    target = chain[3]
    execute(app, "UPDATE audit_event SET details = :details WHERE id = :id",
            details={"tampered": True}, id=target.id)
    after = cli_verify(app)
    assert after.exit_code == 1, after.output
    assert "audit trail BROKEN" in after.output
    assert f"event {target.id}: contents do not match its hash" in after.output


def test_an_older_head_restored_seal_and_all_is_caught_by_the_reconciliation(app, services, now):
    """The chain and its seal are as they were after the first booking; only the
    bookings made since, which have no events left, give it away."""
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        slots = [add_slot(uow.session, depts["cardiology"], VISIT, h, capacity=2) for h in (9, 10)]
        uow.commit()

    def book(n: int, slot_id: int) -> str:
        booked = service.book_slot(services, identity_input=person(f"Patient {'ABCDEFGH'[n]}"),
                                   slot_id=slot_id, channel="sms", now=now, booked_by=phone(n))
        assert isinstance(booked, r.Booked), booked
        return booked.booking.code

    book(0, slots[0])
    with app.engine.connect() as connection:
        old_head = connection.execute(text(
            "SELECT last_event_id, last_hash, event_count, seal FROM audit_head WHERE id = 1"
        )).mappings().one()
    later = [book(1, slots[0]), book(2, slots[1])]
    execute(app, "DELETE FROM audit_event WHERE id > :id", id=old_head["last_event_id"])
    execute(app, "UPDATE audit_head SET last_event_id = :last_event_id, last_hash = :last_hash, "
                 "event_count = :event_count, seal = :seal WHERE id = 1", **old_head)

    assert verify(services).ok  # the chain alone can't tell
    with services.uow.read_only() as uow:
        found = reconcile.check(uow.session, services.keyring.audit_key)
    assert found.chain.ok
    assert found.reconciliation.differences == (
        *(f"booking {code} has no audit events (events missing — an older audit head may "
          f"have been restored)" for code in later),
        f"slot {slots[0]}: 2 places booked in the table, 1 in the audit trail",
        f"slot {slots[1]}: 1 place booked in the table, 0 in the audit trail",
    )
    result = cli_verify(app)
    assert result.exit_code == 1, result.output
    assert (f"audit chain unbroken: {old_head['event_count']} events; newest event "
            f"{old_head['last_event_id']}, hash {old_head['last_hash']}") in result.output
    assert "bookings and slots DO NOT MATCH the audit trail (4 differences" in result.output
    for code in later:
        assert f"  booking {code} has no audit events" in result.output


def test_cli_verify_reports_a_deleted_tail(app, chain):
    execute(app, "DELETE FROM audit_event WHERE id = :id", id=chain[-1].id)
    result = cli_verify(app)
    assert result.exit_code == 1, result.output
    assert f"the newest event should be {chain[-1].id}" in result.output


def test_events_name_patients_only_by_masked_refs(chain, people):
    patient_events = [e for e in chain if "patient" in e.details]
    assert {e.action for e in patient_events} >= {
        "booking.created", "booking.cancelled", "booking.rescheduled"}
    for event in patient_events:
        assert PATIENT_REF.fullmatch(str(event.details["patient"])), event.details
    for event in chain:
        assert ACTOR.fullmatch(event.actor), event.actor
        if event.subject.startswith("patient:"):
            assert PATIENT_REF.fullmatch(event.subject.removeprefix("patient:")), event.subject
    text_of_chain = json.dumps(
        [[e.actor, e.subject, e.details] for e in chain], ensure_ascii=False, default=str)
    for who in people:
        assert who.number not in text_of_chain
        assert who.number[:17] not in text_of_chain
        assert who.name.casefold() not in text_of_chain.casefold()
    for n in range(3):
        raw = phone(n).value
        assert "".join(raw.split()) not in text_of_chain
        assert "".join(raw.split())[3:] not in text_of_chain
