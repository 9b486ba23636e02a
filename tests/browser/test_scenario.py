"""The issue's scenario, in real Chromium, on SQLite and PostgreSQL:

1. an admin logs in; 2. creates a department and a weekly schedule; 3. generates slots;
4. a patient books through /try as SMS, choosing by the labels she reads; 5. a clerk
logs in; 6. finds the booking; 7. checks her in with the ID number from her card;
8. sees the address that booked verified as hers. Screenshots of the main pages go to
build/screenshots/ (the README's come from there).
"""

from __future__ import annotations

import re
from datetime import timedelta

from tests.browser.conftest import screenshot
from tests.browser.test_staff_pages import CLERK_PASSWORD, log_in, log_out
from tests.web.conftest import ADMIN_PASSWORD

ID_NUMBER = "110101194508150014"  # valid check character; born 15 Aug 1945
WEDNESDAY = "2"  # the template form's weekday: Monday is 0; the visit is Wed 2 Dec 2026


def send(page, text: str) -> str:
    """Type into the SMS box and send; the newest reply's text."""
    before = page.locator("#transcript .reply").count()
    page.fill("#message", text)
    with page.expect_navigation():  # a plain form: the page reloads with the reply
        page.get_by_role("button", name="Send").click()
    assert page.locator("#transcript .reply").count() > before, text
    return page.locator("#transcript .reply").last.inner_text()


def option_key(reply: str, label_part: str) -> str:
    """The number in front of the option whose label holds `label_part`, as a patient
    reading the SMS picks it."""
    for line in reply.splitlines():
        found = re.match(r"\s*(\d+)[.)]?\s+(.*)", line)
        if found and label_part.lower() in found.group(2).lower():
            return found.group(1)
    raise AssertionError(f"no option with {label_part!r} in: {reply}")


def test_set_up_a_clinic_book_on_try_and_check_in_at_the_desk(page, live_app):
    # 1-2: the admin sets up Dermatology, open on Wednesday mornings.
    log_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Departments").first.click()
    page.get_by_role("link", name="Add a department").click()
    form = page.locator("#department-form")
    form.locator("[name=code]").fill("dermatology")
    form.locator("[name=name_en]").fill("Dermatology")
    form.locator("[name=name_zh_Hans]").fill("皮肤科")
    form.locator("[name=name_es]").fill("Dermatología")
    page.get_by_role("button", name="Save department").click()
    page.get_by_role("link", name="Add a weekly schedule").click()
    page.select_option("#template-weekday", WEDNESDAY)
    page.fill("#template-start", "09:00")
    page.fill("#template-end", "11:00")
    page.fill("#template-minutes", "30")
    page.fill("#template-capacity", "2")
    page.fill("#template-release-days", "7")
    page.fill("#template-release-time", "15:00")
    page.get_by_role("button", name="Save weekly schedule").click()
    assert "09:00" in page.inner_text("main")

    # 3: slots, and the calendar shows them.
    page.get_by_role("link", name="Slots of this department").click()
    page.fill("#generate-days", "14")
    page.get_by_role("button", name="Generate slots").click()
    assert "0/2" in page.locator("#calendar").inner_text()
    screenshot(page, "admin-slot-calendar")
    page.get_by_role("link", name="Staff accounts").first.click()
    page.fill("#new-username", "desk1")
    page.fill("#new-password", CLERK_PASSWORD)
    page.select_option("#new-role", "clerk")
    page.get_by_role("button", name="Create account").click()
    log_out(page)

    # 4: a patient books on /try as SMS, reading each reply.
    page.goto("/try")
    page.check("input[name=channel][value=sms]")
    page.get_by_role("button", name=re.compile("Start")).click()
    who = send(page, "hello")
    send(page, option_key(who, "for me"))
    send(page, ID_NUMBER)
    send(page, "Wang Fang")
    times = send(page, "dermatology")
    confirm = send(page, option_key(times, "9:00"))
    assert "Dermatology" in confirm and "Book it?" in confirm
    booked = send(page, "yes")
    code = re.search(r"booking code is ([A-Z0-9]{8})", booked).group(1)
    screenshot(page, "try-sms")

    # 5-6: the clerk finds it by code; the patient is masked.
    log_in(page, "desk1", CLERK_PASSWORD)
    page.get_by_role("link", name="Front desk").first.click()
    page.fill("#find-code", code)
    page.get_by_role("button", name="Find").click()
    found = page.inner_text("main")
    assert code in found and ID_NUMBER not in found and "0014" in found

    # 7-8: on the visit day, check-in with the number from the card verifies her address.
    live_app.clock.now = live_app.clock.now + timedelta(days=1)
    page.fill("#checkin-code", code)
    page.fill("#checkin-id", ID_NUMBER)
    screenshot(page, "desk")
    page.get_by_role("button", name="Check in").click()
    assert "Checked in" in page.inner_text("h1")
    assert page.locator("#address-verified").is_visible()
    screenshot(page, "desk-checked-in")

    page.get_by_role("link", name="Dashboard").first.click()
    assert page.locator("#dashboard-chart svg.dept-chart").count() >= 1
    screenshot(page, "admin-dashboard", full_page=False)  # the first screenful: the README shows it
