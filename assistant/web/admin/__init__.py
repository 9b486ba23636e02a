"""/admin: the pages hospital staff use, behind a login.

Rule: every view here is wrapped in `security.requires(role)`, and the access test walks
`app.url_map` to prove it. Views read and change things only through the service layer
and `accounts`; each change is made and audited under the staff member's name. This
module holds the login, the home page and the staff accounts; the other sections are
modules of this package that add their views to the same blueprint and their entries to
MENU (imported at the end of this file).
"""

from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for

from assistant import accounts
from assistant.i18n import N_
from assistant.web import security
from assistant.web.ui import gettext as _

admin = Blueprint("admin", __name__, url_prefix="/admin")

# (endpoint, label, role): the sections in the header, shown to the roles that may open them.
MENU: list[tuple[str, str, str]] = [("admin.home", N_("Home"), "clerk")]


# A booking's status as staff read it.
STATUS_LABELS = {"booked": N_("Booked"), "cancelled": N_("Cancelled"), "checked_in": N_("Checked in"),
                 "no_show": N_("Missed (no-show)")}


def status_label(status: str) -> str:
    return _(STATUS_LABELS.get(status, status))


def careline():
    return current_app.config["CARELINE"]


def staff_name() -> str:
    return security.current_staff().username


@admin.app_context_processor
def staff_context():
    staff = security.current_staff()
    menu = [item for item in MENU if security.has_role(staff, item[2])] if staff else []
    return {"staff": staff, "staff_menu": menu, "status_label": status_label}


# ---- logging in and out ----------------------------------------------------------------


@admin.route("/login", methods=["GET", "POST"])
def login():
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if security.current_staff() is not None:
            return redirect(target)
        return render_template("admin/login.html", next=target)
    app = careline()
    result = accounts.log_in(app.services, username=request.form.get("username", ""),
                             password=request.form.get("password", ""),
                             client=request.remote_addr or "unknown", now=app.clock(),
                             settings=app.settings.web)
    if isinstance(result, accounts.LoginRefused):
        message = (_("Too many failed attempts. Please wait {minutes} minutes and try again.",
                     minutes=app.settings.web.login_lockout_minutes)
                   if result.locked_until else _("That username and password do not match."))
        return render_template("admin/login.html", next=target, error=message), 401
    session.clear()  # a new session at login: nothing from before carries over
    session[security.USER_KEY] = result.id
    session.permanent = True
    return redirect(target)


@admin.post("/logout")
def logout():
    session.pop(security.USER_KEY, None)
    flash(_("You are logged out."))
    return redirect(url_for("admin.login"))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if not target:
        return url_for("admin.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("admin.home")
    return target


# ---- home ---------------------------------------------------------------------------------


@admin.get("/")
@security.requires("clerk")
def home():
    staff = security.current_staff()
    sections = [item for item in MENU[1:] if security.has_role(staff, item[2])]
    return render_template("admin/home.html", sections=sections)


# ---- staff accounts (admin) -------------------------------------------------------------

MENU.append(("admin.users", N_("Staff accounts"), "admin"))


@admin.get("/users")
@security.requires("admin")
def users():
    return render_template("admin/users.html", users=accounts.list_users(careline().services),
                           roles=accounts.ROLES, labels=accounts.ROLE_LABELS)


@admin.post("/users")
@security.requires("admin")
def users_create():
    app = careline()
    try:
        created = accounts.create_user(app.services, username=request.form.get("username", ""),
                                       password=request.form.get("password", ""),
                                       role=request.form.get("role", ""), now=app.clock(), by=staff_name())
    except accounts.AccountError as exc:
        flash(_(exc.message, **exc.params), "error")
        return redirect(url_for("admin.users"))
    flash(_("Account {name} created.", name=created.username))
    return redirect(url_for("admin.users"))


@admin.post("/users/<int:user_id>/active")
@security.requires("admin")
def users_active(user_id: int):
    app = careline()
    active = request.form.get("active") == "1"
    if not active and user_id == security.current_staff().id:
        flash(_("You can't switch off your own account."), "error")
        return redirect(url_for("admin.users"))
    accounts.set_active(app.services, user_id=user_id, active=active, now=app.clock(), by=staff_name())
    return redirect(url_for("admin.users"))


# The sections, each a module adding its views and menu entries (after the ones above).
for _section in ("desk", "configuration", "oversight", "fairness", "dashboard"):
    import_module(f"{__name__}.{_section}")
