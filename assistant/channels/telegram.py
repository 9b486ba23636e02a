"""Telegram: the engine's replies as messages with big reply-keyboard buttons.

Rule: every option becomes one button on its own row, labelled "key label", so a tap
sends text the engine already understands. This module renders; the Bot API webhook and
polling adapters build on it.
"""

from __future__ import annotations

from assistant.channels.base import Rendered, RenderedOption
from assistant.channels.render import Renderer
from assistant.channels.text_forms import handoff_message
from assistant.engine.messages import Ask, End, Handoff, Reply, Say


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
