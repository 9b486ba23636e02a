"""Test support: valid identities, a small hospital, and slot factories.

Rule: builders only; no assertions live here.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from assistant.booking.identity import cn_resident_id_check_char
from assistant.booking.models import Department, Hospital, Slot
from assistant.booking.service import AddressInput, IdentityInput

TZ = ZoneInfo("Asia/Shanghai")
_serial = itertools.count(1)


def cn_id(birth: date = date(1950, 3, 7), region: str = "110105", sequence: int | None = None) -> str:
    """A valid 18-character resident ID number with the right check character."""
    seq = next(_serial) % 1000 if sequence is None else sequence
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + cn_resident_id_check_char(first17)


def person(name: str = "Wang Fang", birth: date = date(1950, 3, 7), **kw) -> IdentityInput:
    return IdentityInput(kind="cn_resident_id", number=cn_id(birth, **kw), name=name, birth_date=birth)


def phone(n: int = 0) -> AddressInput:
    return AddressInput("phone", f"+86 138 0013 {8000 + n:04d}")


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=TZ)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def add_hospital(session, *, code: str = "test", departments=("cardiology", "eyes", "bones"),
                 policy: dict | None = None) -> dict[str, int]:
    hospital = Hospital(code=code, names={"en": "Test Hospital"}, timezone="Asia/Shanghai",
                        desk_phone="+861065120000", desk_hours={"en": "Mon-Fri"},
                        policy_overrides=policy or {})
    session.add(hospital)
    session.flush()
    ids = {}
    for order, dept_code in enumerate(departments):
        dept = Department(hospital_id=hospital.id, code=dept_code,
                          names={"en": dept_code.title(), "zh_Hans": "科室", "es": dept_code},
                          keywords={}, policy_overrides={}, sort_order=order, active=True)
        session.add(dept)
        session.flush()
        ids[dept_code] = dept.id
    return ids


def add_slot(session, department_id: int, day: date, hh: int, mm: int = 0, *,
             capacity: int = 1, minutes: int = 30, release_at: datetime | None = None,
             requests_open_at: datetime | None = None) -> int:
    """A first-come slot; with `requests_open_at`, a slot released by draw, whose draw
    is at `release_at`."""
    starts = local(day, hh, mm)
    slot = Slot(department_id=department_id, starts_at=starts,
                ends_at=starts + timedelta(minutes=minutes), visit_date=day,
                capacity=capacity, booked=0,
                release_at=release_at or local(day - timedelta(days=7), 15),
                release_mode="draw" if requests_open_at is not None else "first_come",
                requests_open_at=requests_open_at)
    session.add(slot)
    session.flush()
    return slot.id


def new_slot(services, department_id: int, day: date, hh: int = 9, mm: int = 0, **kw) -> int:
    """add_slot in a unit of work of its own."""
    with services.uow() as uow:
        slot_id = add_slot(uow.session, department_id, day, hh, mm, **kw)
        uow.commit()
    return slot_id


def department_id(session, code: str) -> int:
    return session.execute(select(Department.id).where(Department.code == code)).scalar_one()
