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
}


def notice_message(message: str, params: Mapping[str, Any]) -> Msg:
    """The Msg for a stored notice; an unknown id (from a newer version) still reads."""
    starts_at = datetime.fromisoformat(params["starts_at"])
    if message == "cancelled_for_you" and params.get("by") == "staff":
        message = "cancelled_by_hospital"
    text = TEXTS.get(message, TEXTS["booked_for_you"])
    return msg(text, department=Names(dict(params.get("department") or {})),
               date=When(starts_at, "date_short"), time=When(starts_at, "time"),
               code=params.get("code", ""))
