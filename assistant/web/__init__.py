"""The web application factory.

Rule: `create_app(app)` builds a Flask app around an already-wired CareLine App; no
engine, session or client is created at import time. Views call services and render;
they hold no booking rules.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Flask, jsonify, render_template_string
from sqlalchemy import text

from assistant.booking import service
from assistant.bootstrap import App

_STATUS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CareLine</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;font-size:1.1rem}
table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #ccc;text-align:left}</style>
</head><body>
<h1>CareLine</h1>
<p>Hospital appointments by SMS, phone and Telegram, bound to each patient's real identity.</p>
<h2>Departments and free places in the next 7 days</h2>
<table><tr><th>Department</th><th>Names</th><th>Free places</th><th>Next free</th></tr>
{% for row in rows %}<tr><td>{{ row.code }}</td><td>{{ row.names }}</td><td>{{ row.free }}</td>
<td>{{ row.next }}</td></tr>{% else %}<tr><td colspan="4">No hospital loaded yet.</td></tr>{% endfor %}
</table>
<p>Try the assistant in a terminal: <code>assistant chat</code>. Health: <a href="/healthz">/healthz</a>.</p>
</body></html>"""


def create_app(app: App) -> Flask:
    from assistant.bootstrap import renderer_for
    from assistant.web.webhooks import webhooks

    flask_app = Flask(__name__)
    flask_app.config["CARELINE"] = app
    flask_app.config["CARELINE_RENDERER"] = renderer_for(app)  # catalogs compiled once
    flask_app.register_blueprint(webhooks)

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
        return render_template_string(_STATUS_PAGE, rows=rows)

    @flask_app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return flask_app


def create_wsgi_app() -> Flask:
    """For a WSGI server: `gunicorn 'assistant.web:create_wsgi_app()'`. Settings come from
    the environment (ASSISTANT_*) and ASSISTANT_CONFIG, as for every command; the keys
    are checked against the database before the first request."""
    from assistant.bootstrap import build
    from assistant.config import load_settings

    return create_app(build(load_settings()))
