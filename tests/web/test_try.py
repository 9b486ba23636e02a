"""/try, the patient's side in a browser, on SQLite and PostgreSQL.

Driven as a visitor would: fetch the page, take its CSRF token, post the forms, follow
the redirect. A booking made here belongs to a console address that no sender reaches;
each browser session is its own patient; access follows web.try_access; and nothing a
visitor types breaks the page or gets into it unescaped.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from assistant import jobs, notify
from assistant.booking.models import Booking, ChannelAddress, ConversationRecord, OutboxMessage
from assistant.config import PROJECT_ROOT, TRY_ACCESS
from tests.web.conftest import english_app
from tests.conftest import built_app

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_REPLY = re.compile(r'<p class="reply">(.*?)</p>', re.S)
_MINE = re.compile(r'<p class="mine">(.*?)</p>', re.S)
_TG_BUTTON = re.compile(r'<button type="submit" name="message" value="([^"]*)" class="tg-button">')


def _try_app(database_url, tmp_path, now, access: str):
    for built in built_app(database_url, tmp_path, now, ASSISTANT_WEB_TRY_ACCESS=access,
                           ASSISTANT_WEB_COOKIE_SECURE="false"):
        jobs.seed_file(built, PROJECT_ROOT / "config" / "demo_hospital.toml")
        yield built


@pytest.fixture
def try_app(database_url, tmp_path, now):
    yield from _try_app(database_url, tmp_path, now, "public")


@pytest.fixture
def flask_app(try_app):
    return english_app(try_app)


class Visitor:
    """One browser: its own cookies, its own simulated patient."""

    def __init__(self, flask_app) -> None:
        self.client = flask_app.test_client()
        self.page = ""

    def token(self, path: str = "/try") -> str:
        found = _TOKEN.search(self.client.get(path).get_data(as_text=True))
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def post(self, path: str, **data) -> str:
        response = self.client.post(path, data={"csrf_token": self.token(), **data}, follow_redirects=True)
        assert response.status_code == 200, response.status_code
        self.page = response.get_data(as_text=True)
        return self.page

    def start(self, channel: str, locale: str = "en") -> str:
        return self.post("/try/start", channel=channel, locale=locale)

    def send(self, text: str) -> list[str]:
        """The replies this message got (what the page added)."""
        before = len(self.replies())
        self.post("/try/send", message=text)
        return self.replies()[before:]

    def press(self, keys: str) -> list[str]:
        before = len(self.replies())
        for key in keys:
            self.post("/try/key", key=key)
        return self.replies()[before:]

    def replies(self) -> list[str]:
        return [unescape(text) for text in _REPLY.findall(self.page)]

    def buttons(self) -> list[str]:
        return [unescape(label) for label in _TG_BUTTON.findall(self.page)]


def _console_addresses(app) -> list[tuple[int, str]]:
    with app.services.uow.read_only() as uow:
        rows = uow.session.execute(select(ChannelAddress).where(ChannelAddress.kind == "console")).scalars()
        return [(row.id, app.services.keyring.decrypt(row.address_encrypted)) for row in rows]


def _book_by_sms(visitor: Visitor) -> str:
    """Transcript 01's booking, typed into the SMS chat: the code it ends with."""
    visitor.start("sms")
    assert "Who is the appointment for?" in "\n".join(visitor.send("hello"))
    for line, expected in [("for me", "Please send your ID card number."),
                           ("110105 19491231 002x", "What is your full name"),
                           ("Wang Fang", "Which department?"), ("heart", "The soonest free times:"),
                           ("tomorrow morning", "Which time on"), ("9:30", "Book it?")]:
        assert expected in "\n".join(visitor.send(line)), line
    booked = "\n".join(visitor.send("yes"))
    found = re.search(r"Your booking code is ([A-Z0-9]{8})\.", booked)
    assert found, booked
    return found.group(1)


# ---- the three channels --------------------------------------------------------------------


def test_an_sms_booking_belongs_to_a_console_address_that_is_never_sent_to(flask_app, try_app, now):
    visitor = Visitor(flask_app)
    code = _book_by_sms(visitor)
    assert '<p class="mine">Wang Fang</p>' in visitor.page
    [(address_id, address)] = _console_addresses(try_app)
    assert address.startswith("try:") and not any(ch.isdigit() for ch in address[:4])
    with try_app.services.uow.read_only() as uow:
        booking = uow.session.execute(select(Booking).where(Booking.code == code)).scalar_one()
        assert (booking.channel, booking.booked_by_address_id) == ("sms", address_id)
        assert [r.channel for r in uow.session.execute(select(ConversationRecord)).scalars()] == ["sms"]
        assert uow.session.execute(select(OutboxMessage)).first() is None
        # No phone or Telegram address was made for the visitor.
        kinds = {row.kind for row in uow.session.execute(select(ChannelAddress)).scalars()}
    assert kinds == {"console"}

    # Someone else now books for her: no notice is queued for her own (console) address,
    # which nothing could deliver, and delivery with senders for phones and chats sends nothing.
    from assistant.booking import service
    from assistant.booking.inputs import AddressInput, IdentityInput

    department = next(d for d in service.list_departments(try_app.services) if d.code != "cardiology")
    slot = service.availability(try_app.services, department_id=department.id, date_from=now.date(),
                                date_to=now.date().replace(day=20), now=now)[0]
    other = service.book_slot(try_app.services, slot_id=slot.id, channel="sms", now=now, relation="family",
                              booked_by=AddressInput("phone", "+8613800000777"),
                              identity_input=IdentityInput("cn_resident_id", "11010519491231002X", "Wang Fang"))
    assert other.booking.code

    class Recording:
        def __init__(self, kind):
            self.kind, self.sent = kind, []

        def send(self, address, text):
            self.sent.append(address)
            return "ref"

    senders = {"phone": Recording("phone"), "telegram": Recording("telegram")}
    report = notify.deliver_due(try_app.services, senders, flask_app.config["CARELINE_RENDERER"], now,
                                worker="test", default_locale="en")
    assert report.handled == 0 and senders["phone"].sent == senders["telegram"].sent == []
    with try_app.services.uow.read_only() as uow:
        assert uow.session.execute(select(OutboxMessage)).first() is None


def test_the_transcript_in_the_cookie_is_encrypted(flask_app):
    visitor = Visitor(flask_app)
    _book_by_sms(visitor)
    cookie = visitor.client.get_cookie("careline_session").value
    stored = flask_app.session_interface.get_signing_serializer(flask_app).loads(cookie)
    assert "Wang Fang" in visitor.page  # shown on the visitor's own page...
    assert "Wang Fang" not in str(stored) and "19491231" not in str(stored)  # ...never readable in the cookie


def test_the_phone_keypad_shows_what_the_call_says(flask_app):
    visitor = Visitor(flask_app)
    visitor.start("voice")
    greeting = visitor.replies()
    assert "For me: press 1." in greeting and "If I speak too fast, say: slower." in greeting
    assert "<Say" not in visitor.page and "&lt;Say" not in visitor.page
    assert all(f'name="key" value="{key}"' in visitor.page for key in "0123456789*#")
    # One key answers a choice at once.
    assert visitor.press("1") == ["Please send your ID card number.", "Use the keypad, and press star for X."]
    # An ID is keyed, * for X, and sent with #; it is read back.
    assert visitor.press("11010519491231002*") == []
    assert '<output id="entry">11010519491231002*</output>' in visitor.page
    said = visitor.press("#")
    assert said[0] == "You entered: 1, 1, 0, 1, 0, 5, 1, 9, 4, 9, 1, 2, 3, 1, 0, 0, 2, X."
    assert said[1].startswith("What is your full name")
    assert '<output id="entry">—</output>' in visitor.page
    # Speech goes in the text box.
    assert "Which department?" in visitor.send("Wang Fang")
    assert "You say: Wang Fang" in visitor.page
    # Hanging up ends the call; calling again greets afresh.
    visitor.post("/try/hangup")
    assert 'name="key"' not in visitor.page and "Call again" in visitor.page
    visitor.post("/try/call")
    assert "Hello, this is the hospital's booking service." in visitor.replies()[-8:]


def test_the_keypad_speaks_the_chosen_language(flask_app):
    visitor = Visitor(flask_app)
    visitor.start("voice", locale="es")
    assert "Hola, este es el servicio de citas del hospital." in visitor.replies()
    assert "Para mí: marque 1." in visitor.replies()


def test_telegram_shows_the_options_as_buttons_and_a_tap_sends_one(flask_app):
    visitor = Visitor(flask_app)
    visitor.start("telegram")
    assert visitor.buttons() == ["/start"]
    visitor.send("/start")
    buttons = visitor.buttons()
    assert buttons[:2] == ["1 For me", "2 For someone else"]
    assert visitor.send(buttons[0]) == ["Please send your ID card number."]
    assert visitor.buttons() == []  # a question without options: the keyboard goes away


def test_choosing_another_channel_starts_a_new_conversation(flask_app):
    visitor = Visitor(flask_app)
    visitor.start("sms")
    visitor.send("hello")
    visitor.send("for me")
    visitor.start("telegram")
    assert 'id="transcript"' in visitor.page and "for me" not in visitor.page
    visitor.send("hello")
    assert "Who is the appointment for?" in visitor.replies()[-1]


def test_start_again_is_a_new_patient(flask_app, try_app):
    visitor = Visitor(flask_app)
    visitor.start("sms")
    visitor.send("hello")
    visitor.send("for me")
    visitor.start("sms")
    assert "Nothing said yet." in visitor.page and "for me" not in visitor.page
    assert "Hello, this is the hospital's booking service." in "\n".join(visitor.send("1"))
    with try_app.services.uow.read_only() as uow:
        assert len(uow.session.execute(select(ConversationRecord.id)).all()) == 2


@pytest.mark.parametrize("channel", ["sms", "voice", "telegram"])
def test_a_turn_that_fails_gets_the_kind_apology(flask_app, monkeypatch, channel):
    from assistant import conversations

    visitor = Visitor(flask_app)
    visitor.start(channel)

    def broken(*args, **kwargs):
        raise RuntimeError("the database is down")

    monkeypatch.setattr(conversations, "run_turn", broken)
    replies = visitor.send("hello")
    assert replies == ["Sorry, something went wrong on our side. Please try again in a few minutes."]


def test_the_page_keeps_to_the_content_security_policy(flask_app):
    visitor = Visitor(flask_app)
    for channel in ("sms", "voice", "telegram"):
        page = visitor.start(channel)
        assert "<script" not in page and "style=" not in page
        assert page.count('name="csrf_token"') == page.count("<form")
    response = visitor.client.get("/try")
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


# ---- who may use it ---------------------------------------------------------------------------


# The restricted settings config.py accepts, and who passes each: "demo" (the default)
# is "admin" except under `assistant serve`.
RESTRICTED = [access for access in ("staff", "admin", "demo") if access in TRY_ACCESS]


def test_the_default_is_public_under_assistant_serve_only(app):
    from assistant.cli import _served

    assert app.settings.web.try_access == "demo"
    assert _served(app, "127.0.0.1").settings.web.try_access == "public"
    assert english_app(app).test_client().get("/try").status_code == 302  # gunicorn: log in first


def _logged_in(flask_app, username: str, password: str) -> Visitor:
    visitor = Visitor(flask_app)
    assert visitor.client.post("/admin/login", data={
        "username": username, "password": password,
        "csrf_token": visitor.token("/admin/login")}).status_code == 302
    return visitor


@pytest.mark.parametrize("access", RESTRICTED)
def test_restricted_access_sends_an_anonymous_visitor_to_the_login(database_url, tmp_path, now, access):
    from assistant import accounts

    for built in _try_app(database_url, tmp_path, now, access):
        flask_app = english_app(built)
        anonymous = flask_app.test_client()
        response = anonymous.get("/try")
        assert response.status_code == 302 and response.location == "/admin/login?next=/try"
        token = _TOKEN.search(anonymous.get("/admin/login").get_data(as_text=True)).group(1)
        refused = anonymous.post("/try/send", data={"csrf_token": token, "message": "hello"})
        assert refused.status_code == 302 and refused.location.startswith("/admin/login")
        assert _console_addresses(built) == []

        for username, role in (("clerk", "clerk"), ("boss", "admin")):
            accounts.create_user(built.services, username=username, password=f"{username} password ok",
                                 role=role, now=now)
        clerk = _logged_in(flask_app, "clerk", "clerk password ok")
        if access in ("admin", "demo"):
            assert clerk.client.get("/try").status_code == 403
        else:
            clerk.start("sms")
            assert "Who is the appointment for?" in "\n".join(clerk.send("hello"))
        admin = _logged_in(flask_app, "boss", "boss password ok")
        admin.start("sms")
        assert "Who is the appointment for?" in "\n".join(admin.send("hello"))


def test_off_hides_every_try_url(database_url, tmp_path, now):
    for built in _try_app(database_url, tmp_path, now, "off"):
        client = english_app(built).test_client()
        assert client.get("/try").status_code == 404
        token = _TOKEN.search(client.get("/admin/login").get_data(as_text=True)).group(1)
        for path in ("/try/start", "/try/send", "/try/key", "/try/call", "/try/hangup"):
            assert client.post(path, data={"csrf_token": token, "message": "hello"}).status_code == 404
        assert _console_addresses(built) == []


def test_a_post_without_its_csrf_token_is_refused(flask_app, try_app):
    visitor = Visitor(flask_app)
    visitor.start("sms")
    response = visitor.client.post("/try/send", data={"message": "hello"})
    assert response.status_code == 400
    assert visitor.client.post("/try/start", data={"channel": "sms", "csrf_token": "forged"}).status_code == 400
    assert "hello" not in visitor.client.get("/try").get_data(as_text=True)


def test_one_visitor_never_sees_another_ones_conversation(flask_app, try_app):
    first, second = Visitor(flask_app), Visitor(flask_app)
    first.start("sms")
    first.send("hello")
    first.send("for me")
    second_page = second.client.get("/try").get_data(as_text=True)
    assert 'id="transcript"' not in second_page and "for me" not in second_page
    second.start("sms")
    # The second browser is a new patient: greeted, not at the first one's ID question.
    assert "Hello, this is the hospital's booking service." in "\n".join(second.send("1"))
    assert "for me" not in second.page
    with try_app.services.uow.read_only() as uow:
        indexes = uow.session.execute(select(ConversationRecord.address_index)).scalars().all()
    assert len(set(indexes)) == len(indexes) == 2


# ---- hostile input ------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["sms", "voice", "telegram"])
def test_hostile_input_is_answered_kindly_and_escaped(flask_app, channel):
    visitor = Visitor(flask_app)
    visitor.start(channel)
    for text in ("A" * 10_000, "\x00\x01\x07\x1b[31m\u202e\ud7ff\ufeff",
                 '<script>alert("x")</script><img src=x onerror=alert(1)> {{ 7*7 }} {name}'):
        replies = visitor.send(text)
        assert replies, repr(text[:20])
        assert "<script>" not in visitor.page and "<img src=x" not in visitor.page
        assert "style=" not in visitor.page
    assert "&lt;script&gt;alert(" in visitor.page
    assert "{{ 7*7 }}" in unescape(visitor.page) and "49" not in _MINE.findall(visitor.page)[-1]
    # A page never holds more than a clip of what was typed, and the chat goes on.
    assert "A" * 301 not in visitor.page
    assert visitor.send("hello")


def test_a_long_conversation_keeps_the_cookie_small(flask_app):
    visitor = Visitor(flask_app)
    visitor.start("sms", locale="zh_Hans")
    for n in range(45):
        visitor.send(f"{n} " + "长" * 2000)
        cookie = visitor.client.get_cookie("careline_session")
        assert cookie is not None and len(cookie.value) < 3800, n
    assert 0 < len(visitor.replies()) < 45
    assert "44 " in visitor.page  # the newest is kept, the oldest dropped
