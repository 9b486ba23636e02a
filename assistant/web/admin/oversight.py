"""/admin: oversight. The suspensions in force (and lifting one), activity that looks
like misuse, the audit trail with whether it still verifies, and a day's bookings as CSV.

Rule: these pages are an admin's, except the CSV export, which the desk needs (clerk).
Patients appear masked, or by row id in audit events, and never in full: not on a page,
not in the export. The one change, lifting a suspension, is made and audited by the
service layer under the admin's name and needs a reason. A CSV cell a spreadsheet would
run as a formula gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from zoneinfo import ZoneInfo

from flask import Response, flash, redirect, render_template, request, url_for

from assistant.booking import oversight, results as r, service
from assistant.i18n import N_
from assistant.web import security
from assistant.web.admin import MENU, admin, careline, staff_name, status_label
from assistant.web.ui import gettext as _

MENU.append(("admin.suspensions", N_("Suspensions"), "admin"))
MENU.append(("admin.flags", N_("Flagged activity"), "admin"))
MENU.append(("admin.audit_log", N_("Audit log"), "admin"))
MENU.append(("admin.export", N_("Export bookings"), "clerk"))

SUSPENSION_RULES = {"no_shows": N_("Missed visits"), "cancellations": N_("Cancellations")}
SUSPENSION_SCOPES = {"identity": N_("ID number"), "address": N_("Phone or chat")}
NOT_LIFTED = N_("The suspension was not lifted.")  # a constant, so Babel finds it
LIFT_REFUSALS = {
    "reason_required": N_("Please write why the suspension is lifted. The reason is kept in the audit trail."),
    "suspension_not_found": N_("That suspension is no longer in force: it ended or was lifted already."),
}
REFUSAL_RULES = {
    "slot_full": N_("Time was full"), "not_yet_open": N_("Not open yet"),
    "booking_closed": N_("Booking closed"), "already_booked": N_("Already booked"),
    "quota_exceeded": N_("Too many bookings"), "suspended": N_("Suspended"),
    "patients_per_address": N_("Too many patients for one phone or chat"),
    "invalid_identity": N_("ID number, name or birth date refused"),
    "not_permitted": N_("Not allowed, or unknown code"), "not_active": N_("Booking not active"),
    "cancellation_deadline": N_("Too late to cancel"), "slot_not_found": N_("Time not found"),
    "invalid_address": N_("Phone number or chat not readable"),
    # A fair release (booking/release.py, booking/waitlist.py, booking/reminders.py).
    "already_requested": N_("Already asked for a place that day"),
    "requests_closed": N_("Requests for the draw not open, or closed"),
    "nothing_to_answer": N_("Answered an offer or reminder that was no longer open"),
    "places_free": N_("Asked to wait for a day with free places"),
}
EXPORT_COLUMNS = (N_("Code"), N_("Visit time"), N_("Department"), N_("Status"), N_("ID number (masked)"),
                  N_("Name (masked)"), N_("Channel"), N_("Flags"))
NAME_DIFFERS = N_("Name differs from earlier bookings")
NOT_CHECKSUM_VERIFIED = N_("ID number never checksum-verified")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP adds tab and CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _zone() -> ZoneInfo:
    app = careline()
    hospital = service.hospital(app.services)
    return ZoneInfo(hospital.timezone if hospital else app.settings.timezone)


# ---- suspensions ------------------------------------------------------------------------


@admin.get("/suspensions")
@security.requires("admin")
def suspensions():
    app = careline()
    rows = service.active_suspensions(app.services, now=app.clock())
    return render_template("admin/oversight_suspensions.html", rows=rows, zone=_zone(),
                           rules=SUSPENSION_RULES, scopes=SUSPENSION_SCOPES)


@admin.post("/suspensions/<int:suspension_id>/lift")
@security.requires("admin")
def suspension_lift(suspension_id: int):
    app = careline()
    result = service.lift_suspension(app.services, suspension_id=suspension_id,
                                     staff=service.Staff(staff_name()),
                                     reason=request.form.get("reason", ""), now=app.clock())
    if isinstance(result, r.Refusal):
        flash(_(LIFT_REFUSALS.get(result.rule, NOT_LIFTED)), "error")
    else:
        flash(_("Suspension lifted. The patient or phone can book again."))
    return redirect(url_for("admin.suspensions"))


# ---- flagged activity -----------------------------------------------------------------------


@admin.get("/flags")
@security.requires("admin")
def flags():
    app = careline()
    ctx, now = app.services, app.clock()
    policy = oversight.hospital_policy(ctx)
    flagged = service.flagged_identities(ctx)
    threshold = oversight.cancellation_threshold(policy)
    return render_template(
        "admin/oversight_flags.html", zone=_zone(),
        limit=policy.patients_per_address,
        at_limit=oversight.addresses_at_limit(ctx, policy.patients_per_address),
        claims=[f for f in flagged if f.own_claims > 1],
        names=[f for f in flagged if f.names > 1],
        threshold=threshold, days=oversight.CANCELLATION_DAYS,
        cancellations=oversight.repeated_cancellations(ctx, threshold=threshold, now=now),
        hours=oversight.REFUSAL_HOURS, burst=oversight.REFUSAL_BURST,
        bursts=oversight.refusal_bursts(ctx, now=now), refusal_rules=REFUSAL_RULES)


# ---- the audit trail ---------------------------------------------------------------------------


@admin.get("/audit")
@security.requires("admin")
def audit_log():
    ctx = careline().services
    before = request.args.get("before", type=int)
    # The check walks the whole trail: the newest page runs it, older pages only page.
    check = oversight.audit_check(ctx) if before is None else None
    return render_template("admin/oversight_audit.html", page=oversight.audit_page(ctx, before=before),
                           check=check, zone=_zone(), shown_problems=20)


# ---- a day's bookings as CSV ----------------------------------------------------------------


@admin.get("/export")
@security.requires("clerk")
def export():
    return render_template("admin/oversight_export.html", today=careline().clock().astimezone(_zone()).date())


@admin.get("/export.csv")
@security.requires("clerk")
def export_csv():
    day = _day_from(request.args.get("day"))
    if day is None:
        flash(_("Choose the day to export."), "error")
        return redirect(url_for("admin.export"))
    zone = _zone()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(_(column)) for column in EXPORT_COLUMNS])
    rows = service.staff_bookings(careline().services, day=day)
    for row in rows:
        flags = ([_(NAME_DIFFERS)] if row.name_differs else []) + (
            [] if row.checksum_verified else [_(NOT_CHECKSUM_VERIFIED)])
        writer.writerow([csv_cell(value) for value in (
            row.code, row.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), row.department_code,
            status_label(row.status), row.masked_id, row.masked_name, row.channel, "; ".join(flags))])
    app = careline()
    service.record_export(app.services, day=day, rows=len(rows), staff=service.Staff(staff_name()), now=app.clock())
    # The byte-order mark lets a spreadsheet read the masked Chinese names as UTF-8.
    response = Response("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="careline-bookings-{day.isoformat()}.csv"'
    response.headers["Cache-Control"] = "no-store"  # patients' bookings: no copy in a cache
    return response


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _day_from(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None
