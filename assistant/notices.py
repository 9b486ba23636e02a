"""The words of the notices in the outbox, in the patient's language.

Rule: the service layer writes a notice as a message id and parameters (booking code,
department names, time); this module turns it into the engine's `Msg`, which a channel
renders through the catalogs like any reply. Every notice says what happened, the
booking code, and how to cancel it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from assistant.engine.messages import N_, Msg, Names, When, msg

TEXTS = {
    "booked_for_you": N_(
        "A booking was made in your name: {department}, {date} {time}, code {code}. "
        "To cancel it, message us, choose My bookings and send the code and the last 4 characters of your ID."),
    "cancelled_for_you": N_(
        "Your booking {department}, {date} {time}, code {code}, was cancelled by someone else. "
        "To book again, message us or call the desk."),
    "cancelled_by_hospital": N_(
        "The hospital cancelled your booking {department}, {date} {time}, code {code}. "
        "To book again, message us or call the desk."),
    "moved_for_you": N_(
        "A booking in your name was moved: {department}, {date} {time}, new code {code}. "
        "To cancel it, message us, choose My bookings and send the code and the last 4 characters of your ID."),
    # A fair release (booking/release.py, waitlist.py, reminders.py).
    "draw_placed": N_(
        "The draw is done and you have a place: {department}, {date} {time}, code {code}. "
        "Please bring the ID card and this code."),
    "draw_waitlisted": N_(
        "The draw is done. There was no place for you on {date} in {department}; you are number "
        "{position} on its waiting list. If a place comes free, we will offer it to you."),
    "draw_refused": N_(
        "Your request for {department} on {date} could not be placed: a booking limit or a pause "
        "applies to this patient. Please call the desk for help."),
    "place_offered": N_(
        "A place has come free for you: {department}, {date} {time}. Reply 1 within {minutes} "
        "minutes to take it, or 2 to pass it to the next person."),
    "draw_cancelled": N_(
        "The hospital closed {department} on {date}, so its draw will not take place and your "
        "request is cancelled. Please ask for another day, or call the desk."),
    "requested_for_you": N_(
        "Someone asked for a place in your name: {department}, {date}. If it was not you, please "
        "call the desk."),
    "reminder": N_(
        "Reminder: {department}, tomorrow {date} {time}, code {code}. Reply 1 to keep it, "
        "or 2 to release it for someone waiting."),
}


# Notices that ask for an answer ("1" or "2"): by phone they are a call that asks it.
QUESTIONS = frozenset({"place_offered", "reminder"})


def notice_message(message: str, params: Mapping[str, Any], *, spoken: bool = False) -> Msg:
    """The Msg for a stored notice; an unknown id (from a newer version) still reads.
    `spoken`: said in a call, so the date is read in full."""
    starts_at = datetime.fromisoformat(params["starts_at"])
    if message == "cancelled_for_you" and params.get("by") == "staff":
        message = "cancelled_by_hospital"
    text = TEXTS.get(message, TEXTS["booked_for_you"])
    return msg(text, department=Names(dict(params.get("department") or {})),
               date=When(starts_at, "date" if spoken else "date_short"), time=When(starts_at, "time"),
               code=params.get("code", ""), position=params.get("position", ""),
               minutes=params.get("minutes", ""))
