"""Asking for a place instead of booking one: in a draw, or on a full day's waitlist.

Rule: a department whose day is released by draw takes requests, not bookings, until
the draw: the patient picks a day and "morning", "afternoon" or "any time", hears the
read-back with the draw's time, and is told the result later by message. A department
with no free time offers its full days' waitlists the same way. Asking takes as many
turns as booking: one menu, the read-back, yes. Speed never helps, so nothing here
hurries the patient.
"""

from __future__ import annotations

from datetime import date

from assistant.engine.flow import Step
from assistant.engine.messages import N_, Msg, Names, When, msg
from assistant.engine.ports import Refused, RequestDay, Requested
from assistant.engine.state import Conversation
from assistant.engine.steps import refusals
from assistant.engine.steps.base import (
    SIMPLE_CHOICE, Answer, Ctx, Go, PromptResult, Prompted, Retry, StepHandlers, ask_menu, label_choice,
    menu_choice,
)
from assistant.engine.messages import Say

PART_LABELS = {
    "morning": N_("{date}, morning"),
    "afternoon": N_("{date}, afternoon"),
    "any": N_("{date}, any time"),
}
PART_WORDS = {"morning": N_("morning"), "afternoon": N_("afternoon"), "any": N_("any time")}


def _names(ctx: Ctx, department_id: int | None) -> Names:
    for department in ctx.backend.departments():
        if department.id == department_id:
            return Names(dict(department.names))
    return Names({})


def request_days(ctx: Ctx, department_id: int | None, kind: str) -> list[RequestDay]:
    if department_id is None:
        return []
    return [d for d in ctx.backend.request_days(department_id, ctx.now, kind) if d.kind == kind]


def request_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    days = request_days(ctx, state.department_id, "draw")
    kind = "draw"
    if not days:
        days, kind = request_days(ctx, state.department_id, "waitlist"), "waitlist"
    department = _names(ctx, state.department_id)
    if not days:
        return Go(Step.MENU, state.with_(page=0), say=(msg(
            N_("Sorry, {department} has no free times in the coming days. Please try again later, or choose 0 for a person."),
            department=department),))
    items = []
    for day in days:
        parts = day.parts if len(day.parts) > 1 else ()
        for part in (*parts, "any"):
            label = msg(PART_LABELS[part], date=When(day.day, "date_short")) if parts else \
                msg("{date}", date=When(day.day, "date_short"))
            items.append((f"request:{day.day.isoformat()}:{part}", label))
    if kind == "draw":
        intro = msg(N_("{department} gives out its places by a draw: answering fast makes no difference."),
                    department=department)
        question = msg(N_("Which day would you like to request?"))
    else:
        intro = msg(N_("{department} is full. You can join a waiting list: a place that comes free is offered to the next person on it."),
                    department=department)
        question = msg(N_("Which day's waiting list?"))
    extra = [("other_day", msg(N_("Another day")))] if ctx.backend.open_days(state.department_id, ctx.now, 1) else []
    prompted = ask_menu(state, question, items, page=state.page, extra=extra)
    return Prompted(prompted.state, (Say(intro),) + prompted.replies)


def request_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from assistant.engine.parse import parse_choice

    choice = label_choice(state, text)
    if choice is None and parse_choice(text) is None:
        typed = _typed_day(state, text, ctx)  # "Monday afternoon", "12月7日"
        if typed is not None:
            return typed
    choice = choice or menu_choice(state, text)
    if choice is None:
        return Retry()
    if choice == "more":
        return Go(Step.REQUEST, state.with_(page=state.page + 1))
    if choice == "other_day":
        return Go(Step.DAY, state.with_(page=0, day_part=None))
    _, day, part = choice.split(":", 2)
    return Go(Step.CONFIRM, state.with_(request_day=date.fromisoformat(day), request_part=part,
                                        slot_id=None, slot_start=None, page=0))


def _typed_day(state: Conversation, text: str, ctx: Ctx) -> Answer | None:
    """A day (and part of it) in words: requested if it is offered, else when it opens."""
    from assistant.engine.parse import DayPart, parse_date, parse_day_part

    day = parse_date(text, ctx.today, day_first=state.locale == "es")
    offered = {d.day: d for d in ctx.backend.request_days(state.department_id, ctx.now)}  # either kind
    if day is None and len(offered) == 1 and parse_day_part(text) is not None:
        day = next(iter(offered))  # "morning", with one day on offer: that day's morning
    if day is None:
        return None
    if day in offered:
        part = {DayPart.MORNING: "morning", DayPart.AFTERNOON: "afternoon"}.get(parse_day_part(text), "any")
        if part not in offered[day].parts:
            part = "any"
        return Go(Step.CONFIRM, state.with_(request_day=day, request_part=part, slot_id=None,
                                            slot_start=None, page=0))
    opens = ctx.backend.opens_at(state.department_id, day, ctx.now)
    if opens is not None:
        return Retry(msg(N_("Booking for {day} opens on {date} at {time}."), day=When(day, "date"),
                         date=When(opens, "date"), time=When(opens, "time")), counts_as_failure=False)
    return Retry(msg(N_("There are no free times on {day}."), day=When(day, "date")), counts_as_failure=False)


# ---- the read-back and the request itself (called from the confirm step) -----------------------


def read_back(state: Conversation, ctx: Ctx, name: str, last4: str) -> Msg:
    department = _names(ctx, state.department_id)
    day = When(state.request_day, "date_short")  # the read-back must fit two SMS in every language
    part = msg(PART_WORDS.get(state.request_part or "any", PART_WORDS["any"]))
    draws = {d.day: d for d in request_days(ctx, state.department_id, "draw")}
    drawn_at = draws[state.request_day].closes_at if state.request_day in draws else None
    if drawn_at is not None:
        return msg(N_("Please check: a request for {name}, {department}, {date}, {part}, ID ending {last4}. "
                      "The draw is on {draw_date} at {draw_time}. Send the request?"),
                   name=name, department=department, date=day, part=part, last4=last4,
                   draw_date=When(drawn_at, "date_short"), draw_time=When(drawn_at, "time"))
    return msg(N_("Please check: the waiting list for {name}, {department}, {date}, {part}, ID ending {last4}. Join it?"),
               name=name, department=department, date=day, part=part, last4=last4)


def send_request(state: Conversation, ctx: Ctx, who, after) -> Answer:
    """The yes at the read-back: the request goes in, or a refusal is explained."""
    outcome = ctx.backend.request(who, state.department_id, state.request_day, state.request_part or "any",
                                  state.relation or "self", ctx.now, ctx.inbound.event_id)
    cleared = state.with_(request_day=None, request_part=None, page=0)
    if isinstance(outcome, Refused):
        sentence, step = refusals.explain(outcome)
        if step == Step.ID_NUMBER and state.patient_ref is not None:
            step = Step.MENU
        if step == Step.SOONEST and outcome.rule != "places_free":
            step = Step.MENU  # the day can't be asked again: start over from the menu
        return Go(step, cleared, say=(sentence,), desk=refusals.needs_desk(outcome))
    return Go(Step.MENU, after(cleared, outcome.patient_ref), say=_requested_sentences(outcome))


def _requested_sentences(outcome: Requested) -> tuple[Msg, ...]:
    department = Names(dict(outcome.department_names))
    if outcome.kind == "draw":
        return (msg(N_("Your request is in: {department}, {date}. After the draw on {draw_date} at {draw_time} "
                       "we will send you the result."),
                    department=department, date=When(outcome.day, "date"),
                    draw_date=When(outcome.draw_at, "date_short"), draw_time=When(outcome.draw_at, "time")),)
    return (msg(N_("You are number {position} on the waiting list for {department}, {date}. If a place "
                   "comes free, we will offer it to you by message."),
                position=outcome.position or 1, department=department, date=When(outcome.day, "date")),)


STEPS = {
    Step.REQUEST: StepHandlers(request_prompt, request_answer, SIMPLE_CHOICE),
}
