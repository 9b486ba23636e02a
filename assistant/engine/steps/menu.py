"""The main menu: book again, book for someone this address books for, book, or look
at my bookings.

Rule: a new address has nothing to book again or manage, so it skips the menu and is
asked straight away who the appointment is for. A returning address sees "book again"
(its newest booking's patient and department) and "book for <name>" for the patients it
booked for, so a returning patient reaches a booking code in five messages (hello, the
patient, a department, a time, yes) and books again in four.
"""

from __future__ import annotations

from assistant.engine.flow import Step
from assistant.engine.parse import option_words
from assistant.engine.messages import N_, Names, msg
from assistant.engine.state import Conversation
from assistant.engine.steps.base import (
    SIMPLE_CHOICE, Answer, Ctx, Go, PromptResult, Retry, StepHandlers, ask_menu, menu_choice,
)

def menu_words() -> dict[str, list[str]]:
    """Words for the menu's options, in every language (locales/<code>/words.toml)."""
    return {"book": option_words("menu_book"), "bookings": option_words("menu_bookings")}


BOOK_FOR_LISTED = 2  # "book for <name>" entries, so the menu keeps to five options


def prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    linked = list(ctx.backend.linked_patients())
    again = ctx.backend.last_booked()
    if again is None and not linked:
        # Nothing to book again or manage yet: ask who the appointment is for.
        return Go(Step.WHO, state)
    items = []
    if again is not None:
        items.append((f"again:{again.patient_ref}:{again.department_id}",
                      msg(N_("Book again: {department} for {name}"),
                          department=Names(dict(again.department_names)), name=again.patient_name)))
    for patient in linked[:BOOK_FOR_LISTED]:
        items.append((f"for:{patient.ref}", msg(N_("Book for {name}"), name=patient.name)))
    items.append(("book", msg(N_("Book an appointment"))))
    items.append(("bookings", msg(N_("My bookings: check, cancel or change"))))
    return ask_menu(state, msg(N_("What would you like to do?")), items)


def answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    choice = menu_choice(state, text, menu_words())
    if choice is None:
        return Retry()
    base = state.with_(patient_ref=None, relation=None, draft=None, department_id=None,
                       day=None, day_part=None, slot_id=None, slot_start=None,
                       booking_code=None, claim_last4=None, rescheduling=False,
                       department_group=None, candidates=(), skip_days=(), not_before=None)
    if choice == "book":
        return Go(Step.WHO, base)
    if choice == "bookings":
        return Go(Step.BOOKINGS, base)
    if choice.startswith("for:"):
        return Go(Step.DEPARTMENT, base.with_(patient_ref=int(choice.split(":")[1]), relation="linked"))
    _, patient_ref, department_id = choice.split(":")
    return Go(Step.SOONEST, base.with_(patient_ref=int(patient_ref), relation="linked",
                                       department_id=int(department_id)))


STEPS = {Step.MENU: StepHandlers(prompt, answer, SIMPLE_CHOICE)}
