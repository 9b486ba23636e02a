"""/admin/desk: the front desk. Find a booking, check a patient in against her ID card,
and mark the no-shows of a finished day.

Rule: an ID number is typed from the card and sent only by POST (never in a URL, where
logs and browser history would keep it), looked up by its blind index, and never shown
back: patients appear masked. Check-in succeeds only when the typed number matches the
booking (service.check_in), and a wrong number is told nothing more than an unknown
code. Every change is made and audited under the clerk's name.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for

from assistant.booking import results as r, service
from assistant.i18n import N_
from assistant.web import security
from assistant.web.admin import MENU, admin, careline, staff_name
from assistant.web.ui import gettext as _

MENU.append(("admin.desk", N_("Front desk"), "clerk"))

# Said for a refusal without a sentence of its own (a module constant, so Babel finds it).
CHECK_IN_REFUSED = N_("The check-in was refused.")
REFUSALS = {
    "booking_not_found": N_("No booking with that code matches that ID number."),
    "not_active": N_("That booking is not active: it was cancelled, checked in or missed."),
    "not_visit_day": N_("That booking is for another day."),
}


def _today() -> date:
    app = careline()
    hospital = service.hospital(app.services)
    return app.clock().astimezone(ZoneInfo(hospital.timezone if hospital else app.settings.timezone)).date()


@admin.get("/desk")
@security.requires("clerk")
def desk():
    return render_template("admin/desk.html", rows=None, today=_today(), kinds=_kinds())


@admin.post("/desk/find")
@security.requires("clerk")
def desk_find():
    app = careline()
    code = request.form.get("code", "").strip()
    number = request.form.get("id_number", "").strip()
    if code:
        rows = service.staff_bookings(app.services, code=code)
    elif number:
        found = service.find_bookings_of_identity(app.services, service.IdentityInput(
            request.form.get("kind") or "cn_resident_id", number, "",
            document=request.form.get("document") or None, country=request.form.get("country") or None))
        if isinstance(found, r.Refusal):
            flash(_("That ID number does not look right. Please check it against the card."), "error")
            found = []
        rows = found
    else:
        flash(_("Type a booking code or an ID number."), "error")
        return redirect(url_for("admin.desk"))
    return render_template("admin/desk.html", rows=rows, today=_today(), kinds=_kinds(), searched=True)


@admin.post("/desk/check-in")
@security.requires("clerk")
def desk_check_in():
    app = careline()
    result = service.check_in(app.services, code=request.form.get("code", ""),
                              id_number=request.form.get("id_number", ""), now=app.clock(),
                              staff=service.Staff(staff_name()))
    if isinstance(result, r.Refusal):
        flash(_(REFUSALS.get(result.rule, CHECK_IN_REFUSED)), "error")
        return redirect(url_for("admin.desk"))
    return render_template("admin/checked_in.html", result=result)


@admin.get("/desk/day")
@security.requires("clerk")
def desk_day():
    day = _day_from(request.args.get("day"))
    rows = service.staff_bookings(careline().services, day=day)
    return render_template("admin/desk_day.html", day=day, rows=rows, over=day < _today(),
                           previous=day - timedelta(days=1), following=day + timedelta(days=1))


@admin.post("/desk/no-shows")
@security.requires("clerk")
def desk_no_shows():
    app = careline()
    day = _day_from(request.form.get("day"))
    if day >= _today():
        flash(_("No-shows can be marked only for a day that is over."), "error")
    else:
        report = service.mark_no_shows(app.services, now=app.clock(), day=day, staff=service.Staff(staff_name()))
        flash(_("No-shows marked: {n}.", n=report.marked))
    return redirect(url_for("admin.desk_day", day=day.isoformat()))


def _day_from(text: str | None) -> date:
    try:
        return date.fromisoformat(text) if text else _today()
    except ValueError:
        return _today()


def _kinds() -> tuple[str, ...]:
    return careline().settings.identity.kinds
