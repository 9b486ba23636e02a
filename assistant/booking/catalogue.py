"""The hospital and its departments, cached per process and checked on every read.

Rule: while nothing changed, a read costs one small statement (the catalogue's version)
instead of loading every department again. Any flush that touches a hospital or a
department bumps `hospital.catalogue_version` in its own transaction (the listener
below), so an instance never serves a catalogue older than the last commit it can see,
whichever instance or command (`seed`, the admin) made the change.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from assistant.booking import results as r
from assistant.booking.models import Department, Hospital


@dataclass(frozen=True)
class HospitalView:
    code: str
    names: dict[str, str]
    timezone: str
    desk_phone: str | None
    desk_hours: dict[str, str] | None
    department_groups: tuple[tuple[str, dict[str, str]], ...] = ()  # (code, names), in order


@dataclass(frozen=True)
class Catalogue:
    version: tuple[int, ...]
    hospital: HospitalView | None
    departments: tuple[r.DepartmentView, ...]  # active ones, in menu order


# One cached catalogue per database (its unit-of-work factory), gone with it.
_cached: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def catalogue(uow_factory) -> Catalogue:
    with uow_factory.read_only() as uow:
        version = _version(uow.session)
        cached = _cached.get(uow_factory)
        if cached is not None and cached.version == version:
            return cached
        fresh = Catalogue(version, _load_hospital(uow.session), _load_departments(uow.session))
        _cached[uow_factory] = fresh
        return fresh


def _version(session: Session) -> tuple[int, ...]:
    # The sum moves with every bump; count and max(id) catch a hospital added or removed.
    row = session.execute(select(func.coalesce(func.sum(Hospital.catalogue_version), 0),
                                 func.count(Hospital.id), func.coalesce(func.max(Hospital.id), 0))).one()
    return tuple(int(value) for value in row)


def _load_hospital(session: Session) -> HospitalView | None:
    """The hospital this deployment serves (the first loaded one)."""
    found = session.execute(select(Hospital).order_by(Hospital.id).limit(1)).scalar_one_or_none()
    if found is None:
        return None
    return HospitalView(found.code, dict(found.names), found.timezone, found.desk_phone,
                        dict(found.desk_hours) if found.desk_hours else None,
                        tuple((g["code"], dict(g["names"])) for g in found.department_groups or ()))


def _load_departments(session: Session) -> tuple[r.DepartmentView, ...]:
    rows = session.execute(
        select(Department, Hospital.timezone)
        .join(Hospital)
        .where(Department.active.is_(True))
        .order_by(Department.sort_order, Department.id)
    ).all()
    return tuple(r.DepartmentView(d.id, d.code, dict(d.names), dict(d.keywords or {}), tz, d.group_code)
                 for d, tz in rows)


def _bump_version(session: Session, _flush_context) -> None:
    """After a flush that touched a hospital or a department: the version moves in the
    same transaction, so it commits (or rolls back) with the change."""
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, (Hospital, Department)) for obj in touched):
        table = Hospital.__table__
        session.connection().execute(update(table).values(catalogue_version=table.c.catalogue_version + 1))


# Every Session, whoever made it: a change from any path moves the version.
event.listen(Session, "after_flush", _bump_version)
