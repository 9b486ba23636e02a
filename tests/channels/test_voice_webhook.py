"""Twilio Voice: POST /voice and its <Gather> action URLs, with Twilio's own request fields
and signatures, on SQLite and PostgreSQL.

A caller books by keypad and speech; silence is asked again once, then the desk is
dialled; 0 dials the desk; a keyed ID is read back digit by digit; slower speech asked for is kept for the number; a replayed Gather (the same CallSid and step token) changes
nothing; the status callback ends the conversation with the call.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from assistant import jobs
from assistant.booking.models import Booking
from assistant.config import PROJECT_ROOT
from assistant.web import create_app
from tests.conftest import built_app

TOKEN = "12345678901234567890123456789012"
PUBLIC_URL = "https://careline.example-hospital.cn"
CALLER = "+8613800138000"


@pytest.fixture
def voice_app(database_url, tmp_path, now):
    yield from built_app(database_url, tmp_path, now, ASSISTANT_TWILIO_AUTH_TOKEN=TOKEN,
                         ASSISTANT_PUBLIC_URL=PUBLIC_URL)


class Call:
    """One phone call, as Twilio would drive the webhook."""

    def __init__(self, client, sid: str, caller: str = CALLER) -> None:
        self.client, self.sid, self.caller = client, sid, caller
        self.twiml = ""

    def fields(self, **extra) -> dict[str, str]:
        return {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "CallSid": self.sid,
                "CallStatus": "in-progress", "Called": "+8610651200000", "Caller": self.caller,
                "Direction": "inbound", "From": self.caller, "FromCountry": "CN",
                "To": "+8610651200000", "ToCountry": "CN", **extra}

    def post(self, url: str, params: dict[str, str]) -> str:
        signature = RequestValidator(TOKEN).compute_signature(url, params)
        path = urlsplit(url)
        response = self.client.post(path.path + (f"?{path.query}" if path.query else ""),
                                    data=urlencode(params), headers={"X-Twilio-Signature": signature},
                                    content_type="application/x-www-form-urlencoded")
        assert response.status_code in (200, 204), response.status_code
        self.twiml = response.get_data(as_text=True)
        return self.twiml

    def start(self) -> str:
        return self.post(PUBLIC_URL + "/voice", self.fields(CallStatus="ringing"))

    def action(self) -> str:
        found = re.search(r'action="([^"]+)"', self.twiml)
        assert found, self.twiml
        return found.group(1).replace("&amp;", "&")

    def press(self, digits: str) -> str:
        return self.post(self.action(), self.fields(Digits=digits, FinishedOnKey="#"))

    def speak(self, words: str) -> str:
        return self.post(self.action(), self.fields(SpeechResult=words, Confidence="0.91"))

    def silence(self) -> str:
        return self.post(self.action(), self.fields())


@pytest.fixture
def client(voice_app):
    jobs.seed_file(voice_app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    return create_app(voice_app).test_client()


def test_a_call_without_a_valid_signature_is_refused(client):
    response = client.post("/voice", data={"CallSid": "CA1", "From": CALLER},
                           headers={"X-Twilio-Signature": "forged"})
    assert response.status_code == 403


def test_the_first_question_is_a_gather_in_the_callers_language(client):
    twiml = Call(client, "CA0001").start()
    assert '<Gather action="https://careline.example-hospital.cn/voice/gather?t=' in twiml
    assert 'input="dtmf speech"' in twiml and 'timeout="8"' in twiml and 'numDigits="1"' in twiml
    assert 'actionOnEmptyResult="true"' in twiml and 'language="zh-CN"' in twiml
    assert 'voice="Polly.Zhiyu"' in twiml and "为我自己，请按1。" in twiml
    assert 'hints="为我自己' in twiml  # the options, for speech recognition


def test_a_caller_books_by_keypad_and_speech(client, voice_app):
    call = Call(client, "CA0002")
    call.start()
    call.press("1")  # for me
    assert 'finishOnKey="#"' in call.twiml  # the ID number ends with #; * is X
    call.press("11010119450815001" + "4")
    call.speak("王芳")
    call.speak("心内科")
    call.press("1")  # the soonest time
    assert "确认预约吗" in call.twiml
    call.press("1")
    assert "预约成功" in call.twiml
    with voice_app.services.uow.read_only() as uow:
        assert uow.session.execute(select(func.count()).select_from(Booking)).scalar() == 1


def test_a_keyed_id_is_read_back_one_character_at_a_time(client):
    call = Call(client, "CA0012")
    call.start()
    call.press("1")  # for me
    assert "e=id" in call.action()  # the Gather says an ID is being keyed
    call.press("11010519491231002*")  # * is X
    assert "您输入的是：1, 1, 0, 1, 0, 5, 1, 9, 4, 9, 1, 2, 3, 1, 0, 0, 2, X。" in call.twiml
    assert "e=id" not in call.action()  # the name comes next, by speech


def test_a_refused_id_is_not_read_back(client):
    call = Call(client, "CA0013")
    call.start()
    call.press("1")
    call.press("110105194912310021")  # the check character is wrong
    assert "您输入的是" not in call.twiml and "e=id" in call.action()


def test_a_caller_who_asks_for_slower_speech_gets_it_on_this_call_and_the_next(client):
    call = Call(client, "CA0014", caller="+8613800138014")
    first = call.start()
    assert "如果我说得太快，请说：慢一点。" in first and "prosody" not in first
    call.speak("慢一点")
    assert '<prosody rate="slow">好的，我会说慢一点。</prosody>' in call.twiml
    assert '<prosody rate="slow">为我自己，请按1。</prosody>' in call.twiml  # the question again
    call.press("1")
    assert 'rate="slow"' in call.twiml
    later = Call(client, "CA0015", caller="+8613800138014").start()
    assert '<prosody rate="slow">' in later and "如果我说得太快" not in later
    other = Call(client, "CA0016", caller="+8613800138015").start()
    assert "prosody" not in other


def test_silence_asks_again_once_then_dials_the_desk(client):
    call = Call(client, "CA0003")
    call.start()
    assert "<Gather" in call.silence() and "<Dial>" not in call.twiml
    assert "<Dial>+86 10 6512 0000</Dial>" in call.silence()


def test_zero_dials_the_desk(client):
    call = Call(client, "CA0004")
    call.start()
    assert "<Dial>+86 10 6512 0000</Dial>" in call.press("0")


def test_a_replayed_gather_changes_nothing_and_answers_the_same(client):
    call = Call(client, "CA0005")
    call.start()
    url = call.action()
    first = call.post(url, call.fields(Digits="1"))
    again = call.post(url, call.fields(Digits="1"))
    assert first == again and "<Gather" in first
    # The step token is what tells a replay from a new answer to the next question.
    assert parse_qs(urlsplit(url).query)["t"][0] != parse_qs(urlsplit(call.action()).query)["t"][0]


def test_the_status_callback_ends_the_conversation_with_the_call(client, voice_app):
    from assistant import conversations

    def stored_step() -> str:
        index = conversations._address_index(voice_app.services, "voice", CALLER)
        state, _ = conversations._load(voice_app.services, "voice", index)
        return state.step

    call = Call(client, "CA0006")
    call.start()
    call.press("1")
    assert stored_step() == "id_number"
    call.post(PUBLIC_URL + "/voice/status", call.fields(CallStatus="completed", CallDuration="42"))
    assert stored_step() == "menu"  # over with the call; the language is kept
