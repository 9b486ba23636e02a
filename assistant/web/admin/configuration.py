"""/admin: configuring the hospital (admins only): departments and their weekly
schedules, closed days, slots and their capacities, and the booking rules.

Rule: every view is `security.requires("admin")` and changes things only through
booking/admin_config.py, which checks each change and audits it under the admin's name.
Text from a form is turned into dates, times and numbers here; anything that doesn't
read comes back as a kind message with the form as it was typed, never an error page.
A day with bookings is closed only after the admin has seen whom it affects.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta

from flask import flash, redirect, render_template, request, url_for

from assistant.booking import admin_config as config
from assistant.booking.admin_config import ConfigError
from assistant.i18n import N_
from assistant.web import security
from assistant.web.admin import MENU, admin, careline, staff_name
from assistant.web.ui import gettext as _, ui_locale

MENU.append(("admin.departments", N_("Departments"), "admin"))
MENU.append(("admin.closures", N_("Closed days"), "admin"))
MENU.append(("admin.slots", N_("Slots"), "admin"))
MENU.append(("admin.policy", N_("Booking rules"), "admin"))

# How a schedule's places are released (ScheduleTemplate.release_mode); "" follows the
# department's booking rules.
RELEASE_MODES = {"first_come": N_("First come"), "draw": N_("Draw")}
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"),
            N_("Saturday"), N_("Sunday"))
CALENDAR_SPANS = (7, 14)
REFUSED = 422  # a form sent back to be corrected
WHAT_CLOSES = N_("Please choose what closes: the whole hospital or one department.")
_CLOCK = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ---- reading forms ---------------------------------------------------------------------


def _whole(name: str, label: str, low: int, high: int, *, optional: bool = False) -> int | None:
    text = request.form.get(name, "").strip()
    if optional and not text:
        return None
    value = int(text) if re.fullmatch(r"[+-]?\d{1,9}", text) else None
    if value is None or not low <= value <= high:
        raise ConfigError(N_('"{field}" needs a whole number from {low} to {high}.'),
                          field=_(label), low=low, high=high)
    return value


def _clock(name: str, label: str, *, optional: bool = False) -> time | None:
    text = request.form.get(name, "").strip()
    if optional and not text:
        return None
    try:
        if _CLOCK.match(text):
            return time.fromisoformat(text.zfill(5) if len(text) == 4 else text)
    except ValueError:
        pass
    raise ConfigError(N_('"{field}" needs a time such as 08:30.'), field=_(label))


def _day(text: str | None) -> date:
    text = (text or "").strip()
    try:
        if _DAY.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ConfigError(N_("Please give a date such as 2026-12-24."))


def _some_id(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


def _chosen(name: str, message: str) -> int | None:
    """An optional choice from a list (empty: none); anything else is refused, never
    taken for "none": an unreadable department must not close the whole hospital."""
    text = request.form.get(name, "").strip()
    if not text:
        return None
    chosen = _some_id(text)
    if chosen is None:
        raise ConfigError(message)
    return chosen


def _refused(exc: ConfigError) -> None:
    flash(_(exc.message, **exc.params), "error")


@admin.errorhandler(ConfigError)
def _unexpected_refusal(exc: ConfigError):
    """A refusal no view waits for (no hospital loaded yet): said kindly on the home page."""
    _refused(exc)
    return redirect(url_for("admin.home"))


def _page(template: str, status: int = 200, **context):
    return render_template(template, name_of=name_of, weekdays=WEEKDAYS, release_modes=RELEASE_MODES,
                           **context), status


def name_of(names: dict[str, str] | None) -> str:
    """A name in the page's language, else English, else the first one given."""
    names = names or {}
    return names.get(ui_locale()) or names.get("en") or next(iter(names.values()), "")


def _ctx():
    return careline().services


def _now():
    return careline().clock()


def _gone(message: str, endpoint: str = "admin.departments", **values):
    flash(_(message), "error")
    return redirect(url_for(endpoint, **values))


# ---- departments -----------------------------------------------------------------------


@admin.get("/departments")
@security.requires("admin")
def departments():
    setup = config.hospital_setup(_ctx())
    return _page("admin/config_departments.html", departments=config.departments(_ctx()),
                 groups=dict(setup.groups))


@admin.route("/departments/new", methods=["GET", "POST"])
@security.requires("admin")
def department_new():
    if request.method == "GET":
        return _department_page(None, {"active": "1", "sort_order": "0"})
    try:
        new_id = config.save_department(_ctx(), _department_form(None), staff=staff_name(), now=_now())
    except ConfigError as exc:
        _refused(exc)
        return _department_page(None, request.form, REFUSED)
    flash(_("The department is saved."))
    return redirect(url_for("admin.department_edit", department_id=new_id))


@admin.route("/departments/<int:department_id>", methods=["GET", "POST"])
@security.requires("admin")
def department_edit(department_id: int):
    found = config.department(_ctx(), department_id)
    if found is None:
        return _gone(N_("That department no longer exists."))
    if request.method == "GET":
        return _department_page(found, _department_values(found))
    try:
        config.save_department(_ctx(), _department_form(found), staff=staff_name(), now=_now(),
                               department_id=department_id)
    except ConfigError as exc:
        _refused(exc)
        return _department_page(found, request.form, REFUSED)
    flash(_("The department is saved."))
    return redirect(url_for("admin.department_edit", department_id=department_id))


def _department_page(found: config.DepartmentRow | None, values, status: int = 200):
    ctx = _ctx()
    return _page("admin/config_department.html", status, department=found, form=values,
                 groups=config.hospital_setup(ctx).groups,
                 schedules=config.templates(ctx, found.id) if found else [],
                 policy=config.policy_view(ctx, found.id).effective if found else None)


def _department_values(found: config.DepartmentRow) -> dict[str, str]:
    values = {"code": found.code, "sort_order": str(found.sort_order),
              "active": "1" if found.active else "", "group": found.group_code or ""}
    for locale in careline().settings.locales:
        values[f"name_{locale}"] = found.names.get(locale, "")
        values[f"keywords_{locale}"] = ", ".join(found.keywords.get(locale, []))
    return values


def _department_form(found: config.DepartmentRow | None) -> config.DepartmentForm:
    locales = careline().settings.locales
    # Names and keywords in languages this site doesn't offer are kept as they were.
    names = {k: v for k, v in (found.names if found else {}).items() if k not in locales}
    keywords = {k: v for k, v in (found.keywords if found else {}).items() if k not in locales}
    for locale in locales:
        names[locale] = request.form.get(f"name_{locale}", "")
        keywords[locale] = config.split_keywords(request.form.get(f"keywords_{locale}", ""))
    return config.DepartmentForm(
        code=request.form.get("code", ""), names=names, keywords=keywords,
        sort_order=_whole("sort_order", N_("Order in the menu"), 0, 9999),
        active=request.form.get("active") == "1", group_code=request.form.get("group") or None)


# ---- weekly schedules ------------------------------------------------------------------


@admin.route("/departments/<int:department_id>/schedules/new", methods=["GET", "POST"])
@security.requires("admin")
def template_new(department_id: int):
    found = config.department(_ctx(), department_id)
    if found is None:
        return _gone(N_("That department no longer exists."))
    if request.method == "GET":
        return _template_page(found, None, {"slot_minutes": "30", "capacity": "1"})
    try:
        config.save_template(_ctx(), _template_form(), staff=staff_name(), now=_now(),
                             department_id=department_id)
    except ConfigError as exc:
        _refused(exc)
        return _template_page(found, None, request.form, REFUSED)
    flash(_("The weekly schedule is saved. Generate slots to make it bookable."))
    return redirect(url_for("admin.department_edit", department_id=department_id))


@admin.route("/schedules/<int:template_id>", methods=["GET", "POST"])
@security.requires("admin")
def template_edit(template_id: int):
    ctx = _ctx()
    found = config.template(ctx, template_id)
    if found is None:
        return _gone(N_("That schedule no longer exists."))
    department = config.department(ctx, found.department_id)
    if request.method == "GET":
        return _template_page(department, found, _template_values(found.form))
    try:
        config.save_template(ctx, _template_form(), staff=staff_name(), now=_now(), template_id=template_id)
    except ConfigError as exc:
        _refused(exc)
        return _template_page(department, found, request.form, REFUSED)
    flash(_("The weekly schedule is saved. Generate slots to bring its slots up to date."))
    return redirect(url_for("admin.department_edit", department_id=found.department_id))


@admin.post("/schedules/<int:template_id>/active")
@security.requires("admin")
def template_active(template_id: int):
    found = config.template(_ctx(), template_id)
    if found is None:
        return _gone(N_("That schedule no longer exists."))
    active = request.form.get("active") == "1"
    config.set_template_active(_ctx(), template_id, active, staff=staff_name(), now=_now())
    flash(_("The schedule is switched on. Generate slots to make it bookable.") if active else
          _("The schedule is switched off. Its free slots go at the next slot generation; booked ones stay."))
    return redirect(url_for("admin.department_edit", department_id=found.department_id))


@admin.post("/schedules/<int:template_id>/delete")
@security.requires("admin")
def template_delete(template_id: int):
    found = config.template(_ctx(), template_id)
    if found is None:
        return _gone(N_("That schedule no longer exists."))
    try:
        config.delete_template(_ctx(), template_id, staff=staff_name(), now=_now())
        flash(_("The schedule is deleted."))
    except ConfigError as exc:
        _refused(exc)
    return redirect(url_for("admin.department_edit", department_id=found.department_id))


def _template_page(department: config.DepartmentRow, found: config.TemplateRow | None, values,
                   status: int = 200):
    ctx = _ctx()
    return _page("admin/config_template.html", status, department=department, schedule=found,
                 form=values, doctors=config.doctors(ctx, department.id),
                 policy=config.policy_view(ctx, department.id).effective)


def _template_values(form: config.TemplateForm) -> dict[str, str]:
    return {"weekday": str(form.weekday), "start": form.start_time.strftime("%H:%M"),
            "end": form.end_time.strftime("%H:%M"), "slot_minutes": str(form.slot_minutes),
            "capacity": str(form.capacity),
            "release_days_ahead": "" if form.release_days_ahead is None else str(form.release_days_ahead),
            "release_time": form.release_time.strftime("%H:%M") if form.release_time else "",
            "doctor": "" if form.doctor_id is None else str(form.doctor_id),
            "release_mode": form.release_mode or "",
            "draw_time": form.draw_time.strftime("%H:%M") if form.draw_time else ""}


def _template_form() -> config.TemplateForm:
    return config.TemplateForm(
        weekday=_whole("weekday", N_("Day of the week"), 0, 6),
        start_time=_clock("start", N_("Start")), end_time=_clock("end", N_("End")),
        slot_minutes=_whole("slot_minutes", N_("Minutes per slot"), 1, config.MAX_SLOT_MINUTES),
        capacity=_whole("capacity", N_("Patients per slot"), 1, config.MAX_CAPACITY),
        release_days_ahead=_whole("release_days_ahead", N_("Released how many days ahead"), 0, 366,
                                  optional=True),
        release_time=_clock("release_time", N_("Released at"), optional=True),
        doctor_id=_chosen("doctor", N_("Please choose a doctor of this department.")),
        # Empty: the department's rule; anything else is checked by save_template.
        release_mode=request.form.get("release_mode", "").strip() or None,
        draw_time=_clock("draw_time", N_("Draw time"), optional=True))


# ---- closed days -------------------------------------------------------------------------


@admin.get("/closures")
@security.requires("admin")
def closures():
    return _closures_page({})


@admin.post("/closures/check")
@security.requires("admin")
def closure_check():
    """First step: a day without bookings closes at once; one with bookings shows them."""
    try:
        day, department_id = _day(request.form.get("day")), _chosen("department", WHAT_CLOSES)
        affected = config.closure_preview(_ctx(), day=day, department_id=department_id, now=_now())
        if affected:
            return _confirm_page(day, department_id, affected)
        return _close(day, department_id, ())
    except ConfigError as exc:
        _refused(exc)
        return _closures_page(request.form, REFUSED)


@admin.post("/closures/confirm")
@security.requires("admin")
def closure_confirm():
    codes = tuple(code for code in request.form.get("codes", "").split(",") if code)
    try:
        day, department_id = _day(request.form.get("day")), _chosen("department", WHAT_CLOSES)
        try:
            return _close(day, department_id, codes)
        except config.ClosureChanged as exc:
            _refused(exc)
            fresh = config.closure_preview(_ctx(), day=day, department_id=department_id, now=_now())
            return _confirm_page(day, department_id, fresh)
    except ConfigError as exc:
        _refused(exc)
        return _closures_page(request.form, REFUSED)


@admin.post("/closures/<int:exception_id>/remove")
@security.requires("admin")
def closure_remove(exception_id: int):
    try:
        day = config.reopen_day(_ctx(), exception_id, staff=staff_name(), now=_now())
        flash(_("{day} is open again and its slots are back. Cancelled bookings stay cancelled.",
                day=day.isoformat()))
    except ConfigError as exc:
        _refused(exc)
    return redirect(url_for("admin.closures"))


def _close(day: date, department_id: int | None, codes: tuple[str, ...]):
    report = config.close_day(_ctx(), day=day, department_id=department_id,
                              reason=request.form.get("reason", ""), confirmed_codes=codes,
                              staff=staff_name(), now=_now())
    flash(_("{day} is closed. Bookings cancelled: {n}.", day=day.isoformat(), n=len(report.cancelled)))
    if report.not_told:
        flash(_("These patients have no phone or chat of their own to tell, so please call them: {codes}.",
                codes=", ".join(report.not_told)), "error")
    return redirect(url_for("admin.closures"))


def _closures_page(values, status: int = 200):
    ctx = _ctx()
    today = config.local_today(ctx, _now())
    return _page("admin/config_closures.html", status, form=values, today=today,
                 departments=config.departments(ctx), exceptions=config.exceptions(ctx, since=today))


def _confirm_page(day: date, department_id: int | None, affected):
    department = config.department(_ctx(), department_id) if department_id is not None else None
    return _page("admin/config_closure_confirm.html", day=day, department=department, rows=affected,
                 reason=request.form.get("reason", ""), codes=",".join(row.code for row in affected))


# ---- slots ------------------------------------------------------------------------------------


@admin.get("/slots")
@security.requires("admin")
def slots():
    ctx = _ctx()
    today = config.local_today(ctx, _now())
    listed = config.departments(ctx)
    chosen = _some_id(request.args.get("department"))
    department = next((d for d in listed if d.id == chosen), None)
    if department is None:
        department = next((d for d in listed if d.active), listed[0] if listed else None)
    try:
        start = _day(request.args["start"]) if request.args.get("start") else today
    except ConfigError as exc:
        _refused(exc)
        start = today
    days = _some_id(request.args.get("days"))
    days = days if days in CALENDAR_SPANS else CALENDAR_SPANS[0]
    calendar = (config.calendar(ctx, department_id=department.id, start=start, days=days)
                if department else None)
    return _page("admin/config_slots.html", departments=listed, department=department, start=start,
                 days=days, spans=CALENDAR_SPANS, calendar=calendar,
                 earlier=start - timedelta(days=days), later=start + timedelta(days=days))


@admin.post("/slots/generate")
@security.requires("admin")
def slots_generate():
    back = url_for("admin.slots", department=request.form.get("department") or None,
                   start=request.form.get("start") or None, days=request.form.get("days_shown") or None)
    try:
        days = _whole("days", N_("Days ahead"), 1, 366)
        report = config.generate_slots(_ctx(), days=days, staff=staff_name(), now=_now())
    except ConfigError as exc:
        _refused(exc)
        return redirect(back)
    flash(_("Slots: {created} created, {updated} updated, {removed} removed.",
            created=report.created, updated=report.updated, removed=report.removed))
    if report.kept_with_bookings:
        flash(_("{n} slots were kept because they hold bookings the schedules no longer have room for. "
                "Please contact those patients.", n=len(report.kept_with_bookings)), "error")
    return redirect(back)


@admin.route("/slots/<int:slot_id>", methods=["GET", "POST"])
@security.requires("admin")
def slot_edit(slot_id: int):
    ctx = _ctx()
    found = config.slot(ctx, slot_id, now=_now())
    if found is None:
        return _gone(N_("That slot no longer exists."), "admin.slots")
    if request.method == "GET":
        return _slot_page(found, {"capacity": str(found.capacity)})
    try:
        capacity = _whole("capacity", N_("Places in this slot"), 0, config.MAX_CAPACITY)
        config.set_slot_capacity(ctx, slot_id, capacity, staff=staff_name(), now=_now())
    except ConfigError as exc:
        _refused(exc)
        return _slot_page(found, request.form, REFUSED)
    flash(_("The slot now has {n} places.", n=capacity))
    return redirect(url_for("admin.slot_edit", slot_id=slot_id))


def _slot_page(found: config.SlotRow, values, status: int = 200):
    department = config.department(_ctx(), found.department_id)
    return _page("admin/config_slot.html", status, slot=found, department=department, form=values)


# ---- booking rules ------------------------------------------------------------------------


@admin.route("/policy", methods=["GET", "POST"])
@security.requires("admin")
def policy():
    return _policy(None)


@admin.route("/departments/<int:department_id>/policy", methods=["GET", "POST"])
@security.requires("admin")
def department_policy(department_id: int):
    if config.department(_ctx(), department_id) is None:
        return _gone(N_("That department no longer exists."))
    return _policy(department_id)


def _policy(department_id: int | None):
    ctx = _ctx()
    view = config.policy_view(ctx, department_id)
    own = view.hospital_overrides if department_id is None else view.department_overrides
    values = {name: config.shown(value) for name, value in own.items()}
    status = 200
    if request.method == "POST":
        try:
            config.save_policy(ctx, request.form.to_dict(), staff=staff_name(), now=_now(),
                               department_id=department_id)
            flash(_("The booking rules are saved."))
            return redirect(request.path)
        except ConfigError as exc:
            _refused(exc)
            values, status = request.form.to_dict(), REFUSED
    inherited = {name: config.shown(getattr(view.inherited, name)) for name in config.POLICY_FIELDS}
    department = config.department(ctx, department_id) if department_id is not None else None
    return _page("admin/config_policy.html", status, view=view, form=values, inherited=inherited,
                 fields=config.POLICY_FIELDS, meanings=config.POLICY_MEANINGS, department=department,
                 departments=config.departments(ctx) if department_id is None else [])
