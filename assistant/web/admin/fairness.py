"""/admin: a fair release. The draws (each with its published commitment, its seed once
drawn, its requests in the draw's order and whether it verifies) and a day's waitlists
(the order, the open offers and the places held for the next release time).

Rule: the draws are an admin's, like the audit log: they are how the hospital shows the
release was fair. The waitlists are the desk's too (clerk), which answers patients
asking where they stand. Nothing here changes anything. Patients appear masked, never
in full; a draw's seed is shown only once the draw has revealed it.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for

from assistant.booking import fairness_view, release, service
from assistant.booking.admin_config import departments
from assistant.i18n import N_
from assistant.web import security
from assistant.web.admin import MENU, admin, careline, staff_name
from assistant.web.admin.configuration import name_of
from assistant.web.ui import gettext as _

MENU.append(("admin.draws", N_("Draws"), "admin"))
MENU.append(("admin.waitlist", N_("Waitlists"), "clerk"))

# A draw as staff read it; "due" is an open draw whose time has come (the worker runs it).
DRAW_STATUSES = {"open": N_("Taking requests"), "due": N_("Due: the worker draws it next"),
                 "drawn": N_("Drawn"), "cancelled": N_("Cancelled: the day was closed")}
REQUEST_STATUSES = {"requested": N_("Waiting for the draw"), "placed": N_("Placed"),
                    "waitlisted": N_("On the waitlist"), "refused": N_("Refused at the draw"),
                    "withdrawn": N_("Withdrawn")}
# Why the draw refused a request (DrawRequest.refusal); "quota:<rule>" names a booking rule.
DRAW_REFUSALS = {"suspended": N_("Suspended at the time of the draw")}
QUOTA_REFUSAL = N_("Booking limit {rule} already reached at the time of the draw")
PARTS = {"morning": N_("Morning"), "afternoon": N_("Afternoon"), "any": N_("Any time")}
ENTRY_STATUSES = {"waiting": N_("Waiting"), "offered": N_("Offered a place"),
                  "booked": N_("Booked from the list"), "left": N_("Left the list")}
LEFT_REASONS = {"declined": N_("declined an offer"), "expired": N_("did not answer an offer in time"),
                "passed": N_("the slot's time passed"), "closed": N_("the day was closed")}
FREED_REASONS = {"cancelled": N_("Cancelled"), "rescheduled": N_("Moved to another time"),
                 "capacity": N_("Places added"), "reminder": N_("Given back after the reminder")}


def _zone() -> ZoneInfo:
    app = careline()
    hospital = service.hospital(app.services)
    return ZoneInfo(hospital.timezone if hospital else app.settings.timezone)


def _day_from(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def label(labels: dict[str, str], value: str | None) -> str:
    """A stored code in words; a code without words is shown as it is."""
    if value is None:
        return ""
    return _(labels[value]) if value in labels else value


def refusal_label(rule: str | None) -> str:
    if rule and rule.startswith("quota:"):
        return _(QUOTA_REFUSAL, rule=rule.split(":", 1)[1])
    return label(DRAW_REFUSALS, rule)


def _page(template: str, **context):
    return render_template(template, zone=_zone(), name_of=name_of, label=label, parts=PARTS, **context)


# ---- draws --------------------------------------------------------------------------------


@admin.get("/draws")
@security.requires("admin")
def draws():
    app = careline()
    text = request.args.get("day", "").strip()
    day = _day_from(text)
    if text and day is None:
        flash(_("Please give a date such as 2026-12-24."), "error")
    now = app.clock()
    rows = release.list_draws(app.services, day=day)
    names = {d.id: d.names for d in departments(app.services)}
    statuses = {row.id: "due" if row.status == "open" and row.draw_at <= now else row.status for row in rows}
    return _page("admin/fairness_draws.html", rows=rows, day=day, names=names, statuses=statuses,
                 draw_statuses=DRAW_STATUSES)


@admin.get("/draws/<int:draw_id>")
@security.requires("admin")
def draw(draw_id: int):
    app = careline()
    found = fairness_view.draw_detail(app.services, draw_id)
    if found is None:
        flash(_("That draw no longer exists."), "error")
        return redirect(url_for("admin.draws"))
    status = "due" if found.status == "open" and found.draw_at <= app.clock() else found.status
    verification = release.verify_draw(app.services, draw_id) if found.status == "drawn" else None
    return _page("admin/fairness_draw.html", draw=found, status=status, verification=verification,
                 draw_statuses=DRAW_STATUSES, request_statuses=REQUEST_STATUSES, refusal_label=refusal_label)


@admin.post("/draws/<int:draw_id>/requests/<int:request_id>/withdraw")
@security.requires("admin")
def draw_request_withdraw(draw_id: int, request_id: int):
    """A request made in a patient's name without her consent (she calls the desk), or
    one she no longer wants: withdrawn before the draw, she may ask again."""
    app = careline()
    if release.withdraw_request(app.services, request_id=request_id, staff=staff_name(), now=app.clock()):
        flash(_("The request was withdrawn. The patient may ask again until the draw."))
    else:
        flash(_("That request can no longer be withdrawn: the draw has run, or it was withdrawn already."), "error")
    return redirect(url_for("admin.draw", draw_id=draw_id))


# ---- waitlists ----------------------------------------------------------------------------


@admin.get("/waitlist")
@security.requires("clerk")
def waitlist():
    app = careline()
    today = app.clock().astimezone(_zone()).date()
    text = request.args.get("day", "").strip()
    day = _day_from(text)
    if day is None:
        if text:
            flash(_("Please give a date such as 2026-12-24."), "error")
        day = today
    return _page("admin/fairness_waitlist.html", day=day, today=today,
                 previous=day - timedelta(days=1), following=day + timedelta(days=1),
                 lists=fairness_view.waitlist_day(app.services, day), entry_statuses=ENTRY_STATUSES,
                 left_reasons=LEFT_REASONS, freed_reasons=FREED_REASONS)
