"""Schedules turned into slots, the `assistant` command line, and migrations that match
the models; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from assistant import jobs
from assistant.booking import migrate, results as r, service
from assistant.booking.seed import SeedError
from assistant.booking.database import create_db_engine
from assistant.booking.models import (
    Booking,
    Department,
    Hospital,
    ScheduleException,
    ScheduleTemplate,
    Slot,
)
from assistant.cli import main
from assistant.config import PROJECT_ROOT
from tests.conftest import keys_environ
from tests.support import TZ, local, person, phone

DEMO_FILE = PROJECT_ROOT / "config" / "demo_hospital.toml"
GENERATED = re.compile(r"slots: (\d+) created, (\d+) updated, (\d+) removed")
COMMANDS = ("db", "seed", "slots", "bookings", "audit", "jobs", "suspensions", "serve")


# ---- helpers --------------------------------------------------------------------------


def cli_env(app, **extra: str) -> dict[str, str]:
    return {
        "ASSISTANT_DATABASE_URL": app.settings.database_url,
        "ASSISTANT_INSTANCE_PATH": str(app.settings.instance_path),
        "ASSISTANT_GENERATE_SECRETS": "false",
        **keys_environ(),
        **extra,
    }


def invoke(env, *args: str):
    return CliRunner().invoke(main, list(args), env=env)


def generation(output: str) -> tuple[int, int, int]:
    found = GENERATED.search(output)
    assert found, output
    return tuple(int(n) for n in found.groups())


def slot_count(app) -> int:
    with app.services.uow.read_only() as uow:
        return uow.session.execute(select(func.count()).select_from(Slot)).scalar_one()


def expected_slots(path: Path, first: date, days: int) -> int:
    """An independent count of the slots a hospital file gives over some days."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    total = 0
    for offset in range(days):
        day = first + timedelta(days=offset)
        for dept in data["departments"]:
            if not dept.get("active", True):
                continue
            closed = any(_day(c["date"]) == day and c.get("department") in (None, dept["code"])
                         for c in data.get("closures", []))
            if closed:
                continue
            hours = [h for h in data.get("changed_hours", [])
                     if _day(h["date"]) == day and h.get("department") in (None, dept["code"])]
            for schedule in dept.get("schedule", []):
                if names[day.weekday()] not in schedule["weekdays"]:
                    continue
                start = _minutes(schedule["start"])
                end = _minutes(schedule["end"])
                for changed in hours:
                    start, end = max(start, _minutes(changed["start"])), min(end, _minutes(changed["end"]))
                if end > start:
                    total += (end - start) // schedule["slot_minutes"]
    return total


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _minutes(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


def find_slot(app, department: str, day: date, hh: int, mm: int = 0) -> Slot:
    with app.services.uow.read_only() as uow:
        slot = uow.session.execute(
            select(Slot).join(Department, Slot.department_id == Department.id)
            .where(Department.code == department, Slot.starts_at == local(day, hh, mm))
        ).scalar_one()
        uow.session.expunge(slot)
        return slot


def slots_on(app, department: str | None, day: date) -> list[Slot]:
    with app.services.uow.read_only() as uow:
        query = select(Slot).join(Department, Slot.department_id == Department.id).where(
            Slot.visit_date == day).order_by(Slot.starts_at, Slot.id)
        if department is not None:
            query = query.where(Department.code == department)
        found = uow.session.execute(query).scalars().all()
        uow.session.expunge_all()
        return found


def book_people(app, slot_id: int, count: int, now: datetime) -> list[str]:
    codes = []
    for n in range(count):
        who = person(f"Patient {'ABCDEFGH'[n]}", birth=date(1960, 1, 1 + n))
        booked = service.book_slot(app.services, identity_input=who, slot_id=slot_id, channel="sms",
                                   now=now, booked_by=phone(40 + n))
        assert isinstance(booked, r.Booked), booked
        codes.append(booked.booking.code)
    return codes


@pytest.fixture
def demo(app):
    """The demo hospital with 28 days of slots from Tuesday 1 December 2026."""
    report, generated = jobs.seed_file(app, DEMO_FILE)
    # 4 weeks of 272 slots, less 4 afternoon-free cardiology slots on 24 December.
    assert generated.created == expected_slots(DEMO_FILE, date(2026, 12, 1), 28) == 1084
    return report


FRIDAY = date(2026, 12, 4)  # released 27 Nov 15:00; booking closes 3 Dec 16:00
MONDAY = date(2026, 12, 7)


# ---- the command line -----------------------------------------------------------------


def test_help_lists_every_command_and_now(tmp_path):
    # --help must not touch a database: this one does not exist.
    env = {"ASSISTANT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
           "ASSISTANT_INSTANCE_PATH": str(tmp_path / "none")}
    result = invoke(env, "--help")
    assert result.exit_code == 0, result.output
    listed = re.findall(r"^  (\S+)", result.output.split("Commands:")[1], flags=re.M)
    assert set(COMMANDS) <= set(listed), listed
    assert "--now" in result.output and "--config" in result.output
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("group,commands", [
    ("db", ["upgrade", "current"]),
    ("slots", ["generate"]),
    ("bookings", ["list"]),
    ("audit", ["verify"]),
    ("jobs", ["mark-no-shows"]),
    ("suspensions", ["list", "lift"]),
])
def test_group_help_lists_its_commands(group, commands):
    result = invoke({}, group, "--help")
    assert result.exit_code == 0, result.output
    for command in commands:
        assert re.search(rf"^  {re.escape(command)}\b", result.output, flags=re.M), result.output


def test_bookings_list_help_offers_json_and_date():
    result = invoke({}, "bookings", "list", "--help")
    assert result.exit_code == 0 and "--json" in result.output and "--date" in result.output


def test_db_upgrade_creates_a_fresh_sqlite_database(tmp_path):
    path = tmp_path / "fresh" / "careline.db"
    path.parent.mkdir()
    env = {"ASSISTANT_DATABASE_URL": f"sqlite:///{path}",
           "ASSISTANT_INSTANCE_PATH": str(tmp_path / "instance"),
           "ASSISTANT_GENERATE_SECRETS": "false", **keys_environ()}
    before = invoke(env, "db", "current")
    assert before.exit_code == 0 and "database: empty" in before.output, before.output
    result = invoke(env, "db", "upgrade")
    assert result.exit_code == 0, result.output
    head = migrate.head_revision()
    assert f"database at revision {head}" in result.output
    after = invoke(env, "db", "current")
    assert f"database: {head}; code: {head}" in after.output
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        assert migrate.differences(engine) == []
    finally:
        engine.dispose()
    again = invoke(env, "db", "upgrade")
    assert again.exit_code == 0 and f"database at revision {head}" in again.output


def test_migrated_database_matches_the_models(app):
    assert migrate.current_revision(app.engine) == migrate.head_revision()
    assert migrate.differences(app.engine) == []


def test_cli_seed_generate_list_and_mark_no_shows(app, monkeypatch, now):
    monkeypatch.chdir(PROJECT_ROOT)
    env = cli_env(app)

    upgraded = invoke(env, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"database at revision {migrate.head_revision()}" in upgraded.output

    seeded = invoke(env, "--now", "2026-12-01T09:00", "seed", "--file", "config/demo_hospital.toml")
    assert seeded.exit_code == 0, seeded.output
    assert "hospital demo: 6 departments, 31 weekday schedules, 2 exceptions" in seeded.output
    first_month = expected_slots(DEMO_FILE, date(2026, 12, 1), 28)
    assert generation(seeded.output) == (first_month, 0, 0)
    assert slot_count(app) == first_month

    # Same day again: everything already exists.
    same_day = invoke(env, "--now", "2026-12-01T09:00", "slots", "generate", "--days", "28")
    assert same_day.exit_code == 0, same_day.output
    assert generation(same_day.output) == (0, 0, 0)

    # A week later the window moves on by seven days (1 January is closed).
    week_later = expected_slots(DEMO_FILE, date(2026, 12, 29), 7)
    moved = invoke(env, "--now", "2026-12-08T09:00", "slots", "generate", "--days", "28")
    assert moved.exit_code == 0, moved.output
    assert generation(moved.output) == (week_later, 0, 0)
    repeated = invoke(env, "--now", "2026-12-08T09:00", "slots", "generate", "--days", "28")
    assert repeated.exit_code == 0, repeated.output
    assert generation(repeated.output) == (0, 0, 0)
    assert slot_count(app) == first_month + week_later
    with app.services.uow.read_only() as uow:
        assert uow.session.execute(
            select(func.count()).select_from(Slot).where(Slot.visit_date == date(2027, 1, 1))
        ).scalar_one() == 0

    saturday = date(2026, 12, 5)
    codes = book_people(app, find_slot(app, "orthopedics", saturday, 8).id, 1, now)
    codes += book_people(app, find_slot(app, "general", saturday, 9, 15).id, 1, now)
    monday_code = book_people(app, find_slot(app, "cardiology", MONDAY, 10).id, 1, now)[0]
    codes.append(monday_code)

    listed = invoke(env, "bookings", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [row["code"] for row in rows] == codes  # oldest visit first
    assert [row["department"] for row in rows] == ["orthopedics", "general", "cardiology"]
    assert all(re.fullmatch(r"1101\*{10}\w{4}", row["patient_id"]) for row in rows), rows
    assert all(row["status"] == "booked" and row["channel"] == "sms" for row in rows)
    assert rows[0]["visit_date"] == "2026-12-05"
    assert datetime.fromisoformat(rows[0]["starts_at"]) == local(saturday, 8)

    on_saturday = invoke(env, "bookings", "list", "--json", "--date", "2026-12-05")
    assert [json.loads(line)["code"] for line in on_saturday.stdout.splitlines()] == codes[:2]
    as_text = invoke(env, "bookings", "list", "--date", "2026-12-07")
    assert as_text.exit_code == 0 and monday_code in as_text.output
    assert codes[0] not in as_text.output
    assert "no bookings" in invoke(env, "bookings", "list", "--date", "2026-12-25").output

    marked = invoke(env, "--now", "2026-12-06T09:00", "jobs", "mark-no-shows")
    assert marked.exit_code == 0, marked.output
    assert "no-shows marked: 2; patients suspended: 0" in marked.output
    again = invoke(env, "--now", "2026-12-06T09:00", "jobs", "mark-no-shows")
    assert "no-shows marked: 0; patients suspended: 0" in again.output
    statuses = {row["code"]: row["status"] for row in map(
        json.loads, invoke(env, "bookings", "list", "--json").stdout.splitlines())}
    assert statuses == {codes[0]: "no_show", codes[1]: "no_show", monday_code: "booked"}

    verified = invoke(env, "audit", "verify")
    assert verified.exit_code == 0, verified.output


def test_cli_honours_now_for_the_generation_window(app):
    env = cli_env(app)
    assert invoke(env, "--now", "2027-03-01T09:00", "seed", "--file", str(DEMO_FILE),
                  "--days", "3").exit_code == 0
    with app.services.uow.read_only() as uow:
        days = uow.session.execute(select(Slot.visit_date).distinct()).scalars().all()
    assert sorted(days) == [date(2027, 3, 1), date(2027, 3, 2), date(2027, 3, 3)]


BASE_FILE = """
[hospital]
code = "small"
timezone = "Asia/Shanghai"
names = { en = "Small Hospital" }

[[departments]]
code = "cardiology"
names = { en = "Cardiology" }

  [[departments.schedule]]
  weekdays = ["mon"]
  start = "08:00"
  end = "12:00"
  slot_minutes = 30
  capacity = 3
"""


def _broken(old: str, new: str) -> str:
    assert old in BASE_FILE
    return BASE_FILE.replace(old, new)


BROKEN_FILES = {
    "not_toml": ("[hospital\ncode = ", "not valid TOML"),
    "no_hospital": (BASE_FILE.split("[[departments]]")[0].replace("[hospital]", "[clinic]")
                    + "[[departments]]" + BASE_FILE.split("[[departments]]")[1], "needs 'hospital'"),
    "bad_timezone": (_broken('"Asia/Shanghai"', '"Mars/Olympus"'), "Mars/Olympus"),
    "bad_weekday": (_broken('["mon"]', '["funday"]'), "weekdays"),
    "end_before_start": (_broken('end = "12:00"', 'end = "07:00"'), "end must be after start"),
    "bad_clock": (_broken('start = "08:00"', 'start = "8 o\'clock"'), "start must be HH:MM"),
    "capacity_text": (_broken("capacity = 3", 'capacity = "three"'), "capacity"),
    "unknown_doctor": (_broken("  weekdays", '  doctor = "dr-who"\n  weekdays'), "dr-who"),
    "unknown_policy": (_broken("[[departments]]", "[hospital.policy]\nper_week = 3\n\n[[departments]]"),
                       "per_week"),
    "no_departments": (BASE_FILE.split("[[departments]]")[0], "no [[departments]]"),
    "bad_closure_date": (BASE_FILE + '\n[[closures]]\ndate = "2026-13-01"\n', "YYYY-MM-DD"),
    "closure_unknown_department": (BASE_FILE + '\n[[closures]]\ndate = 2026-12-07\ndepartment = "x"\n',
                                   "unknown department"),
    # Top-level keys go before the first table, or TOML files them under it.
    "departments_not_tables": ('departments = "cardiology"\n' + BASE_FILE.split("[[departments]]")[0],
                               "departments"),
    "hospital_not_table": ('hospital = "small"\n' + "[[departments]]" + BASE_FILE.split("[[departments]]")[1],
                           "hospital"),
    "schedule_not_table": (BASE_FILE.split("  [[departments.schedule]]")[0].replace(
        'names = { en = "Cardiology" }', 'names = { en = "Cardiology" }\nschedule = ["mon 8-12"]'),
        "schedule"),
    "generate_days_text": (BASE_FILE.replace("[[departments]]", '[slots]\ngenerate_days = "many"\n\n[[departments]]', 1),
                           "generate_days"),
}


def test_base_hospital_file_is_valid(app, tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(BASE_FILE, encoding="utf-8")
    result = invoke(cli_env(app), "--now", "2026-12-01T09:00", "seed", "--file", str(path), "--days", "7")
    assert result.exit_code == 0, result.output
    assert generation(result.output) == (8, 0, 0)


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_broken_hospital_file_is_a_clear_error(app, tmp_path, case):
    content, expected = BROKEN_FILES[case]
    path = tmp_path / "broken.toml"
    path.write_text(content, encoding="utf-8")
    result = invoke(cli_env(app), "--now", "2026-12-01T09:00", "seed", "--file", str(path))
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert expected in result.stderr, result.stderr
    with app.services.uow.read_only() as uow:
        assert uow.session.execute(select(func.count()).select_from(Hospital)).scalar_one() == 0


def test_missing_hospital_file_is_a_clear_error(app, tmp_path):
    result = invoke(cli_env(app), "seed", "--file", str(tmp_path / "nowhere.toml"))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: hospital file not found"), result.output


# ---- schedules ------------------------------------------------------------------------


def _template(app, department: str, weekday: int, start: time) -> int:
    with app.services.uow.read_only() as uow:
        return uow.session.execute(
            select(ScheduleTemplate.id).join(Department).where(
                Department.code == department, ScheduleTemplate.weekday == weekday,
                ScheduleTemplate.start_time == start)
        ).scalar_one()


@pytest.mark.parametrize("new_capacity", [0, 1])
def test_capacity_never_drops_below_booked(app, demo, now, new_capacity):
    slot = find_slot(app, "cardiology", FRIDAY, 8)
    neighbour = find_slot(app, "cardiology", FRIDAY, 8, 30)
    assert slot.capacity == 3
    book_people(app, slot.id, 2, now)
    template_id = _template(app, "cardiology", FRIDAY.weekday(), time(8, 0))
    with app.services.uow() as uow:
        uow.session.execute(update(ScheduleTemplate).where(ScheduleTemplate.id == template_id)
                            .values(capacity=new_capacity))
        uow.commit()
    report = jobs.generate_slots(app, days=28)
    assert slot.id in report.kept_with_bookings
    assert report.removed == 0
    kept = find_slot(app, "cardiology", FRIDAY, 8)
    assert (kept.id, kept.capacity, kept.booked) == (slot.id, 2, 2)
    assert find_slot(app, "cardiology", FRIDAY, 8, 30).capacity == new_capacity
    assert neighbour.booked == 0
    # Nobody else gets in, and a second run changes nothing.
    refused = service.book_slot(app.services, identity_input=person("Late Comer"), slot_id=slot.id,
                                channel="sms", now=now, booked_by=phone(60))
    assert refused == r.SlotFull()
    assert jobs.generate_slots(app, days=28).updated == 0
    assert find_slot(app, "cardiology", FRIDAY, 8).capacity == 2


def test_closure_keeps_booked_slots_and_removes_the_rest(app, demo, now):
    booked_slot = find_slot(app, "cardiology", FRIDAY, 9)
    codes = book_people(app, booked_slot.id, 2, now)
    before = slots_on(app, None, FRIDAY)
    with app.services.uow() as uow:
        hospital_id = uow.session.execute(select(Hospital.id)).scalar_one()
        uow.session.add(ScheduleException(hospital_id=hospital_id, department_id=None, day=FRIDAY,
                                          kind="closed", reason="burst pipe"))
        uow.commit()
    report = jobs.generate_slots(app, days=28)
    assert report.kept_with_bookings == [booked_slot.id]
    assert report.removed == len(before) - 1
    after = slots_on(app, None, FRIDAY)
    assert [(s.id, s.capacity, s.booked) for s in after] == [(booked_slot.id, 2, 2)]
    with app.services.uow.read_only() as uow:
        statuses = uow.session.execute(
            select(Booking.status).where(Booking.code.in_(codes))).scalars().all()
    assert statuses == ["booked", "booked"]
    # Other days are untouched.
    assert len(slots_on(app, "cardiology", MONDAY)) == 14


def test_department_closure_leaves_other_departments(app, demo):
    with app.services.uow() as uow:
        hospital_id = uow.session.execute(select(Hospital.id)).scalar_one()
        cardiology = uow.session.execute(
            select(Department.id).where(Department.code == "cardiology")).scalar_one()
        uow.session.add(ScheduleException(hospital_id=hospital_id, department_id=cardiology,
                                          day=MONDAY, kind="closed", reason="congress"))
        uow.commit()
    general_before = len(slots_on(app, "general", MONDAY))
    report = jobs.generate_slots(app, days=28)
    assert report.removed == 14 and report.kept_with_bookings == []
    assert slots_on(app, "cardiology", MONDAY) == []
    assert len(slots_on(app, "general", MONDAY)) == general_before == 16


def test_closure_of_a_cancelled_slot_is_removed_or_emptied(app, demo, now):
    slot = find_slot(app, "general", FRIDAY, 8)
    [code] = book_people(app, slot.id, 1, now)
    assert isinstance(service.cancel_booking(app.services, code=code, requester=phone(40),
                                             channel="sms", now=now), r.Cancelled)
    with app.services.uow() as uow:
        hospital_id = uow.session.execute(select(Hospital.id)).scalar_one()
        uow.session.add(ScheduleException(hospital_id=hospital_id, day=FRIDAY, kind="closed"))
        uow.commit()
    jobs.generate_slots(app, days=28)
    left = slots_on(app, None, FRIDAY)
    # The cancelled booking still points at its slot, which may stay, but never bookable.
    assert all(s.capacity == s.booked == 0 for s in left)
    assert service.availability(app.services, department_id=slot.department_id, date_from=FRIDAY,
                                date_to=FRIDAY, now=now) == []


def test_changed_hours_narrow_the_day(app, demo, now):
    # The demo file itself narrows cardiology on 24 December to 08:00-10:00.
    christmas_eve = slots_on(app, "cardiology", date(2026, 12, 24))
    assert [s.starts_at.astimezone(TZ).time() for s in christmas_eve] == [
        time(8, 0), time(8, 30), time(9, 0), time(9, 30)]
    afternoon_booked = find_slot(app, "cardiology", MONDAY, 16, 0)
    book_people(app, afternoon_booked.id, 1, now)
    with app.services.uow() as uow:
        hospital_id = uow.session.execute(select(Hospital.id)).scalar_one()
        cardiology = uow.session.execute(
            select(Department.id).where(Department.code == "cardiology")).scalar_one()
        uow.session.add(ScheduleException(hospital_id=hospital_id, department_id=cardiology,
                                          day=MONDAY, kind="hours", start_time=time(9, 0),
                                          end_time=time(11, 0)))
        uow.commit()
    report = jobs.generate_slots(app, days=28)
    remaining = slots_on(app, "cardiology", MONDAY)
    times = [s.starts_at.astimezone(TZ).time() for s in remaining]
    assert times == [time(9, 0), time(9, 30), time(10, 0), time(10, 30), time(16, 0)]
    assert report.kept_with_bookings == [afternoon_booked.id]
    assert report.removed == 14 - 5
    assert len(slots_on(app, "general", MONDAY)) == 16


def test_schedule_dropped_from_the_file_keeps_booked_slots(app, demo, now, tmp_path):
    afternoon = find_slot(app, "cardiology", MONDAY, 14, 30)
    book_people(app, afternoon.id, 1, now)
    text = DEMO_FILE.read_text(encoding="utf-8")
    dropped = ('  [[departments.schedule]]\n  weekdays = ["mon", "wed", "fri"]\n  start = "14:00"\n'
               '  end = "17:00"\n  slot_minutes = 30\n  capacity = 2\n')
    assert dropped in text
    edited = tmp_path / "demo_edited.toml"
    edited.write_text(text.replace(dropped, ""), encoding="utf-8")
    report, generated = jobs.seed_file(app, edited)
    assert report.templates == 31 - 3
    assert generated.kept_with_bookings == [afternoon.id]
    monday = slots_on(app, "cardiology", MONDAY)
    assert [s.starts_at.astimezone(TZ).time() for s in monday if s.starts_at.astimezone(TZ).hour >= 14] == [
        time(14, 30)]
    assert find_slot(app, "cardiology", MONDAY, 14, 30).capacity == 1


def test_release_follows_the_department_policy(app, demo, now):
    heart = find_slot(app, "cardiology", MONDAY, 9)
    assert (heart.release_mode, heart.release_at) == ("first_come", local(MONDAY - timedelta(days=7), 15))
    who = person("Early Bird")
    bones = find_slot(app, "orthopedics", MONDAY, 9)
    refused = service.book_slot(app.services, identity_input=who, slot_id=bones.id, channel="sms",
                                now=bones.release_at - timedelta(minutes=1), booked_by=phone(70))
    assert refused == r.NotYetOpen(opens_at=bones.release_at)
    opened = service.book_slot(app.services, identity_input=who, slot_id=bones.id, channel="sms",
                               now=bones.release_at, booked_by=phone(70))
    assert isinstance(opened, r.Booked), opened


def test_the_scarce_clinic_releases_by_draw(app, demo, now):
    """Ophthalmology takes requests from 08:00 three days ahead until the draw at 20:00;
    nobody books it first come before the draw has run."""
    eyes = find_slot(app, "ophthalmology", MONDAY, 9)
    assert eyes.release_mode == "draw"
    assert eyes.requests_open_at == local(MONDAY - timedelta(days=3), 8)
    assert eyes.release_at == local(MONDAY - timedelta(days=3), 20)
    early = service.book_slot(app.services, identity_input=person("Early Bird"), slot_id=eyes.id, channel="sms",
                              now=local(MONDAY - timedelta(days=3), 20, 1), booked_by=phone(70))
    assert isinstance(early, r.NotYetOpen)


def test_release_is_the_same_for_every_slot_of_a_day(app, demo):
    for department, days_ahead, at in (("ophthalmology", 3, time(20)), ("general", 7, time(15))):
        for slot in slots_on(app, department, MONDAY):
            assert slot.release_at == datetime.combine(MONDAY - timedelta(days=days_ahead), at, tzinfo=TZ)


def test_regeneration_after_seeding_again_changes_nothing(app, demo):
    report, generated = jobs.seed_file(app, DEMO_FILE)
    assert (generated.created, generated.updated, generated.removed) == (0, 0, 0)
    assert report.templates == demo.templates == 31


def test_a_hospital_file_schedule_may_release_by_draw(app, tmp_path, now):
    hospital_file = tmp_path / "hospital.toml"
    text = DEMO_FILE.read_text(encoding="utf-8")
    marker = "[[departments.schedule]]"
    first = text.index(marker) + len(marker)
    hospital_file.write_text(text[:first] + '\nrelease_mode = "draw"\ndraw_time = "19:30"' + text[first:],
                             encoding="utf-8")
    jobs.seed_file(app, hospital_file)
    with app.services.uow.read_only() as uow:
        modes = uow.session.execute(select(ScheduleTemplate.release_mode, ScheduleTemplate.draw_time)
                                    .where(ScheduleTemplate.release_mode.is_not(None))).all()
    assert modes and all(mode == "draw" and at == time(19, 30) for mode, at in modes)
    bad = tmp_path / "bad.toml"
    bad.write_text(text[:first] + '\nrelease_mode = "fastest"' + text[first:], encoding="utf-8")
    with pytest.raises(SeedError, match="release_mode"):
        jobs.seed_file(app, bad)
