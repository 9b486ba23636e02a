"""The hospital and its departments, cached per process and checked on every read.

Rule: while nothing changed, a read costs one small statement (the catalogue's version),
once per transaction, instead of loading every department again. Any flush that touches a hospital or a
department bumps `hospital.catalogue_version` in its own transaction (the listener
below), so an instance never serves a catalogue older than the last commit it can see,
whichever instance or command (`seed`, the admin) made the change.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from sqlalchemy import Integer, event, select, text, update
from sqlalchemy.orm import Session

from assistant.booking import driver, results as r
from assistant.booking.database import transaction_cache
from assistant.booking.models import Department, Hospital


@dataclass(frozen=True)
class HospitalView:
    code: str
    names: dict[str, str]
    timezone: str
    desk_phone: str | None
    desk_hours: dict[str, str] | None
    department_groups: tuple[tuple[str, dict[str, str]], ...] = ()  # (code, names), in order
    policy_overrides: dict | None = None  # the hospital's own rules over the defaults


@dataclass(frozen=True)
class Catalogue:
    version: tuple[int, ...]
    hospital: HospitalView | None
    departments: tuple[r.DepartmentView, ...]  # active ones, in menu order
    # Per active department: its hospital's and its own policy overrides, and the zone.
    rules: dict[int, tuple[dict, dict, str]]


# One cached catalogue per database (its unit-of-work factory), gone with it.
_cached: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def catalogue(uow_factory) -> Catalogue:
    with uow_factory.read_only() as uow:
        checked = transaction_cache(uow.session)  # one version check per transaction
        cached = _cached.get(uow_factory)
        if cached is not None and checked.get("catalogue") == cached.version:
            return cached
        version = _version(uow.session)
        checked["catalogue"] = version
        if cached is not None and cached.version == version:
            return cached
        fresh = Catalogue(version, _load_hospital(uow.session), *_load_departments(uow.session))
        _cached[uow_factory] = fresh
        return fresh


# The sum moves with every bump; count and max(id) catch a hospital added or removed.
# Every turn runs it, so it goes straight to the driver (driver.py).
CATALOGUE_VERSION = text(
    "SELECT coalesce(sum(catalogue_version), 0) AS bumps, count(id) AS hospitals, "
    "coalesce(max(id), 0) AS last_id FROM hospital"
).columns(bumps=Integer, hospitals=Integer, last_id=Integer)


def _version(session: Session) -> tuple[int, ...]:
    row = driver.Cursor(session.connection()).run(CATALOGUE_VERSION).first()
    return tuple(int(value) for value in row)


def _load_hospital(session: Session) -> HospitalView | None:
    """The hospital this deployment serves (the first loaded one)."""
    found = session.execute(select(Hospital).order_by(Hospital.id).limit(1)).scalar_one_or_none()
    if found is None:
        return None
    return HospitalView(found.code, dict(found.names), found.timezone, found.desk_phone,
                        dict(found.desk_hours) if found.desk_hours else None,
                        tuple((g["code"], dict(g["names"])) for g in found.department_groups or ()),
                        dict(found.policy_overrides or {}))


def _load_departments(session: Session) -> tuple[tuple[r.DepartmentView, ...], dict[int, tuple[dict, dict, str]]]:
    rows = session.execute(
        select(Department, Hospital.timezone, Hospital.policy_overrides)
        .join(Hospital)
        .where(Department.active.is_(True))
        .order_by(Department.sort_order, Department.id)
    ).all()
    views = tuple(r.DepartmentView(d.id, d.code, dict(d.names), dict(d.keywords or {}), tz, d.group_code)
                  for d, tz, _ in rows)
    rules = {d.id: (dict(hospital_overrides or {}), dict(d.policy_overrides or {}), tz)
             for d, tz, hospital_overrides in rows}
    return views, rules


def _bump_version(session: Session, _flush_context) -> None:
    """After a flush that touched a hospital or a department: the version moves in the
    same transaction, so it commits (or rolls back) with the change."""
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, (Hospital, Department)) for obj in touched):
        table = Hospital.__table__
        session.connection().execute(update(table).values(catalogue_version=table.c.catalogue_version + 1))


# Every Session, whoever made it: a change from any path moves the version.
event.listen(Session, "after_flush", _bump_version)
