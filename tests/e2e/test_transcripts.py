"""End-to-end transcripts: "user says / assistant says" files run through the whole stack.

Each file in tests/transcripts/ is one conversation against the demo hospital, through
run_turn, the real service layer and the chosen channel's renderer, on SQLite and on
PostgreSQL. Format (one directive a line):

    # comment
    @channel sms|voice|telegram     @from ADDRESS     @lang L     @now 2026-12-01T09:00
    > what the user sends (an empty "> " on voice is silence)
    < text that must appear in the reply (messages and option labels)
    <! text that must not appear
    <~ a regular expression that must match
    = expect yes_no            = ended            = dial +86...

`@now` may appear again later in a file to move the clock (a returning patient).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from assistant import conversations, jobs
from assistant.bootstrap import parse_now, renderer_for
from assistant.channels.console import DEFAULT_ADDRESS, ConsoleSession
from assistant.conversation_backend import ServiceBackend
from assistant.config import PROJECT_ROOT

TRANSCRIPTS = sorted((Path(__file__).parent.parent / "transcripts").glob("*.txt"))
DEMO_FILE = PROJECT_ROOT / "config" / "demo_hospital.toml"


@dataclass
class Exchange:
    line_no: int
    says: str
    checks: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Transcript:
    channel: str = "sms"
    address: str | None = None
    lang: str | None = None
    now: str = "2026-12-01T09:00"
    steps: list = field(default_factory=list)  # Exchange, or ("now", value)


def parse(path: Path) -> Transcript:
    transcript = Transcript()
    current: Exchange | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("@"):
            name, _, value = line[1:].partition(" ")
            value = value.strip()
            if name == "now" and transcript.steps:
                transcript.steps.append(("now", value))
            elif name in ("channel", "from", "lang", "now"):
                setattr(transcript, "address" if name == "from" else name, value)
            else:
                raise ValueError(f"{path.name}:{number}: unknown directive {name}")
        elif line.startswith(">"):
            current = Exchange(number, line[2:] if line.startswith("> ") else line[1:])
            transcript.steps.append(current)
        elif line.startswith(("<!", "<~", "<", "=")):
            if current is None:
                raise ValueError(f"{path.name}:{number}: a check before any message")
            for prefix in ("<!", "<~", "<", "="):
                if line.startswith(prefix):
                    current.checks.append((prefix, line[len(prefix):].strip()))
                    break
        else:
            raise ValueError(f"{path.name}:{number}: cannot read {line!r}")
    return transcript


def test_there_are_enough_transcripts():
    assert len(TRANSCRIPTS) >= 12


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_transcript(path, app):
    transcript = parse(path)
    clock = {"now": parse_now(transcript.now, app.settings.timezone)}
    app.clock = lambda: clock["now"]
    jobs.seed_file(app, DEMO_FILE)
    address = transcript.address or DEFAULT_ADDRESS[transcript.channel]
    if transcript.lang:
        ServiceBackend(app.services, transcript.channel, address).remember_locale(
            transcript.lang, None, clock["now"])
    renderer = renderer_for(app)
    session = ConsoleSession(
        transcript.channel, address, renderer,
        lambda channel, addr, inbound: conversations.run_turn(app.services, channel, addr, inbound,
                                                              clock["now"], renderer),
        app.settings.default_locale)
    for step in transcript.steps:
        if isinstance(step, tuple):
            clock["now"] = parse_now(step[1], app.settings.timezone)
            continue
        rendered = session.send(step.says)
        shown = "\n".join(list(rendered.messages) + [f"{o.key} {o.label}" for o in rendered.options])
        where = f"{path.name}:{step.line_no} after {step.says!r}, the assistant said:\n{shown}"
        for kind, expected in step.checks:
            if kind == "<":
                assert expected in shown, f"missing {expected!r} — {where}"
            elif kind == "<!":
                assert expected not in shown, f"unexpected {expected!r} — {where}"
            elif kind == "<~":
                assert re.search(expected, shown), f"no match for /{expected}/ — {where}"
            else:
                check, _, value = expected.partition(" ")
                if check == "expect":
                    assert rendered.expect == value, f"expected {value}, got {rendered.expect} — {where}"
                elif check == "ended":
                    assert rendered.ended, f"the conversation should have ended — {where}"
                elif check == "dial":
                    assert rendered.dial == value, f"expected a call to {value}, got {rendered.dial} — {where}"
                else:
                    raise ValueError(f"{path.name}:{step.line_no}: unknown check {check}")
