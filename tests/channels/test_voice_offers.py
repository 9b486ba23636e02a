"""A patient who uses the phone line hears offers and reminders by a call: the real
twilio client places it against a local fake of Twilio's API, and Twilio's own webhook
requests (Direction outbound-api, the patient in To) answer it; on both databases.

A freed place offered to a voice patient on the waitlist rings her; the call asks the
offer ("press 1") and her 1 books it. A draw's result is a call that says it.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from assistant import notify
from assistant.booking import release, results as r, service
from assistant.booking.models import Booking, OutboxMessage
from assistant.booking.service import AddressInput
from assistant.bootstrap import renderer_for
from assistant.channels.senders import TwilioCallSender, TwilioSmsSender
from assistant.web import create_app
from tests.channels.test_voice_webhook import PUBLIC_URL, TOKEN, Call
from tests.fake_providers import LocalTwilioHttpClient
from tests.support import add_hospital, add_slot, person

VISIT = date(2026, 12, 7)
HER_PHONE = "+8613800000777"
HOSPITAL_NUMBER = "+8610651200000"


def senders(fake):
    client = LocalTwilioHttpClient(fake.url)
    return {"phone": TwilioSmsSender("AC" + "0" * 32, TOKEN, HOSPITAL_NUMBER, http_client=client),
            "voice": TwilioCallSender("AC" + "0" * 32, TOKEN, HOSPITAL_NUMBER, answer_url=f"{PUBLIC_URL}/voice",
                                      speech_language={"en": "en-US", "zh_Hans": "cmn-CN"}.get,
                                      http_client=client)}


class CallToHer(Call):
    """A call the hospital placed: Twilio sends the patient's number in To."""

    def fields(self, **extra):
        return {**super().fields(**extra), "Direction": "outbound-api", "From": HOSPITAL_NUMBER,
                "Caller": HOSPITAL_NUMBER, "To": HER_PHONE, "Called": HER_PHONE, **extra}


def test_an_offer_to_a_voice_patient_is_a_call_and_her_1_books_it(twilio_app, fake_twilio, now):
    services = twilio_app.services
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        slot = add_slot(uow.session, depts["eyes"], VISIT, 9, capacity=1, release_at=now - timedelta(days=1))
        uow.commit()
    holder = service.book_slot(services, slot_id=slot, channel="sms", now=now, identity_input=person("Holder"),
                               booked_by=AddressInput("phone", "+8613900000001"))
    waiting = release.request_place(services, department_id=depts["eyes"], visit_date=VISIT, part="any",
                                    channel="voice", now=now, booked_by=AddressInput("phone", HER_PHONE),
                                    identity_input=person("Li Na"))
    assert isinstance(waiting, r.Requested) and waiting.kind == "waitlist"
    service.cancel_booking(services, code=holder.booking.code, requester=AddressInput("phone", "+8613900000001"),
                           channel="sms", now=now)
    report = notify.deliver_due(services, senders(fake_twilio), renderer_for(twilio_app), now, worker="w",
                                default_locale="en")
    assert report.sent == 1
    [call] = fake_twilio.calls
    assert call["To"] == HER_PHONE and call["Url"] == f"{PUBLIC_URL}/voice"
    assert fake_twilio.accepted == []  # a call, not an SMS

    client = create_app(twilio_app).test_client()
    answered = CallToHer(client, "CA" + "1" * 32)
    twiml = answered.start()
    assert 'numDigits="1"' in twiml and "/voice/gather" in twiml
    answered.press("1")
    with services.uow.read_only() as uow:
        booked = uow.session.execute(select(Booking.booked_by_address_id, Booking.channel).where(
            Booking.status == "booked")).all()
    assert len(booked) == 1 and booked[0][1] == "voice"


def test_a_draw_result_to_a_voice_patient_is_a_call_that_says_it(twilio_app, fake_twilio, now):
    services = twilio_app.services
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        add_slot(uow.session, depts["eyes"], VISIT, 9, capacity=1, release_at=now + timedelta(hours=2),
                 requests_open_at=now - timedelta(hours=1))
        uow.commit()
    release.request_place(services, department_id=depts["eyes"], visit_date=VISIT, part="any", channel="voice",
                          now=now, booked_by=AddressInput("phone", HER_PHONE), identity_input=person("Li Na"))
    service.remember_locale(services, AddressInput("phone", HER_PHONE), "zh_Hans", patient_ref=None, now=now)
    [draw] = release.list_draws(services)
    release.run_draw(services, draw.id, now=now + timedelta(hours=2), worker="w")
    with services.uow.read_only() as uow:
        code = uow.session.execute(select(Booking.code)).scalar_one()
        assert uow.session.execute(select(OutboxMessage.channel)).scalar_one() == "voice"
    notify.deliver_due(services, senders(fake_twilio), renderer_for(twilio_app), now + timedelta(hours=2),
                       worker="w", default_locale="en")
    [call] = fake_twilio.calls
    assert call["To"] == HER_PHONE and call["Twiml"].count("<Say") == 2
    assert " ".join(code) in call["Twiml"]  # spoken one character at a time
    assert 'language="cmn-CN"' in call["Twiml"] and "抽签" in call["Twiml"]  # in her language
