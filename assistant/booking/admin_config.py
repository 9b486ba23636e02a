"""Configuring the hospital from /admin: departments, weekly schedules, closures, slots
and booking rules.

Rule: one function per change, one transaction each, audited under the staff member's
name in that transaction. Everything is checked before anything is written; a mistake
raises `ConfigError` with a msgid the page shows kindly, and nothing is half-saved.
Closing a day cancels its bookings as the hospital (counted against nobody), frees and
closes their slots and queues a notice for each patient, in the closing's transaction,
and only if the bookings are still the ones staff were shown. Capacities set here are
audited as "slot.capacity_changed", so `reconcile` can rebuild them from the trail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assistant.booking import audit, outbox, release, schedule, waitlist
from assistant.booking.inputs import ServiceContext
from assistant.booking.models import (
    BOOKED,
    CANCELLED,
    Booking,
    Department,
    Doctor,
    Hospital,
    ScheduleException,
    ScheduleTemplate,
    Slot,
)
from assistant.booking.queries import StaffBookingRow, staff_bookings
from assistant.booking.records import lock_address_by_id, lock_patient
from assistant.config import RELEASE_MODES, Policy, SettingsError
from assistant.i18n import N_, ExplainedError

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEYWORD_SEPARATORS = re.compile(r"[,;\n，、；]")
MAX_NAME, MAX_KEYWORD, MAX_CAPACITY, MAX_SLOT_MINUTES = 100, 50, 500, 720
CLOSURE_REASON = "closure"  # Booking.cancel_reason of a booking cancelled by a closed day

# The booking rules (config/default.toml [policy]) and what each one means, in its order.
POLICY_MEANINGS = {
    "per_department_per_day": N_("Bookings one person may hold in one department on one visit day."),
    "per_visit_day": N_("Bookings one person may hold on one visit day."),
    "per_7_days": N_("Bookings one person may hold whose visit days fall within any 7 days."),
    "per_90_days": N_("Bookings one person may hold whose visit days fall within any 90 days."),
    "open_days_ahead": N_("Booking opens this many days before the visit day…"),
    "release_time": N_("…at this local time (HH:MM)."),
    "close_time": N_("Booking closes at this local time on the day before the visit."),
    "cancel_deadline_time": N_("Cancelling closes at this local time on the day before the visit."),
    "no_show_limit": N_("This many missed visits…"),
    "no_show_window_days": N_("…within this many days…"),
    "no_show_suspension_days": N_("…stop booking for this many days."),
    "cancel_limit": N_("This many cancellations…"),
    "cancel_window_days": N_("…within this many days…"),
    "cancel_suspension_days": N_("…stop booking for this many days."),
    "patients_per_address": N_("Patients one phone number or chat may book for."),
    "release_mode": N_('How places are released: "first_come" (on sale at the release time) or "draw" '
                       "(requests until the draw time, then a random order that anyone can check)."),
    "draw_time": N_("With a draw: the local time of the draw (HH:MM), on the day requests open, or "
                    "the next day if that time has passed by then."),
    "offer_minutes": N_("A place given back is offered to the next patient on the waitlist, who has "
                        "this many minutes to answer."),
    "reminder_time": N_("The reminder the day before the visit goes out at this local time (HH:MM)."),
    "refusals_per_hour": N_("A phone or chat refused this many times in one hour waits for the next "
                            "hour (0: never)."),
}


class ConfigError(ExplainedError):
    """A change that can't be made; `message` (a msgid) and `params` say why."""


class ClosureChanged(ConfigError):
    """The day's bookings are no longer the ones staff confirmed: show them again."""

    def __init__(self) -> None:
        super().__init__(N_("The bookings of that day changed while you were looking. "
                            "Please check the new list before closing the day."))


def _actor(staff: str) -> audit.Actor:
    return audit.Actor(f"staff:{staff}", "web")


def _record(ctx: ServiceContext, session: Session, staff: str, action: str, subject: str,
            details: dict[str, Any], now: datetime) -> None:
    audit.append(session, ctx.keyring.audit_key, actor=_actor(staff), action=action,
                 subject=subject, details=details, at=now)


# ---- the hospital and its departments ----------------------------------------------------


@dataclass(frozen=True)
class HospitalSetup:
    id: int
    code: str
    timezone: str
    groups: tuple[tuple[str, dict[str, str]], ...]  # (code, names), in order
    policy_overrides: dict[str, Any]


@dataclass(frozen=True)
class DepartmentRow:
    id: int
    code: str
    names: dict[str, str]
    keywords: dict[str, list[str]]
    sort_order: int
    active: bool
    group_code: str | None
    policy_overrides: dict[str, Any]


@dataclass(frozen=True)
class DepartmentForm:
    """A department as typed in; names and keywords per language code."""

    code: str
    names: dict[str, str]
    keywords: dict[str, list[str]]
    sort_order: int
    active: bool
    group_code: str | None


def _hospital(session: Session) -> Hospital:
    """The hospital this deployment serves (the first loaded one, as the catalogue)."""
    found = session.execute(select(Hospital).order_by(Hospital.id).limit(1)).scalar_one_or_none()
    if found is None:
        raise ConfigError(N_("No hospital is loaded yet. Load one with `assistant seed` first."))
    return found


def _setup(hospital: Hospital) -> HospitalSetup:
    return HospitalSetup(hospital.id, hospital.code, hospital.timezone,
                         tuple((g["code"], dict(g["names"])) for g in hospital.department_groups or ()),
                         dict(hospital.policy_overrides or {}))


def _department_row(d: Department) -> DepartmentRow:
    return DepartmentRow(d.id, d.code, dict(d.names), {k: list(v) for k, v in (d.keywords or {}).items()},
                         d.sort_order, d.active, d.group_code, dict(d.policy_overrides or {}))


def hospital_setup(ctx: ServiceContext) -> HospitalSetup:
    with ctx.uow.read_only() as uow:
        return _setup(_hospital(uow.session))


def local_today(ctx: ServiceContext, now: datetime) -> date:
    return now.astimezone(ZoneInfo(hospital_setup(ctx).timezone)).date()


def departments(ctx: ServiceContext) -> list[DepartmentRow]:
    """Every department, switched off ones too, in menu order."""
    with ctx.uow.read_only() as uow:
        rows = uow.session.execute(
            select(Department).order_by(Department.sort_order, Department.id)).scalars()
        return [_department_row(d) for d in rows]


def department(ctx: ServiceContext, department_id: int) -> DepartmentRow | None:
    with ctx.uow.read_only() as uow:
        found = uow.session.get(Department, department_id)
        return _department_row(found) if found is not None else None


def split_keywords(text: str) -> list[str]:
    """"heart, chest pain；心脏" -> ["heart", "chest pain", "心脏"]: commas (also the
    Chinese ones), semicolons and new lines separate; repeats are dropped."""
    words: list[str] = []
    for word in KEYWORD_SEPARATORS.split(text or ""):
        word = " ".join(word.split())
        if word and word.lower() not in {w.lower() for w in words}:
            words.append(word)
    return words


def save_department(ctx: ServiceContext, form: DepartmentForm, *, staff: str, now: datetime,
                    department_id: int | None = None) -> int:
    """Create a department (department_id None) or change one. The catalogue sees it at
    once: the flush moves its version (catalogue.py)."""
    code = (form.code or "").strip().lower()
    if not CODE.match(code):
        raise ConfigError(N_("A department code is 1 to 64 small letters, digits, dashes or "
                             'underscores, such as "cardiology".'))
    names = {locale: " ".join(name.split()) for locale, name in form.names.items() if name and name.strip()}
    if not names:
        raise ConfigError(N_("Please give the department a name in at least one language."))
    if any(len(name) > MAX_NAME for name in names.values()):
        raise ConfigError(N_("A name can have at most {n} characters."), n=MAX_NAME)
    keywords = {locale: words for locale, words in form.keywords.items() if words}
    if any(len(word) > MAX_KEYWORD for words in keywords.values() for word in words):
        raise ConfigError(N_("A keyword can have at most {n} characters."), n=MAX_KEYWORD)
    if not 0 <= form.sort_order <= 9999:
        raise ConfigError(N_("The order is a whole number from 0 to 9999."))
    with ctx.uow() as uow:
        session = uow.session
        hospital = _hospital(session)
        groups = {g["code"] for g in hospital.department_groups or ()}
        if form.group_code and form.group_code not in groups:
            raise ConfigError(N_("Please choose one of the hospital's areas."))
        others = session.execute(select(Department).where(
            Department.hospital_id == hospital.id,
            *([Department.id != department_id] if department_id is not None else []))).scalars().all()
        if any(other.code == code for other in others):
            raise ConfigError(N_("Another department already has the code {code}."), code=code)
        _refuse_shared_keywords(keywords, others)
        if department_id is None:
            dept = Department(hospital_id=hospital.id, policy_overrides={})
            session.add(dept)
            before: dict[str, Any] = {}
        else:
            dept = session.get(Department, department_id)
            if dept is None:
                raise ConfigError(N_("That department no longer exists."))
            before = _department_details(dept)
        dept.code, dept.names, dept.keywords = code, names, keywords
        dept.sort_order, dept.active, dept.group_code = form.sort_order, form.active, form.group_code or None
        try:
            session.flush()
        except IntegrityError:  # another admin took the code a moment ago
            raise ConfigError(N_("Another department already has the code {code}."), code=code) from None
        after = _department_details(dept)
        _record(ctx, session, staff, "department.created" if department_id is None else "department.updated",
                f"department:{dept.code}",
                {"id": dept.id, **({"before": before} if before else {}), "after": after}, now)
        uow.commit()
        return dept.id


def _refuse_shared_keywords(keywords: dict[str, list[str]], others: list[Department]) -> None:
    """One word must lead to one department (config/demo_hospital.toml)."""
    for locale, words in keywords.items():
        for other in others:
            theirs = {w.lower() for w in (other.keywords or {}).get(locale, [])}
            for word in words:
                if word.lower() in theirs:
                    raise ConfigError(N_('The keyword "{word}" already leads to the department {code}. '
                                         "A word may lead to one department only."),
                                      word=word, code=other.code)


def _department_details(dept: Department) -> dict[str, Any]:
    return {"code": dept.code, "names": dict(dept.names or {}), "keywords": dict(dept.keywords or {}),
            "order": dept.sort_order, "active": dept.active, "group": dept.group_code}


# ---- weekly schedules ------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateForm:
    weekday: int  # 0 = Monday
    start_time: time
    end_time: time
    slot_minutes: int
    capacity: int
    release_days_ahead: int | None  # None: the department's policy
    release_time: time | None
    doctor_id: int | None
    release_mode: str | None = None  # 'first_come' or 'draw'; None: the department's policy
    draw_time: time | None = None  # draw mode only; None: the department's policy


@dataclass(frozen=True)
class TemplateRow:
    id: int
    department_id: int
    form: TemplateForm
    active: bool
    doctor_names: dict[str, str] | None
    has_slots: bool


@dataclass(frozen=True)
class DoctorRow:
    id: int
    code: str
    names: dict[str, str]


def doctors(ctx: ServiceContext, department_id: int) -> list[DoctorRow]:
    with ctx.uow.read_only() as uow:
        rows = uow.session.execute(select(Doctor).where(
            Doctor.department_id == department_id, Doctor.active.is_(True)).order_by(Doctor.code)).scalars()
        return [DoctorRow(d.id, d.code, dict(d.names)) for d in rows]


def templates(ctx: ServiceContext, department_id: int) -> list[TemplateRow]:
    with ctx.uow.read_only() as uow:
        ids = uow.session.execute(select(ScheduleTemplate.id).where(
            ScheduleTemplate.department_id == department_id).order_by(
            ScheduleTemplate.weekday, ScheduleTemplate.start_time, ScheduleTemplate.id)).scalars().all()
        return [_template_row(uow.session, uow.session.get(ScheduleTemplate, i)) for i in ids]


def template(ctx: ServiceContext, template_id: int) -> TemplateRow | None:
    with ctx.uow.read_only() as uow:
        found = uow.session.get(ScheduleTemplate, template_id)
        return _template_row(uow.session, found) if found is not None else None


def _template_row(session: Session, t: ScheduleTemplate) -> TemplateRow:
    doctor = session.get(Doctor, t.doctor_id) if t.doctor_id is not None else None
    has_slots = session.execute(select(Slot.id).where(Slot.template_id == t.id).limit(1)).first() is not None
    return TemplateRow(t.id, t.department_id, _template_form(t), t.active,
                       dict(doctor.names) if doctor else None, has_slots)


def _template_form(t: ScheduleTemplate) -> TemplateForm:
    return TemplateForm(t.weekday, t.start_time, t.end_time, t.slot_minutes, t.capacity,
                        t.release_days_ahead, t.release_time, t.doctor_id, t.release_mode, t.draw_time)


def _template_details(form: TemplateForm) -> dict[str, Any]:
    return {"weekday": form.weekday, "start": form.start_time.isoformat("minutes"),
            "end": form.end_time.isoformat("minutes"), "slot_minutes": form.slot_minutes,
            "capacity": form.capacity, "release_days_ahead": form.release_days_ahead,
            "release_time": form.release_time.isoformat("minutes") if form.release_time else None,
            "doctor": form.doctor_id, "release_mode": form.release_mode,
            "draw_time": form.draw_time.isoformat("minutes") if form.draw_time else None}


def _check_template(form: TemplateForm) -> None:
    if not 0 <= form.weekday <= 6:
        raise ConfigError(N_("Please choose a day of the week."))
    if form.end_time <= form.start_time:
        raise ConfigError(N_("The end time must be later than the start time."))
    if not 1 <= form.slot_minutes <= MAX_SLOT_MINUTES:
        raise ConfigError(N_("A slot lasts from 1 to {n} minutes."), n=MAX_SLOT_MINUTES)
    start = datetime.combine(date(2000, 1, 3), form.start_time)
    if start + timedelta(minutes=form.slot_minutes) > datetime.combine(date(2000, 1, 3), form.end_time):
        raise ConfigError(N_("Not even one slot of {n} minutes fits between the start and the end time."),
                          n=form.slot_minutes)
    if not 1 <= form.capacity <= MAX_CAPACITY:
        raise ConfigError(N_("The patients per slot are a whole number from 1 to {n}."), n=MAX_CAPACITY)
    if form.release_days_ahead is not None and not 0 <= form.release_days_ahead <= 366:
        raise ConfigError(N_("The days ahead are a whole number from 0 to 366, "
                             "or empty for the booking rules."))
    if form.release_mode is not None and form.release_mode not in RELEASE_MODES:
        raise ConfigError(N_("Please choose how the places are released: first come, by draw, "
                             "or the department's rule."))
    if form.draw_time is not None and form.release_mode == "first_come":
        raise ConfigError(N_("A draw time applies only to places released by draw. Please leave it "
                             "empty, or choose a draw."))


def save_template(ctx: ServiceContext, form: TemplateForm, *, staff: str, now: datetime,
                  department_id: int | None = None, template_id: int | None = None) -> int:
    """Create a weekly schedule in `department_id`, or change `template_id`. The slots
    follow at the next slot generation, which keeps every booked place."""
    _check_template(form)
    with ctx.uow() as uow:
        session = uow.session
        if template_id is not None:
            found = session.get(ScheduleTemplate, template_id)
            if found is None:
                raise ConfigError(N_("That schedule no longer exists."))
            department_id, before = found.department_id, _template_details(_template_form(found))
        else:
            found, before = None, None
        dept = session.get(Department, department_id) if department_id is not None else None
        if dept is None:
            raise ConfigError(N_("That department no longer exists."))
        if form.doctor_id is not None:
            doctor = session.get(Doctor, form.doctor_id)
            if doctor is None or doctor.department_id != dept.id:
                raise ConfigError(N_("Please choose a doctor of this department."))
        # `assistant seed` finds a schedule by (department, doctor, weekday, start): keep it unique.
        twin = session.execute(select(ScheduleTemplate.id).where(
            ScheduleTemplate.department_id == dept.id, ScheduleTemplate.weekday == form.weekday,
            ScheduleTemplate.start_time == form.start_time,
            ScheduleTemplate.doctor_id == form.doctor_id if form.doctor_id is not None
            else ScheduleTemplate.doctor_id.is_(None),
            *([ScheduleTemplate.id != template_id] if template_id is not None else []))).first()
        if twin is not None:
            raise ConfigError(N_("This department already has a schedule starting then on that day "
                                 "(for the same doctor). Please change that one instead."))
        if found is None:
            found = ScheduleTemplate(department_id=dept.id, active=True)
            session.add(found)
        found.weekday, found.start_time, found.end_time = form.weekday, form.start_time, form.end_time
        found.slot_minutes, found.capacity = form.slot_minutes, form.capacity
        found.release_days_ahead, found.release_time = form.release_days_ahead, form.release_time
        found.release_mode, found.draw_time = form.release_mode, form.draw_time
        found.doctor_id = form.doctor_id
        session.flush()
        _record(ctx, session, staff, "schedule.created" if before is None else "schedule.updated",
                f"schedule:{found.id}", {"department": dept.code, **({"before": before} if before else {}),
                                         "after": _template_details(form)}, now)
        uow.commit()
        return found.id


def set_template_active(ctx: ServiceContext, template_id: int, active: bool, *, staff: str,
                        now: datetime) -> None:
    """Switch a schedule off (its free slots go at the next generation; booked ones stay) or on."""
    with ctx.uow() as uow:
        found = uow.session.get(ScheduleTemplate, template_id)
        if found is None:
            raise ConfigError(N_("That schedule no longer exists."))
        if found.active != active:
            found.active = active
            uow.session.flush()
            _record(ctx, uow.session, staff, "schedule.switched_on" if active else "schedule.switched_off",
                    f"schedule:{found.id}", {"department": found.department_id}, now)
        uow.commit()


def delete_template(ctx: ServiceContext, template_id: int, *, staff: str, now: datetime) -> None:
    """Only a schedule that never made a slot can go; one that did is switched off, so its
    slots and their bookings keep their history."""
    with ctx.uow() as uow:
        session = uow.session
        found = session.get(ScheduleTemplate, template_id)
        if found is None:
            raise ConfigError(N_("That schedule no longer exists."))
        if session.execute(select(Slot.id).where(Slot.template_id == template_id).limit(1)).first():
            raise ConfigError(N_("This schedule already has slots, so it can't be deleted. "
                                 "Switch it off instead: its free slots go at the next slot generation."))
        details = {"department": found.department_id, **_template_details(_template_form(found))}
        session.delete(found)
        session.flush()
        _record(ctx, session, staff, "schedule.deleted", f"schedule:{template_id}", details, now)
        uow.commit()


# ---- closures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExceptionRow:
    id: int
    day: date
    kind: str  # closed | hours
    department_code: str | None  # None: the whole hospital
    start_time: time | None
    end_time: time | None
    reason: str


@dataclass(frozen=True)
class ClosureReport:
    cancelled: tuple[str, ...]  # booking codes
    not_told: tuple[str, ...]  # of those, bookings whose patient has no address to tell


def exceptions(ctx: ServiceContext, *, since: date) -> list[ExceptionRow]:
    """Closures and changed hours from `since` on, soonest first."""
    with ctx.uow.read_only() as uow:
        rows = uow.session.execute(
            select(ScheduleException, Department.code)
            .outerjoin(Department, ScheduleException.department_id == Department.id)
            .where(ScheduleException.day >= since)
            .order_by(ScheduleException.day, ScheduleException.id)).all()
        return [ExceptionRow(e.id, e.day, e.kind, code, e.start_time, e.end_time, e.reason)
                for e, code in rows]


def _closed_departments(session: Session, hospital: Hospital, day: date,
                        department_id: int | None, now: datetime) -> list[Department]:
    """The departments a closure of `day` closes, after checking it can be made."""
    if day < now.astimezone(ZoneInfo(hospital.timezone)).date():
        raise ConfigError(N_("That day is already over. Please choose today or a later day."))
    closed = session.execute(select(ScheduleException.department_id).where(
        ScheduleException.hospital_id == hospital.id, ScheduleException.day == day,
        ScheduleException.kind == "closed")).scalars().all()
    if None in closed or (department_id is not None and department_id in closed):
        raise ConfigError(N_("{day} is already closed."), day=day.isoformat())
    query = select(Department).where(Department.hospital_id == hospital.id).order_by(Department.id)
    if department_id is not None:
        query = query.where(Department.id == department_id)
    found = list(session.execute(query).scalars())
    if department_id is not None and not found:
        raise ConfigError(N_("That department no longer exists."))
    return found


def closure_preview(ctx: ServiceContext, *, day: date, department_id: int | None,
                    now: datetime) -> list[StaffBookingRow]:
    """The bookings closing `day` would cancel, masked as staff see them."""
    with ctx.uow.read_only() as uow:
        closing = _closed_departments(uow.session, _hospital(uow.session), day, department_id, now)
        codes = {d.code for d in closing}
    return [row for row in staff_bookings(ctx, day=day)
            if row.status == BOOKED and row.department_code in codes]


def close_day(ctx: ServiceContext, *, day: date, department_id: int | None, reason: str,
              confirmed_codes: tuple[str, ...], staff: str, now: datetime) -> ClosureReport:
    """Close `day` (the whole hospital, or one department) and cancel its bookings, which
    must be exactly `confirmed_codes` (what staff were shown), else `ClosureChanged`."""
    reason = " ".join((reason or "").split())
    if len(reason) > 200:
        raise ConfigError(N_("The reason can have at most {n} characters."), n=200)
    with ctx.uow() as uow:
        session = uow.session
        hospital = _hospital(session)
        closing = _closed_departments(session, hospital, day, department_id, now)
        dept_ids = [d.id for d in closing]
        candidates = session.execute(
            select(Booking.id, Booking.code, Booking.patient_id, Booking.booked_by_address_id)
            .where(Booking.status == BOOKED, Booking.visit_date == day, Booking.department_id.in_(dept_ids))
            .order_by(Booking.patient_id, Booking.id)).all()
        if sorted(row.code for row in candidates) != sorted(confirmed_codes):
            raise ClosureChanged()
        # Locks in the service layer's order: owning addresses, then patients, then slots.
        for address_id in sorted({row.booked_by_address_id for row in candidates} - {None}):
            lock_address_by_id(session, address_id)
        for patient_id in sorted({row.patient_id for row in candidates}):
            lock_patient(session, patient_id)
        closure = ScheduleException(hospital_id=hospital.id, department_id=department_id, day=day,
                                    kind="closed", reason=reason)
        session.add(closure)
        cancelled, not_told = [], []
        for row in candidates:
            booking = session.get(Booking, row.id, populate_existing=True)  # re-read under the lock
            if booking.status != BOOKED:
                raise ClosureChanged()
            _cancel_for_closure(ctx, session, booking, staff, now)
            cancelled.append(booking.code)
            if not _tell_patient(ctx, session, booking, staff, now):
                not_told.append(booking.code)
        # Places held for the day's waitlist go with it, and its waitlist is told nothing
        # more: the day is closed.
        waitlist.close_day(session, dept_ids, day, now)
        release.cancel_draws(session, dept_ids, day, now)
        # Nobody books the closed day from now on: each slot keeps only the places still
        # held (checked in today), recorded so that the trail rebuilds it.
        closed_slots = session.execute(
            update(Slot).where(Slot.department_id.in_(dept_ids), Slot.visit_date == day,
                               Slot.capacity != Slot.booked)
            .values(capacity=Slot.booked).returning(Slot.id, Slot.capacity)).all()
        for slot_id, capacity in sorted(closed_slots):
            _record(ctx, session, staff, "slot.capacity_changed", f"slot:{slot_id}",
                    {"slot": slot_id, "capacity": capacity, "why": "closure"}, now)
        # A booking that slipped in before the slots closed was not shown: start again.
        if session.execute(select(func.count()).select_from(Booking).where(
                Booking.status == BOOKED, Booking.visit_date == day,
                Booking.department_id.in_(dept_ids))).scalar_one():
            raise ClosureChanged()
        session.flush()
        _record(ctx, session, staff, "closure.created", f"closure:{closure.id}",
                {"day": day.isoformat(), "department": closing[0].code if department_id is not None else None,
                 "reason": reason, "cancelled": cancelled}, now)
        uow.commit()
        return ClosureReport(tuple(cancelled), tuple(not_told))


def _cancel_for_closure(ctx: ServiceContext, session: Session, booking: Booking, staff: str,
                        now: datetime) -> None:
    """The hospital cancels: not the patient's doing, so it counts against nobody."""
    booking.status = CANCELLED
    booking.cancel_reason = CLOSURE_REASON
    booking.cancelled_at = booking.updated_at = now
    booking.counted_against = None
    session.execute(update(Slot).where(Slot.id == booking.slot_id, Slot.booked > 0)
                    .values(booked=Slot.booked - 1))
    session.flush()
    _record(ctx, session, staff, "booking.cancelled", f"booking:{booking.code}",
            {"patient": booking.patient_id, "by": CLOSURE_REASON, "counted_against": None}, now)


def _tell_patient(ctx: ServiceContext, session: Session, booking: Booking, staff: str,
                  now: datetime) -> bool:
    """The notice staff cancellations send ("The hospital cancelled your booking…"), in
    the patient's language; False when she has no address of her own to tell."""
    if not outbox.tell_patient(session, booking, outbox.CANCELLED_FOR_YOU, acting_address_id=None,
                               by_staff=True, now=now):
        return False
    _record(ctx, session, staff, "notice.queued", f"booking:{booking.code}",
            {"patient": booking.patient_id, "notice": outbox.CANCELLED_FOR_YOU}, now)
    return True


def reopen_day(ctx: ServiceContext, exception_id: int, *, staff: str, now: datetime) -> date:
    """Remove a closure or changed hours of today or later; that day's slots are made
    again at once by the generator. Cancelled bookings stay cancelled."""
    with ctx.uow() as uow:
        session = uow.session
        found = session.get(ScheduleException, exception_id)
        if found is None:
            raise ConfigError(N_("That closure no longer exists."))
        hospital = session.get(Hospital, found.hospital_id)
        if found.day < now.astimezone(ZoneInfo(hospital.timezone)).date():
            raise ConfigError(N_("That day is already over."))
        day, details = found.day, {"day": found.day.isoformat(), "kind": found.kind,
                                   "department": found.department_id, "reason": found.reason}
        session.delete(found)
        session.flush()
        _record(ctx, session, staff, "closure.removed", f"closure:{exception_id}", details, now)
        schedule.generate_slots(session, base_policy=ctx.settings.policy, start=day, days=1,
                                audit_key=ctx.keyring.audit_key, now=now)
        uow.commit()
        return day


# ---- slots --------------------------------------------------------------------------------


def generate_slots(ctx: ServiceContext, *, days: int, staff: str,
                   now: datetime) -> schedule.GenerationReport:
    """What `assistant slots generate --days N` does (jobs.generate_slots: from today in
    the configured zone), plus an event naming who asked, in the same transaction."""
    if not 1 <= days <= 366:
        raise ConfigError(N_("Please give a whole number of days from 1 to 366."))
    today = now.astimezone(ZoneInfo(ctx.settings.timezone)).date()
    with ctx.uow() as uow:
        report = schedule.generate_slots(uow.session, base_policy=ctx.settings.policy, start=today,
                                         days=days, audit_key=ctx.keyring.audit_key, now=now)
        _record(ctx, uow.session, staff, "slots.generation_requested",
                f"slots:{today.isoformat()}..{(today + timedelta(days=days - 1)).isoformat()}",
                {"days": days, "created": report.created, "updated": report.updated,
                 "removed": report.removed, "kept_with_bookings": report.kept_with_bookings}, now)
        uow.commit()
    return report


@dataclass(frozen=True)
class SlotCell:
    id: int
    booked: int
    capacity: int


@dataclass(frozen=True)
class Calendar:
    """Per local day and start time, the slots of one department: booked of capacity."""

    days: tuple[date, ...]
    closed: frozenset[date]
    times: tuple[str, ...]  # "HH:MM", local
    cells: dict[tuple[date, str], tuple[SlotCell, ...]]


def calendar(ctx: ServiceContext, *, department_id: int, start: date, days: int) -> Calendar:
    span = tuple(start + timedelta(days=n) for n in range(days))
    with ctx.uow.read_only() as uow:
        session = uow.session
        hospital = _hospital(session)
        tz = ZoneInfo(hospital.timezone)
        slots = session.execute(select(Slot).where(
            Slot.department_id == department_id, Slot.visit_date >= span[0], Slot.visit_date <= span[-1])
            .order_by(Slot.starts_at, Slot.id)).scalars().all()
        closed = frozenset(session.execute(select(ScheduleException.day).where(
            ScheduleException.hospital_id == hospital.id, ScheduleException.kind == "closed",
            ScheduleException.day >= span[0], ScheduleException.day <= span[-1],
            (ScheduleException.department_id.is_(None)) | (ScheduleException.department_id == department_id)
        )).scalars())
        cells: dict[tuple[date, str], list[SlotCell]] = {}
        for slot in slots:
            key = (slot.visit_date, slot.starts_at.astimezone(tz).strftime("%H:%M"))
            cells.setdefault(key, []).append(SlotCell(slot.id, slot.booked, slot.capacity))
    times = tuple(sorted({t for _, t in cells}))
    return Calendar(span, closed, times, {k: tuple(v) for k, v in cells.items()})


@dataclass(frozen=True)
class SlotRow:
    id: int
    department_id: int
    department_code: str
    starts_at: datetime  # local
    ends_at: datetime  # local
    capacity: int
    booked: int
    from_schedule: bool
    over: bool


def slot(ctx: ServiceContext, slot_id: int, *, now: datetime) -> SlotRow | None:
    with ctx.uow.read_only() as uow:
        session = uow.session
        found = session.get(Slot, slot_id)
        if found is None:
            return None
        dept = session.get(Department, found.department_id)
        tz = ZoneInfo(session.get(Hospital, dept.hospital_id).timezone)
        return SlotRow(found.id, dept.id, dept.code, found.starts_at.astimezone(tz),
                       found.ends_at.astimezone(tz), found.capacity, found.booked,
                       found.template_id is not None, found.ends_at <= now)


def set_slot_capacity(ctx: ServiceContext, slot_id: int, capacity: int, *, staff: str,
                      now: datetime) -> None:
    """Never below the places already booked: the same condition the database checks, in
    one statement, so a booking racing in can't be squeezed out."""
    if not 0 <= capacity <= MAX_CAPACITY:
        raise ConfigError(N_("The capacity is a whole number from 0 to {n}."), n=MAX_CAPACITY)
    with ctx.uow() as uow:
        session = uow.session
        found = session.get(Slot, slot_id)
        if found is None:
            raise ConfigError(N_("That slot no longer exists."))
        if found.ends_at <= now:
            raise ConfigError(N_("That slot is over, so it can't be changed."))
        was = found.capacity
        changed = session.execute(update(Slot).where(Slot.id == slot_id, Slot.booked + Slot.held <= capacity)
                                  .values(capacity=capacity, capacity_set_by_staff=True)
                                  .returning(Slot.booked)).first()
        if changed is None:
            booked = session.execute(select(Slot.booked).where(Slot.id == slot_id)).scalar_one()
            raise ConfigError(N_("Places already booked in this slot: {n}. Its capacity can't be "
                                 "less than that."), n=booked)
        _record(ctx, session, staff, "slot.capacity_changed", f"slot:{slot_id}",
                {"slot": slot_id, "capacity": capacity, "was": was}, now)
        session.refresh(found)
        if found.release_at <= now and (found.release_mode == "first_come" or found.drawn):
            # Places added to a slot on sale go to the waitlist first, like freed ones.
            for _ in range(capacity - was):
                waitlist.free_place(ctx, session, slot_id, "capacity", now, was_booked=False)
        uow.commit()


# ---- booking rules ------------------------------------------------------------------------


POLICY_FIELDS = tuple(f.name for f in fields(Policy))


@dataclass(frozen=True)
class PolicyView:
    """The rules as they apply: the defaults, the hospital's overrides, and for a
    department page the department's own, with the result."""

    defaults: Policy
    hospital_overrides: dict[str, Any]
    department_overrides: dict[str, Any] | None
    effective: Policy
    inherited: Policy  # what applies without the overrides being edited


def policy_view(ctx: ServiceContext, department_id: int | None = None) -> PolicyView | None:
    with ctx.uow.read_only() as uow:
        hospital = _hospital(uow.session)
        base = ctx.settings.policy
        hospital_overrides = dict(hospital.policy_overrides or {})
        at_hospital = base.overridden(hospital_overrides)
        if department_id is None:
            return PolicyView(base, hospital_overrides, None, at_hospital, base)
        dept = uow.session.get(Department, department_id)
        if dept is None:
            return None
        own = dict(dept.policy_overrides or {})
        return PolicyView(base, hospital_overrides, own, at_hospital.overridden(own), at_hospital)


def shown(value: Any) -> str:
    """A rule's value as the form shows it: 15:00, 7."""
    return value.isoformat("minutes") if isinstance(value, time) else str(value)


def parse_overrides(ctx: ServiceContext, typed: dict[str, str]) -> dict[str, Any]:
    """The overrides a form gives (an empty box: no override), checked one by one through
    `Policy.overridden`, as JSON values: whole numbers, and times as "HH:MM"."""
    overrides: dict[str, Any] = {}
    for name in POLICY_FIELDS:
        text = (typed.get(name) or "").strip()
        if not text:
            continue
        if name.endswith("_time") and re.fullmatch(r"\d:\d\d(:\d\d)?", text):
            text = "0" + text  # 8:30, as people write it
        value: Any = int(text) if re.fullmatch(r"[+-]?\d{1,9}", text) else text
        try:
            checked = getattr(ctx.settings.policy.overridden({name: value}), name)
        except SettingsError:
            if name == "release_mode":
                raise ConfigError(N_('{rule} must be "first_come" or "draw".'), rule=name) from None
            if name.endswith("_time"):
                raise ConfigError(N_("{rule} must be a time such as 15:00."), rule=name) from None
            raise ConfigError(N_("{rule} must be a whole number, 0 or more."), rule=name) from None
        overrides[name] = shown(checked) if isinstance(checked, time) else checked
    ctx.settings.policy.overridden(overrides)  # the whole set, as every booking will read it
    return overrides


def save_policy(ctx: ServiceContext, typed: dict[str, str], *, staff: str, now: datetime,
                department_id: int | None = None) -> dict[str, Any]:
    """Replace the hospital's (department_id None) or a department's overrides."""
    overrides = parse_overrides(ctx, typed)
    with ctx.uow() as uow:
        session = uow.session
        hospital = _hospital(session)
        owner: Hospital | Department = hospital
        if department_id is not None:
            owner = session.get(Department, department_id)
            if owner is None:
                raise ConfigError(N_("That department no longer exists."))
        before = dict(owner.policy_overrides or {})
        if before != overrides:
            owner.policy_overrides = overrides
            session.flush()
            subject = f"department:{owner.code}" if department_id is not None else f"hospital:{hospital.code}"
            _record(ctx, session, staff, "policy.changed", subject,
                    {"before": before, "after": overrides}, now)
        uow.commit()
        return overrides
