"""The main menu: book, book again, or look at my bookings.

Rule: the menu offers "book again" only when this address has booked before, so a
returning patient reaches a booking code in four messages: hello, book again, a time,
yes.
"""

from __future__ import annotations

from assistant.engine.flow import Step
from assistant.engine.messages import N_, Names, msg
from assistant.engine.state import Conversation
from assistant.engine.steps.base import (
    SIMPLE_CHOICE, Answer, Ctx, Go, PromptResult, Retry, StepHandlers, ask_menu, menu_choice,
)

MENU_WORDS = {
    "book": ["book", "appointment", "new", "预约", "挂号", "预定", "reservar", "cita", "pedir cita"],
    "bookings": ["my bookings", "bookings", "check", "cancel booking", "change", "我的预约", "查询",
                 "取消预约", "改约", "mis citas", "citas", "cambiar", "anular cita"],
}


def prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    items = []
    again = ctx.backend.last_booked()
    if again is not None:
        items.append((f"again:{again.patient_ref}:{again.department_id}",
                      msg(N_("Book again: {department} for {name}"),
                          department=Names(dict(again.department_names)), name=again.patient_name)))
    items.append(("book", msg(N_("Book an appointment"))))
    items.append(("bookings", msg(N_("My bookings: check, cancel or change"))))
    return ask_menu(state, msg(N_("What would you like to do?")), items)


def answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    choice = menu_choice(state, text, MENU_WORDS)
    if choice is None:
        return Retry()
    base = state.with_(patient_ref=None, relation=None, draft=None, department_id=None,
                       day=None, day_part=None, slot_id=None, slot_start=None,
                       booking_code=None, claim_last4=None, rescheduling=False)
    if choice == "book":
        return Go(Step.WHO, base)
    if choice == "bookings":
        return Go(Step.BOOKINGS, base)
    _, patient_ref, department_id = choice.split(":")
    return Go(Step.SOONEST, base.with_(patient_ref=int(patient_ref), relation="linked",
                                       department_id=int(department_id)))


STEPS = {Step.MENU: StepHandlers(prompt, answer, SIMPLE_CHOICE)}
