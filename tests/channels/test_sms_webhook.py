"""POST /sms with Twilio's own payloads and signatures, on SQLite and PostgreSQL.

Requests carry the fields Twilio's Messaging webhook sends (from Twilio's documentation)
and a signature made by twilio's own RequestValidator. The signature matrix, replays of
one MessageSid (in a row and at once), STOP, plain CANCEL, and a crash inside a turn.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from assistant import jobs
from assistant.booking.models import Booking, ConversationRecord
from assistant.config import PROJECT_ROOT
from assistant.web import create_app
from tests.conftest import built_app

TOKEN = "12345678901234567890123456789012"
PUBLIC_URL = "https://careline.example-hospital.cn"
PATIENT = "+8613800138000"


@pytest.fixture
def twilio_app(database_url, tmp_path, now):
    yield from built_app(database_url, tmp_path, now, ASSISTANT_TWILIO_AUTH_TOKEN=TOKEN,
                         ASSISTANT_PUBLIC_URL=PUBLIC_URL)


@pytest.fixture
def client(twilio_app):
    jobs.seed_file(twilio_app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    return create_app(twilio_app).test_client()


def payload(body: str, sid: str, sender: str = PATIENT) -> dict[str, str]:
    """An inbound SMS as Twilio posts it."""
    return {"ToCountry": "CN", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0",
            "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received",
            "FromCity": "", "Body": body, "FromCountry": "CN", "To": "+8610651200000",
            "ToZip": "", "NumSegments": "1", "MessageSid": sid,
            "AccountSid": "AC00000000000000000000000000000000", "From": sender,
            "ApiVersion": "2010-04-01"}


def signed(params: dict[str, str], url: str = PUBLIC_URL + "/sms", token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def post(client, params, headers=None, **kw):
    return client.post("/sms", data=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded", **(signed(params) if headers is None else headers)},
        **kw)


# ---- the signature matrix -------------------------------------------------------------------


def test_a_valid_signature_gets_twiml_in_the_senders_language(client):
    response = post(client, payload("你好", "SM0001"))
    assert response.status_code == 200 and response.mimetype == "application/xml"
    text = response.get_data(as_text=True)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "请问为谁预约" in text


@pytest.mark.parametrize("case", ["tampered", "missing", "wrong_host", "wrong_scheme", "other_token"])
def test_a_bad_signature_is_refused_and_changes_nothing(client, twilio_app, case):
    params = payload("hello", "SM0002")
    headers = {"tampered": signed(params), "missing": {},
               "wrong_host": signed(params, "https://attacker.example/sms"),
               "wrong_scheme": signed(params, "http://careline.example-hospital.cn/sms"),
               "other_token": signed(params, token="x" * 32)}[case]
    if case == "tampered":
        params = {**params, "Body": "1"}
    response = post(client, params, headers)
    assert response.status_code == 403
    with twilio_app.services.uow.read_only() as uow:
        assert uow.session.execute(select(func.count()).select_from(ConversationRecord)).scalar() == 0


def test_behind_a_proxy_the_public_url_is_what_is_checked(client):
    # The request reaches Flask as http://localhost/sms; Twilio signed the public URL.
    params = payload("hello", "SM0003")
    assert post(client, params, signed(params, "http://localhost/sms")).status_code == 403
    assert post(client, params, signed(params)).status_code == 200


def test_without_an_auth_token_every_request_is_refused(app):
    jobs.seed_file(app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    client = create_app(app).test_client()
    params = payload("hello", "SM0004")
    assert post(client, params, signed(params, "http://localhost/sms", token="")).status_code == 403


# ---- replays -----------------------------------------------------------------------------------


def book_until_the_read_back(client) -> None:
    for n, body in enumerate(["hello", "1", "110101194508150014", "Wang Fang", "cardiology", "1"]):
        assert post(client, payload(body, f"SMbook{n}")).status_code == 200


def bookings(twilio_app) -> int:
    with twilio_app.services.uow.read_only() as uow:
        return uow.session.execute(select(func.count()).select_from(Booking)).scalar()


def test_one_message_sent_ten_times_books_once_and_answers_the_same(client, twilio_app):
    book_until_the_read_back(client)
    answers = {post(client, payload("yes", "SMyes")).get_data(as_text=True) for _ in range(10)}
    assert len(answers) == 1 and "Your booking code is" in answers.pop()
    assert bookings(twilio_app) == 1


def test_one_message_sent_twenty_times_at_once_books_once_and_answers_the_same(client, twilio_app):
    book_until_the_read_back(client)
    flask_app = client.application
    barrier = threading.Barrier(20)

    def send(_):
        barrier.wait()
        return post(flask_app.test_client(), payload("yes", "SMyes-at-once")).get_data(as_text=True)

    with ThreadPoolExecutor(20) as pool:
        answers = set(pool.map(send, range(20)))
    assert len(answers) == 1 and "Your booking code is" in answers.pop()
    assert bookings(twilio_app) == 1


# ---- keywords and failures -----------------------------------------------------------------------


def test_stop_is_recorded_and_answered_with_empty_twiml(client):
    post(client, payload("hello", "SM0010"))
    stopped = post(client, payload("STOP", "SM0011"))
    assert stopped.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    after = post(client, payload("hello", "SM0012"))
    assert "<Message>" not in after.get_data(as_text=True)
    started = post(client, payload("START", "SM0013"))
    assert "<Message>" in started.get_data(as_text=True)


def test_plain_cancel_is_never_a_command(client):
    post(client, payload("hello", "SM0020"))
    text = post(client, payload("CANCEL", "SM0021")).get_data(as_text=True)
    assert "<Message>" in text and "no more messages" not in text


def test_a_crash_inside_a_turn_still_answers_with_a_kind_apology(client, monkeypatch):
    from assistant import conversations

    def broken(*args, **kwargs):
        raise RuntimeError("the database is down")

    monkeypatch.setattr(conversations, "run_turn", broken)
    response = post(client, payload("hello", "SM0030"))
    assert response.status_code == 200
    assert "<Message>" in response.get_data(as_text=True) and "database" not in response.get_data(as_text=True)
