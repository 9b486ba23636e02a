"""Fixtures for the web pages: a CareLine with the demo hospital, staff accounts, and a
browser-like client that logs in through the form, CSRF token included."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from assistant import accounts, jobs
from assistant.config import PROJECT_ROOT
from flask.testing import FlaskClient

from assistant.web import create_app
from tests.conftest import built_app

ADMIN_PASSWORD = "correct horse battery"
CLERK_PASSWORD = "desk clerk password"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A clock the test moves: lockouts end, sessions age."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def web_app(database_url, tmp_path, now):
    for built in built_app(database_url, tmp_path, now, ASSISTANT_WEB_COOKIE_SECURE="false"):
        built.clock = Clock(now)
        jobs.seed_file(built, PROJECT_ROOT / "config" / "demo_hospital.toml")
        accounts.create_user(built.services, username="admin", password=ADMIN_PASSWORD, role="admin", now=now)
        accounts.create_user(built.services, username="clerk", password=CLERK_PASSWORD, role="clerk", now=now)
        yield built


class EnglishClient(FlaskClient):
    """A browser that asks for English: the demo hospital's own language is Chinese, and
    the tests read the English words."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base.setdefault("HTTP_ACCEPT_LANGUAGE", "en")


def english_app(app):
    flask_app = create_app(app)
    flask_app.test_client_class = EnglishClient
    return flask_app


@pytest.fixture
def flask_app(web_app):
    return english_app(web_app)


def csrf_token(client, path: str = "/admin/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = _TOKEN.search(page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def log_in(client, username: str, password: str, **kw):
    return client.post("/admin/login", data={"username": username, "password": password,
                                             "csrf_token": csrf_token(client)}, **kw)


@pytest.fixture
def admin_client(flask_app):
    client = flask_app.test_client()
    assert log_in(client, "admin", ADMIN_PASSWORD).status_code == 302
    return client


@pytest.fixture
def clerk_client(flask_app):
    client = flask_app.test_client()
    assert log_in(client, "clerk", CLERK_PASSWORD).status_code == 302
    return client
