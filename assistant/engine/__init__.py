"""The conversation engine: `handle(state, inbound, backend, now) -> Turn`.

Rule: the engine decides what to say next and nothing else. It is plain Python: it
imports nothing outside `assistant/engine/` but the standard library, reads no clock and
does no I/O; the world is reached only through `ports.Backend`. It never raises: any
failure becomes an apology and a person's number, and the caller gets `Turn.error` to
log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from assistant.engine import flow
from assistant.engine.flow import Step
from assistant.engine.messages import (
    Ask, End, Handoff, Inbound, InboundKind, Msg, N_, Names, Reply, Say, msg,
)
from assistant.engine.parse import GlobalKey, is_greeting, normalise, parse_global_key, parse_language
from assistant.engine.ports import Backend
from assistant.engine.state import Conversation
from assistant.engine.steps import STEPS, book, language, question
from assistant.engine.steps.base import Ctx, Go, Prompted, Retry

__all__ = ["Turn", "handle", "Conversation", "Inbound"]

MAX_FAILURES = 2  # after this many, ask more simply and offer a person
TWILIO_OPT_OUT_LOOKALIKES = frozenset({"cancel"})
LANGUAGE_KEY = "8"
# Steps that take free text, where a greeting-like word could be the answer itself.
TYPED_STEPS = frozenset({Step.ID_NUMBER, Step.NAME, Step.BIRTH_DATE, Step.ID_COUNTRY,
                         Step.CLAIM_CODE, Step.CLAIM_LAST4})


@dataclass(frozen=True)
class Turn:
    state: Conversation
    replies: tuple[Reply, ...]
    ended: bool = False  # nothing more to say until the patient writes again (after STOP)
    error: str | None = None  # for the caller's log; never shown to the patient


def handle(state: Conversation | None, inbound: Inbound, backend: Backend, now: datetime,
           *, expiry: timedelta | None = None) -> Turn:
    """One turn. `expiry` is how long a conversation may idle before it starts over
    (None: never, as within one call)."""
    try:
        return _handle(state, inbound, backend, now, expiry)
    except Exception as exc:  # nothing may crash in front of a patient
        kept = Conversation(locale=state.locale if state else None, updated_at=now)
        hospital = _safe_hospital(backend)
        replies = (Say(msg(N_("Sorry, something went wrong on our side. Let me give you a person to help."))),
                   _handoff("error", hospital))
        return Turn(kept, replies, error=_where(exc))


def _handle(state: Conversation | None, inbound: Inbound, backend: Backend, now: datetime,
            expiry: timedelta | None) -> Turn:
    hospital = backend.hospital()
    ctx = Ctx(backend, now, hospital, inbound)
    text = inbound.text or ""
    key = parse_global_key(text) if inbound.kind is InboundKind.TEXT else None

    if backend.is_opted_out():
        if key is GlobalKey.START:
            backend.set_opted_out(False, now)
            return _begin(state or Conversation(), ctx, greeting=N_("Welcome back. You will get our messages again."))
        return Turn(state or Conversation(updated_at=now), (), ended=True)

    answered = _answer_to_our_question(state, inbound, key, ctx, expiry)
    if answered is not None:
        return answered

    if state is None:
        named = parse_language(text)
        if named in hospital.locales:
            backend.remember_locale(named, None, now)
        locale = named if named in hospital.locales else language.guess(
            text, inbound.language_hint, backend.remembered_locale(), hospital.locales,
            hospital.default_locale)
        fresh = Conversation(locale=locale)
        if key is GlobalKey.STOP:
            return _stop(fresh, ctx)
        if key is GlobalKey.HUMAN:
            return _finish(fresh, ctx, [_handoff("requested", hospital)])
        return _begin(book.read_intent(fresh, text, ctx), ctx,
                      greeting=N_("Hello, this is the hospital's booking service."), switch_line=True)

    if expiry is not None and state.updated_at is not None and now - state.updated_at > expiry:
        if key is GlobalKey.STOP:
            return _stop(state.fresh(), ctx)
        return _begin(state.fresh(), ctx, greeting=N_("Welcome back. Let us start again."))

    if inbound.kind is InboundKind.START:
        return _begin(state.fresh(), ctx, greeting=N_("Hello, this is the hospital's booking service."),
                      switch_line=True)
    if inbound.kind is InboundKind.RESUME:
        return _enter(state, state.step, ctx, [])
    if inbound.kind is InboundKind.SILENCE:
        return _silence(state, ctx)
    state = state.with_(silences=0)

    chosen = parse_language(text)
    if chosen in hospital.locales and state.step != Step.LANGUAGE:
        backend.remember_locale(chosen, state.patient_ref, now)
        changed = state.with_(locale=chosen)
        return _enter(changed, state.step, ctx, [msg(N_("I will speak English with you."))])
    if text.strip() == LANGUAGE_KEY and state.step != Step.LANGUAGE:
        return _enter(state.with_(resume=state.step), Step.LANGUAGE, ctx, [])
    if key is not None:
        return _global(state, key, ctx)

    handlers = STEPS.get(state.step)
    if handlers is None:
        return _enter(state, Step.MENU, ctx, [])
    if is_greeting(text) and state.step not in TYPED_STEPS:
        # "hello" in the middle of a conversation means starting again, kindly.
        return _begin(state.fresh(), ctx, greeting=N_("Hello again. Let us start from the beginning."))
    if normalise(text) in TWILIO_OPT_OUT_LOOKALIKES:
        # Twilio treats a lone CANCEL as an opt-out: we never give it a meaning of ours.
        return _retry(state, Retry(), ctx)
    answer = handlers.answer(state, text, ctx)
    if isinstance(answer, Retry):
        return _retry(state, answer, ctx)
    flow.check_move(state.step, answer.step)
    desk = (_handoff("desk_info", hospital),) if answer.desk else ()
    return _enter(answer.state.with_(retries=0), answer.step, ctx, list(answer.say), extra=desk)


def _answer_to_our_question(state: Conversation | None, inbound: Inbound, key: GlobalKey | None, ctx: Ctx,
                            expiry: timedelta | None) -> Turn | None:
    """The first message since we sent an offer or a reminder answers it: "1" there
    means "take it", not the first option of the menu the patient last saw."""
    if inbound.kind is not InboundKind.TEXT or key is not None:
        return None
    asked = ctx.backend.pending_question(ctx.now)
    if asked is None:
        return None
    idle = (state is None or state.updated_at is None or state.updated_at <= asked.asked_at
            or (expiry is not None and ctx.now - state.updated_at > expiry))
    if not idle:
        return None
    locale = state.locale if state is not None else (ctx.backend.remembered_locale() or ctx.hospital.default_locale)
    if asked.kind == "missed_offer":
        late = question.too_late(Conversation(locale=locale), inbound.text or "")
        return _enter(late.state, late.step, ctx, list(late.say)) if late is not None else None
    handlers = STEPS[Step.QUESTION]
    prompted = handlers.prompt(Conversation(locale=locale, step=Step.QUESTION), ctx)
    if not isinstance(prompted, Prompted):
        return None
    asking = prompted.state.with_(step=Step.QUESTION)
    answer = handlers.answer(asking, inbound.text or "", ctx)
    if isinstance(answer, Retry):
        return _enter(asking, Step.QUESTION, ctx, [])
    desk = (_handoff("desk_info", ctx.hospital),) if answer.desk else ()
    return _enter(answer.state.with_(retries=0), answer.step, ctx, list(answer.say), extra=desk)


def _global(state: Conversation, key: GlobalKey, ctx: Ctx) -> Turn:
    if key is GlobalKey.STOP:
        return _stop(state, ctx)
    if key is GlobalKey.START:
        return _begin(state.fresh(), ctx, greeting=N_("Hello, this is the hospital's booking service."))
    if key is GlobalKey.HUMAN:
        return _finish(state, ctx, [Say(msg(N_("Let me give you a person to help."))),
                                    _handoff("requested", ctx.hospital)])
    if key is GlobalKey.MENU:
        return _enter(state.with_(page=0), Step.MENU, ctx, [])
    if key is GlobalKey.BACK:
        if state.step == Step.DEPARTMENT and (state.department_group or state.candidates):
            # Inside an area or a "did you mean" list, back is the whole department menu.
            return _enter(state.with_(page=0, retries=0, department_group=None, candidates=()),
                          Step.DEPARTMENT, ctx, [])
        return _enter(state.with_(page=0, retries=0), flow.back_of(state.step), ctx, [])
    if key is GlobalKey.REPEAT:
        return _enter(state, state.step, ctx, [])
    if key is GlobalKey.SLOWER:
        ctx.backend.remember_slow_speech(ctx.now)
        return _enter(state, state.step, ctx, [msg(N_("I will speak more slowly."))])
    # HELP
    return _enter(state, state.step, ctx, [msg(N_(
        "Help: answer with the number of your choice. 0 is a person, 9 repeats, * goes back, "
        "8 changes language, MENU starts over, STOP ends messages."))])


def _enter(state: Conversation, step: str, ctx: Ctx, say: list[Msg], *, simple: bool = False,
           extra: tuple[Reply, ...] = ()) -> Turn:
    """Move to `step` and ask its question; a prompt may skip ahead (bounded).
    `extra` replies go after the sayings, before the question."""
    replies: list[Reply] = [Say(m) for m in say] + list(extra)
    for _ in range(8):
        if step not in STEPS:  # a state saved by an older version: start from the menu
            step = Step.MENU
        handlers = STEPS[step]
        result = handlers.prompt(state.with_(step=step), ctx)
        if isinstance(result, Go):
            flow.check_move(step, result.step)
            replies.extend(Say(m) for m in result.say)
            state, step = result.state, result.step
            continue
        assert isinstance(result, Prompted)
        if simple:
            replies.append(Say(handlers.simple_hint))
        replies.extend(result.replies)
        if simple:
            replies.append(Say(msg(N_("Or choose 0 to talk to a person."))))
        return _finish(result.state.with_(step=step, labels=_shown_labels(result, ctx)), ctx, replies)
    raise flow.FlowError(f"prompts kept skipping ahead from {step}")


def _shown_labels(prompted: Prompted, ctx: Ctx) -> tuple[tuple[str, str], ...]:
    """Each option's label in the words the patient sees, kept so that a label sent
    back (a tapped button: "1 8:00 AM") picks its option."""
    asks = [reply for reply in prompted.replies if isinstance(reply, Ask)]
    if not asks:
        return ()
    locale = prompted.state.locale or ctx.hospital.default_locale
    shown = []
    for option in asks[-1].expect.options:
        try:
            text = ctx.backend.label_text(option.label, locale)
        except Exception:  # a label we can't render is still chosen by its key
            text = None
        if text:
            shown.append((option.key, text))
    return tuple(shown)


def _retry(state: Conversation, answer: Retry, ctx: Ctx) -> Turn:
    retries = state.retries + (1 if answer.counts_as_failure else 0)
    say = [answer.hint or msg(N_("Sorry, I did not understand."))]
    return _enter(state.with_(retries=retries), state.step, ctx, say,
                  simple=retries >= MAX_FAILURES)


def _silence(state: Conversation, ctx: Ctx) -> Turn:
    silences = state.silences + 1
    if silences == 1:
        return _enter(state.with_(silences=silences), state.step, ctx,
                      [msg(N_("I did not hear anything. Here is the question again."))])
    return _finish(state.with_(silences=0), ctx, [
        Say(msg(N_("Let me give you a person to help."))), _handoff("silence", ctx.hospital)])


def _begin(state: Conversation, ctx: Ctx, *, greeting: str, switch_line: bool = False) -> Turn:
    say = [msg(greeting)]
    if switch_line and len(ctx.hospital.locales) > 1:
        say.append(language.switch_line(state.locale, ctx.hospital.locales, ctx.hospital.language_names,
                                        ctx.hospital.language_names_in.get(state.locale)))
    # An offer or reminder waiting for this address comes first (its prompt goes on to
    # the menu when there is none).
    return _enter(state, Step.QUESTION, ctx, say)


def _stop(state: Conversation, ctx: Ctx) -> Turn:
    ctx.backend.set_opted_out(True, ctx.now)
    return _finish(state, ctx, [Say(msg(N_(
        "You will get no more messages from us. Send START to use the service again."))), End()],
        ended=True)


def _finish(state: Conversation, ctx: Ctx, replies: list[Reply], *, ended: bool = False) -> Turn:
    return Turn(state.with_(updated_at=ctx.now), tuple(replies), ended=ended)


def _handoff(reason: str, hospital) -> Handoff:
    if hospital is None:
        return Handoff(reason, None, None)
    hours = Names(dict(hospital.desk_hours)) if hospital.desk_hours else None
    return Handoff(reason, hospital.desk_phone, hours)


def _where(exc: Exception) -> str:
    """The error's type, the engine line it passed through last and the line that
    raised it. Not its message: a message can quote what the patient typed (an ID
    number, a name), and this goes to the log."""
    places = []
    frame = exc.__traceback__
    while frame is not None:
        places.append(frame)
        frame = frame.tb_next
    engine_frames = [f for f in places if "/assistant/engine/" in f.tb_frame.f_code.co_filename]
    shown = ([engine_frames[-1]] if engine_frames else []) + places[-1:]
    return type(exc).__name__ + "".join(
        f" at {f.tb_frame.f_code.co_filename}:{f.tb_lineno} ({f.tb_frame.f_code.co_name})"
        for f in dict.fromkeys(shown))


def _safe_hospital(backend: Backend):
    try:
        return backend.hospital()
    except Exception:
        return None
