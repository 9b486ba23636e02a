"""Every button the engine offers is understood when tapped, in every step and language.

A Telegram button sends its text, "key label" ("1 8:00 AM", "3 我的预约：查看、取消或修改"),
and a patient reading an SMS may type the label itself. Both must pick the same option
as the bare key does. And a number that isn't an option (-1, 1.5, 1-2, a number inside
a sentence) never picks one, above all at a confirmation.
"""

from __future__ import annotations

import copy

import pytest

from assistant.channels.telegram import render_telegram
from assistant.engine.flow import TRANSITIONS, Step
from tests.fakes import shared_renderer
from tests.unit.test_engine import ROUTES, reach, send

LOCALES = ("en", "zh_Hans", "es")
MENU_STEPS = [step for step in TRANSITIONS if step in ROUTES]


def outcome(turn):
    """What a choice led to: the step and the choices made, not clocks or labels."""
    state = turn.state
    return (state.step, state.locale, state.patient_ref, state.relation, state.department_id,
            state.day, state.day_part, state.slot_id, state.booking_code, state.rescheduling,
            state.page, state.draft)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("step", MENU_STEPS)
def test_tapping_each_button_picks_what_its_key_picks(step, locale):
    fake, turn = reach(step, locale=locale)
    rendered = render_telegram(turn.replies, turn.state.locale or locale, shared_renderer())
    if not rendered.buttons:
        pytest.skip(f"{step} asks for text, not a choice")
    for (button,), option in zip(rendered.buttons, rendered.options):
        by_key_fake, by_button_fake, by_label_fake = (copy.deepcopy(fake) for _ in range(3))
        by_key = send(by_key_fake, turn.state, option.key)
        by_button = send(by_button_fake, turn.state, button)
        assert by_button.error is None
        assert outcome(by_button) == outcome(by_key), (step, locale, button)
        assert by_button_fake.calls == by_key_fake.calls, (step, locale, button)
        by_label = send(by_label_fake, turn.state, option.label)
        assert outcome(by_label) == outcome(by_key), (step, locale, option.label)


NOT_OPTIONS = ["-1", "+1", "−1", "1.5", "1-2", "0.1", "1/2", "99", "I need 2 appointments",
               "my 2 children are ill", "2 weeks ago", "room 1 is cold"]


@pytest.mark.parametrize("text", NOT_OPTIONS)
def test_a_number_that_is_not_an_option_never_books(text):
    fake, turn = reach(Step.CONFIRM)
    after = send(fake, turn.state, text)
    assert fake.calls == [] and after.state.step == Step.CONFIRM
    assert "Sorry, I did not understand." in [r.msg.text for r in after.replies if hasattr(r, "msg")]


@pytest.mark.parametrize("text", NOT_OPTIONS)
@pytest.mark.parametrize("step", [Step.MENU, Step.WHO, Step.DEPARTMENT, Step.DAY, Step.TIME,
                                  Step.BOOKING_ACTION, Step.CANCEL_CONFIRM])
def test_a_number_that_is_not_an_option_never_picks_one(step, text):
    fake, turn = reach(step)
    after = send(fake, turn.state, text)
    assert fake.calls == []
    # It stays (asked again) or reads the words, never a menu number: no option's step.
    by_key = {send(copy.deepcopy(fake), turn.state, key).state.step for key, _ in turn.state.menu}
    assert after.state.step == step or after.state.step not in by_key - {step}
