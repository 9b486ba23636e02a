"""My bookings: list them, then cancel (after a yes) or move one.

Rule: only bookings of patients linked to this address are shown. A cancellation needs
a yes, and a refusal (the deadline has passed) is explained with the deadline and the
desk. "Cancel" alone is never a command here: it is Twilio's opt-out word, so
cancelling is a menu number or a two-word phrase ("cancel booking").
"""

from __future__ import annotations

from assistant.engine.flow import Step
from assistant.engine.messages import N_, Names, When, msg
from assistant.engine.ports import BookingInfo, Refused
from assistant.engine.state import Conversation
from assistant.engine.steps import refusals
from assistant.engine.steps.base import (
    SIMPLE_CHOICE, SIMPLE_YES_NO, Answer, Ctx, Go, PromptResult, Retry, StepHandlers, ask_menu,
    ask_yes_no, menu_choice, yes_no_answer,
)

ACTION_WORDS = {
    "cancel": ["cancel booking", "cancel it", "cancel appointment", "取消预约", "取消", "anular", "anular cita"],
    "change": ["change", "move", "reschedule", "another time", "改时间", "改约", "改", "cambiar", "otra hora"],
    "keep": ["keep", "keep it", "保留", "不变", "mantener", "dejar"],
}


def _find(ctx: Ctx, code: str | None) -> BookingInfo | None:
    for booking in ctx.backend.bookings(ctx.now):
        if booking.code == code:
            return booking
    return None


def bookings_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    bookings = list(ctx.backend.bookings(ctx.now))
    if not bookings:
        return ask_menu(state, msg(N_("You have no upcoming bookings.")),
                        [("book", msg(N_("Book an appointment")))])
    items = [(f"code:{b.code}", msg(N_("{date} {time}, {name}: {department}"),
                                     department=Names(dict(b.department_names)),
                                     date=When(b.starts_at, "date_short"),
                                     time=When(b.starts_at, "time"), name=b.patient_name))
             for b in bookings]
    return ask_menu(state, msg(N_("Your bookings. Choose one to cancel or change it.")), items,
                    page=state.page)


def bookings_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    choice = menu_choice(state, text)
    if choice == "more":
        return Go(Step.BOOKINGS, state.with_(page=state.page + 1))
    if choice == "book":
        return Go(Step.WHO, state.with_(page=0))
    if choice is None:
        return Retry()
    return Go(Step.BOOKING_ACTION, state.with_(booking_code=choice.split(":", 1)[1], page=0))


def action_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    booking = _find(ctx, state.booking_code)
    if booking is None:
        return Go(Step.BOOKINGS, state.with_(booking_code=None, page=0),
                  say=(msg(N_("That booking can no longer be changed.")),))
    question = msg(N_("{department}, {date} at {time}, for {name}. Code {code}."),
                   department=Names(dict(booking.department_names)),
                   date=When(booking.starts_at, "date_short"), time=When(booking.starts_at, "time"),
                   name=booking.patient_name, code=booking.code)
    items = [("cancel", msg(N_("Cancel this booking"))), ("change", msg(N_("Change the time"))),
             ("keep", msg(N_("Keep it")))]
    return ask_menu(state, question, items)


def action_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    choice = menu_choice(state, text, ACTION_WORDS)
    if choice is None:
        return Retry()
    if choice == "keep":
        return Go(Step.BOOKINGS, state.with_(booking_code=None, page=0))
    booking = _find(ctx, state.booking_code)
    if booking is None:
        return Go(Step.BOOKINGS, state.with_(booking_code=None, page=0),
                  say=(msg(N_("That booking can no longer be changed.")),))
    if choice == "cancel":
        return Go(Step.CANCEL_CONFIRM, state)
    return Go(Step.DAY, state.with_(rescheduling=True, department_id=booking.department_id,
                                    patient_ref=booking.patient_ref, page=0))


def cancel_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    booking = _find(ctx, state.booking_code)
    if booking is None:
        return Go(Step.MENU, state.with_(booking_code=None),
                  say=(msg(N_("That booking can no longer be changed.")),))
    return ask_yes_no(state, msg(N_("Cancel the booking on {date} at {time}?"),
                                 date=When(booking.starts_at, "date_short"),
                                 time=When(booking.starts_at, "time")))


def cancel_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    answer = yes_no_answer(state, text)
    if answer is None:
        return Retry()
    done_state = state.with_(booking_code=None, page=0)
    if not answer:
        return Go(Step.MENU, done_state, say=(msg(N_("The booking is kept.")),))
    outcome = ctx.backend.cancel(state.booking_code, ctx.now, ctx.inbound.event_id)
    if isinstance(outcome, Refused):
        sentence, _ = refusals.explain(outcome)
        return Go(Step.MENU, done_state, say=(sentence,), desk=refusals.needs_desk(outcome))
    return Go(Step.MENU, done_state, say=(msg(N_("The booking {code} is cancelled."), code=outcome.code),))


STEPS = {
    Step.BOOKINGS: StepHandlers(bookings_prompt, bookings_answer, SIMPLE_CHOICE),
    Step.BOOKING_ACTION: StepHandlers(action_prompt, action_answer, SIMPLE_CHOICE),
    Step.CANCEL_CONFIRM: StepHandlers(cancel_prompt, cancel_answer, SIMPLE_YES_NO),
}
