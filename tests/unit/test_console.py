"""The console channel: one JSON line per message, and an apology instead of a crash."""

from __future__ import annotations

import io
import json

from assistant.channels.console import ConsoleSession, run_jsonl
from assistant.channels.render import Renderer
from assistant.config import LOCALES_DIR
from assistant.i18n import Catalogs, compile_catalogs


def renderer() -> Renderer:
    compile_catalogs(LOCALES_DIR)
    return Renderer(Catalogs(LOCALES_DIR, default="en"), "Asia/Shanghai")


def failing_turn(channel, address, inbound):
    raise RuntimeError("database is locked")


def test_a_failing_turn_gets_an_apology_line_not_a_traceback():
    session = ConsoleSession("sms", "+8613800000000", renderer(), failing_turn, "en")
    sink = io.StringIO()
    run_jsonl(session, io.StringIO("hello\n1\n"), sink)
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert len(lines) == 2
    assert set(lines[0]) == {"replies", "options", "expect", "ended"}
    assert lines[0]["replies"] == ["Sorry, something went wrong on our side. Please try again in a few minutes."]
    assert lines[0]["ended"] is False


def test_a_phone_number_is_the_language_hint_when_none_is_chosen():
    assert ConsoleSession("sms", "+34600123456", renderer(), failing_turn, "en").language_hint == "+34600123456"
    assert ConsoleSession("telegram", "100", renderer(), failing_turn, "en").language_hint is None
    assert ConsoleSession("sms", "+34600123456", renderer(), failing_turn, "en", "zh_Hans").language_hint == "zh_Hans"
