"""The web application factory.

Rule: `create_app(app)` builds a Flask app around an already-wired CareLine App; no
engine, session or client is created at import time. Views call services and render;
they hold no booking rules.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Flask, jsonify, render_template
from sqlalchemy import text

from assistant.booking import service
from assistant.bootstrap import App

def create_app(app: App) -> Flask:
    from assistant.bootstrap import renderer_for
    from assistant.web import security, ui
    from assistant.web.admin import admin
    from assistant.web.webhooks import webhooks

    flask_app = Flask(__name__)
    flask_app.config["CARELINE"] = app
    flask_app.config["CARELINE_RENDERER"] = renderer_for(app)  # catalogs compiled once
    security.install(flask_app, app)
    ui.install(flask_app)
    flask_app.register_blueprint(webhooks)
    security.csrf.exempt(webhooks)  # providers prove themselves by their signatures
    flask_app.register_blueprint(admin)
    from assistant.web.try_it import try_it
    flask_app.register_blueprint(try_it)

    @flask_app.get("/healthz")
    def healthz():
        try:
            with app.engine.connect() as connection:
                pending = connection.execute(
                    text("SELECT count(*) FROM outbox WHERE status = 'pending'")).scalar()
        except Exception:  # the load balancer only needs to know we can't serve
            return jsonify(status="unavailable"), 503
        # The outbox backlog: notices waiting for the senders (a growing number is an alarm).
        return jsonify(status="ok", outbox_pending=pending)

    @flask_app.get("/")
    def status_page():
        now = app.clock()
        rows = []
        for department in service.list_departments(app.services):
            tz = ZoneInfo(department.hospital_timezone)
            today = now.astimezone(tz).date()
            free = service.availability(app.services, department_id=department.id,
                                        date_from=today, date_to=today + timedelta(days=7), now=now)
            rows.append({
                "code": department.code,
                "names": " / ".join(department.names.values()),
                "free": sum(s.free for s in free),
                "next": free[0].starts_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if free else "—",
            })
        return render_template("status.html", rows=rows)

    return flask_app


def create_wsgi_app() -> Flask:
    """For a WSGI server: `gunicorn 'assistant.web:create_wsgi_app()'`. Settings come from
    the environment (ASSISTANT_*) and ASSISTANT_CONFIG, as for every command; the keys
    are checked against the database before the first request."""
    from assistant.bootstrap import build
    from assistant.config import load_settings

    return create_app(build(load_settings()))
