"""The reconciliation: bookings and slots rebuilt from the audit trail alone, compared
with the tables, every difference named; on SQLite and PostgreSQL, through the API and
through `assistant audit verify`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import select

from assistant import jobs
from assistant.booking import audit, reconcile, results as r, service
from assistant.booking.models import AuditEvent, Booking, Department, ScheduleException, Slot
from assistant.booking.schedule import generation_details
from assistant.config import PROJECT_ROOT
from tests.integration.test_audit_chain import cli_verify, execute
from tests.support import add_hospital, add_slot, local, person, phone

DEMO_FILE = PROJECT_ROOT / "config" / "demo_hospital.toml"
FRIDAY = date(2026, 12, 4)  # released 27 Nov 15:00; the default "now" is 1 December
MISSING = "events missing — an older audit head may have been restored"


def check(services) -> reconcile.Check:
    with services.uow.read_only() as uow:
        return reconcile.check(uow.session, services.keyring.audit_key)


def differences(services) -> tuple[str, ...]:
    found = check(services)
    assert found.chain.ok, found.chain.problems  # these tests edit the tables, not the chain
    return found.reconciliation.differences


def slot_at(app, department: str, day: date, hh: int, mm: int = 0) -> Slot:
    with app.services.uow.read_only() as uow:
        slot = uow.session.execute(
            select(Slot).join(Department, Slot.department_id == Department.id)
            .where(Department.code == department, Slot.starts_at == local(day, hh, mm))
        ).scalar_one()
        uow.session.expunge(slot)
        return slot


def patient_of(app, code: str) -> int:
    with app.services.uow.read_only() as uow:
        return uow.session.execute(
            select(Booking.patient_id).where(Booking.code == code)).scalar_one()


def book(services, slot_id: int, n: int, now) -> str:
    booked = service.book_slot(services, identity_input=person(f"Patient {'ABCDEFGH'[n]}"), slot_id=slot_id,
                               channel="sms", now=now, booked_by=phone(n))
    assert isinstance(booked, r.Booked), booked
    return booked.booking.code


@dataclass(frozen=True)
class World:
    a: Slot  # cardiology, Friday 08:00, capacity 3: kept (checked in) + cancelled
    b: Slot  # 08:30: the rescheduled booking's old slot, now empty
    c: Slot  # 09:00: the rescheduled booking's new slot
    kept: str
    cancelled: str
    moved_from: str
    moved_to: str
    kept_id_number: str


@pytest.fixture
def world(app, services, now) -> World:
    """The demo hospital (slots from generation), and bookings in every status change."""
    jobs.seed_file(app, DEMO_FILE)
    a, b, c = (slot_at(app, "cardiology", FRIDAY, hh, mm) for hh, mm in ((8, 0), (8, 30), (9, 0)))
    assert a.capacity == 3
    first = person("Patient A")
    booked = service.book_slot(services, identity_input=first, slot_id=a.id, channel="sms",
                               now=now, booked_by=phone(0))
    assert isinstance(booked, r.Booked), booked
    kept = booked.booking.code
    cancelled = book(services, a.id, 1, now)
    moved_from = book(services, b.id, 2, now)
    assert isinstance(service.cancel_booking(services, code=cancelled, requester=phone(1),
                                             channel="sms", now=now), r.Cancelled)
    moved = service.reschedule_booking(services, code=moved_from, new_slot_id=c.id,
                                       requester=phone(2), channel="sms", now=now)
    assert isinstance(moved, r.Rescheduled), moved
    assert isinstance(service.check_in(services, code=kept, id_number=first.number,
                                       now=local(FRIDAY, 7, 45)), r.CheckedIn)
    return World(a, b, c, kept, cancelled, moved_from, moved.booking.code, first.number)


# ---- an untouched database ----------------------------------------------------------------


def test_an_untouched_database_reconciles(services, world):
    found = check(services)
    assert found.ok, (found.chain.problems, found.reconciliation.differences)
    assert found.reconciliation.bookings == 4
    # Every demo slot came from generation, so every capacity is recorded.
    assert found.reconciliation.slots_with_capacity == found.reconciliation.slots == 1084


def test_generation_records_every_capacity_in_events_of_at_most_500_slots(services, world):
    with services.uow.read_only() as uow:
        generated = uow.session.execute(
            select(AuditEvent.details).where(AuditEvent.action == "slots.generated")
            .order_by(AuditEvent.id)).scalars().all()
        capacities = dict(uow.session.execute(select(Slot.id, Slot.capacity)).all())
    assert [d.get("part") for d in generated] == [[1, 3], [2, 3], [3, 3]]
    assert generated[0]["created"] == 1084
    assert all(len(d["capacities"]) + len(d["removed_slots"]) <= 500 for d in generated)
    recorded = {int(k): v for d in generated for k, v in d["capacities"].items()}
    assert recorded == capacities


def test_the_cli_says_bookings_and_slots_reconcile(app, world):
    result = cli_verify(app)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("audit trail intact: ")
    assert result.output.rstrip().endswith("; bookings and slots reconcile")


def test_the_check_reads_one_moment_while_bookings_go_on(services, world, now):
    with services.uow.read_only() as uow:
        reconcile.consistent_reads(uow.session)
        seen = uow.session.execute(select(Booking.code)).scalars().all()
        book(services, world.a.id, 5, now)  # commits while the check is reading
        found = reconcile.reconcile(uow.session)
    assert found.ok, found.differences
    assert found.bookings == len(seen) == 4
    assert check(services).reconciliation.bookings == 5


# ---- edited tables ------------------------------------------------------------------------


def test_a_booking_handed_to_someone_else_is_named(app, services, world):
    owner, other = patient_of(app, world.kept), patient_of(app, world.moved_to)
    execute(app, "UPDATE booking SET patient_id = :p WHERE code = :code",
            p=other, code=world.kept)
    assert differences(services) == (
        f"booking {world.kept}: patient is {other} in the table, {owner} in the audit trail",)


def test_a_changed_status_is_named(app, services, world):
    execute(app, "UPDATE booking SET status = 'cancelled' WHERE code = :code", code=world.kept)
    execute(app, "UPDATE booking SET status = 'booked' WHERE code = :code", code=world.cancelled)
    assert set(differences(services)) == {
        f"booking {world.kept}: status is cancelled in the table, checked in in the audit trail",
        f"booking {world.cancelled}: status is booked in the table, cancelled in the audit trail",
    }


def test_a_booking_moved_to_another_slot_is_named(app, services, world):
    execute(app, "UPDATE booking SET slot_id = :s WHERE code = :code", s=world.b.id,
            code=world.moved_to)
    assert differences(services) == (
        f"booking {world.moved_to}: slot is {world.b.id} in the table, "
        f"{world.c.id} in the audit trail",)


def test_a_changed_capacity_is_named(app, services, world):
    execute(app, "UPDATE slot SET capacity = 9 WHERE id = :id", id=world.a.id)
    assert differences(services) == (
        f"slot {world.a.id}: capacity is 9 in the table, 3 in the audit trail",)


def test_a_changed_booked_count_is_named(app, services, world):
    execute(app, "UPDATE slot SET booked = 2 WHERE id = :id", id=world.a.id)
    execute(app, "UPDATE slot SET booked = 1 WHERE id = :id", id=world.b.id)
    assert differences(services) == (
        f"slot {world.a.id}: 2 places booked in the table, 1 in the audit trail",
        f"slot {world.b.id}: 1 place booked in the table, 0 in the audit trail",
    )


def test_a_deleted_booking_is_named(app, services, world):
    execute(app, "DELETE FROM booking WHERE code = :code", code=world.cancelled)
    assert differences(services) == (
        f"booking {world.cancelled} is in the audit trail but not in the table",)


def test_every_difference_is_named_and_the_cli_exits_1(app, world):
    owner, other = patient_of(app, world.kept), patient_of(app, world.moved_to)
    execute(app, "UPDATE booking SET patient_id = :p, status = 'booked' WHERE code = :code",
            p=other, code=world.kept)
    execute(app, "UPDATE slot SET capacity = 5, booked = 3 WHERE id = :id", id=world.c.id)
    result = cli_verify(app)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("audit chain unbroken: ")
    assert "bookings and slots DO NOT MATCH the audit trail (4 differences" in result.output
    for line in (
        f"booking {world.kept}: patient is {other} in the table, {owner} in the audit trail",
        f"booking {world.kept}: status is booked in the table, checked in in the audit trail",
        f"slot {world.c.id}: capacity is 5 in the table, 3 in the audit trail",
        f"slot {world.c.id}: 3 places booked in the table, 1 in the audit trail",
    ):
        assert f"  {line}\n" in result.output


# ---- what the trail records -----------------------------------------------------------------


def test_removed_slots_are_recorded_and_not_missed(app, services, world):
    before = [s.id for s in _slots_on(app, FRIDAY)]
    with services.uow() as uow:
        hospital_id = uow.session.execute(
            select(Department.hospital_id).where(Department.id == world.a.department_id)).scalar_one()
        uow.session.add(ScheduleException(hospital_id=hospital_id, day=FRIDAY, kind="closed"))
        uow.commit()
    report = jobs.generate_slots(app, days=28)
    assert report.removed > 0
    with services.uow.read_only() as uow:
        newest = uow.session.execute(
            select(AuditEvent.details).where(AuditEvent.action == "slots.generated")
            .order_by(AuditEvent.id.desc()).limit(1)).scalar_one()
    left = {s.id for s in _slots_on(app, FRIDAY)}
    assert set(newest["removed_slots"]) == set(before) - left
    # Slots kept for their bookings were closed: capacity down to the places booked.
    assert newest["capacities"] == {str(world.a.id): 1, str(world.b.id): 0, str(world.c.id): 1}
    assert differences(services) == ()


def _slots_on(app, day: date) -> list[Slot]:
    with app.services.uow.read_only() as uow:
        found = uow.session.execute(select(Slot).where(Slot.visit_date == day)).scalars().all()
        uow.session.expunge_all()
        return found


def test_a_recorded_capacity_change_reconciles(app, services, world, now):
    with services.uow() as uow:
        uow.session.get(Slot, world.a.id).capacity = 5
        audit.append(uow.session, services.keyring.audit_key, actor=audit.Actor("staff:alice", "web"),
                     action=reconcile.CAPACITY_CHANGED, subject=f"slot:{world.a.id}",
                     details={"slot": world.a.id, "capacity": 5}, at=now)
        uow.commit()
    assert differences(services) == ()
    execute(app, "UPDATE slot SET capacity = 3 WHERE id = :id", id=world.a.id)
    assert differences(services) == (
        f"slot {world.a.id}: capacity is 3 in the table, 5 in the audit trail",)


def test_unrecorded_slots_are_compared_on_places_booked_only(app, services, now):
    with services.uow() as uow:
        slot_id = add_slot(uow.session, add_hospital(uow.session)["eyes"], FRIDAY, 9, capacity=2)
        uow.commit()
    book(services, slot_id, 0, now)
    found = check(services)
    assert found.ok, found.reconciliation.differences
    assert (found.reconciliation.slots, found.reconciliation.slots_with_capacity) == (1, 0)
    execute(app, "UPDATE slot SET capacity = 7 WHERE id = :id", id=slot_id)
    assert differences(services) == ()  # nothing in the trail to compare it with
    execute(app, "UPDATE slot SET booked = 0 WHERE id = :id", id=slot_id)
    assert differences(services) == (
        f"slot {slot_id}: 0 places booked in the table, 1 in the audit trail",)


# ---- rebuilding, without a database ---------------------------------------------------------


def test_patient_refs_old_and_new_are_both_read():
    assert reconcile.patient_id(7) == 7
    assert reconcile.patient_id("7/**123X") == 7
    assert reconcile.patient_id("7") == 7
    assert reconcile.patient_id("**123X") is None
    assert reconcile.patient_id(True) is None
    trail = reconcile.rebuild([
        (1, "booking.created", "booking:OLD", {"patient": "3/**1234", "slot": 5}),
        (2, "booking.created", "booking:NEW", {"patient": 3, "slot": 6}),
        (3, "booking.rescheduled", "booking:OLD", {"patient": 3, "to": "NEW"}),
        (4, "booking.no_show", "booking:NEW", {"patient": "3/**1234"}),
        (5, "link.created", "patient:3/**1234", {"relation": "self"}),
    ])
    assert trail.problems == []
    assert {code: (b.patient, b.slot, b.status) for code, b in trail.bookings.items()} == {
        "OLD": (3, 5, "cancelled"), "NEW": (3, 6, "no_show")}


def test_the_trail_disagreeing_with_itself_is_named():
    trail = reconcile.rebuild([
        (1, "booking.created", "booking:A", {"patient": 3, "slot": 5}),
        (2, "booking.cancelled", "booking:A", {"patient": 4, "by": "staff"}),
        (3, "booking.checked_in", "booking:B", {"patient": 4}),
    ])
    assert trail.problems == [
        "booking A: event 2 (booking.cancelled) names patient 4, its booking.created event patient 3",
        f"booking B: event 3 (booking.checked_in) has no booking.created event before it ({MISSING})",
    ]


def test_generation_details_split_removals_first():
    parts = generation_details({"created": 3, "updated": 0, "removed": 2, "kept_with_bookings": []},
                               [8, 9], {9: 2, 10: 2, 11: 4}, per_event=2)
    assert parts == [
        {"created": 3, "updated": 0, "removed": 2, "kept_with_bookings": [],
         "removed_slots": [8, 9], "capacities": {}, "part": [1, 3]},
        {"removed_slots": [], "capacities": {"9": 2, "10": 2}, "part": [2, 3]},
        {"removed_slots": [], "capacities": {"11": 4}, "part": [3, 3]},
    ]
    trail = reconcile.rebuild((n, "slots.generated", "slots:…", d) for n, d in enumerate(parts, 1))
    assert trail.capacities == {9: 2, 10: 2, 11: 4}  # 9 removed, then reused
    assert trail.removed == {8}
