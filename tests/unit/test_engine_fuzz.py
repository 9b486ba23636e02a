"""Anything a patient can type, at every step: the engine answers, never fails, and
leaves a state that survives storage.

Each step is reached by driving a real conversation with the fake backend (see
test_engine.reach); every example then gets its own copy of that hospital, so a
booking or an opt-out made by one example can't leak into the next.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.engine import Turn, handle
from assistant.engine.flow import TRANSITIONS
from assistant.engine.messages import Ask, End, Handoff, Inbound
from assistant.engine.state import from_json, to_json
from tests.fakes import FakeBackend
from tests.unit.test_engine import NOW, reach

NASTY = [
    "",
    " ",
    "\n\t\r",
    "x" * 10_000,
    "1" * 10_000,
    "你" * 5_000,
    "😀" * 3_000,
    "👍🏽", "👎", "🙅‍♀️", "1️⃣", "❤️‍🔥",
    "\x00", "\x00\x1b[31m1\x1b[0m", "\x1b", "\x7f\x85\u2028\u2029",
    "'; DROP TABLE patient;--",
    "1; DELETE FROM booking WHERE 1=1",
    "<script>alert(1)</script>",
    "{name}", "{0}", "%(name)s", "%s%s%s", "{{}}", "{", "}",
    "\u202eمرحبا שלום 1",
    "\u202e1\u202c",
    "\u200b1\u200b", "\ufeff1", "1\ufe0f",
    "مرحبا", "שלום", "לא", "نعم",
    "０", "９", "＊", "８", "１", "一", "二", "第一个",
    "1 2", "12", "999999999999999999999999", "-1", "1.5", "1e9", "NaN", "∞",
    "yes no", "是不是", "sí no", "YES", "no",
    "cancel", "CANCEL", "stop stop", "START STOP", "8 9", "* 0",
    "2026-02-30", "1900-01-01", "9999-12-31", "0000-00-00", "tomorrow", "明天", "mañana",
    "29 de febrero", "25:61", "下午13点", "12am", "0:00",
    "110105195003070019", "11010519500307001X", "11010519500307001*", "AAAAAAAAAAAAAAAAAA",
    "Ｗａｎｇ Ｆａｎｇ", "O'Brien-Smith", "·", "İstanbul", "ß" * 50,
    "a\ud800b", "\udfff",  # lone surrogates: not valid UTF-8, but a str all the same
]

texts = st.one_of(st.text(max_size=300), st.sampled_from(NASTY),
                  st.text(alphabet=st.characters(codec="utf-8"), max_size=40))


@lru_cache(maxsize=None)
def reached(step: str) -> tuple[FakeBackend, object]:
    fake, turn = reach(step)
    return fake, turn.state


def answers_are_sane(turn: Turn) -> None:
    assert turn.error is None, turn.error
    if turn.ended:
        return
    assert turn.replies, "no reply and not ended"
    # Never a dead end: a question, or a person to turn to.
    assert any(isinstance(r, (Ask, Handoff)) for r in turn.replies), turn.replies
    assert not any(isinstance(r, End) for r in turn.replies)


def survives_storage(turn: Turn) -> None:
    stored = to_json(turn.state)
    assert from_json(stored) == turn.state
    assert turn.state.step in TRANSITIONS


@pytest.mark.parametrize("step", list(TRANSITIONS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
def test_any_text_at_any_step_gets_an_answer(step, text):
    fake, state = reached(step)
    fake = copy.deepcopy(fake)
    turn = handle(state, Inbound(text=text, event_id="fuzz"), fake, NOW)
    answers_are_sane(turn)
    survives_storage(turn)


@pytest.mark.parametrize("step", list(TRANSITIONS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=texts, second=texts)
def test_two_messages_in_a_row_at_any_step_get_answers(step, first, second):
    # The state one odd message leaves behind must itself take any message.
    fake, state = reached(step)
    fake = copy.deepcopy(fake)
    turn = handle(state, Inbound(text=first), fake, NOW)
    turn = handle(from_json(to_json(turn.state)), Inbound(text=second), fake, NOW)
    answers_are_sane(turn)
    survives_storage(turn)


@settings(max_examples=60, deadline=None)
@given(text=texts, hint=st.one_of(st.none(), st.text(max_size=20),
                                  st.sampled_from(["zh-CN", "es-MX", "+8613800138000", "+34", "+", "zh_"])))
def test_any_first_message_gets_an_answer(text, hint):
    turn = handle(None, Inbound(text=text, language_hint=hint), FakeBackend.demo(), NOW)
    answers_are_sane(turn)
    survives_storage(turn)
