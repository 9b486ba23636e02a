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
Later directives act at that point of the conversation:

    @as ADDRESS      the next messages come from another phone or chat (same channel);
                     `@as` alone goes back to the first
    @worker          the worker's scheduled jobs run now (draws, offers, reminders)
    @fill DEPT DAY   other patients (booked at the desk) take every free place that day
    @free DEPT DAY   the desk cancels one of those bookings: a place comes free
    @outbox          what was queued for the current address since the last look, as
                     the patient would read it; the check lines below it apply
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from assistant import conversations, jobs
from assistant.bootstrap import parse_now, renderer_for
from assistant.channels.console import DEFAULT_ADDRESS, ConsoleSession
from assistant.conversation_backend import ServiceBackend
from assistant.config import PROJECT_ROOT

TRANSCRIPTS = sorted((Path(__file__).parent.parent / "transcripts").glob("*.txt"))
OUTBOX = object()  # an Exchange that reads the outbox instead of sending a message
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
            elif name in ("as", "worker", "fill", "free"):
                transcript.steps.append((name, value))
            elif name == "outbox":
                current = Exchange(number, OUTBOX)
                transcript.steps.append(current)
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
    sessions: dict[str, ConsoleSession] = {}

    def session_of(addr: str) -> ConsoleSession:
        if addr not in sessions:
            sessions[addr] = ConsoleSession(
                transcript.channel, addr, renderer,
                lambda channel, sender, inbound: conversations.run_turn(app.services, channel, sender, inbound,
                                                                        clock["now"], renderer),
                app.settings.default_locale)
        return sessions[addr]

    speaking, seen = address, set()
    for step in transcript.steps:
        if isinstance(step, tuple):
            if step[0] == "now":
                clock["now"] = parse_now(step[1], app.settings.timezone)
            elif step[0] == "as":
                speaking = step[1] or address
            elif step[0] == "worker":
                jobs.run_due_work(app.services, clock["now"], worker="transcript")
            elif step[0] in ("fill", "free"):
                department, day = step[1].split()
                (fill_day if step[0] == "fill" else free_one)(app, department, date.fromisoformat(day), clock["now"])
            continue
        if step.says is OUTBOX:
            shown = "\n".join(queued_for(app, renderer, transcript.channel, speaking, seen))
            where = f"{path.name}:{step.line_no} the outbox for {speaking} held:\n{shown}"
            echo(where)
            check_text(step.checks, shown, where)
            continue
        rendered = session_of(speaking).send(step.says)
        shown = "\n".join(list(rendered.messages) + [f"{o.key} {o.label}" for o in rendered.options])
        where = f"{path.name}:{step.line_no} after {step.says!r}, the assistant said:\n{shown}"
        echo(where)
        for kind, expected in step.checks:
            if kind in ("<", "<!", "<~"):
                check_text([(kind, expected)], shown, where)
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


def echo(where: str) -> None:
    """TRANSCRIPT_ECHO=1 (with pytest -s) prints every exchange: for writing a new one."""
    if os.environ.get("TRANSCRIPT_ECHO"):
        print(where, end="\n\n")


def check_text(checks, shown: str, where: str) -> None:
    for kind, expected in checks:
        if kind == "<":
            assert expected in shown, f"missing {expected!r} — {where}"
        elif kind == "<!":
            assert expected not in shown, f"unexpected {expected!r} — {where}"
        elif kind == "<~":
            assert re.search(expected, shown), f"no match for /{expected}/ — {where}"
        else:
            raise ValueError(f"{where}: only text checks apply to the outbox")


def queued_for(app, renderer, channel: str, address: str, seen: set) -> list[str]:
    """The notices queued for this address and not yet looked at, as its patient reads
    them (in the address's language)."""
    from sqlalchemy import select

    from assistant.booking.models import ChannelAddress, OutboxMessage
    from assistant.booking.records import find_address
    from assistant.conversation_backend import address_for
    from assistant.notices import notice_message

    with app.services.uow.read_only() as uow:
        found = find_address(app.services, uow.session, address_for(channel, address))
        if found is None:
            return []
        rows = uow.session.execute(select(OutboxMessage.id, OutboxMessage.message, OutboxMessage.params,
                                          ChannelAddress.locale)
                                   .join(ChannelAddress, OutboxMessage.address_id == ChannelAddress.id)
                                   .where(OutboxMessage.address_id == found.id)
                                   .order_by(OutboxMessage.id)).all()
    texts = []
    for row_id, message, params, locale in rows:
        if row_id in seen:
            continue
        seen.add(row_id)
        texts.append(renderer.text(notice_message(message, params), locale or app.settings.default_locale))
    return texts


def _day_slots(app, department: str, day: date):
    from sqlalchemy import select

    from assistant.booking.models import Department, Slot

    with app.services.uow.read_only() as uow:
        return [(slot.id, slot.capacity - slot.booked - slot.held) for slot in uow.session.execute(
            select(Slot).join(Department, Slot.department_id == Department.id)
            .where(Department.code == department, Slot.visit_date == day).order_by(Slot.starts_at)).scalars()]


def fill_day(app, department: str, day: date, now) -> None:
    """Other patients, booked at the desk, take every free place of the day."""
    from assistant.booking import results as r, service
    from tests.support import person

    others = iter(f"Other {a}{b}" for a in "ABCDEFGHJK" for b in "ABCDEFGHJK")
    for slot_id, free in _day_slots(app, department, day):
        for _ in range(free):
            booked = service.book_slot(app.services, slot_id=slot_id, channel="desk", now=now,
                                       identity_input=person(next(others)), staff=service.Staff("desk"))
            assert isinstance(booked, r.Booked), booked


def free_one(app, department: str, day: date, now) -> None:
    """The desk cancels one booking it made that day: its place comes free."""
    from sqlalchemy import select

    from assistant.booking import results as r, service
    from assistant.booking.models import Booking, Department

    with app.services.uow.read_only() as uow:
        code = uow.session.execute(
            select(Booking.code).join(Department, Booking.department_id == Department.id)
            .where(Department.code == department, Booking.visit_date == day, Booking.status == "booked",
                   Booking.booked_by_staff.is_not(None)).order_by(Booking.id).limit(1)).scalar_one()
    cancelled = service.cancel_booking(app.services, code=code, requester=service.Staff("desk"), channel="desk",
                                       now=now)
    assert isinstance(cancelled, r.Cancelled), cancelled
