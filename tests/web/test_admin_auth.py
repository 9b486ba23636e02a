"""Staff login, roles and the protections of every page, on SQLite and PostgreSQL.

Tested as an outsider would try them: wrong and unknown names, guessing until locked
out (per account and per address), a POST without its CSRF token, an open redirect, and
every /admin route opened anonymously, as a clerk and as an admin (walked from
`app.url_map`, so a new page without a role check fails here).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from assistant.booking.models import AuditEvent, StaffUser
from tests.conftest import built_app, keys_environ
from tests.web.conftest import english_app, ADMIN_PASSWORD, CLERK_PASSWORD, csrf_token, log_in


def audit_actions(app) -> list[tuple[str, str, str]]:
    with app.services.uow.read_only() as uow:
        return [(e.action, e.subject, e.actor) for e in uow.session.execute(
            select(AuditEvent).order_by(AuditEvent.id)).scalars()]


def test_a_page_asks_for_login_and_the_session_ends_at_logout(flask_app):
    client = flask_app.test_client()
    response = client.get("/admin/users")
    assert response.status_code == 302 and response.location.startswith("/admin/login?next=/admin/users")
    logged_in = log_in(client, "admin", ADMIN_PASSWORD, query_string={"next": "/admin/users"})
    assert logged_in.status_code == 302 and logged_in.location == "/admin/users"
    page = client.get("/admin/users").get_data(as_text=True)
    assert "clerk" in page and "Staff accounts" in page
    token = csrf_token(client, "/admin/")
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("username,password", [("admin", "wrong password!"), ("nobody", "whatever it is"),
                                               ("ADMIN ", "wrong password!")])
def test_a_refusal_never_says_which_part_was_wrong(flask_app, web_app, username, password):
    client = flask_app.test_client()
    response = log_in(client, username, password)
    assert response.status_code == 401
    assert "That username and password do not match." in response.get_data(as_text=True)
    refused = [a for a in audit_actions(web_app) if a[0] == "staff.login_refused"]
    assert refused and refused[-1][1] in ("staff:admin", "staff:unknown")
    assert not any("nobody" in str(a) for a in audit_actions(web_app))  # an unknown name is not kept


def test_guessing_locks_the_account_then_the_lock_ends(flask_app, web_app):
    client = flask_app.test_client()
    allowed = web_app.settings.web.login_failures_allowed
    for n in range(allowed):
        log_in(client, "admin", f"guess number {n}", environ_base={"REMOTE_ADDR": f"10.0.0.{n}"})
    # The right password, from a fresh address: the account is locked.
    locked = log_in(client, "admin", ADMIN_PASSWORD, environ_base={"REMOTE_ADDR": "10.0.1.1"})
    assert locked.status_code == 401 and "Too many failed attempts" in locked.get_data(as_text=True)
    web_app.clock.now += timedelta(minutes=web_app.settings.web.login_lockout_minutes, seconds=1)
    assert log_in(client, "admin", ADMIN_PASSWORD, environ_base={"REMOTE_ADDR": "10.0.1.1"}).status_code == 302


def test_guessing_many_names_from_one_address_locks_that_address_only(flask_app, web_app):
    attacker, desk = flask_app.test_client(), flask_app.test_client()
    for n in range(web_app.settings.web.login_failures_allowed):
        log_in(attacker, f"user{n}", "guess guess guess", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert log_in(attacker, "clerk", CLERK_PASSWORD,
                  environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 401
    assert log_in(desk, "clerk", CLERK_PASSWORD, environ_base={"REMOTE_ADDR": "192.0.2.20"}).status_code == 302
    stored = " ".join(str(row) for row in _rows(web_app, "login_throttle"))
    assert "203.0.113.9" not in stored  # the address is kept only as a keyed hash


def _rows(app, table: str) -> list:
    with app.services.uow.read_only() as uow:
        return uow.session.execute(text(f"SELECT * FROM {table}")).all()


def test_a_post_without_its_csrf_token_is_refused(flask_app):
    client = flask_app.test_client()
    response = client.post("/admin/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302  # not logged in


def test_the_login_never_redirects_off_the_site(flask_app):
    for target in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        response = log_in(flask_app.test_client(), "admin", ADMIN_PASSWORD, query_string={"next": target})
        assert response.location == "/admin/"


def test_passwords_are_stored_as_argon2id_hashes_only(web_app):
    rows = _rows(web_app, "staff_user")
    assert rows and all(row.password_hash.startswith("$argon2id$") for row in rows)
    assert ADMIN_PASSWORD not in str(rows) and CLERK_PASSWORD not in str(rows)


def test_the_session_cookie_is_httponly_lax_and_secure_unless_the_demo_turns_it_off(
        database_url, tmp_path, now, flask_app, web_app):
    demo_cookie = log_in(flask_app.test_client(), "admin", ADMIN_PASSWORD).headers.get("Set-Cookie")
    assert "HttpOnly" in demo_cookie and "SameSite=Lax" in demo_cookie and "Secure" not in demo_cookie
    for production in built_app(database_url, tmp_path / "prod", now):
        client = english_app(production).test_client()
        cookie = client.get("/admin/login", base_url="https://careline.example").headers.get("Set-Cookie")
        assert "Secure" in cookie and "HttpOnly" in cookie


@pytest.mark.parametrize("path", ["/", "/admin/login"])
def test_every_page_forbids_framing_and_inline_scripts(flask_app, path):
    response = flask_app.test_client().get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script" not in response.get_data(as_text=True) and "style=" not in response.get_data(as_text=True)


def _admin_routes(flask_app):
    for rule in flask_app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and rule.endpoint not in ("admin.login", "admin.logout"):
            path = re.sub(r"<(?:\w+:)?\w+>", "1", rule.rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, path, method


def test_every_admin_route_checks_login_and_role(flask_app, clerk_client, admin_client):
    checked = 0
    for rule, path, method in _admin_routes(flask_app):
        view = flask_app.view_functions[rule.endpoint]
        role = getattr(view, "required_role", None)
        assert role in ("clerk", "admin"), f"{rule.rule} has no role check"
        anonymous = flask_app.test_client()
        data = {"csrf_token": csrf_token(anonymous)} if method == "POST" else None
        response = anonymous.open(path, method=method, data=data)
        assert response.status_code == 302 and "/admin/login" in response.location, (rule.rule, method)
        as_clerk = clerk_client.open(path, method=method,
                                     data={"csrf_token": csrf_token(clerk_client, "/admin/")} if method == "POST" else None)
        if role == "admin":
            assert as_clerk.status_code == 403, (rule.rule, method)
        else:  # served, or redirected after a POST, but never to the login page
            assert as_clerk.status_code != 403, (rule.rule, method)
            assert "/admin/login" not in (as_clerk.location or ""), (rule.rule, method)
        checked += 1
    assert checked >= 4
    assert admin_client.get("/admin/users").status_code == 200


def test_a_clerk_sees_only_the_sections_a_clerk_may_open(clerk_client):
    page = clerk_client.get("/admin/").get_data(as_text=True)
    assert "/admin/users" not in page


def test_the_admin_creates_a_clerk_who_can_then_log_in(flask_app, admin_client, web_app):
    token = csrf_token(admin_client, "/admin/users")
    created = admin_client.post("/admin/users", data={"username": "Desk2", "password": "long enough pw",
                                                      "role": "clerk", "csrf_token": token})
    assert created.status_code == 302
    assert log_in(flask_app.test_client(), "desk2", "long enough pw").status_code == 302
    short = admin_client.post("/admin/users", data={"username": "desk3", "password": "short",
                                                    "role": "clerk", "csrf_token": token}, follow_redirects=True)
    assert "at least 10 characters" in short.get_data(as_text=True)
    assert ("staff.created", "staff:desk2", "staff:admin") in audit_actions(web_app)


def test_a_switched_off_account_can_no_longer_log_in_or_use_its_session(flask_app, admin_client, clerk_client, web_app):
    with web_app.services.uow.read_only() as uow:
        clerk_id = uow.session.execute(select(StaffUser.id).where(StaffUser.username == "clerk")).scalar_one()
    token = csrf_token(admin_client, "/admin/users")
    admin_client.post(f"/admin/users/{clerk_id}/active", data={"active": "0", "csrf_token": token})
    assert clerk_client.get("/admin/").status_code == 302  # its session no longer counts
    assert log_in(flask_app.test_client(), "clerk", CLERK_PASSWORD).status_code == 401


def test_create_user_on_the_command_line_reads_the_password_from_stdin(web_app, monkeypatch):
    from assistant.cli import main

    for name, value in {**keys_environ(), "ASSISTANT_DATABASE_URL": web_app.settings.database_url,
                        "ASSISTANT_INSTANCE_PATH": str(web_app.settings.instance_path)}.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    result = runner.invoke(main, ["admin", "create-user", "nurse", "--role", "clerk", "--password-stdin"],
                           input="a fine long password\n")
    assert result.exit_code == 0, result.output
    assert "created clerk nurse" in result.output and "a fine long password" not in result.output
    again = runner.invoke(main, ["admin", "create-user", "nurse", "--password-stdin"], input="a fine long password\n")
    assert again.exit_code == 2 and "taken" in again.output
