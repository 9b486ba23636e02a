"""Booking: department, the soonest free times, read-back, then the code.

Rule: after the department, one menu offers the soonest free times across days, with
"another day" last (then a day, morning or afternoon, and a time). A typed date, time
or part of the day ("tomorrow afternoon", "周三9点", "el lunes") works wherever a time is
asked. Each question offers at most five choices plus "more", and also takes words
("heart", "心内科"). Nothing is booked until the read-back (who, the birth date read from
a new ID, where, the date in full, the time and the ID's last four characters) gets a
yes. Dates are the hospital's local days.
"""

from __future__ import annotations

import re
from datetime import time, timedelta

from assistant.engine.flow import Step
from assistant.engine.parse import option_words
from assistant.engine.messages import N_, Msg, Names, When, msg
from assistant.engine.ports import Done, NewPatient, Refused, SlotInfo
from assistant.engine.state import Conversation, IdentityDraft
from assistant.engine.steps import refusals
from assistant.engine.steps.base import (
    SIMPLE_CHOICE, SIMPLE_YES_NO, Answer, Ctx, Go, PromptResult, Retry, StepHandlers, ask_menu,
    ask_yes_no, label, label_choice, managed_booking, menu_choice, yes_no_answer,
)

NOON = time(12, 0)
DAYS_LISTED = 15  # open days fetched for the day menu (three pages)


def _departments(ctx: Ctx):
    return list(ctx.backend.departments())


def _department_names(ctx: Ctx, department_id: int | None) -> dict[str, str]:
    for department in _departments(ctx):
        if department.id == department_id:
            return dict(department.names)
    return {}


def _slot_label(slot: SlotInfo) -> Msg:
    return msg("{time}", time=When(slot.starts_at, "time"))


# ---- department -----------------------------------------------------------------------------


GROUPED_ABOVE = 10  # a hospital with more departments than this offers areas first


def read_intent(state: Conversation, text: str, ctx: Ctx) -> Conversation:
    """What a first message asks for, kept for later questions: a department named
    plainly ("book cardiology tomorrow morning", "预约明天上午心内科", "cita con cardiología
    mañana"), a day and a part of the day. Everything is still read back before booking."""
    from assistant.engine.parse import DayPart, parse_date, parse_day_part, rank_options

    ranked = rank_options(text, [(str(d.id), _department_words(d)) for d in _departments(ctx)])
    if ranked.sure is None:
        return state
    return state.with_(
        intent_department=int(ranked.sure),
        intent_day=parse_date(text, ctx.today, day_first=state.locale == "es"),
        intent_part={DayPart.MORNING: "morning", DayPart.AFTERNOON: "afternoon"}.get(parse_day_part(text)))


def department_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    departments = _departments(ctx)
    if not departments:
        return Go(Step.MENU, state, say=(msg(N_("Sorry, no department is taking bookings now.")),))
    if state.intent_department in {d.id for d in departments}:
        # The first message named the department: go on to its times.
        return Go(Step.SOONEST, state.with_(department_id=state.intent_department, intent_department=None,
                                            day_part=state.intent_part, page=0))
    if state.candidates:
        offered = [d for d in departments if d.id in state.candidates]
        offered.sort(key=lambda d: state.candidates.index(d.id))
        return ask_menu(state, msg(N_("Did you mean one of these?")),
                        [(f"dept:{d.id}", label(dict(d.names))) for d in offered],
                        extra=[("all", msg(N_("Another department")))])
    groups = ctx.hospital.department_groups
    if groups and len(departments) > GROUPED_ABOVE and state.department_group is None:
        return ask_menu(state, msg(N_("Which department? Tell me its name, or choose an area:")),
                        [(f"group:{code}", label(dict(names))) for code, names in groups])
    if state.department_group is not None:
        departments = [d for d in departments if d.group == state.department_group]
    items = [(f"dept:{d.id}", label(dict(d.names))) for d in departments]
    return ask_menu(state, msg(N_("Which department?")), items, page=state.page)


def department_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from assistant.engine.parse import parse_choice, rank_options

    # A number picks from the menu shown; words name any department, on any page.
    choice = menu_choice(state, text) if parse_choice(text) is not None else label_choice(state, text)
    if choice is None:
        ranked = rank_options(text, [(f"dept:{d.id}", _department_words(d)) for d in _departments(ctx)])
        if ranked.sure is not None:
            choice = ranked.sure
        else:
            choice = menu_choice(state, text)  # an area's name, "more", "another department"
            if choice is None and ranked.candidates:
                ids = tuple(int(key.split(":")[1]) for key in ranked.candidates)
                return Go(Step.DEPARTMENT, state.with_(candidates=ids, page=0))
    if choice is None:
        return Retry(msg(N_("I did not find that department.")))
    if choice == "more":
        return Go(Step.DEPARTMENT, state.with_(page=state.page + 1))
    if choice == "all":
        return Go(Step.DEPARTMENT, state.with_(candidates=(), department_group=None, page=0))
    if choice.startswith("group:"):
        return Go(Step.DEPARTMENT, state.with_(department_group=choice.split(":", 1)[1], page=0))
    department_id = int(choice.split(":")[1])
    return Go(Step.SOONEST, state.with_(department_id=department_id, department_group=None,
                                        candidates=(), day=None, day_part=None, page=0))


def _department_words(department) -> list[str]:
    """Every name and synonym of a department, in every language: a patient may write
    in another language than the conversation's."""
    return list(department.names.values()) + [w for ws in department.keywords.values() for w in ws]


# ---- day ------------------------------------------------------------------------------------


def day_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    days = [day for day in ctx.backend.open_days(state.department_id, ctx.now, DAYS_LISTED + 30)
            if day not in state.skip_days and (state.not_before is None or day >= state.not_before)
            ][:DAYS_LISTED]
    if not days:
        from assistant.engine.steps.request import request_days

        if request_days(ctx, state.department_id, "waitlist") or request_days(ctx, state.department_id, "draw"):
            return Go(Step.REQUEST, state.with_(page=0))  # full days: their waiting lists
        names = _department_names(ctx, state.department_id)
        return Go(Step.MENU, state.with_(page=0), say=(msg(
            N_("Sorry, {department} has no free times in the coming days. Please try again later, or choose 0 for a person."),
            department=Names(names)),))
    items = [(day.isoformat(), msg("{date}", date=When(day, "date_short"))) for day in days]
    return ask_menu(state, msg(N_("Which day? Or send a date, like tomorrow.")), items, page=state.page)


def day_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from datetime import date as date_type

    from assistant.engine.parse import parse_date

    # A date in words wins over a menu number inside it: "Dec 4" is the 4th, not option 4.
    day = parse_date(text, ctx.today, day_first=state.locale == "es")
    if day is None:
        choice = menu_choice(state, text)
        if choice == "more":
            return Go(Step.DAY, state.with_(page=state.page + 1))
        if choice is None:
            return Retry()
        day = date_type.fromisoformat(choice)
    unavailable = _day_unavailable(state, ctx, day)
    if unavailable is not None:
        return unavailable
    return Go(Step.DAY_PART, state.with_(day=day, day_part=None, page=0))


def _day_unavailable(state: Conversation, ctx: Ctx, day) -> Answer | None:
    """Why a day can't be booked (when it opens, or that it is full), or None. A full
    day with a waiting list goes on to joining it (its read-back asks first)."""
    if ctx.backend.free_slots(state.department_id, day, ctx.now):
        return None
    from assistant.engine.steps.request import request_days

    if any(d.day == day for d in request_days(ctx, state.department_id, "waitlist")):
        return Go(Step.CONFIRM, state.with_(request_day=day, request_part="any", slot_id=None, slot_start=None,
                                            page=0),
                  say=(msg(N_("There are no free times on {day}."), day=When(day, "date")),))
    opens = ctx.backend.opens_at(state.department_id, day, ctx.now)
    if opens is not None:
        return Retry(msg(N_("Booking for {day} opens on {date} at {time}."), day=When(day, "date"),
                         date=When(opens, "date"), time=When(opens, "time")), counts_as_failure=False)
    return Retry(msg(N_("There are no free times on {day}."), day=When(day, "date")),
                 counts_as_failure=False)


# ---- morning or afternoon ---------------------------------------------------------------------


def _slots_of_day(state: Conversation, ctx: Ctx) -> list[SlotInfo]:
    return list(ctx.backend.free_slots(state.department_id, state.day, ctx.now))


def _part(ctx: Ctx, slot: SlotInfo) -> str:
    return "morning" if ctx.local(slot.starts_at).time() < NOON else "afternoon"


def day_part_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    parts = sorted({_part(ctx, s) for s in _slots_of_day(state, ctx)}, key=["morning", "afternoon"].index)
    if len(parts) < 2:
        # One part of the day only: asking would be a wasted turn.
        return Go(Step.TIME, state.with_(day_part=parts[0] if parts else None, page=0))
    items = [("morning", msg(N_("Morning"))), ("afternoon", msg(N_("Afternoon")))]
    return ask_menu(state, msg(N_("Morning or afternoon?")), items)


def day_part_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from assistant.engine.parse import DayPart, parse_day_part

    choice = menu_choice(state, text)
    if choice is None:
        part = parse_day_part(text)
        choice = {DayPart.MORNING: "morning", DayPart.AFTERNOON: "afternoon"}.get(part)
    if choice is None:
        return Retry()
    return Go(Step.TIME, state.with_(day_part=choice, page=0))


# ---- time -------------------------------------------------------------------------------------


def time_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    slots = [s for s in _slots_of_day(state, ctx) if state.day_part in (None, _part(ctx, s))]
    if not slots:
        return Go(Step.DAY, state.with_(page=0),
                  say=(msg(N_("Sorry, those times have just been taken.")),))
    items = [(f"slot:{s.id}:{s.starts_at.isoformat()}", _slot_label(s)) for s in slots]
    return ask_menu(state, msg(N_("Which time on {day}?"), day=When(state.day, "date_short")),
                    items, page=state.page)


def time_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from assistant.engine.parse import DayPart, parse_day_part

    wanted = typed_time(text)
    part = {DayPart.MORNING: "morning", DayPart.AFTERNOON: "afternoon"}.get(parse_day_part(text))
    if wanted is None and part is not None and part != state.day_part and label_choice(state, text) is None:
        return Go(Step.TIME, state.with_(day_part=part, page=0))
    if wanted is None:
        choice = menu_choice(state, text)
        if choice == "more":
            return Go(Step.TIME, state.with_(page=state.page + 1))
        if choice is None:
            return Retry()
        return _chose_slot(state, choice, ctx)
    matching = _at_time(ctx, _slots_of_day(state, ctx), wanted, state.day_part)
    if not matching:
        return Retry(msg(N_("That time is not free. Please choose one from the list.")),
                     counts_as_failure=False)
    return Go(Step.CONFIRM, state.with_(slot_id=matching[0].id, slot_start=matching[0].starts_at))


# A clock time is read only where the message says it is one: "9:30", "2pm", "两点",
# "a las dos", "at 2". A bare "2" is a menu number, and "my 2 children" is neither.
_TIME_SAID = re.compile(
    r"\d\s*[:.：点點时時h]|\d\s*(?:am|pm|a\.m|p\.m)\b|\b(?:am|pm|at|oclock|o'clock)\b|"
    r"\blas?\s|\bla una\b|[点點时時]|上午|下午|中午|早上|晚上")


def typed_time(text: str):
    """The clock time a message says, or None."""
    from assistant.engine.parse import normalise, parse_time

    return parse_time(text) if _TIME_SAID.search(normalise(text)) else None


def _starting_at(ctx: Ctx, slots: list[SlotInfo], wanted: time) -> list[SlotInfo]:
    return [s for s in slots if ctx.local(s.starts_at).time().replace(second=0, microsecond=0) == wanted]


def _chose_slot(state: Conversation, choice: str, ctx: Ctx) -> Go:
    from datetime import datetime

    _, slot_id, starts = choice.split(":", 2)
    starts_at = datetime.fromisoformat(starts)
    local = ctx.local(starts_at)
    # Keep the day and part too, so `*` from the read-back returns to this day's times.
    return Go(Step.CONFIRM, state.with_(slot_id=int(slot_id), slot_start=starts_at, day=local.date(),
                                        day_part="morning" if local.time() < NOON else "afternoon"))


# ---- book again: the soonest times --------------------------------------------------------------


def soonest_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    from assistant.engine.steps.request import request_days

    if request_days(ctx, state.department_id, "draw"):
        # Its places go by a draw: requests, not the fastest booking.
        return Go(Step.REQUEST, state.with_(page=0, intent_day=None, intent_part=None))
    if state.intent_day is not None:
        day, state = state.intent_day, state.with_(intent_day=None, intent_part=None)
        if ctx.backend.free_slots(state.department_id, day, ctx.now):
            return Go(Step.TIME, state.with_(day=day, page=0))
    return _soonest_menu(state, ctx)


def _soonest_menu(state: Conversation, ctx: Ctx) -> PromptResult:
    # Days this patient already holds in this department would only be refused.
    taken = {ctx.local(b.starts_at).date() for b in ctx.backend.bookings(ctx.now)
             if b.patient_ref == state.patient_ref and b.department_id == state.department_id}
    taken |= set(state.skip_days)
    # Reaching past the days a refusal ruled out may take more than a few days' slots.
    reach = 5 + (400 if state.skip_days or state.not_before else 40)
    slots = [s for s in ctx.backend.soonest_slots(state.department_id, ctx.now, reach)
             if ctx.local(s.starts_at).date() not in taken
             and (state.not_before is None or ctx.local(s.starts_at).date() >= state.not_before)
             and state.day_part in (None, _part(ctx, s))][:5]
    if not slots:
        return Go(Step.DAY, state.with_(page=0, day_part=None))
    items = [(f"slot:{s.id}:{s.starts_at.isoformat()}",
              msg("{date} {time}", date=When(s.starts_at, "date_short"), time=When(s.starts_at, "time")))
             for s in slots]
    return ask_menu(state, msg(N_("The soonest free times:")), items,
                    extra=[("other_day", msg(N_("Another day")))])


def soonest_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from assistant.engine.parse import DayPart, parse_date, parse_day_part

    tapped = label_choice(state, text)
    if tapped is not None:
        return Go(Step.DAY, state.with_(page=0, day_part=None)) if tapped == "other_day" else \
            _chose_slot(state, tapped, ctx)
    # A date, time or part of the day in words wins over a menu number inside it.
    day = parse_date(text, ctx.today, day_first=state.locale == "es")
    wanted = typed_time(text)
    part = {DayPart.MORNING: "morning", DayPart.AFTERNOON: "afternoon"}.get(parse_day_part(text))
    if day is not None:
        unavailable = _day_unavailable(state, ctx, day)
        if unavailable is not None:
            return unavailable
        on_day = state.with_(day=day, day_part=part, page=0)
        if wanted is None:
            return Go(Step.TIME, on_day)
        matching = _at_time(ctx, list(ctx.backend.free_slots(state.department_id, day, ctx.now)), wanted, part)
        if not matching:
            return Go(Step.TIME, on_day, say=(msg(N_("That time is not free. Please choose one from the list.")),))
        return _chose_slot(state, f"slot:{matching[0].id}:{matching[0].starts_at.isoformat()}", ctx)
    if wanted is not None:
        soonest = list(ctx.backend.soonest_slots(state.department_id, ctx.now, 5 + 40))
        matching = _at_time(ctx, soonest, wanted, part)
        if not matching:
            return Retry(msg(N_("That time is not free. Please choose one from the list.")),
                         counts_as_failure=False)
        return _chose_slot(state, f"slot:{matching[0].id}:{matching[0].starts_at.isoformat()}", ctx)
    choice = menu_choice(state, text)
    if choice is None and part is not None:
        return Go(Step.SOONEST, state.with_(day_part=part, page=0))
    if choice is None:
        return Retry()
    if choice == "other_day":
        return Go(Step.DAY, state.with_(page=0, day_part=None))
    return _chose_slot(state, choice, ctx)


def _at_time(ctx: Ctx, slots: list[SlotInfo], wanted: time, part: str | None) -> list[SlotInfo]:
    matching = _starting_at(ctx, slots, wanted)
    if not matching and wanted.hour < 12 and (wanted.hour < 7 or part == "afternoon"):
        # "2" or "at 2" in a clinic means two in the afternoon, never 02:00.
        matching = _starting_at(ctx, slots, wanted.replace(hour=wanted.hour + 12))
    return matching


# ---- read-back and booking ----------------------------------------------------------------------


def _who(state: Conversation, ctx: Ctx) -> tuple[str, str]:
    """The patient's name and ID tail for the read-back."""
    if state.rescheduling:
        booking = managed_booking(ctx, state.booking_code, state.claim_last4)
        if booking is not None and (state.claim_last4 or not any(
                p.ref == booking.patient_ref for p in ctx.backend.linked_patients())):
            return booking.patient_name, state.claim_last4 or ""
    if state.patient_ref is not None:
        for patient in ctx.backend.linked_patients():
            if patient.ref == state.patient_ref:
                return patient.name, patient.id_last4
        return "", ""
    draft = state.draft
    return (draft.name or "", draft.id_last4 or "") if draft else ("", "")


def confirm_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    if state.request_day is not None and not state.rescheduling:
        from assistant.engine.steps.request import read_back

        name, last4 = _who(state, ctx)
        return ask_yes_no(state, read_back(state, ctx, name, last4))
    if state.slot_id is None or state.slot_start is None:
        return Go(Step.SOONEST, state.with_(page=0))  # nothing chosen to read back
    name, last4 = _who(state, ctx)
    department = Names(_department_names(ctx, state.department_id))
    when = state.slot_start
    if state.rescheduling:
        question = msg(N_("Move the booking of {name} to {department}, {date} at {time}? ID ending {last4}."),
                       name=name, department=department, date=When(when, "date"),
                       time=When(when, "time"), last4=last4)
    elif state.patient_ref is None and state.draft is not None and state.draft.birth_date:
        # A new identity: its birth date is read back here, not asked on its own.
        question = msg(N_("Please check: {name}, born {born}, {department}, {date} at {time}, ID ending {last4}. Book it?"),
                       name=name, born=When(state.draft.birth_date, "birth_date"),
                       department=department, date=When(when, "date"),
                       time=When(when, "time"), last4=last4)
    else:
        question = msg(N_("Please check: {name}, {department}, {date} at {time}, ID ending {last4}. Book it?"),
                       name=name, department=department, date=When(when, "date"),
                       time=When(when, "time"), last4=last4)
    return ask_yes_no(state, question)


def confirm_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    answer = yes_no_answer(state, text)
    if answer is None:
        return Retry()
    if state.request_day is not None and not state.rescheduling:
        from assistant.engine.steps.request import send_request

        if not answer:
            return Go(Step.REQUEST, state.with_(page=0, request_day=None, request_part=None),
                      say=(msg(N_("Nothing was sent. Let us choose again.")),))
        return send_request(state, ctx, _who_to_book(state),
                            lambda cleared, ref: cleared.with_(draft=None, patient_ref=ref or state.patient_ref))
    if not answer:
        unbooked = state.with_(page=0, slot_id=None, slot_start=None)
        if state.patient_ref is None and state.draft is not None and not state.rescheduling:
            # The name or the birth date may be what's wrong: ask what to change.
            return Go(Step.FIX, unbooked, say=(msg(N_("Nothing was booked.")),))
        return Go(Step.SOONEST, unbooked, say=(msg(N_("Nothing was booked. Let us choose again.")),))
    key = ctx.inbound.event_id
    if state.rescheduling:
        outcome = ctx.backend.reschedule(state.booking_code, state.slot_id, ctx.now, key,
                                         id_last4=state.claim_last4)
    else:
        outcome = ctx.backend.book(_who_to_book(state), state.slot_id, state.relation or "self", ctx.now, key)
    if isinstance(outcome, Refused):
        sentence, step = refusals.explain(outcome)
        if step == Step.ID_NUMBER and state.patient_ref is not None:
            step = Step.MENU  # a linked patient's identity is already on file
        return Go(step, _not_again(state, outcome, ctx).with_(page=0, slot_id=None, slot_start=None),
                  say=(sentence,), desk=refusals.needs_desk(outcome))
    return Go(Step.MENU, _after_booking(state, outcome), say=_booked_sentences(state, outcome))


def _not_again(state: Conversation, refused: Refused, ctx: Ctx) -> Conversation:
    """After a quota refusal, the soonest times leave out what would be refused again:
    that day (one per day), or every day up to it (a limit over 7 or 90 days)."""
    if refused.rule != "quota_exceeded" or state.slot_start is None:
        return state
    day = ctx.local(state.slot_start).date()
    if refused.params.get("quota") in ("per_7_days", "per_90_days"):
        return state.with_(not_before=day + timedelta(days=1))
    return state.with_(skip_days=tuple(sorted({*state.skip_days, day})))


def _who_to_book(state: Conversation) -> NewPatient | int:
    if state.patient_ref is not None:
        return state.patient_ref
    draft = state.draft
    return NewPatient(draft.id_kind, draft.id_number, draft.name, draft.birth_date,
                      draft.document, draft.country)


def _after_booking(state: Conversation, outcome: Done) -> Conversation:
    # The identity typed in is no longer needed: drop it from the stored state.
    return state.with_(draft=None, patient_ref=outcome.patient_ref, slot_id=None, slot_start=None,
                       booking_code=None, claim_last4=None, rescheduling=False, page=0,
                       skip_days=(), not_before=None)


def _booked_sentences(state: Conversation, outcome: Done) -> tuple[Msg, ...]:
    if state.rescheduling:
        first = msg(N_("Done: the booking is moved to {date} at {time}. New booking code: {code}."),
                    date=When(outcome.starts_at, "date"), time=When(outcome.starts_at, "time"),
                    code=outcome.code)
    else:
        first = msg(N_("Booked: {date} at {time}. Your booking code is {code}."),
                    date=When(outcome.starts_at, "date"), time=When(outcome.starts_at, "time"),
                    code=outcome.code)
    return (first, msg(N_("Please bring the ID card and this code to the hospital.")))


# ---- after a "no" at the read-back of a new identity ------------------------------------------


def fix_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    return ask_menu(state, msg(N_("What should change?")),
                    [("time", msg(N_("The day or time"))), ("identity", msg(N_("The name or ID number")))])


def fix_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    choice = menu_choice(state, text, fix_words())
    if choice is None:
        return Retry()
    if choice == "time":
        return Go(Step.SOONEST, state.with_(page=0))
    return Go(Step.ID_NUMBER, state.with_(draft=IdentityDraft(), page=0))


def fix_words() -> dict[str, list[str]]:
    return {"time": option_words("fix_time"), "identity": option_words("fix_identity")}


STEPS = {
    Step.FIX: StepHandlers(fix_prompt, fix_answer, SIMPLE_CHOICE),
    Step.DEPARTMENT: StepHandlers(department_prompt, department_answer, SIMPLE_CHOICE),
    Step.DAY: StepHandlers(day_prompt, day_answer, SIMPLE_CHOICE),
    Step.DAY_PART: StepHandlers(day_part_prompt, day_part_answer, SIMPLE_CHOICE),
    Step.TIME: StepHandlers(time_prompt, time_answer, SIMPLE_CHOICE),
    Step.SOONEST: StepHandlers(soonest_prompt, soonest_answer, SIMPLE_CHOICE),
    Step.CONFIRM: StepHandlers(confirm_prompt, confirm_answer, SIMPLE_YES_NO),
}
