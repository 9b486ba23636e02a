"""One booking script through SMS, voice and Telegram ends in the same booking.

The same answers ("for me", an ID number, a name, "cardiology", the first time, "yes")
go through each provider's webhook with its own payloads and signatures; each channel's
patient ends with a booking in the same department at the same time. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from assistant import jobs
from assistant.booking.models import Booking, Department, Slot
from assistant.config import PROJECT_ROOT
from assistant.web import create_app
from tests.channels.test_sms_webhook import payload as sms_payload, signed
from tests.channels.test_telegram_webhook import SECRET, update
from tests.channels.test_voice_webhook import Call
from tests.conftest import built_app
from tests.support import cn_id


@pytest.fixture
def parity_app(database_url, tmp_path, now):
    from tests.channels.test_sms_webhook import PUBLIC_URL, TOKEN

    yield from built_app(database_url, tmp_path, now, ASSISTANT_TWILIO_AUTH_TOKEN=TOKEN,
                         ASSISTANT_PUBLIC_URL=PUBLIC_URL, ASSISTANT_TELEGRAM_SECRET_TOKEN=SECRET)


def test_one_script_books_the_same_on_every_channel(parity_app):
    jobs.seed_file(parity_app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    client = create_app(parity_app).test_client()
    ids = {channel: cn_id(date(1945, 8, 15), sequence=n) for n, channel in enumerate(("sms", "voice", "telegram"))}

    # SMS
    for n, body in enumerate(["hello", "1", ids["sms"], "Wang Fang", "cardiology", "1", "yes"]):
        params = sms_payload(body, f"SMparity{n}", sender="+8613800000501")
        assert client.post("/sms", data=urlencode(params), headers=signed(params),
                           content_type="application/x-www-form-urlencoded").status_code == 200
    # Voice
    call = Call(client, "CAparity", caller="+8613800000502")
    call.start()
    call.press("1")
    call.press(ids["voice"])
    call.speak("Wang Fang")
    call.speak("cardiology")
    call.press("1")
    call.press("1")
    # Telegram
    for n, text in enumerate(["/start", "1", ids["telegram"], "Wang Fang", "cardiology", "1", "yes"]):
        assert client.post("/telegram", json=update(100 + n, text, "en"),
                           headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}).status_code == 200

    with parity_app.services.uow.read_only() as uow:
        rows = uow.session.execute(
            select(Booking.channel, Department.code, Slot.starts_at, Booking.status)
            .join(Slot, Booking.slot_id == Slot.id).join(Department, Booking.department_id == Department.id)
        ).all()
    assert sorted(row.channel for row in rows) == ["sms", "telegram", "voice"]
    assert len({(row.code, row.starts_at, row.status) for row in rows}) == 1
    assert rows[0].code == "cardiology" and rows[0].status == "booked"
