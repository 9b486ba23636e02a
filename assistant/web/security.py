"""Who may open a staff page, and the protections every page gets.

Rule: every view under /admin is wrapped in `requires(role)`; admin can do everything a
clerk can. Nobody logged in is sent to the login page; a clerk on an admin page gets 403.
The session cookie is HttpOnly and SameSite=Lax, and Secure unless the plain-HTTP local
demo turned it off (web.cookie_secure). Every POST carries a CSRF token (Flask-WTF),
except the provider webhooks, which prove themselves with their signatures. Every
response forbids framing and inline scripts.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from functools import wraps
from typing import Callable

from flask import abort, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFProtect

ROLES = ("clerk", "admin")  # each includes what comes before it
USER_KEY = "staff_user"

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

csrf = CSRFProtect()


def install(flask_app, app) -> None:
    settings = app.settings.web
    flask_app.config.update(
        # Derived from the blind-index key, so every instance behind a load balancer agrees
        # and no new secret has to be kept; rotating the keys logs staff out.
        SECRET_KEY=hmac.new(app.services.keyring.blind_index_key, b"careline web session",
                            hashlib.sha256).hexdigest(),
        SESSION_COOKIE_NAME="careline_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    csrf.init_app(flask_app)

    @flask_app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response


def current_staff():
    """The logged-in staff member (accounts.StaffView), or None."""
    if "staff" not in g:
        from assistant import accounts
        from flask import current_app

        user_id = session.get(USER_KEY)
        app = current_app.config["CARELINE"]
        g.staff = accounts.active_user(app.services, user_id) if user_id else None
    return g.staff


def has_role(staff, role: str) -> bool:
    return staff is not None and ROLES.index(staff.role) >= ROLES.index(role)


def requires(role: str) -> Callable:
    """Only staff with `role` (or a higher one) may open the view."""
    if role not in ROLES:
        raise ValueError(role)

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            staff = current_staff()
            if staff is None:
                return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
            if not has_role(staff, role):
                abort(403)
            return view(*args, **kwargs)

        guarded.required_role = role  # read by the access test, which walks every route
        return guarded

    return decorate
