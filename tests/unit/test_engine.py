"""The engine against an in-memory backend: state, flow table, languages, global keys,
forgiveness, expiry, refusals and failures. No database.

Every conversation here is driven through `engine.handle` the way a channel would,
so a state "at a step" is one a real patient can reach. `reach()` and friends are
also used by the fuzz and SMS-budget tests.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Sequence

import pytest

from assistant.engine import Turn, handle, ports
from assistant.engine.flow import TRANSITIONS, FlowError, Step, back_of, check_move
from assistant.engine.messages import (
    Ask, End, Handoff, Inbound, InboundKind, Msg, Names, Say, When,
)
from assistant.engine.state import STATE_VERSION, Conversation, IdentityDraft, from_json, to_json
from assistant.engine.steps import STEPS
from tests.fakes import TZ, FakeBackend, check_char

# Tuesday 1 December 2026, 09:00 in Beijing: the demo hospital's "today".
NOW = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)
ID_FIRST17 = "11010519500307001"
CN_ID = ID_FIRST17 + check_char(ID_FIRST17)  # born 1950-03-07, last four "0019"
GENERIC_ID = "E12345678"  # a generic ID kind: no birth date inside
DESK_PHONE = FakeBackend().hospital().desk_phone
ALL_STEPS = list(TRANSITIONS)

HELP_TEXT = ("Help: answer with the number of your choice. 0 is a person, 9 repeats, * goes back, "
             "8 changes language, MENU starts over, STOP ends messages.")
OFFER_PERSON = "Or choose 0 to talk to a person."
SWITCHED = "I will speak English with you."


# ---- driving a conversation ----------------------------------------------------------------


def say(text: str) -> tuple[str, str]:
    """A route step: send this text."""
    return ("say", text)


def pick(value_prefix: str) -> tuple[str, str]:
    """A route step: send the key of the option whose value starts with this."""
    return ("pick", value_prefix)


# A new address is asked straight away who the appointment is for (no menu to skip).
NEW_PATIENT = (pick("me"), say(CN_ID), say("Wang Fang"))
TO_DEPARTMENT = NEW_PATIENT  # the birth date is read back at the end, not asked
TO_SOONEST = TO_DEPARTMENT + (pick("dept:1"),)
TO_CONFIRM = TO_SOONEST + (pick("slot:"),)

# How a new address (or, for NEEDS_A_BOOKING, one that booked before) reaches each step.
ROUTES: dict[str, tuple[tuple[str, str], ...]] = {
    Step.MENU: (),
    Step.LANGUAGE: (say("8"),),
    Step.WHO: (),
    Step.ID_NUMBER: (pick("me"),),
    Step.NAME: (pick("me"), say(CN_ID)),
    Step.ID_DOCUMENT: (pick("me"), say(GENERIC_ID)),
    Step.ID_COUNTRY: (pick("me"), say(GENERIC_ID), pick("passport")),
    Step.BIRTH_DATE: (pick("me"), say(GENERIC_ID), pick("passport"), say("France"), say("Wang Fang")),
    Step.DEPARTMENT: TO_DEPARTMENT,
    Step.SOONEST: TO_SOONEST,
    Step.DAY: TO_SOONEST + (pick("other_day"),),
    Step.DAY_PART: TO_SOONEST + (pick("other_day"), pick("2026-12-02")),
    Step.TIME: TO_SOONEST + (pick("other_day"), pick("2026-12-02"), pick("morning")),
    Step.CONFIRM: TO_CONFIRM,
    Step.FIX: TO_CONFIRM + (pick("no"),),
    # These need a booking made earlier (see `seed_booking`).
    Step.BOOKINGS: (pick("bookings"),),
    Step.BOOKING_ACTION: (pick("bookings"), pick("code:")),
    Step.CANCEL_CONFIRM: (pick("bookings"), pick("code:"), pick("cancel")),
    Step.CLAIM_CODE: (pick("bookings"), pick("claim")),
    Step.CLAIM_LAST4: (pick("bookings"), pick("claim"), say("CODE0001")),
    # Cardiology releases by draw here (see `open_a_draw`): its times are requests.
    Step.REQUEST: TO_SOONEST,
    # An offer from the waitlist arrives after the first message (see `reach`); a new
    # conversation ("hello") asks it first.
    Step.QUESTION: (say("hello"),),
}
NEEDS_A_BOOKING = {Step.MENU, Step.BOOKINGS, Step.BOOKING_ACTION, Step.CANCEL_CONFIRM}
DRAW_DAY = date(2026, 12, 7)


def open_a_draw(fake: FakeBackend, department_id: int = 1, *, now: datetime = NOW) -> None:
    """Requests for the department's 7 December are open until 20:00 today."""
    fake.request_days_[department_id] = [ports.RequestDay(
        DRAW_DAY, "draw", ("morning", "afternoon"), datetime(2026, 12, 1, 20, 0, tzinfo=TZ))]


def offer_a_place(fake: FakeBackend, *, now: datetime = NOW, kind: str = "offer") -> None:
    """A place freed from the waitlist, offered a minute ago for 30 minutes."""
    fake.question = ports.Question(kind, fake.departments_[0].names, datetime(2026, 12, 3, 9, 0, tzinfo=TZ),
                                   now + timedelta(minutes=29), now - timedelta(minutes=1),
                                   "CODE0001" if kind == "reminder" else None)


def seed_booking(fake: FakeBackend, *, ref: int = 1, name: str = "Wang Fang", slot_id: int = 1,
                 relation: str = "self", now: datetime = NOW) -> None:
    """A booking this address made before, as the service layer would hold it."""
    if ref not in fake.patients:
        fake.link(ref, name, CN_ID[-4:], relation)
    fake.book(ref, slot_id, relation, now, None)
    fake.calls.clear()


def home(fake: FakeBackend) -> str:
    """Where a conversation starts: an offer or reminder waiting for an answer, else the
    menu, or for an address that has booked for no one yet, the question who the
    appointment is for."""
    return Step.QUESTION if fake.question is not None else main_menu(fake)


def main_menu(fake: FakeBackend) -> str:
    """Where MENU and `*` from the top lead: an open offer waits, it isn't forced."""
    return Step.MENU if fake.patients or fake.bookings_ else Step.WHO


HOME_QUESTIONS = {Step.MENU: "What would you like to do?", Step.WHO: "Who is the appointment for?"}


def key_for(state: Conversation, value_prefix: str) -> str:
    for key, value in state.menu:
        if value.startswith(value_prefix):
            return key
    raise AssertionError(f"no option {value_prefix!r} at {state.step}: {state.menu}")


def send(fake: FakeBackend, state: Conversation | None, text: str, *, now: datetime = NOW,
         kind: InboundKind = InboundKind.TEXT, hint: str | None = None,
         expiry: timedelta | None = None) -> Turn:
    inbound = Inbound(text=text, kind=kind, language_hint=hint, event_id=f"evt-{len(fake.calls)}-{text[:20]}")
    return handle(state, inbound, fake, now, expiry=expiry)


def drive(fake: FakeBackend, route: Sequence[tuple[str, str]], *, locale: str = "en",
          turn: Turn | None = None, now: datetime = NOW) -> Turn:
    """Start a conversation in `locale` (by the channel's hint) and follow the route."""
    if turn is None:
        turn = send(fake, None, "1", hint=locale, now=now)
        assert turn.state.locale == locale
    for action, value in route:
        text = key_for(turn.state, value) if action == "pick" else value
        turn = send(fake, turn.state, text, now=now)
        assert turn.error is None, turn.error
    return turn


def reach(step: str, *, locale: str = "en", fake: FakeBackend | None = None,
          now: datetime = NOW) -> tuple[FakeBackend, Turn]:
    """A fake hospital and the turn that asked `step`'s question."""
    fake = fake or FakeBackend.demo()
    if step in NEEDS_A_BOOKING and not fake.bookings_:
        seed_booking(fake, now=now)
    if step == Step.REQUEST:
        open_a_draw(fake, now=now)
    if step == Step.QUESTION:
        turn = drive(fake, (), locale=locale, now=now - timedelta(minutes=10))
        offer_a_place(fake, now=now - timedelta(minutes=4))  # asked five minutes ago
        turn = drive(fake, ROUTES[step], locale=locale, now=now, turn=turn)
        assert turn.state.step == step, f"the route to {step} ended at {turn.state.step}"
        return fake, turn
    turn = drive(fake, ROUTES[step], locale=locale, now=now)
    assert turn.state.step == step, f"the route to {step} ended at {turn.state.step}"
    return fake, turn


def says(turn: Turn) -> list[str]:
    return [r.msg.text for r in turn.replies if isinstance(r, Say)]


def asks(turn: Turn) -> list[Ask]:
    return [r for r in turn.replies if isinstance(r, Ask)]


def handoffs(turn: Turn) -> list[Handoff]:
    return [r for r in turn.replies if isinstance(r, Handoff)]


def question_of(turn: Turn) -> Msg:
    found = asks(turn)
    assert found, f"no question in {turn.replies}"
    return found[-1].msg


# ---- state ---------------------------------------------------------------------------------


def full_state() -> Conversation:
    return Conversation(
        step=Step.CONFIRM, locale="zh_Hans", patient_ref=None, relation="family",
        draft=IdentityDraft("cn_resident_id", CN_ID, CN_ID[-4:], "王芳", date(1950, 3, 7)),
        department_id=3, day=date(2026, 12, 30), day_part="afternoon", slot_id=42,
        slot_start=datetime(2026, 12, 30, 14, 30, tzinfo=TZ), booking_code="CODE0007",
        rescheduling=True, resume=Step.DAY, menu=(("1", "yes"), ("2", "no")), page=1,
        retries=1, silences=1, updated_at=datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc))


def test_state_round_trips_through_json_with_a_draft_and_dates():
    state = full_state()
    restored = from_json(to_json(state))
    assert restored == state
    assert restored.draft.birth_date == date(1950, 3, 7)
    assert isinstance(restored.day, date) and not isinstance(restored.day, datetime)
    assert restored.slot_start.utcoffset() == timedelta(hours=8)
    assert restored.menu == (("1", "yes"), ("2", "no"))


def test_state_round_trips_without_optional_fields():
    state = Conversation(step=Step.MENU, locale="es")
    assert from_json(to_json(state)) == state


def test_state_json_keeps_chinese_readable():
    assert "王芳" in to_json(full_state())


@pytest.mark.parametrize("version", [0, STATE_VERSION + 1, None, "1"])
def test_stored_state_of_another_version_starts_over_keeping_the_locale(version):
    data = json.loads(to_json(full_state()))
    data["version"] = version
    restored = from_json(json.dumps(data))
    assert restored == Conversation(locale="zh_Hans")
    assert restored.draft is None and restored.slot_id is None


@pytest.mark.parametrize("stored", [None, "", "not json", "[]", "42"])
def test_nothing_usable_stored_means_no_state(stored):
    assert from_json(stored) is None


@pytest.mark.parametrize("text,kind", [
    ("9", InboundKind.TEXT), ("help", InboundKind.TEXT), ("*", InboundKind.TEXT),
    ("menu", InboundKind.TEXT), ("中文", InboundKind.TEXT), ("hola", InboundKind.TEXT),
    ("", InboundKind.SILENCE),
])
def test_state_of_another_version_answers_every_global_key(text, kind):
    # A state restored from another version (or the one saved after an error) must
    # still work: whatever the patient sends gets a question, not an apology.
    restored = from_json('{"version": 0, "locale": "es", "step": "confirm"}')
    turn = send(FakeBackend.demo(), restored, text, kind=kind)
    assert turn.error is None, f"{text!r}: {turn.error}"
    assert asks(turn), f"{text!r}: {turn.replies}"


# ---- the flow table ------------------------------------------------------------------------


@pytest.mark.parametrize("step", ALL_STEPS)
def test_every_next_and_back_names_a_step_in_the_table(step):
    spec = TRANSITIONS[step]
    assert spec.back in TRANSITIONS
    assert spec.next, f"{step} leads nowhere"
    for target in spec.next:
        assert target in TRANSITIONS, f"{step} -> {target}"


def test_every_step_has_handlers_and_every_handler_a_step():
    assert set(STEPS) == set(TRANSITIONS)
    for step, handlers in STEPS.items():
        assert callable(handlers.prompt) and callable(handlers.answer), step
        assert isinstance(handlers.simple_hint, Msg), step


def test_every_step_has_a_route_for_these_tests():
    # The per-step tests here and in test_engine_fuzz.py cover a new step only once
    # it has a route.
    assert set(ROUTES) == set(TRANSITIONS)


def test_every_step_is_reachable_from_the_menu():
    seen, todo = {Step.MENU}, [Step.MENU]
    while todo:
        for target in TRANSITIONS[todo.pop()].next:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    # The language step is a global key's; the question step starts a conversation
    # when an offer or reminder waits for an answer.
    assert seen | {Step.LANGUAGE, Step.QUESTION} == set(TRANSITIONS)


def test_every_step_constant_is_in_the_table():
    names = {value for key, value in vars(Step).items() if not key.startswith("_")}
    assert names == set(TRANSITIONS)


@pytest.mark.parametrize("current,target", [
    (Step.MENU, Step.CONFIRM), (Step.WHO, Step.CONFIRM), (Step.DAY, Step.CANCEL_CONFIRM),
    (Step.BOOKINGS, Step.CONFIRM), (Step.ID_NUMBER, Step.DEPARTMENT), (Step.SOONEST, Step.BOOKINGS),
])
def test_check_move_refuses_a_move_not_in_the_table(current, target):
    with pytest.raises(FlowError):
        check_move(current, target)


def test_check_move_allows_every_listed_move_and_back():
    for step, spec in TRANSITIONS.items():
        for target in spec.next + (spec.back, Step.MENU, Step.LANGUAGE, step):
            check_move(step, target)


def test_back_of_follows_the_table():
    for step, spec in TRANSITIONS.items():
        assert back_of(step) == spec.back


# ---- the first reply's language --------------------------------------------------------------


def first_turn(text: str, *, hint: str | None = None, remembered: str | None = None) -> Turn:
    fake = FakeBackend.demo()
    fake.locale = remembered
    return send(fake, None, text, hint=hint)


def switch_line(turn: Turn) -> Msg:
    lines = [r.msg for r in turn.replies
             if isinstance(r, Say) and r.msg.text == "Other languages: {languages} (or press 8)"]
    assert len(lines) == 1, turn.replies
    return lines[0]


@pytest.mark.parametrize("text,hint,remembered,expected", [
    ("hello", "zh-CN", "es", "es"),  # remembered beats the message and the hint
    ("你好", None, "en", "en"),
    ("你好", "es-MX", None, "zh_Hans"),  # the message beats the hint
    ("hola", "zh-CN", None, "es"),
    ("Hi, I need an appointment", "+8613800138000", None, "en"),
    ("1", "zh-CN", None, "zh_Hans"),  # then the hint
    ("1", "es-MX", None, "es"),
    ("1", "zh_Hans_CN", None, "zh_Hans"),
    ("1", "+8613800138000", None, "zh_Hans"),
    ("1", "+34600123456", None, "es"),
    ("1", None, None, "en"),  # then the default
    ("1", "fr-FR", None, "en"),
    ("1", "+33612345678", None, "en"),
    ("", None, None, "en"),
])
def test_first_reply_language(text, hint, remembered, expected):
    turn = first_turn(text, hint=hint, remembered=remembered)
    assert turn.error is None
    assert turn.state.locale == expected
    assert turn.state.step == Step.WHO  # a new address is asked who the booking is for
    assert switch_line(turn)
    assert asks(turn)


@pytest.mark.parametrize("locale,others", [
    # Latin-script replies name Chinese in their own language: "中文" would make an
    # English SMS cost twice (UCS-2).
    ("en", "Chinese / Español"), ("zh_Hans", "English / Español"), ("es", "English / Chino"),
])
def test_first_reply_has_one_line_on_how_to_switch(locale, others):
    turn = first_turn("1", hint=locale)
    assert switch_line(turn).params["languages"] == others


@pytest.mark.parametrize("text", [
    "I need an appointment for cholangitis",
    "Hello, this is Nicholas",
    "My father needs an appointment after his resuscitation",
])
def test_english_words_that_contain_a_spanish_marker_stay_english(text):
    # "cholangitis" and "Nicholas" contain "hola"; "resuscitation" contains "cita".
    assert first_turn(text).state.locale == "en"


@pytest.mark.parametrize("text,hint,expected", [
    ("English", "+8613800138000", "en"), ("español", "+8613800138000", "es"),
    ("中文", "+34600123456", "zh_Hans"), ("Spanish", None, "es"),
])
def test_first_message_naming_a_language_gets_that_language(text, hint, expected):
    # The switch line tells people to write a language's name; as a first message
    # that name is the clearest sign of all.
    turn = first_turn(text, hint=hint)
    assert turn.error is None
    assert turn.state.locale == expected


def test_first_message_stop_opts_out_in_the_guessed_language():
    fake = FakeBackend.demo()
    turn = send(fake, None, "停止")
    assert fake.opted_out and turn.ended
    assert turn.state.locale == "zh_Hans"


def test_first_message_zero_hands_off_and_the_next_message_is_answered():
    fake = FakeBackend.demo()
    first = send(fake, None, "0", hint="es")
    assert handoffs(first)[0].desk_phone == DESK_PHONE
    assert first.state.locale == "es"
    repeat = send(fake, first.state, "9")
    assert repeat.error is None, repeat.error
    assert asks(repeat)


# ---- switching language ------------------------------------------------------------------------

SWITCH_STEPS = [s for s in ALL_STEPS if s != Step.LANGUAGE]


@pytest.mark.parametrize("step", SWITCH_STEPS)
def test_key_8_switches_language_and_returns_to_the_same_step(step):
    fake, turn = reach(step)
    before = question_of(turn)
    assert fake.locale is None
    chooser = send(fake, turn.state, "8")
    assert chooser.state.step == Step.LANGUAGE and chooser.state.resume == step
    back = send(fake, chooser.state, key_for(chooser.state, "zh_Hans"))
    assert back.error is None
    assert back.state.step == step
    assert back.state.locale == "zh_Hans"
    assert fake.locale == "zh_Hans"  # remember_locale was called
    assert SWITCHED in says(back)
    assert question_of(back) == before
    assert back.state.resume is None


@pytest.mark.parametrize("step", SWITCH_STEPS)
@pytest.mark.parametrize("start,name,expected", [
    ("en", "中文", "zh_Hans"), ("en", "español", "es"), ("zh_Hans", "English", "en"),
    ("es", "中文", "zh_Hans"), ("zh_Hans", "Español", "es"),
])
def test_language_name_switches_from_any_step(step, start, name, expected):
    fake, turn = reach(step, locale=start)
    switched = send(fake, turn.state, name)
    assert switched.error is None
    assert switched.state.step == step
    assert switched.state.locale == expected
    assert fake.locale == expected
    assert says(switched)[0] == SWITCHED
    assert question_of(switched) == question_of(turn)


def test_language_step_takes_a_name_as_well_as_a_number():
    fake, turn = reach(Step.LANGUAGE)
    chosen = send(fake, turn.state, "español")
    assert chosen.state.locale == "es" and chosen.state.step == home(fake)
    assert fake.locale == "es"


# ---- global keys in every step --------------------------------------------------------------


@pytest.mark.parametrize("step", ALL_STEPS)
@pytest.mark.parametrize("text", ["HELP", "help", "帮助", "ayuda"])
def test_help_explains_the_keys_and_asks_again(step, text):
    fake, turn = reach(step)
    helped = send(fake, turn.state, text)
    assert helped.error is None
    assert says(helped)[0] == HELP_TEXT
    assert helped.state.step == step
    assert question_of(helped) == question_of(turn)


@pytest.mark.parametrize("step", ALL_STEPS)
@pytest.mark.parametrize("text", ["0", "０", "agent", "人工", "operador"])
def test_zero_hands_off_with_the_desk_phone(step, text):
    fake, turn = reach(step)
    handed = send(fake, turn.state, text)
    assert handed.error is None
    [handoff] = handoffs(handed)
    assert handoff.desk_phone == DESK_PHONE
    assert handoff.reason == "requested"
    assert handoff.desk_hours == Names(dict(fake.hospital().desk_hours))
    assert not handed.ended
    assert handed.state.step == step  # the patient can carry on afterwards


@pytest.mark.parametrize("step", ALL_STEPS)
@pytest.mark.parametrize("text", ["9", "repeat", "重复"])
def test_nine_repeats_the_question(step, text):
    fake, turn = reach(step)
    repeated = send(fake, turn.state, text)
    assert repeated.error is None
    assert repeated.state.step == step
    assert question_of(repeated) == question_of(turn)
    assert asks(repeated)[-1].expect == asks(turn)[-1].expect


@pytest.mark.parametrize("step", ALL_STEPS)
@pytest.mark.parametrize("text", ["slower", "Please speak slowly.", "慢一点", "Más despacio."])
def test_asking_for_slower_speech_is_remembered_and_the_question_asked_again(step, text):
    fake, turn = reach(step)
    assert not fake.slow_speech
    slower = send(fake, turn.state, text)
    assert slower.error is None and fake.slow_speech
    assert slower.state.step == step
    assert question_of(slower) == question_of(turn)
    assert says(slower)[0] == "I will speak more slowly."


@pytest.mark.parametrize("step", ALL_STEPS)
@pytest.mark.parametrize("text", ["*", "back", "atrás", "返回"])
def test_star_goes_back_along_the_table(step, text):
    fake, turn = reach(step)
    back = send(fake, turn.state, text)
    assert back.error is None
    expected = TRANSITIONS[step].back
    assert back.state.step == (main_menu(fake) if expected == Step.MENU else expected)
    assert asks(back)
    assert back.state.retries == 0


@pytest.mark.parametrize("step", ALL_STEPS)
@pytest.mark.parametrize("text", ["MENU", "menu", "菜单", "menú"])
def test_menu_returns_to_the_main_menu(step, text):
    fake, turn = reach(step)
    menu = send(fake, turn.state, text)
    assert menu.error is None
    assert menu.state.step == main_menu(fake)
    assert question_of(menu).text == HOME_QUESTIONS[main_menu(fake)]


@pytest.mark.parametrize("step", ALL_STEPS)
@pytest.mark.parametrize("text", ["STOP", "stop", "退订", "TD", "unsubscribe"])
def test_stop_opts_out_until_start(step, text):
    fake, turn = reach(step)
    stopped = send(fake, turn.state, text)
    assert stopped.error is None
    assert fake.opted_out is True
    assert stopped.ended
    assert isinstance(stopped.replies[-1], End)
    for later in ("hello", "1", "help", "0", "CANCEL"):
        silent = send(fake, stopped.state, later)
        assert silent.replies == () and silent.ended, later
        assert fake.opted_out is True
    started = send(fake, stopped.state, "START")
    assert started.error is None
    assert fake.opted_out is False
    assert not started.ended
    assert started.state.step == home(fake)
    assert says(started)[0] == "Welcome back. You will get our messages again."
    assert started.state.locale == "en"


@pytest.mark.parametrize("step", ALL_STEPS)
def test_start_while_subscribed_begins_again_at_the_menu(step):
    fake, turn = reach(step, locale="es")
    started = send(fake, turn.state, "START")
    assert started.error is None
    assert started.state.step == home(fake) and started.state.locale == "es"
    assert fake.opted_out is False


@pytest.mark.parametrize("step", ALL_STEPS)
@pytest.mark.parametrize("text", ["CANCEL", "cancel", "Cancel", " cancel ", "CANCEL!"])
def test_plain_cancel_is_never_a_command(step, text):
    fake, turn = reach(step)
    bookings_before = [(b.code, b.status) for b in fake.bookings_]
    reply = send(fake, turn.state, text)
    assert reply.error is None
    assert fake.opted_out is False
    assert not reply.ended
    assert not any(call.startswith("cancel") for call in fake.calls)
    assert [(b.code, b.status) for b in fake.bookings_] == bookings_before
    assert not any(isinstance(r, End) for r in reply.replies)
    assert asks(reply)


@pytest.mark.parametrize("step", [Step.MENU, Step.BOOKING_ACTION])
@pytest.mark.parametrize("text", ["CANCEL", "cancel"])
def test_plain_cancel_is_not_understood_where_cancelling_is_offered(step, text):
    # manage.py: "'Cancel' alone is never a command here ... cancelling is a menu
    # number or a two-word phrase" (and transcript 24): the carrier has just opted the
    # sender out, so the word must not pick "My bookings: check, cancel or change" or
    # "Cancel this booking" by its prefix.
    fake, turn = reach(step)
    reply = send(fake, turn.state, text)
    assert reply.state.step == step
    assert says(reply)[0] == "Sorry, I did not understand."


def test_back_from_a_soonest_read_back_returns_to_the_soonest_times():
    # "Book again" picks a slot from the soonest list, so no day was chosen; `*` at the
    # read-back offers the soonest times again, never "those times have just been taken".
    fake = FakeBackend.demo()
    seed_booking(fake)
    turn = drive(fake, (pick("again:"), pick("slot:")))
    back = send(fake, turn.state, "*")
    assert back.error is None
    assert "Sorry, those times have just been taken." not in says(back)
    assert back.state.step == Step.SOONEST


def test_two_word_cancel_phrase_chooses_the_cancel_action():
    fake, turn = reach(Step.BOOKING_ACTION)
    reply = send(fake, turn.state, "cancel booking")
    assert reply.state.step == Step.CANCEL_CONFIRM
    assert not any(call.startswith("cancel") for call in fake.calls)


# ---- forgiveness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ALL_STEPS)
def test_two_failed_answers_simplify_and_offer_a_person(step):
    fake, turn = reach(step)
    first = send(fake, turn.state, "??")
    assert first.error is None and first.state.step == step
    texts = says(first)
    assert STEPS[step].simple_hint.text not in texts
    assert OFFER_PERSON not in texts
    second = send(fake, first.state, "??")
    assert second.error is None and second.state.step == step
    texts = says(second)
    assert STEPS[step].simple_hint.text in texts
    assert texts[-1] == OFFER_PERSON
    assert question_of(second) == question_of(turn)


def test_a_good_answer_resets_the_failures():
    fake, turn = reach(Step.WHO)
    once = send(fake, turn.state, "??")
    moved = send(fake, once.state, key_for(once.state, "me"))
    assert moved.state.step == Step.ID_NUMBER and moved.state.retries == 0
    again = send(fake, moved.state, "??")
    assert OFFER_PERSON not in says(again)


@pytest.mark.parametrize("step", [Step.MENU, Step.ID_NUMBER, Step.DAY, Step.CONFIRM, Step.CANCEL_CONFIRM])
def test_silence_repeats_once_then_hands_off(step):
    fake, turn = reach(step)
    once = send(fake, turn.state, "", kind=InboundKind.SILENCE)
    assert once.error is None and once.state.step == step
    assert says(once)[0] == "I did not hear anything. Here is the question again."
    assert question_of(once) == question_of(turn)
    assert not handoffs(once)
    twice = send(fake, once.state, "", kind=InboundKind.SILENCE)
    assert twice.error is None
    [handoff] = handoffs(twice)
    assert handoff.desk_phone == DESK_PHONE
    assert not asks(twice)
    # An answer in between starts the count again.
    spoken = send(fake, once.state, "9")
    assert spoken.state.silences == 0


# ---- expiry --------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [Step.CONFIRM, Step.FIX, Step.BOOKING_ACTION])
def test_expired_conversation_starts_over_keeping_the_language(step):
    fake, turn = reach(step, locale="zh_Hans")
    later = NOW + timedelta(hours=5)
    restarted = send(fake, turn.state, "1", now=later, expiry=timedelta(hours=4))
    assert restarted.error is None
    assert says(restarted)[0] == "Welcome back. Let us start again."
    # The menu, or (for an address with nothing booked yet) who the booking is for.
    assert restarted.state.step == (Step.MENU if fake.bookings_ else Step.WHO)
    assert restarted.state.locale == "zh_Hans"
    assert restarted.state.draft is None and restarted.state.slot_id is None
    assert restarted.state.updated_at == later
    assert not any(call.startswith(("book", "cancel")) for call in fake.calls)


def test_conversation_within_expiry_carries_on():
    fake, turn = reach(Step.WHO)
    carried = send(fake, turn.state, key_for(turn.state, "me"), now=NOW + timedelta(hours=3),
                   expiry=timedelta(hours=4))
    assert carried.state.step == Step.ID_NUMBER


# ---- refusals ------------------------------------------------------------------------------------

OPENS_AT = datetime(2026, 12, 8, 15, 0, tzinfo=TZ)
UNTIL = date(2027, 3, 1)
DEADLINE = datetime(2026, 12, 1, 16, 0, tzinfo=TZ)

# (rule, params, the step the patient lands on, the date the sentence must tell,
#  whether it also gives the desk's number: only the desk can help with those)
BOOKING_REFUSALS = [
    ("slot_full", {}, Step.SOONEST, None, False),
    ("not_yet_open", {"opens_at": OPENS_AT}, Step.SOONEST, OPENS_AT, False),
    ("booking_closed", {}, Step.SOONEST, None, False),
    ("quota_exceeded", {"quota": "per_department_per_day", "limit": 1}, Step.SOONEST, None, False),
    ("quota_exceeded", {"quota": "per_visit_day", "limit": 2}, Step.SOONEST, None, False),
    ("quota_exceeded", {"quota": "per_7_days", "limit": 3}, Step.SOONEST, None, False),
    ("quota_exceeded", {"quota": "per_90_days", "limit": 5}, Step.SOONEST, None, True),
    ("suspended", {"reason": "no_shows", "until": UNTIL}, Step.MENU, UNTIL, True),
    ("suspended", {"reason": "cancellations", "until": UNTIL}, Step.MENU, UNTIL, True),
    ("already_booked", {}, Step.MENU, None, False),
    ("patients_per_address", {"limit": 3}, Step.MENU, None, True),
    ("quota_exceeded", {"quota": "per_visit_day", "limit": 2, "by_others": True}, Step.MENU, None, True),
    ("suspended", {"reason": "no_shows", "until": UNTIL, "scope": "address"}, Step.MENU, UNTIL, True),
    ("suspended", {"reason": "cancellations", "until": UNTIL, "scope": "address"}, Step.MENU, UNTIL, True),
    ("invalid_address", {}, Step.MENU, None, True),
    ("invalid_identity", {"field": "name"}, Step.ID_NUMBER, None, False),
]
CANCEL_REFUSALS = [
    ("cancellation_deadline", {"deadline": DEADLINE}, Step.MENU, DEADLINE, True),
    ("booking_not_found", {}, Step.MENU, None, False),
]
GENERIC_REFUSAL = "Sorry, that did not work. Please try again, or choose 0 for a person."


def refuse(step: str, rule: str, params: dict) -> tuple[FakeBackend, Turn]:
    fake, turn = reach(step)
    fake.refuse_next = ports.Refused(rule, params)
    return fake, send(fake, turn.state, key_for(turn.state, "yes"))


def refusal_id(case) -> str:
    rule, params = case[0], case[1]
    return "-".join([rule] + [str(params[k]) for k in ("quota", "reason", "scope", "by_others")
                              if k in params])


@pytest.mark.parametrize("case", BOOKING_REFUSALS + CANCEL_REFUSALS, ids=refusal_id)
def test_refusal_becomes_a_kind_sentence_and_a_step_to_act_on(case):
    rule, params, expected_step, moment, desk = case
    at = Step.CONFIRM if case in BOOKING_REFUSALS else Step.CANCEL_CONFIRM
    fake, turn = refuse(at, rule, params)
    assert turn.error is None
    assert not turn.ended
    assert [h.desk_phone for h in handoffs(turn)] == ([DESK_PHONE] if desk else [])
    first = turn.replies[0]
    assert isinstance(first, Say)
    assert first.msg.text != GENERIC_REFUSAL
    assert turn.state.step == (home(fake) if expected_step == Step.MENU else expected_step)
    assert isinstance(turn.replies[-1], Ask)  # the patient can act on it at once
    if moment is not None:
        whens = [v for v in first.msg.params.values() if isinstance(v, When)]
        assert whens and all(w.value == moment for w in whens), first.msg.params
    if "limit" in params and not params.get("by_others"):
        assert first.msg.params["limit"] == params["limit"]
        assert "{limit}" in first.msg.text or params.get("quota") == "per_department_per_day"
    # Nothing was booked or cancelled.
    assert turn.state.slot_id is None
    assert all(b.status == "booked" for b in fake.bookings_)


def test_each_refusal_has_its_own_sentence():
    sentences = {}
    for case in BOOKING_REFUSALS + CANCEL_REFUSALS:
        at = Step.CONFIRM if case in BOOKING_REFUSALS else Step.CANCEL_CONFIRM
        _, turn = refuse(at, case[0], case[1])
        sentences[refusal_id(case)] = turn.replies[0].msg.text
    assert len(set(sentences.values())) == len(sentences), sentences


def test_identity_refusal_for_a_linked_patient_goes_to_the_menu():
    fake = FakeBackend.demo()
    seed_booking(fake)
    turn = drive(fake, (pick("again:"), pick("slot:")))
    assert turn.state.step == Step.CONFIRM
    fake.refuse_next = ports.Refused("identity_mismatch")
    refused = send(fake, turn.state, "1")
    assert refused.state.step == Step.MENU
    assert isinstance(refused.replies[-1], Ask)


def test_unknown_refusal_still_gets_a_polite_sentence():
    fake, turn = refuse(Step.CONFIRM, "something_new", {})
    assert turn.error is None
    assert turn.replies[0].msg.text == GENERIC_REFUSAL
    assert turn.state.step == home(fake)


# ---- the happy paths the other tests rely on ------------------------------------------------------


def test_new_patient_books_after_a_read_back_and_a_yes():
    fake, turn = reach(Step.CONFIRM)
    readback = question_of(turn)
    assert readback.params["name"] == "Wang Fang" and readback.params["last4"] == CN_ID[-4:]
    assert readback.params["date"].value == datetime(2026, 12, 2, 8, 0, tzinfo=TZ)
    assert not fake.calls
    booked = send(fake, turn.state, "yes")
    assert fake.calls == ["book:1"]
    assert says(booked)[0] == "Booked: {date} at {time}. Your booking code is {code}."
    assert booked.state.step == Step.MENU
    assert booked.state.draft is None  # the typed-in ID is not kept


def test_cancellation_needs_a_yes():
    fake, turn = reach(Step.CANCEL_CONFIRM)
    kept = send(fake, turn.state, "no")
    assert "The booking is kept." in says(kept) and not fake.calls
    fake2, turn2 = reach(Step.CANCEL_CONFIRM)
    done = send(fake2, turn2.state, "1")
    assert fake2.calls == ["cancel:CODE0001"]
    assert "The booking {code} is cancelled." in says(done)


def test_reschedule_reads_back_and_moves_the_booking():
    fake, turn = reach(Step.BOOKING_ACTION)
    turn = drive(fake, (pick("change"), pick("other_day"), pick("2026-12-03"), pick("afternoon"),
                        pick("slot:")), turn=turn)
    assert turn.state.step == Step.CONFIRM and turn.state.rescheduling
    assert question_of(turn).text.startswith("Move the booking of {name}")
    moved = send(fake, turn.state, "1")
    assert fake.calls[-1].startswith("reschedule:CODE0001:")
    assert says(moved)[0].startswith("Done: the booking is moved")


# ---- failures never reach the patient ---------------------------------------------------------


class BrokenBackend(FakeBackend):
    """The demo hospital, except that the method named `broken` raises."""

    broken = ""

    def __getattribute__(self, name):
        if name == object.__getattribute__(self, "broken"):
            def fail(*args, **kwargs):
                raise RuntimeError(f"{name} is down")
            return fail
        return object.__getattribute__(self, name)


@pytest.mark.parametrize("method,step,text", [
    ("soonest_slots", Step.DEPARTMENT, "1"),
    ("open_days", Step.SOONEST, "6"),  # "Another day"
    ("check_id_number", Step.ID_NUMBER, CN_ID),
    ("book", Step.CONFIRM, "1"),
    ("cancel", Step.CANCEL_CONFIRM, "1"),
    ("remember_locale", Step.WHO, "中文"),
    ("last_booked", Step.WHO, "menu"),
])
def test_backend_failure_becomes_an_apology_and_a_person(method, step, text):
    fake, turn = reach(step, fake=BrokenBackend.demo())
    fake.broken = method
    failed = send(fake, turn.state, text)
    assert failed.error is not None and "RuntimeError" in failed.error
    assert "/assistant/engine/" in failed.error  # where the engine met the failure
    assert "is down" not in failed.error  # never the message: it could quote a patient
    [handoff] = handoffs(failed)
    assert handoff.desk_phone == DESK_PHONE
    assert says(failed)[0].startswith("Sorry, something went wrong")
    assert failed.state.locale == "en"
    assert from_json(to_json(failed.state)) == failed.state


def test_backend_that_cannot_even_name_the_hospital_still_gets_a_handoff():
    fake = BrokenBackend.demo()
    fake.broken = "hospital"
    failed = send(fake, None, "hello")
    assert failed.error and "RuntimeError" in failed.error
    [handoff] = handoffs(failed)
    assert handoff.desk_phone is None  # the channel then points to the front desk


def test_after_a_failure_the_next_message_is_answered():
    fake, turn = reach(Step.CONFIRM, fake=BrokenBackend.demo())
    fake.broken = "book"
    failed = send(fake, turn.state, "1")
    assert failed.error
    fake.broken = ""
    for text in ("9", "help", "8"):
        after = send(fake, failed.state, text)
        assert after.error is None, f"{text!r} after a failure: {after.error}"
        assert asks(after)


# ---- a booking someone else made: its code and the ID's last four -------------------------------


def test_a_booking_someone_else_made_is_found_by_code_and_last_four_and_cancelled():
    fake = FakeBackend.demo()
    seed_booking(fake)
    fake.bookings_[0].mine = False  # a relative made it: this address can't list it
    code = fake.bookings_[0].code
    listed = drive(fake, (pick("bookings"),))
    assert not any(value.startswith("code:") for _, value in listed.state.menu)
    at_code = send(fake, listed.state, key_for(listed.state, "claim"))
    at_last4 = send(fake, at_code.state, code.lower())
    assert at_last4.state.step == Step.CLAIM_LAST4
    wrong = send(fake, at_last4.state, "9999")
    assert wrong.state.step == Step.BOOKINGS and wrong.state.claim_last4 is None
    assert "No upcoming booking matches that code and ID ending." in says(wrong)
    unknown = drive(fake, (pick("claim"), say("NOSUCHCD"), say(CN_ID[-4:])), turn=wrong)
    assert says(unknown) == says(wrong)[:1]  # a wrong code and a wrong ending: the same words
    found = drive(fake, (pick("claim"), say(code), say(CN_ID[-4:].lower())), turn=unknown)
    assert found.state.step == Step.BOOKING_ACTION and found.state.claim_last4 == CN_ID[-4:]
    done = drive(fake, (pick("cancel"), say("yes")), turn=found)
    assert fake.calls == [f"cancel:{code}:by-code-holder:{CN_ID[-4:]}"]
    assert done.state.claim_last4 is None and done.state.step == Step.MENU


# ---- an intent in the first message ---------------------------------------------------------------


@pytest.mark.parametrize("first,locale", [
    ("book cardiology tomorrow morning", "en"),
    ("预约明天上午心内科", "zh_Hans"),
    ("cita con cardiología mañana por la mañana", "es"),
])
def test_a_first_message_that_names_department_and_day_skips_those_questions(first, locale):
    fake = FakeBackend.demo()
    turn = send(fake, None, first, hint=locale)
    assert turn.state.locale == locale and turn.state.step == Step.WHO
    turn = drive(fake, NEW_PATIENT, locale=locale, turn=turn)
    # Straight to tomorrow morning's times in Cardiology (department 1).
    assert turn.state.step == Step.TIME and turn.state.department_id == 1
    assert turn.state.day == date(2026, 12, 2) and turn.state.day_part == "morning"
    readback = send(fake, turn.state, "1")
    assert readback.state.step == Step.CONFIRM and not fake.calls  # still read back first
    assert readback.state.intent_department is None and readback.state.intent_day is None


def test_a_first_message_without_a_department_keeps_every_question():
    fake = FakeBackend.demo()
    turn = drive(fake, NEW_PATIENT, turn=send(fake, None, "hello, tomorrow please", hint="en"))
    assert turn.state.step == Step.DEPARTMENT


def test_back_from_what_should_change_offers_the_times_again():
    fake, turn = reach(Step.FIX)
    back = send(fake, turn.state, "*")
    assert back.error is None and back.state.step == Step.SOONEST


def test_a_day_a_quota_refused_is_not_offered_again():
    fake, turn = reach(Step.CONFIRM)
    refused_day = turn.state.slot_start.astimezone(TZ).date()
    fake.refuse_next = ports.Refused("quota_exceeded", {"quota": "per_visit_day", "limit": 2})
    again = send(fake, turn.state, "yes")
    assert again.state.step == Step.SOONEST and refused_day in again.state.skip_days
    offered = [value for _, value in again.state.menu if value.startswith("slot:")]
    assert offered and not any(value.split(":", 2)[2].startswith(refused_day.isoformat()) for value in offered)


@pytest.mark.parametrize("text", ["book", "预约", "cita", "Book an appointment"])
def test_asking_to_book_at_the_question_of_whom_for_asks_it_again(text):
    fake, turn = reach(Step.WHO)
    again = send(fake, turn.state, text)
    assert again.state.step == Step.WHO and "Sorry, I did not understand." not in says(again)


def test_the_first_message_after_an_offer_answers_it():
    fake, turn = reach(Step.MENU)
    offer_a_place(fake, now=NOW + timedelta(minutes=5))
    answered = send(fake, turn.state, "1", now=NOW + timedelta(minutes=10))
    assert fake.calls[-1] == "answer:offer:True"
    assert any(text.startswith("Booked:") for text in says(answered))
    assert answered.state.step == Step.MENU


def test_a_late_1_after_an_offer_expired_is_told_so_and_starts_nothing():
    fake, turn = reach(Step.MENU)
    fake.question = ports.Question("missed_offer", fake.departments_[0].names, NOW + timedelta(days=2),
                                   NOW + timedelta(minutes=5), NOW + timedelta(minutes=5))
    late = send(fake, turn.state, "1", now=NOW + timedelta(minutes=40))
    assert says(late)[0].startswith("Sorry, the time to answer that offer has passed")
    assert late.state.step == Step.MENU and not any(c.startswith(("book", "answer")) for c in fake.calls)
    # Anything else after it is the menu as usual.
    assert send(fake, late.state, "1", now=NOW + timedelta(minutes=41)).state.step != Step.MENU


def test_a_part_of_the_day_alone_picks_the_one_day_on_offer():
    fake, turn = reach(Step.REQUEST)
    chosen = send(fake, turn.state, "afternoon please")
    assert chosen.state.step == Step.CONFIRM
    assert (chosen.state.request_day, chosen.state.request_part) == (DRAW_DAY, "afternoon")
