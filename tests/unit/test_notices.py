"""Notices in the outbox read well in every language: what happened, the booking code,
how to cancel, and nothing that identifies the patient; no longer than three SMS."""

from __future__ import annotations

import re
import tomllib
from datetime import datetime, timezone

import pytest

from assistant.channels.render import Renderer
from assistant.channels.sms_segments import count_segments
from assistant.config import CONFIG_DIR, LOCALES_DIR
from assistant.engine.messages import When, msg
from assistant.i18n import Catalogs, compile_catalogs
from assistant.notices import TEXTS, notice_message

LOCALES = ("en", "zh_Hans", "es")
STARTS_AT = datetime(2026, 12, 2, 0, 30, tzinfo=timezone.utc)  # 08:30 in Beijing
CODE = "KM7QX3PA"


def longest_department_names() -> dict[str, str]:
    with open(CONFIG_DIR / "demo_hospital.toml", "rb") as handle:
        departments = tomllib.load(handle)["departments"]
    return {locale: max((d["names"][locale] for d in departments), key=len) for locale in LOCALES}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    compile_catalogs(LOCALES_DIR)
    return Renderer(Catalogs(LOCALES_DIR, default="en"), "Asia/Shanghai")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("message,by", [("booked_for_you", "someone"), ("moved_for_you", "someone"),
                                        ("cancelled_for_you", "someone"), ("cancelled_for_you", "staff"),
                                        # A fair release: the draw's result, a freed place, a request
                                        # made in the patient's name, the reminder.
                                        ("draw_placed", None), ("draw_waitlisted", None),
                                        ("draw_refused", None), ("place_offered", None),
                                        ("requested_for_you", None), ("draw_cancelled", None),
                                        ("reminder", None)])
def test_each_notice_names_the_booking_and_fits_three_sms(renderer, locale, message, by):
    params = {"code": CODE, "department": longest_department_names(), "position": 3, "minutes": 30,
              "starts_at": STARTS_AT.isoformat(), "by": by}
    notice = notice_message(message, params)
    text = renderer.text(notice, locale)
    assert "{" not in text and "}" not in text
    assert longest_department_names()[locale] in text
    if "{code}" in notice.text:
        assert CODE in text
    if "{time}" in notice.text:
        assert "8:30" in text or "08:30" in text
    if "{date}" in notice.text:
        assert renderer.text(msg("{date}", date=When(STARTS_AT, "date_short")), locale) in text
    if "{position}" in notice.text:
        assert re.search(r"(?<![\d:])3(?![\d:])", text.replace(CODE, "")), text
    if "{minutes}" in notice.text:
        assert re.search(r"(?<![\d:])30(?![\d:])", text), text
    assert count_segments(text).segments <= 3, (locale, message, len(text), text)


def test_the_notices_that_name_a_booking_give_its_code_and_time():
    # Every notice about one booking gives its code; one about a place, the time.
    for message in ("booked_for_you", "moved_for_you", "cancelled_for_you", "cancelled_by_hospital",
                    "draw_placed", "reminder"):
        assert "{code}" in TEXTS[message] and "{time}" in TEXTS[message], message
    assert "{time}" in TEXTS["place_offered"] and "{minutes}" in TEXTS["place_offered"]
    assert "{position}" in TEXTS["draw_waitlisted"]


def test_staff_cancellations_say_the_hospital_cancelled():
    params = {"code": CODE, "department": {}, "starts_at": STARTS_AT.isoformat()}
    assert notice_message("cancelled_for_you", {**params, "by": "staff"}).text == TEXTS["cancelled_by_hospital"]
    assert notice_message("cancelled_for_you", {**params, "by": "someone"}).text == TEXTS["cancelled_for_you"]


def test_a_notice_from_a_newer_version_still_reads():
    params = {"code": CODE, "department": {"en": "Cardiology"}, "starts_at": STARTS_AT.isoformat()}
    assert notice_message("something_new", params).params["code"] == CODE
