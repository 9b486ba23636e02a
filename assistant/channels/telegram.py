"""Telegram: the engine's replies as messages with big reply-keyboard buttons.

Rule: every option becomes one button on its own row, labelled "key label", so a tap
sends text the engine already understands. This module renders; the Bot API webhook and
polling adapters build on it (web/telegram_turns.py). Until the chat has shared its own
phone number, the questions that open a conversation also offer a button to share it.
"""

from __future__ import annotations

from assistant.channels.base import Rendered, RenderedOption
from assistant.channels.render import Renderer
from assistant.channels.text_forms import handoff_message
from assistant.engine.flow import Step
from assistant.engine.messages import N_, Ask, End, Handoff, Reply, Say

SHARE_PHONE = N_("Share my phone number")
PHONE_LINKED = N_("Thank you. This chat now works with your phone number {phone}: "
                  "what you book here, by SMS or by phone from that number is all in one place.")
CONTACT_NOT_OWN = N_("Please share your own number with the button below. "
                     "A contact card from someone else can't be used.")
PHONE_NOT_LINKED = N_("Sorry, that phone number could not be used.")
# Where sharing the number helps: before a booking starts, not in the middle of one.
SHARING_STEPS = frozenset({Step.MENU, Step.WHO})


def render_telegram(replies: tuple[Reply, ...], locale: str, renderer: Renderer) -> Rendered:
    texts: list[str] = []
    options: tuple[RenderedOption, ...] = ()
    expect = "none"
    ended = False
    for reply in replies:
        if isinstance(reply, Say):
            texts.append(renderer.text(reply.msg, locale))
        elif isinstance(reply, Handoff):
            texts.append(renderer.text(handoff_message(reply), locale))
        elif isinstance(reply, Ask):
            texts.append(renderer.text(reply.msg, locale))
            options = tuple(RenderedOption(o.key, renderer.text(o.label, locale))
                            for o in reply.expect.options)
            expect = reply.expect.kind.value
        elif isinstance(reply, End):
            ended = True
    buttons = tuple((f"{o.key} {o.label}",) for o in options)
    return Rendered(tuple(texts), options, expect, ended, buttons=buttons)


def offers_phone_sharing(step, rendered: Rendered) -> bool:
    return step in SHARING_STEPS and bool(rendered.buttons)
