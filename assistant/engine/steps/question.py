"""Answering what we asked by message: a freed place offered from the waitlist, or the
day-before reminder.

Rule: the engine comes here when the address has an open question and the patient's
message is the first since it was asked, or a conversation starts (a new call, "hello").
"1" (or yes) takes the offer or keeps the booking; "2" (or no) passes the offer to the
next person or releases the booking to the waitlist. Anything else asks again, kindly;
MENU and the other global keys still work.
"""

from __future__ import annotations

from assistant.engine.flow import Step
from assistant.engine.messages import N_, Msg, Names, When, msg
from assistant.engine.ports import Answered, Refused
from assistant.engine.state import Conversation
from assistant.engine.steps import refusals
from assistant.engine.steps.base import (
    SIMPLE_YES_NO, Answer, Ctx, Go, PromptResult, Retry, StepHandlers, ask_menu, menu_choice,
)


def question_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    question = ctx.backend.pending_question(ctx.now)
    if question is None or question.kind == "missed_offer":
        return Go(Step.MENU, state)  # a missed offer is mentioned only to a late "1"
    department = Names(dict(question.department_names))
    when = dict(date=When(question.starts_at, "date"), time=When(question.starts_at, "time"))
    if question.kind == "offer":
        asked = msg(N_("A place has come free for you: {department}, {date} at {time}. It is held for you until {until}."),
                    department=department, until=When(question.expires_at, "time"), **when)
        options = [("yes", msg(N_("Take it"))), ("no", msg(N_("Pass it to the next person")))]
    else:
        asked = msg(N_("Reminder: {department}, {date} at {time}, booking {code}. Will you come?"),
                    department=department, code=question.code or "", **when)
        options = [("yes", msg(N_("Yes, keep it"))), ("no", msg(N_("No, release the place")))]
    return ask_menu(state, asked, options)


def too_late(state: Conversation, text: str) -> Go | None:
    """A "1" or "yes" sent after the offer's time ran out: said kindly, never read as the
    first option of the menu."""
    from assistant.engine.parse import parse_choice, parse_yes_no

    if parse_choice(text) in (1, 2) or parse_yes_no(text) is not None:
        return Go(Step.MENU, state, say=(msg(N_(
            "Sorry, the time to answer that offer has passed, and the place went to the next person waiting.")),))
    return None


def question_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from assistant.engine.parse import parse_yes_no

    choice = menu_choice(state, text)
    accept = {"yes": True, "no": False}.get(choice or "")
    if accept is None:
        accept = parse_yes_no(text)
    if accept is None:
        return Retry()
    outcome = ctx.backend.answer_question(accept, ctx.now, ctx.inbound.event_id)
    if isinstance(outcome, Refused):
        sentence, _ = refusals.explain(outcome)
        return Go(Step.MENU, state.with_(page=0), say=(sentence,), desk=refusals.needs_desk(outcome))
    return Go(Step.MENU, state.with_(page=0), say=_answered(outcome))


def _answered(outcome: Answered) -> tuple[Msg, ...]:
    if outcome.kind == "offer" and outcome.accepted:
        return (msg(N_("Booked: {date} at {time}. Your booking code is {code}."),
                    date=When(outcome.starts_at, "date"), time=When(outcome.starts_at, "time"), code=outcome.code),
                msg(N_("Please bring the ID card and this code to the hospital.")))
    if outcome.kind == "offer":
        return (msg(N_("All right: the place goes to the next person waiting.")),)
    if outcome.accepted:
        return (msg(N_("Thank you. See you on {date} at {time}."),
                    date=When(outcome.starts_at, "date"), time=When(outcome.starts_at, "time")),)
    return (msg(N_("Your booking {code} is cancelled, and the place goes to someone waiting. Thank you for telling us."),
                code=outcome.code or ""),)


STEPS = {
    Step.QUESTION: StepHandlers(question_prompt, question_answer, SIMPLE_YES_NO),
}
