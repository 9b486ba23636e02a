"""Refusals from the backend, turned into kind sentences that say what to do next.

Rule: every `Refused.rule` the backend can return has a sentence here, and the sentence
tells the patient what they can do next (another day, a date it opens, the desk). A
rule we don't know still gets a polite sentence, never an error code.
"""

from __future__ import annotations

from assistant.engine.flow import Step
from assistant.engine.messages import N_, Msg, When, msg
from assistant.engine.ports import Refused

QUOTA_SENTENCES = {
    "per_department_per_day": N_("There is already a booking in this department that day. Please choose another day."),
    "per_visit_day": N_("There are already {limit} bookings that day, the most allowed. Please choose another day."),
    "per_7_days": N_("That would be more than {limit} bookings within 7 days. Please choose a later day."),
    "per_90_days": N_("That would be more than {limit} bookings within 90 days. Please choose a later day, or call the desk."),
}


# Refusals only the desk can help with: the reply also gives its number and hours.
DESK_RULES = frozenset({"cancellation_deadline", "patients_per_address", "suspended",
                        "invalid_address", "throttled"})


def needs_desk(refused: Refused) -> bool:
    return (refused.rule in DESK_RULES or refused.params.get("quota") == "per_90_days"
            or bool(refused.params.get("by_others")))


def explain(refused: Refused) -> tuple[Msg, str]:
    """The sentence for a refusal, and the step that lets the patient act on it."""
    p = refused.params
    rule = refused.rule
    if rule == "slot_full":
        return msg(N_("Sorry, that time has just been taken. Please choose another.")), Step.SOONEST
    if rule == "not_yet_open":
        return (msg(N_("Booking for that day opens on {date} at {time}."),
                    date=When(p["opens_at"], "date"), time=When(p["opens_at"], "time")), Step.SOONEST)
    if rule == "booking_closed":
        return msg(N_("Booking for that day has closed. Please choose a later day.")), Step.SOONEST
    if rule == "quota_exceeded":
        if p.get("by_others"):
            # Someone else's bookings in her name fill it: say how to free them.
            return (msg(N_("Bookings made in this patient's name from other phones reach the limit. "
                           "To free one, cancel it with the code from the message we sent, or call the desk.")),
                    Step.MENU)
        text = QUOTA_SENTENCES.get(str(p.get("quota")), QUOTA_SENTENCES["per_visit_day"])
        return msg(text, limit=int(p.get("limit", 0))), Step.SOONEST
    if rule == "suspended":
        if p.get("scope") == "address":
            text = (N_("This number can't book for now: bookings made from it were missed. It can book again from {date}.")
                    if p.get("reason") == "no_shows" else
                    N_("This number can't book for now: bookings made from it were cancelled several times. It can book again from {date}."))
            return msg(text, date=When(p["until"], "date")), Step.MENU
        if p.get("reason") == "no_shows":
            text = N_("Booking is paused after missed appointments. You can book again from {date}.")
        else:
            text = N_("Booking is paused after several cancellations. You can book again from {date}.")
        return msg(text, date=When(p["until"], "date")), Step.MENU
    if rule == "already_booked":
        return msg(N_("This time is already booked for this patient.")), Step.MENU
    if rule == "patients_per_address":
        return (msg(N_("This number can book for at most {limit} people. Please call the desk for help."),
                    limit=int(p.get("limit", 0))), Step.MENU)
    if rule == "invalid_address":
        return msg(N_("Sorry, we can't book from this number. Please call the desk.")), Step.MENU
    if rule == "invalid_identity":
        return msg(N_("Some of the ID details do not look right. Please send them again.")), Step.ID_NUMBER
    if rule == "cancellation_deadline":
        return (msg(N_("It is too late to change this booking here: the deadline was {date} at {time}. Please call the desk."),
                    date=When(p["deadline"], "date"), time=When(p["deadline"], "time")), Step.MENU)
    if rule == "throttled":
        return (msg(N_("We have had many tries from this number in a short time. Please try again after {time}, "
                       "or call the desk."), time=When(p["until"], "time")), Step.MENU)
    if rule == "already_requested":
        return msg(N_("This patient has already asked for a place in this department that day.")), Step.MENU
    if rule == "requests_closed":
        if p.get("opens_at"):
            return (msg(N_("Requests for that day open on {date} at {time}."),
                        date=When(p["opens_at"], "date"), time=When(p["opens_at"], "time")), Step.MENU)
        return msg(N_("Requests for that day have closed: the draw has been made.")), Step.MENU
    if rule == "places_free":
        return msg(N_("That day has free times again: please choose one.")), Step.SOONEST
    if rule == "nothing_to_answer":
        return msg(N_("That offer is no longer open: it was answered, or its time ran out.")), Step.MENU
    if rule in ("booking_not_found", "not_active", "not_permitted"):
        return msg(N_("That booking can no longer be changed.")), Step.MENU
    return msg(N_("Sorry, that did not work. Please try again, or choose 0 for a person.")), Step.MENU
