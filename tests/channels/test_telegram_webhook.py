"""Telegram: POST /telegram with Bot API updates, long polling and registering the webhook,
through python-telegram-bot; on SQLite and PostgreSQL.

Updates are shaped as in the Bot API documentation. The secret-token check, the inline
sendMessage reply with its big reply-keyboard buttons, a tapped button, a replayed
update_id, and polling and set-webhook against a local fake of the Bot API.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from assistant import jobs
from assistant.booking.models import ConversationRecord
from assistant.bootstrap import renderer_for
from assistant.config import PROJECT_ROOT
from assistant.telegram_polling import poll, set_webhook
from tests.channels.conftest import BOT_TOKEN, SECRET, post_update as post
from tests.fake_providers import FakeTelegram

CHAT = 1111111


@pytest.fixture
def client(telegram_client):
    return telegram_client


def update(update_id: int, text: str, language: str = "es") -> dict:
    """A private message, as the Bot API sends it."""
    return {"update_id": update_id, "message": {
        "message_id": 1365 + update_id, "date": 1796000000, "text": text,
        "chat": {"id": CHAT, "type": "private", "first_name": "María", "username": "maria"},
        "from": {"id": CHAT, "is_bot": False, "first_name": "María", "username": "maria",
                 "language_code": language}}}


@pytest.mark.parametrize("secret", [None, "", "wrong-secret"])
def test_a_wrong_or_missing_secret_token_is_refused(client, telegram_app, secret):
    assert post(client, update(1, "/start"), secret).status_code == 403
    with telegram_app.services.uow.read_only() as uow:
        assert uow.session.execute(select(func.count()).select_from(ConversationRecord)).scalar() == 0


def test_start_is_answered_inline_with_big_buttons_in_the_users_language(client):
    reply = post(client, update(1, "/start")).get_json()
    assert reply["method"] == "sendMessage" and reply["chat_id"] == CHAT
    assert "¿Para quién es la cita?" in reply["text"]
    keyboard = reply["reply_markup"]
    assert keyboard["resize_keyboard"] is True
    assert [row[0]["text"] for row in keyboard["keyboard"]][:2] == ["1 Para mí", "2 Para otra persona"]


def test_tapping_a_button_answers_the_question(client):
    post(client, update(1, "/start"))
    reply = post(client, update(2, "1 Para mí")).get_json()
    assert "documento" in reply["text"].lower() or "identidad" in reply["text"].lower()
    assert reply["reply_markup"] == {"remove_keyboard": True}  # an ID number is typed


def test_a_replayed_update_answers_the_same_and_changes_once(client):
    post(client, update(1, "/start"))
    first = post(client, update(2, "1")).get_data(as_text=True)
    again = post(client, update(2, "1")).get_data(as_text=True)
    assert first == again
    # Had the replay run again, it would have been read at the ID question; the ID is
    # taken instead, and the name is asked.
    assert "nombre" in post(client, update(3, "110101194508150014")).get_json()["text"]


def test_polling_answers_through_the_same_path(telegram_app):
    jobs.seed_file(telegram_app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    fake = FakeTelegram()
    fake.updates = [update(10, "/start", "en"), update(11, "1", "en")]
    try:
        sent = poll(telegram_app, renderer_for(telegram_app), BOT_TOKEN, stop=threading.Event(),
                    base_url=f"{fake.url}/bot", timeout=0, rounds=2)
        assert sent == 2
        texts = [fields["text"] for method, fields in fake.calls if method == "sendMessage"]
        assert "Who is the appointment for?" in texts[0] and "ID card number" in texts[1]
        assert [method for method, _ in fake.calls][:2] == ["getMe", "deleteWebhook"]
    finally:
        fake.close()


def test_set_webhook_registers_the_url_with_its_secret():
    fake = FakeTelegram()
    try:
        assert set_webhook(BOT_TOKEN, "https://careline.example-hospital.cn/telegram", SECRET,
                           base_url=f"{fake.url}/bot")
        [fields] = [fields for method, fields in fake.calls if method == "setWebhook"]
        assert fields["url"] == "https://careline.example-hospital.cn/telegram"
        assert fields["secret_token"] == SECRET
    finally:
        fake.close()
