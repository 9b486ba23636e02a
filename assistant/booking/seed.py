"""Hospital files: loading a hospital, its departments and schedules from TOML.

Rule: a hospital file describes one hospital completely (see config/demo_hospital.toml
for the format, documented in its comments). Loading it is an upsert by code, so it is
safe to repeat; everything is checked before anything is written, and a mistake is
reported as a `SeedError` naming the place in the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.booking import audit
from assistant.booking.models import (
    Department,
    Doctor,
    Hospital,
    ScheduleException,
    ScheduleTemplate,
)
from assistant.config import RELEASE_MODES, Policy, SettingsError

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


class SeedError(ValueError):
    """The hospital file is wrong; the message says where."""


@dataclass(frozen=True)
class SeedReport:
    hospital_code: str
    departments: int
    templates: int
    exceptions: int
    generate_days: int


def read_hospital_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise SeedError(f"hospital file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SeedError(f"{path} is not valid TOML: {exc}") from exc


def seed_hospital(session: Session, data: dict[str, Any], *, base_policy: Policy,
                  audit_key: bytes, now) -> SeedReport:
    hospital_data = _table(_required(data, "hospital", "the file"), "[hospital]")
    code = _text(hospital_data, "code", "[hospital]")
    tz_name = _text(hospital_data, "timezone", "[hospital]")
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SeedError(f"[hospital] timezone {tz_name!r} is not an IANA time zone") from exc
    hospital_policy = hospital_data.get("policy", {})
    _check_policy(base_policy, hospital_policy, "[hospital.policy]")

    hospital = session.execute(select(Hospital).where(Hospital.code == code)).scalar_one_or_none()
    if hospital is None:
        hospital = Hospital(code=code)
        session.add(hospital)
    hospital.names = _names(hospital_data, "[hospital]")
    hospital.timezone = tz_name
    hospital.desk_phone = hospital_data.get("desk_phone")
    hospital.desk_hours = hospital_data.get("desk_hours")
    hospital.policy_overrides = dict(hospital_policy)
    groups = _groups(data)
    hospital.department_groups = groups
    session.flush()

    departments = {}
    templates_seen: set[int] = set()
    for index, dept_data in enumerate(_tables(data.get("departments", []), "[[departments]]")):
        where = f"[[departments]] #{index + 1}"
        dept = _upsert_department(session, hospital, dept_data, where, base_policy)
        dept.group_code = dept_data.get("group")
        if groups and dept.group_code not in {g["code"] for g in groups}:
            raise SeedError(f"{where}: group must be one of the [[groups]] codes")
        departments[dept.code] = dept
        doctors = _upsert_doctors(session, dept, _tables(dept_data.get("doctors", []), f"{where} doctors"), where)
        for s_index, schedule in enumerate(_tables(dept_data.get("schedule", []), f"{where} schedule")):
            templates_seen |= _upsert_templates(
                session, dept, doctors, schedule, f"{where} schedule #{s_index + 1}")
    if not departments:
        raise SeedError("the file has no [[departments]]")
    # Schedules no longer in the file are switched off rather than deleted: their slots
    # may hold bookings.
    for template in session.execute(
        select(ScheduleTemplate).join(Department).where(Department.hospital_id == hospital.id)
    ).scalars():
        template.active = template.id in templates_seen
    exceptions = _upsert_exceptions(session, hospital, departments, data)
    generate_days = _table(data.get("slots", {}), "[slots]").get("generate_days", 28)
    if isinstance(generate_days, bool) or not isinstance(generate_days, int) or not 0 <= generate_days <= 366:
        raise SeedError("[slots]: generate_days must be a whole number from 0 to 366")
    session.flush()
    audit.append(session, audit_key, actor=audit.SYSTEM, action="hospital.seeded",
                 subject=f"hospital:{code}",
                 details={"departments": sorted(departments), "templates": len(templates_seen),
                          "exceptions": exceptions}, at=now)
    return SeedReport(code, len(departments), len(templates_seen), exceptions, generate_days)


def _groups(data: dict) -> list[dict[str, Any]]:
    """[[groups]]: the areas a large hospital's department menu starts with."""
    groups = []
    for index, item in enumerate(_tables(data.get("groups", []), "[[groups]]")):
        where = f"[[groups]] #{index + 1}"
        groups.append({"code": _text(item, "code", where), "names": _names(item, where),
                       "order": int(item.get("order", index))})
    if len({g["code"] for g in groups}) != len(groups):
        raise SeedError("[[groups]]: each group needs its own code")
    return sorted(groups, key=lambda g: g["order"])


def _upsert_department(session: Session, hospital: Hospital, data: dict, where: str,
                       base_policy: Policy) -> Department:
    code = _text(data, "code", where)
    overrides = data.get("policy", {})
    _check_policy(base_policy, overrides, f"{where} policy")
    dept = session.execute(
        select(Department).where(Department.hospital_id == hospital.id, Department.code == code)
    ).scalar_one_or_none()
    if dept is None:
        dept = Department(hospital_id=hospital.id, code=code)
        session.add(dept)
    dept.names = _names(data, where)
    keywords = data.get("keywords", {})
    if not isinstance(keywords, dict) or not all(isinstance(v, list) for v in keywords.values()):
        raise SeedError(f"{where}: keywords must map a language to a list of words")
    dept.keywords = keywords
    dept.policy_overrides = dict(overrides)
    dept.sort_order = int(data.get("order", 0))
    dept.active = bool(data.get("active", True))
    session.flush()
    return dept


def _upsert_doctors(session: Session, dept: Department, items: list, where: str) -> dict[str, Doctor]:
    doctors = {}
    for index, data in enumerate(items):
        code = _text(data, "code", f"{where} doctor #{index + 1}")
        doctor = session.execute(
            select(Doctor).where(Doctor.department_id == dept.id, Doctor.code == code)
        ).scalar_one_or_none()
        if doctor is None:
            doctor = Doctor(department_id=dept.id, code=code)
            session.add(doctor)
        doctor.names = _names(data, f"{where} doctor {code}")
        session.flush()
        doctors[code] = doctor
    return doctors


def _upsert_templates(session: Session, dept: Department, doctors: dict[str, Doctor],
                      data: dict, where: str) -> set[int]:
    weekdays = data.get("weekdays")
    if not weekdays or any(str(w).lower()[:3] not in WEEKDAYS for w in weekdays):
        raise SeedError(f"{where}: weekdays must list days such as \"mon\", \"tue\"")
    start, end = _clock(data, "start", where), _clock(data, "end", where)
    if end <= start:
        raise SeedError(f"{where}: end must be after start")
    slot_minutes = _positive(data, "slot_minutes", where)
    capacity = _positive(data, "capacity", where)
    doctor = None
    if data.get("doctor"):
        doctor = doctors.get(data["doctor"])
        if doctor is None:
            raise SeedError(f"{where}: doctor {data['doctor']!r} is not listed in this department")
    release_days = data.get("release_days_ahead")
    release_time = _clock(data, "release_time", where) if data.get("release_time") else None
    # A schedule may release by draw while its department releases first come (or back).
    release_mode = data.get("release_mode")
    if release_mode is not None and release_mode not in RELEASE_MODES:
        raise SeedError(f"{where}: release_mode must be one of {', '.join(RELEASE_MODES)}")
    draw_time = _clock(data, "draw_time", where) if data.get("draw_time") else None
    ids = set()
    for weekday_name in weekdays:
        weekday = WEEKDAYS[str(weekday_name).lower()[:3]]
        template = session.execute(
            select(ScheduleTemplate).where(
                ScheduleTemplate.department_id == dept.id,
                ScheduleTemplate.doctor_id == (doctor.id if doctor else None)
                if doctor else ScheduleTemplate.doctor_id.is_(None),
                ScheduleTemplate.weekday == weekday,
                ScheduleTemplate.start_time == start,
            )
        ).scalar_one_or_none()
        if template is None:
            template = ScheduleTemplate(department_id=dept.id, doctor_id=doctor.id if doctor else None,
                                        weekday=weekday, start_time=start)
            session.add(template)
        template.end_time = end
        template.slot_minutes = slot_minutes
        template.capacity = capacity
        template.release_days_ahead = int(release_days) if release_days is not None else None
        template.release_time = release_time
        template.release_mode = release_mode
        template.draw_time = draw_time
        template.active = True
        session.flush()
        ids.add(template.id)
    return ids


def _upsert_exceptions(session: Session, hospital: Hospital, departments: dict[str, Department],
                       data: dict) -> int:
    count = 0
    for kind, key in (("closed", "closures"), ("hours", "changed_hours")):
        for index, item in enumerate(_tables(data.get(key, []), f"[[{key}]]")):
            where = f"[[{key}]] #{index + 1}"
            day = item.get("date")
            if isinstance(day, str):
                try:
                    day = date.fromisoformat(day)
                except ValueError as exc:
                    raise SeedError(f"{where}: date must be YYYY-MM-DD") from exc
            if not isinstance(day, date):
                raise SeedError(f"{where}: date must be YYYY-MM-DD")
            dept = None
            if item.get("department"):
                dept = departments.get(item["department"])
                if dept is None:
                    raise SeedError(f"{where}: unknown department {item['department']!r}")
            start = _clock(item, "start", where) if kind == "hours" else None
            end = _clock(item, "end", where) if kind == "hours" else None
            if kind == "hours" and end <= start:
                raise SeedError(f"{where}: end must be after start")
            existing = session.execute(
                select(ScheduleException).where(
                    ScheduleException.hospital_id == hospital.id,
                    ScheduleException.department_id == (dept.id if dept else None)
                    if dept else ScheduleException.department_id.is_(None),
                    ScheduleException.day == day,
                    ScheduleException.kind == kind,
                )
            ).scalar_one_or_none()
            if existing is None:
                existing = ScheduleException(hospital_id=hospital.id,
                                             department_id=dept.id if dept else None,
                                             day=day, kind=kind)
                session.add(existing)
            existing.start_time, existing.end_time = start, end
            existing.reason = str(item.get("reason", ""))[:200]
            count += 1
    return count


def _table(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise SeedError(f"{where} must be a table, like [hospital] or {{ key = value }}")
    return value


def _tables(value: Any, where: str) -> list[dict]:
    if not isinstance(value, list):
        raise SeedError(f"{where} must be a list of tables, like [[departments]]")
    return [_table(item, f"{where} #{index + 1}") for index, item in enumerate(value)]


def _required(data: dict, key: str, where: str) -> Any:
    if key not in data:
        raise SeedError(f"{where} needs {key!r}")
    return data[key]


def _text(data: dict, key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SeedError(f"{where}: {key} must be a non-empty text")
    return value.strip()


def _names(data: dict, where: str) -> dict[str, str]:
    names = data.get("names")
    if not isinstance(names, dict) or not names or not all(
        isinstance(v, str) and v.strip() for v in names.values()
    ):
        raise SeedError(f"{where}: names must map languages to names, e.g. {{ en = \"Cardiology\" }}")
    return {k: v.strip() for k, v in names.items()}


def _clock(data: dict, key: str, where: str) -> time:
    value = data.get(key)
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError as exc:
        raise SeedError(f"{where}: {key} must be HH:MM, got {value!r}") from exc


def _positive(data: dict, key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SeedError(f"{where}: {key} must be a whole number above 0")
    return value


def _check_policy(base: Policy, overrides: Any, where: str) -> None:
    if not isinstance(overrides, dict):
        raise SeedError(f"{where} must be a table")
    try:
        base.overridden(overrides)
    except SettingsError as exc:
        raise SeedError(f"{where}: {exc}") from exc
