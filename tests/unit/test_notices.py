"""Notices in the outbox read well in every language: what happened, the booking code,
how to cancel, and nothing that identifies the patient; no longer than three SMS."""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone

import pytest

from assistant.channels.render import Renderer
from assistant.channels.sms_segments import count_segments
from assistant.config import CONFIG_DIR, LOCALES_DIR
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
                                        ("cancelled_for_you", "someone"), ("cancelled_for_you", "staff")])
def test_each_notice_names_the_booking_and_fits_three_sms(renderer, locale, message, by):
    params = {"code": CODE, "department": longest_department_names(),
              "starts_at": STARTS_AT.isoformat(), "by": by}
    text = renderer.text(notice_message(message, params), locale)
    assert CODE in text and "{" not in text
    assert longest_department_names()[locale] in text
    assert "8:30" in text or "08:30" in text
    assert count_segments(text).segments <= 3, (locale, message, len(text), text)


def test_staff_cancellations_say_the_hospital_cancelled():
    params = {"code": CODE, "department": {}, "starts_at": STARTS_AT.isoformat()}
    assert notice_message("cancelled_for_you", {**params, "by": "staff"}).text == TEXTS["cancelled_by_hospital"]
    assert notice_message("cancelled_for_you", {**params, "by": "someone"}).text == TEXTS["cancelled_for_you"]


def test_a_notice_from_a_newer_version_still_reads():
    params = {"code": CODE, "department": {"en": "Cardiology"}, "starts_at": STARTS_AT.isoformat()}
    assert notice_message("something_new", params).params["code"] == CODE
