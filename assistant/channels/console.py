"""The console channel: `assistant chat`, in a terminal or as JSON lines.

Rule: one input line is one inbound message and gets exactly one output (one JSON line
with --jsonl). Replies are laid out by the chosen channel's renderer, so the console
shows what an SMS, a call or a Telegram chat would. This is a stable interface for
scripted users: keep the JSON keys as they are.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Callable, TextIO

from assistant.channels.base import Rendered
from assistant.channels.render import Renderer
from assistant.channels.sms import render_sms
from assistant.channels.telegram import render_telegram
from assistant.channels.voice import render_voice
from assistant.engine.messages import N_, Inbound, InboundKind, msg

log = logging.getLogger(__name__)

RENDERERS = {"sms": render_sms, "voice": render_voice, "telegram": render_telegram}
DEFAULT_ADDRESS = {"sms": "+8613800000000", "voice": "+8613800000000", "telegram": "100000001"}


@dataclass
class ConsoleSession:
    """One console conversation. `run_turn(channel, address, inbound)` is the shared
    loop (conversations.run_turn, bound to the app and its clock)."""

    channel: str
    address: str
    renderer: Renderer
    run_turn: Callable
    default_locale: str
    language_hint: str | None = None

    def __post_init__(self) -> None:
        # Without a chosen language, a phone number's country is the best first guess.
        if self.language_hint is None and self.channel in ("sms", "voice"):
            self.language_hint = self.address
    def send(self, line: str) -> Rendered:
        text = line.rstrip("\r\n")
        silent = self.channel == "voice" and not text.strip()
        inbound = Inbound(text=text, kind=InboundKind.SILENCE if silent else InboundKind.TEXT,
                          language_hint=self.language_hint, event_id=f"console-{uuid.uuid4().hex}")
        try:
            result = self.run_turn(self.channel, self.address, inbound)
        except Exception as exc:  # the database may be down or locked: apologise, never crash
            # The type only: a message could quote the patient's words.
            log.error("the %s turn could not be handled: %s", self.channel, type(exc).__name__)
            return Rendered((self.renderer.text(msg(N_(
                "Sorry, something went wrong on our side. Please try again in a few minutes.")),
                self.default_locale),), expect="text")
        locale = result.turn.state.locale or self.default_locale
        rendered = RENDERERS[self.channel](result.turn.replies, locale, self.renderer)
        if result.turn.ended and not rendered.ended:
            rendered = Rendered(rendered.messages, rendered.options, rendered.expect, True,
                                rendered.dial, rendered.buttons)
        return rendered


def as_json(rendered: Rendered) -> str:
    return json.dumps({
        "replies": list(rendered.messages),
        "options": [{"key": o.key, "label": o.label} for o in rendered.options],
        "expect": rendered.expect,
        "ended": rendered.ended,
    }, ensure_ascii=False)


def as_text(rendered: Rendered, channel: str) -> str:
    lines = []
    for message in rendered.messages:
        lines.append(("🔊 " if channel == "voice" else "") + message)
        if channel == "sms":
            lines.append("")
    if channel == "telegram" and rendered.buttons:
        lines.extend(f"  [ {row[0]} ]" for row in rendered.buttons)
    if rendered.dial:
        lines.append(f"(the call is connected to {rendered.dial})")
    return "\n".join(lines).rstrip() + "\n"


def run_jsonl(session: ConsoleSession, source: TextIO, sink: TextIO) -> None:
    for line in source:
        sink.write(as_json(session.send(line)) + "\n")
        sink.flush()


def run_interactive(session: ConsoleSession, source: TextIO, sink: TextIO, prompt: str = "> ") -> None:
    sink.write("CareLine chat on the %s channel as %s. Type a message; Ctrl+D ends.\n"
               % (session.channel, session.address))
    while True:
        sink.write(prompt)
        sink.flush()
        line = source.readline()
        if not line:
            sink.write("\n")
            return
        sink.write(as_text(session.send(line), session.channel))
