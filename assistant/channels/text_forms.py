"""Sentences every channel renders the same way: the handoff to a person.

Rule: channel-independent wording that is not the engine's (the engine only says
"hand off"); each channel decides whether to say it, print it, or dial.
"""

from __future__ import annotations

from assistant.engine.messages import Handoff, Msg, N_, msg


def handoff_message(handoff: Handoff) -> Msg:
    if handoff.desk_phone and handoff.desk_hours:
        return msg(N_("To talk to a person, call the desk on {phone} ({hours})."),
                   phone=handoff.desk_phone, hours=handoff.desk_hours)
    if handoff.desk_phone:
        return msg(N_("To talk to a person, call the desk on {phone}."), phone=handoff.desk_phone)
    return msg(N_("To talk to a person, please come to the hospital's front desk."))
