"""My bookings: list them, then cancel (after a yes) or move one.

Rule: rights follow the booking. Only the bookings this address made are listed; a
booking someone else made (a daughter for her mother) is reached with its code and the
last four characters of the patient's ID, as an airline's booking reference and surname.
A link to a patient shows nothing. A cancellation needs a yes, and a refusal (the
deadline has passed) is explained with the deadline and the desk. "Cancel" alone is
never a command here: it is Twilio's opt-out word, so cancelling is a menu number or a
two-word phrase ("cancel booking").
"""

from __future__ import annotations

from assistant.engine.flow import Step
from assistant.engine.parse import option_words
from assistant.engine.messages import N_, Ask, Expect, ExpectKind, Names, When, msg
from assistant.engine.ports import Refused
from assistant.engine.state import Conversation
from assistant.engine.steps import refusals
from assistant.engine.steps.base import (
    SIMPLE_CHOICE, SIMPLE_YES_NO, Answer, Ctx, Go, Prompted, PromptResult, Retry, StepHandlers,
    ask_menu, ask_yes_no, managed_booking, menu_choice, yes_no_answer,
)

def action_words() -> dict[str, list[str]]:
    """Words for cancel, change and keep, in every language (words.toml). Never plain
    "cancel": Twilio's opt-out word."""
    return {action: option_words(f"action_{action}") for action in ("cancel", "change", "keep")}


_find = managed_booking


CLAIM = ("claim", msg(N_("A booking someone made for me (I have its code)")))


def bookings_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    state = state.with_(claim_last4=None)
    bookings = list(ctx.backend.bookings(ctx.now))
    if not bookings:
        return ask_menu(state, msg(N_("You have no upcoming bookings.")),
                        [("book", msg(N_("Book an appointment"))), CLAIM])
    items = [(f"code:{b.code}", msg(N_("{date} {time}, {name}: {department}"),
                                     department=Names(dict(b.department_names)),
                                     date=When(b.starts_at, "date_short"),
                                     time=When(b.starts_at, "time"), name=b.patient_name))
             for b in bookings]
    return ask_menu(state, msg(N_("Your bookings. Choose one to cancel or change it.")), items,
                    page=state.page, extra=[CLAIM])


def bookings_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    choice = menu_choice(state, text)
    if choice == "more":
        return Go(Step.BOOKINGS, state.with_(page=state.page + 1))
    if choice == "book":
        return Go(Step.WHO, state.with_(page=0))
    if choice == "claim":
        return Go(Step.CLAIM_CODE, state.with_(page=0, booking_code=None, claim_last4=None))
    if choice is None:
        return Retry()
    return Go(Step.BOOKING_ACTION, state.with_(booking_code=choice.split(":", 1)[1], page=0))


# ---- a booking someone else made: its code and the ID's last four -------------------------


def claim_code_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    return Prompted(state.with_(menu=()), (Ask(msg(N_(
        "Please send the booking code from the message you received.")), Expect(ExpectKind.TEXT)),))


def claim_code_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    code = "".join(ch for ch in text.upper() if ch.isascii() and ch.isalnum())
    if not 6 <= len(code) <= 16:
        return Retry(msg(N_("A booking code has 8 letters and digits. Please send it again.")))
    return Go(Step.CLAIM_LAST4, state.with_(booking_code=code))


def claim_last4_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    return Prompted(state.with_(menu=()), (Ask(msg(N_(
        "Please send the last 4 characters of the patient's ID number.")),
        Expect(ExpectKind.ID_NUMBER, digits=4)),))


def claim_last4_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    last4 = "".join(text.split()).upper().replace("*", "X")
    if len(last4) != 4:
        return Retry(msg(N_("Please send exactly 4 characters: the end of the ID number.")))
    if _find(ctx, state.booking_code, last4) is None:
        # The same words for a wrong code and a wrong ID ending: neither is confirmed.
        return Go(Step.BOOKINGS, state.with_(booking_code=None, claim_last4=None), say=(msg(N_(
            "No upcoming booking matches that code and ID ending.")),))
    return Go(Step.BOOKING_ACTION, state.with_(claim_last4=last4))


def action_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    booking = _find(ctx, state.booking_code, state.claim_last4)
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
    choice = menu_choice(state, text, action_words())
    if choice is None:
        return Retry()
    if choice == "keep":
        return Go(Step.BOOKINGS, state.with_(booking_code=None, page=0))
    booking = _find(ctx, state.booking_code, state.claim_last4)
    if booking is None:
        return Go(Step.BOOKINGS, state.with_(booking_code=None, page=0),
                  say=(msg(N_("That booking can no longer be changed.")),))
    if choice == "cancel":
        return Go(Step.CANCEL_CONFIRM, state)
    return Go(Step.SOONEST, state.with_(rescheduling=True, department_id=booking.department_id,
                                        patient_ref=booking.patient_ref, day_part=None, page=0))


def cancel_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    booking = _find(ctx, state.booking_code, state.claim_last4)
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
    done_state = state.with_(booking_code=None, claim_last4=None, page=0)
    if not answer:
        return Go(Step.MENU, done_state, say=(msg(N_("The booking is kept.")),))
    outcome = ctx.backend.cancel(state.booking_code, ctx.now, ctx.inbound.event_id,
                                 id_last4=state.claim_last4)
    if isinstance(outcome, Refused):
        sentence, _ = refusals.explain(outcome)
        return Go(Step.MENU, done_state, say=(sentence,), desk=refusals.needs_desk(outcome))
    return Go(Step.MENU, done_state, say=(msg(N_("The booking {code} is cancelled."), code=outcome.code),))


STEPS = {
    Step.BOOKINGS: StepHandlers(bookings_prompt, bookings_answer, SIMPLE_CHOICE),
    Step.CLAIM_CODE: StepHandlers(claim_code_prompt, claim_code_answer, msg(N_(
        "Please send only the booking code, for example KM7QX3PA."))),
    Step.CLAIM_LAST4: StepHandlers(claim_last4_prompt, claim_last4_answer, msg(N_(
        "Please send only the last 4 characters of the ID number. On a phone keypad, press * for X."))),
    Step.BOOKING_ACTION: StepHandlers(action_prompt, action_answer, SIMPLE_CHOICE),
    Step.CANCEL_CONFIRM: StepHandlers(cancel_prompt, cancel_answer, SIMPLE_YES_NO),
}
