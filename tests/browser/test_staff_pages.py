"""Staff pages in real Chromium, on SQLite and PostgreSQL: logging in, roles, the desk.

The whole scenario of the issue (an admin sets up a clinic, a patient books on /try, a
clerk checks her in) is in test_scenario.py; this file covers what a browser adds to
tests/web: cookies, CSRF tokens in real forms, and what each role sees.
"""

from __future__ import annotations

from tests.browser.conftest import screenshot
from tests.web.conftest import ADMIN_PASSWORD

CLERK_PASSWORD = "clerk password 42"


def log_in(page, username: str, password: str) -> None:
    page.goto("/admin/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_role("button", name="Log in").click()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()


def test_the_admin_makes_a_clerk_who_cannot_open_admin_pages(page):
    log_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Staff accounts").first.click()
    page.fill("#new-username", "desk1")
    page.fill("#new-password", CLERK_PASSWORD)
    page.select_option("#new-role", "clerk")
    page.get_by_role("button", name="Create account").click()
    assert "Account desk1 created." in page.inner_text("main")
    screenshot(page, "admin-staff-accounts")
    log_out(page)
    log_in(page, "desk1", CLERK_PASSWORD)
    assert "Staff accounts" not in page.inner_text("header")
    response = page.goto("/admin/users")
    assert response.status == 403
    page.goto("/admin/desk")
    assert page.get_by_role("button", name="Check in").is_visible()
    screenshot(page, "desk")


def test_a_wrong_password_is_told_kindly_and_the_page_speaks_chinese_when_asked(page):
    log_in(page, "admin", "not the password")
    assert "That username and password do not match." in page.inner_text("main")
    page.select_option("#ui-locale", "zh_Hans")
    page.get_by_role("button", name="Change").click()
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
