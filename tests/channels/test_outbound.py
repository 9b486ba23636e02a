"""Delivering the outbox with the real twilio and python-telegram-bot clients, over real
HTTP, against local fakes of their APIs; on SQLite and PostgreSQL.

A notice is written when someone books in a patient's name; delivery sends it to her own
address, in her language, once: through failures and retries, and with two workers at
once. STOP is honoured, and Twilio's status callback updates the delivery record.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from urllib.parse import urlencode

from sqlalchemy import select
from twilio.request_validator import RequestValidator

from assistant import notify
from assistant.booking import service
from assistant.booking.models import OutboxMessage
from assistant.booking.service import AddressInput
from assistant.bootstrap import renderer_for
from assistant.channels.senders import BackgroundLoop, TelegramSender, TwilioSmsSender
from assistant.web import create_app
from tests.channels.conftest import PUBLIC_URL, TOKEN
from tests.fake_providers import FakeTelegram, FakeTwilio, LocalTwilioHttpClient
from tests.support import add_hospital, new_slot, person

HER_PHONE = AddressInput("phone", "+8613800000101")
HER_CHAT = AddressInput("telegram", "700100200")
SOMEONE = AddressInput("phone", "+8613900000202")
VISIT = date(2026, 12, 5)


def sms_sender(fake) -> TwilioSmsSender:
    return TwilioSmsSender("AC" + "0" * 32, TOKEN, "+8610651200000",
                           http_client=LocalTwilioHttpClient(fake.url))


def notices_for_her(services, now, *, own=HER_PHONE, count: int = 1, locale: str | None = "zh_Hans"):
    """She books for herself from `own`; someone else then books `count` times in her name."""
    with services.uow() as uow:
        depts = add_hospital(uow.session, departments=tuple(f"d{n}" for n in range(count + 1)))
        uow.commit()
    her = person("Wang Fang")
    if locale:
        service.remember_locale(services, own, locale, patient_ref=None, now=now)
    service.book_slot(services, identity_input=her, slot_id=new_slot(services, depts["d0"], VISIT, 8),
                      channel="sms", now=now, booked_by=own)
    codes = []
    for n in range(1, count + 1):
        day = VISIT + timedelta(days=7 * n)  # one a week: no quota stands in the way
        made = service.book_slot(services, identity_input=her, channel="sms", now=now,
                                 slot_id=new_slot(services, depts[f"d{n}"], day, 9, release_at=now),
                                 booked_by=SOMEONE, relation="family")
        codes.append(made.booking.code)
    return codes


def outbox_rows(services):
    with services.uow.read_only() as uow:
        rows = uow.session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
        uow.session.expunge_all()
        return rows


def deliver(app, senders, now, worker="w1"):
    return notify.deliver_due(app.services, senders, renderer_for(app), now, worker=worker,
                              default_locale=app.settings.default_locale)


def test_a_notice_goes_to_her_phone_in_her_language_once(twilio_app, fake_twilio, now):
    [code] = notices_for_her(twilio_app.services, now)
    report = deliver(twilio_app, {"phone": sms_sender(fake_twilio)}, now)
    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    [sent] = fake_twilio.accepted
    assert sent["To"] == "+8613800000101" and sent["From"] == "+8610651200000"
    assert code in sent["Body"] and "预约" in sent["Body"]  # Chinese, her language
    assert "Wang" not in sent["Body"]
    [row] = outbox_rows(twilio_app.services)
    assert row.status == "sent" and row.provider_ref == sent["sid"] and row.attempts == 1
    assert deliver(twilio_app, {"phone": sms_sender(fake_twilio)}, now).handled == 0
    assert len(fake_twilio.accepted) == 1


def test_three_failures_then_one_delivery_with_backoff(twilio_app, now):
    fake = FakeTwilio(fail=3)
    try:
        notices_for_her(twilio_app.services, now)
        senders = {"phone": sms_sender(fake)}
        moment, statuses = now, []
        for _ in range(6):
            report = deliver(twilio_app, senders, moment)
            statuses.append((report.sent, report.retried))
            [row] = outbox_rows(twilio_app.services)
            # Not due again before its wait is over.
            assert deliver(twilio_app, senders, moment).handled == 0
            moment = row.next_attempt_at or moment
            if row.status == "sent":
                break
        assert statuses == [(0, 1), (0, 1), (0, 1), (1, 0)]
        assert fake.requests == 4 and len(fake.accepted) == 1
        assert row.status == "sent" and row.attempts == 4
    finally:
        fake.close()


def test_two_workers_at_once_never_send_one_message_twice(twilio_app, fake_twilio, now):
    codes = notices_for_her(twilio_app.services, now, count=4)  # 5 in 90 days at most
    senders = {"phone": sms_sender(fake_twilio)}
    start = threading.Barrier(2)
    reports = []

    def work(name):
        start.wait()
        reports.append(notify.deliver_due(twilio_app.services, senders, renderer_for(twilio_app), now,
                                          worker=name, default_locale="en", limit=1))
        while True:  # keep taking rounds until nothing is left
            more = notify.deliver_due(twilio_app.services, senders, renderer_for(twilio_app), now,
                                      worker=name, default_locale="en", limit=1)
            reports.append(more)
            if more.handled == 0:
                break

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    bodies = [message["Body"] for message in fake_twilio.accepted]
    assert sorted(code for code in codes for body in bodies if code in body) == sorted(codes)
    assert len(bodies) == len(codes) == sum(r.sent for r in reports)


def test_stop_is_honoured(twilio_app, fake_twilio, now):
    notices_for_her(twilio_app.services, now)
    service.set_opted_out(twilio_app.services, HER_PHONE, True, now=now)
    report = deliver(twilio_app, {"phone": sms_sender(fake_twilio)}, now)
    assert report.failed == 1 and fake_twilio.accepted == []
    [row] = outbox_rows(twilio_app.services)
    assert row.status == "failed" and "STOP" in row.last_error


def test_a_channel_without_a_sender_keeps_its_notices_waiting(twilio_app, fake_twilio, now):
    notices_for_her(twilio_app.services, now, own=HER_CHAT)
    assert deliver(twilio_app, {"phone": sms_sender(fake_twilio)}, now).handled == 0
    [row] = outbox_rows(twilio_app.services)
    assert row.status == "pending" and row.attempts == 0


def test_a_notice_goes_to_her_telegram_chat_through_the_bot(twilio_app, now):
    fake, loop = FakeTelegram(fail=1), BackgroundLoop()
    sender = TelegramSender("123456:ABCDEF", loop, base_url=f"{fake.url}/bot")
    try:
        [code] = notices_for_her(twilio_app.services, now, own=HER_CHAT, locale="es")
        assert deliver(twilio_app, {"telegram": sender}, now).retried == 1  # the first try fails
        [row] = outbox_rows(twilio_app.services)
        assert deliver(twilio_app, {"telegram": sender}, row.next_attempt_at).sent == 1
        [sent] = fake.accepted
        assert str(sent["chat_id"]) == "700100200" and code in sent["text"] and "cita" in sent["text"]
    finally:
        sender.close()
        loop.close()
        fake.close()


def test_twilios_status_callback_updates_the_delivery_record(twilio_app, fake_twilio, now):
    notices_for_her(twilio_app.services, now)
    deliver(twilio_app, {"phone": sms_sender(fake_twilio)}, now)
    sid = fake_twilio.accepted[0]["sid"]
    params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32,
              "From": "+8610651200000", "To": "+8613800000101", "ApiVersion": "2010-04-01",
              "SmsSid": sid, "SmsStatus": "delivered"}
    client = create_app(twilio_app).test_client()
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + "/sms/status", params)
    bad = client.post("/sms/status", data=urlencode(params), content_type="application/x-www-form-urlencoded",
                      headers={"X-Twilio-Signature": "forged"})
    assert bad.status_code == 403
    good = client.post("/sms/status", data=urlencode(params), content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": signature})
    assert good.status_code == 204
    [row] = outbox_rows(twilio_app.services)
    assert row.delivery_status == "delivered"


def test_the_worker_says_what_to_set_when_no_sender_is_configured(app):
    from click.testing import CliRunner

    from assistant.cli import main
    from tests.conftest import keys_environ

    env = {"ASSISTANT_DATABASE_URL": app.settings.database_url,
           "ASSISTANT_INSTANCE_PATH": str(app.settings.instance_path),
           "ASSISTANT_GENERATE_SECRETS": "false", **keys_environ()}
    result = CliRunner().invoke(main, ["worker", "--once"], env=env)
    # The scheduled jobs still run; messages wait in the outbox until a sender is set.
    assert result.exit_code == 0, result.output
    assert "ASSISTANT_TWILIO_FROM_NUMBER" in result.output and "draws run 0" in result.output
