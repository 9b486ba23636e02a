"""Fixtures for the channel tests: a CareLine with the demo hospital and a Telegram bot."""

from __future__ import annotations

import pytest

from assistant import jobs
from assistant.config import PROJECT_ROOT
from assistant.web import create_app
from tests.conftest import built_app
from tests.fake_providers import FakeTwilio

SECRET = "s3cret-token_for-the-webhook"
TOKEN = "12345678901234567890123456789012"  # the Twilio auth token requests are signed with
PUBLIC_URL = "https://careline.example-hospital.cn"
BOT_TOKEN = "123456:ABCDEF"


@pytest.fixture
def telegram_app(database_url, tmp_path, now):
    yield from built_app(database_url, tmp_path, now, ASSISTANT_TELEGRAM_SECRET_TOKEN=SECRET,
                         ASSISTANT_TELEGRAM_BOT_TOKEN=BOT_TOKEN,
                         ASSISTANT_PUBLIC_URL="https://careline.example-hospital.cn")


@pytest.fixture
def telegram_client(telegram_app):
    """The web app of `telegram_app`, with the demo hospital seeded."""
    jobs.seed_file(telegram_app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    return create_app(telegram_app).test_client()


def post_update(client, body, secret=SECRET):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return client.post("/telegram", json=body, headers=headers)


@pytest.fixture
def twilio_app(database_url, tmp_path, now):
    """A CareLine that signs and checks Twilio requests, behind its public URL."""
    yield from built_app(database_url, tmp_path, now, ASSISTANT_TWILIO_AUTH_TOKEN=TOKEN,
                         ASSISTANT_PUBLIC_URL=PUBLIC_URL)


@pytest.fixture
def fake_twilio():
    """Twilio's REST API, faked on 127.0.0.1."""
    fake = FakeTwilio()
    yield fake
    fake.close()
