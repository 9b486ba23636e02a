"""Voice: the engine's replies as what the phone says, and where `0` connects.

Rule: say the option before the digit ("For cardiology, press 1"), read dates and times
in full words, and turn a handoff into a call to the hospital's desk. This module renders;
the Twilio webhook that wraps it in TwiML <Gather>/<Say>/<Dial> builds on it.
"""

from __future__ import annotations

from assistant.channels.base import Rendered, RenderedOption
from assistant.channels.render import Renderer
from assistant.channels.text_forms import handoff_message
from assistant.engine.messages import Ask, End, ExpectKind, Handoff, Msg, N_, Reply, Say, msg


def render_voice(replies: tuple[Reply, ...], locale: str, renderer: Renderer) -> Rendered:
    spoken: list[str] = []
    options: tuple[RenderedOption, ...] = ()
    expect = "none"
    ended = False
    dial = None
    for reply in replies:
        if isinstance(reply, Say):
            spoken.append(renderer.text(reply.msg, locale, spoken=True))
        elif isinstance(reply, Ask):
            spoken.append(renderer.text(reply.msg, locale, spoken=True))
            labels = [renderer.text(o.label, locale, spoken=True) for o in reply.expect.options]
            options = tuple(RenderedOption(o.key, label) for o, label in zip(reply.expect.options, labels))
            for option in options:
                spoken.append(renderer.text(_press(option.label, option.key), locale, spoken=True))
            if reply.expect.kind is ExpectKind.ID_NUMBER:
                spoken.append(renderer.text(msg(N_("Use the keypad, and press star for X.")), locale, spoken=True))
            expect = reply.expect.kind.value
        elif isinstance(reply, Handoff):
            if reply.desk_phone and reply.reason != "desk_info":
                spoken.append(renderer.text(msg(N_("Connecting you to the desk now.")), locale, spoken=True))
                dial = reply.desk_phone
            else:
                spoken.append(renderer.text(handoff_message(reply), locale, spoken=True))
        elif isinstance(reply, End):
            ended = True
    return Rendered(tuple(spoken), options, expect, ended, dial=dial)


def _press(label: str, key: str) -> Msg:
    return msg(N_("{option}: press {key}."), option=label, key=key)
