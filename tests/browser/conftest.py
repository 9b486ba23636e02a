"""Browser tests: the real web app served on 127.0.0.1, driven in Debian's Chromium by
Playwright (its own browser download can't be reached here; `.ci/run` installs the
`chromium` package). Screenshots of the main pages go to build/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from assistant import accounts, jobs
from assistant.config import PROJECT_ROOT
from assistant.web import create_app
from tests.conftest import built_app
from tests.web.conftest import ADMIN_PASSWORD, Clock

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "build" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        # As with PostgreSQL: a laptop without it skips, saying why; CI must have it.
        missing = "Debian's chromium is missing: apt-get install chromium (.ci/run does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Tests run as root in CI, where Chromium's own sandbox can't start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def live_app(database_url, tmp_path, now):
    """The demo hospital with an admin, served over HTTP on a free port of 127.0.0.1
    (plain HTTP: cookies not Secure, as `assistant serve` does on this machine)."""
    for app in built_app(database_url, tmp_path, now, ASSISTANT_WEB_COOKIE_SECURE="false",
                         ASSISTANT_WEB_TRY_ACCESS="public"):
        app.clock = Clock(now)
        jobs.seed_file(app, PROJECT_ROOT / "config" / "demo_hospital.toml")
        accounts.create_user(app.services, username="admin", password=ADMIN_PASSWORD, role="admin", now=now)
        server = make_server("127.0.0.1", 0, create_app(app), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        app.base_url = f"http://127.0.0.1:{server.server_port}"
        try:
            yield app
        finally:
            server.shutdown()
            thread.join(10)


@pytest.fixture
def page(browser, live_app):
    context = browser.new_context(base_url=live_app.base_url, viewport={"width": 1280, "height": 900},
                                  locale="en-US")  # the demo hospital speaks Chinese by default
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
