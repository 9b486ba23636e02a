"""Every SMS the assistant sends fits its segment budget, in every shipped language.

Budget (DESIGN.md §5, channels/sms.py): a prompt fits in 2 segments, a plain yes/no
question (birth-date confirm, cancel confirm) in 1, and the read-backs before booking
or rescheduling may take 2. GSM-7 gives 160 characters (153 a part), UCS-2 70 (67 a
part), and every Chinese message and most Spanish ones ("í", "ñ", "¿") are UCS-2.

The engine is driven with the fake backend through every step and every reply it can
emit, with realistic worst cases: the long department names of
`FakeBackend.demo(long_names=True)`, a full date ("Wednesday, December 30, 2026",
"miércoles, 30 de diciembre de 2026"), four long-ish names in "Who is the appointment
for?", and for a fair release three days to request (in a draw, or on a full day's
waiting list), each with its parts of the day. Each turn is rendered with `render_sms`
from the real catalogs. Run with -s to see the largest segment count per language. The
counter's own boundaries are tested in test_sms_segments.py.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from assistant.channels.render import Renderer
from assistant.channels.sms import ask_body, fitted_sentence, render_sms
from assistant.channels.sms_segments import count_segments, is_gsm7
from assistant.channels.text_forms import handoff_message
from assistant.config import LOCALES_DIR
from assistant.engine import Turn, ports
from assistant.engine.flow import Step
from assistant.engine.messages import Ask, ExpectKind, Handoff, InboundKind, Msg, Reply, Say
from assistant.engine.steps.identify import ID_HINTS
from assistant.i18n import Catalogs, catalog_problems, compile_catalogs
from tests.fakes import TZ, FakeBackend, check_char
from tests.unit.test_engine import (
    CN_ID, GENERIC_ID, BrokenBackend, drive, pick, say, seed_booking, send,
)

ROOT = Path(__file__).resolve().parents[2]
ENGINE_DIR = ROOT / "assistant" / "engine"
TEXT_FORMS = ROOT / "assistant" / "channels" / "text_forms.py"
LOCALES = ("en", "zh_Hans", "es")
PROMPT_SEGMENTS = 2
YES_NO_SEGMENTS = 1
# Tuesday 29 December 2026, 09:00 in Beijing: the first open day is Wednesday the 30th.
NOW = datetime(2026, 12, 29, 1, 0, tzinfo=timezone.utc)
TODAY = date(2026, 12, 29)
WEDNESDAY = "2026-12-30"
WEDNESDAY_3PM = datetime(2026, 12, 30, 15, 0, tzinfo=TZ)
PLAIN_YES_NO = {
    "Cancel the booking on {date} at {time}?",
}
READ_BACKS = {
    "Please check: {name}, {department}, {date} at {time}, ID ending {last4}. Book it?",
    "Please check: {name}, born {born}, {department}, {date} at {time}, ID ending {last4}. Book it?",
    "Move the booking of {name} to {department}, {date} at {time}? ID ending {last4}.",
    # A fair release: a request in a draw, or a place on a full day's waiting list.
    "Please check: a request for {name}, {department}, {date}, {part}, ID ending {last4}. "
    "The draw is on {draw_date} at {draw_time}. Send the request?",
    "Please check: the waiting list for {name}, {department}, {date}, {part}, ID ending {last4}. Join it?",
}
NAMES = {
    "en": ["Maria Guadalupe Hernandez", "Christopher Williamson", "Alexandra Montgomery",
           "Jonathan Fitzgerald"],
    "zh_Hans": ["欧阳建国", "司马相如", "诸葛明亮", "上官婉儿"],
    "es": ["María Guadalupe Hernández", "José Antonio Fernández", "Francisca Domínguez",
           "Juan Carlos Rodríguez"],
}
OTHER_LOCALE = {"en": "zh_Hans", "zh_Hans": "es", "es": "en"}
OWN_NAME = {"en": "English", "zh_Hans": "中文", "es": "español"}
BAD_BIRTH_ID = "11010519501307001"  # month 13
BAD_BIRTH_ID += check_char(BAD_BIRTH_ID)

REFUSALS = [
    ports.Refused("slot_full"),
    ports.Refused("not_yet_open", {"opens_at": WEDNESDAY_3PM}),
    ports.Refused("booking_closed"),
    ports.Refused("quota_exceeded", {"quota": "per_department_per_day", "limit": 1}),
    ports.Refused("quota_exceeded", {"quota": "per_visit_day", "limit": 2}),
    ports.Refused("quota_exceeded", {"quota": "per_7_days", "limit": 3}),
    ports.Refused("quota_exceeded", {"quota": "per_90_days", "limit": 5}),
    ports.Refused("suspended", {"reason": "no_shows", "until": date(2026, 12, 30)}),
    ports.Refused("suspended", {"reason": "cancellations", "until": date(2026, 12, 30)}),
    ports.Refused("already_booked"),
    ports.Refused("patients_per_address", {"limit": 3}),
    ports.Refused("quota_exceeded", {"quota": "per_visit_day", "limit": 2, "by_others": True}),
    ports.Refused("suspended", {"reason": "no_shows", "until": date(2026, 12, 30), "scope": "address"}),
    ports.Refused("suspended", {"reason": "cancellations", "until": date(2026, 12, 30), "scope": "address"}),
    ports.Refused("invalid_address"),
    ports.Refused("throttled", {"until": datetime(2026, 12, 29, 10, 0, tzinfo=TZ)}),
    ports.Refused("invalid_identity", {"field": "name"}),
    ports.Refused("something_new"),
]
REQUEST_REFUSALS = [
    ports.Refused("already_requested"),
    ports.Refused("requests_closed", {"opens_at": WEDNESDAY_3PM}),
    ports.Refused("requests_closed"),
    ports.Refused("places_free"),
    ports.Refused("nothing_to_answer"),
]
CANCEL_REFUSALS = [
    ports.Refused("cancellation_deadline", {"deadline": datetime(2026, 12, 30, 16, 0, tzinfo=TZ)}),
    ports.Refused("booking_not_found"),
]


# ---- the hospital and the conversations -----------------------------------------------------


def hospital(locale: str, *, linked: int = 0, self_linked: bool = True, bookings: int = 0) -> FakeBackend:
    """The long-names demo hospital; `linked` patients this address booked for before
    (the first is the sender unless self_linked is False), with `bookings` upcoming."""
    fake = FakeBackend.demo(TODAY, long_names=True)
    for index, name in enumerate(NAMES[locale][:linked]):
        relation = "self" if index == 0 and self_linked else "family"
        fake.link(index + 1, name, CN_ID[-4:], relation)
    for index in range(bookings):
        ref = index % max(linked, 1) + 1
        if ref not in fake.patients:
            fake.link(ref, NAMES[locale][0], CN_ID[-4:], "self")
        # Department 1 (the longest name), one slot a day at 8:00 from Wednesday on.
        seed_booking(fake, ref=ref, slot_id=1 + 8 * index, now=NOW)
    return fake


def request_days(kind: str) -> list[ports.RequestDay]:
    """Three days from Wednesday the 30th: the first two in the morning and the
    afternoon, the last only in the morning. A draw is made at 20:00 the day before."""
    days = [TODAY + timedelta(days=offset) for offset in (1, 2, 3)]
    return [ports.RequestDay(day, kind, ("morning", "afternoon") if index < 2 else ("morning",),
                             datetime.combine(day - timedelta(days=1), time(20), tzinfo=TZ)
                             if kind == "draw" else None)
            for index, day in enumerate(days)]


def draw_hospital(locale: str, **kwargs) -> FakeBackend:
    """Department 1 (the longest name) gives out its places by a draw."""
    fake = hospital(locale, **kwargs)
    fake.request_days_[1] = request_days("draw")
    return fake


def waitlist_hospital(locale: str, **kwargs) -> FakeBackend:
    """Department 1 is full every day; its full days have waiting lists."""
    fake = hospital(locale, **kwargs)
    for slot in fake.slots:
        if slot.department_id == 1:
            slot.booked = slot.capacity
    fake.request_days_[1] = request_days("waitlist")
    return fake


def asked(locale: str, kind: str) -> tuple[FakeBackend, Turn]:
    """A freed place offered (or the day-before reminder) four minutes after the
    patient's last message; "hello" starts the conversation again and hears it."""
    fake = hospital(locale, linked=1, bookings=1 if kind == "reminder" else 0)
    turn = drive(fake, (), locale=locale, now=NOW - timedelta(minutes=10))
    fake.question = ports.Question(kind, fake.departments_[0].names, WEDNESDAY_3PM,
                                   NOW + timedelta(minutes=25), NOW - timedelta(minutes=4),
                                   fake.bookings_[0].code if kind == "reminder" else None)
    turn = send(fake, turn.state, "hello", now=NOW)
    assert turn.state.step == Step.QUESTION, turn.state.step
    return fake, turn


def new_patient(locale: str, *, family: bool = False, id_number: str = CN_ID):
    """A new address is asked at once who the booking is for; then the ID and name."""
    generic = (pick("passport"), say("France")) if id_number == GENERIC_ID else ()
    return (pick("other" if family else "me"), say(id_number)) + generic + (say(NAMES[locale][0]),)


def to_confirm(locale: str, *, family: bool = False):
    return new_patient(locale, family=family) + (pick("dept:1"), pick("slot:"))


@dataclass(frozen=True)
class Case:
    label: str
    replies: tuple[Reply, ...]


class Collector:
    """Drives conversations in one language and keeps every turn to render."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.cases: list[Case] = []

    def keep(self, label: str, turn: Turn) -> Turn:
        assert turn.error is None, f"{label}: {turn.error}"
        self.cases.append(Case(label, turn.replies))
        return turn

    def go(self, label: str, route, *, fake: FakeBackend | None = None, expect: str | None = None,
           locale: str | None = None) -> tuple[FakeBackend, Turn]:
        fake = fake or hospital(self.locale)
        turn = drive(fake, route, locale=locale or self.locale, now=NOW)
        if expect is not None:
            assert turn.state.step == expect, f"{label}: ended at {turn.state.step}"
        self.keep(label, turn)
        return fake, turn

    def then(self, label: str, fake: FakeBackend, turn: Turn, text: str, *,
             kind: InboundKind = InboundKind.TEXT, now: datetime = NOW,
             expiry: timedelta | None = None) -> Turn:
        return self.keep(label, send(fake, turn.state, text, kind=kind, now=now, expiry=expiry))

    def around(self, label: str, make) -> None:
        """Every global-key answer and the simple variant, at the step `make()` reaches."""
        for text in ("help", "0", "9", "*", "menu", "8", "slower"):
            fake, turn = make()
            self.then(f"{label} +{text}", fake, turn, text)
        fake, turn = make()
        once = self.then(f"{label} +??", fake, turn, "??")
        self.then(f"{label} +?? +?? (simple)", fake, once, "??")
        fake, turn = make()
        once = self.then(f"{label} +silence", fake, turn, "", kind=InboundKind.SILENCE)
        self.then(f"{label} +silence +silence", fake, once, "", kind=InboundKind.SILENCE)


def collect(locale: str) -> list[Case]:
    c = Collector(locale)

    # Greetings, the menu, STOP and START, expiry, language switching.
    fake = hospital(locale)
    first = c.keep("first message", send(fake, None, "1", hint=locale, now=NOW))
    stopped = c.then("STOP", fake, first, "STOP")
    c.then("START after STOP", fake, stopped, "START")
    c.then("expired", fake, first, "1", now=NOW + timedelta(hours=30), expiry=timedelta(hours=24))
    fake = hospital(locale, linked=4, bookings=1)
    c.keep("first message, book again", send(fake, None, "1", hint=locale, now=NOW))
    fake = hospital(OTHER_LOCALE[locale])
    elsewhere = drive(fake, (), locale=OTHER_LOCALE[locale], now=NOW)
    c.then("switch by name", fake, elsewhere, OWN_NAME[locale])
    _, chooser = c.go("language step", (say("8"),), expect=Step.LANGUAGE)

    # Every step on arrival, with its global keys and simple variant.
    arrivals = {
        "menu": lambda: c_route(()),
        "language": lambda: c_route((say("8"),)),
        "who (new address)": lambda: c_route(()),
        "id_number": lambda: c_route((pick("me"),)),
        "name": lambda: c_route((pick("me"), say(CN_ID))),
        "birth_date": lambda: c_route(new_patient(locale, id_number=GENERIC_ID)),
        "id_document": lambda: c_route((pick("me"), say(GENERIC_ID))),
        "id_country": lambda: c_route((pick("me"), say(GENERIC_ID), pick("passport"))),
        "claim_code": lambda: c_route((pick("bookings"), pick("claim"))),
        "claim_last4": lambda: c_route((pick("bookings"), pick("claim"), say("CODE0001"))),
        "department": lambda: c_route(new_patient(locale)),
        "soonest (new patient)": lambda: c_route(new_patient(locale) + (pick("dept:1"),)),
        "day": lambda: c_route(new_patient(locale) + (pick("dept:1"), pick("other_day"))),
        "day_part": lambda: c_route(new_patient(locale) + (pick("dept:1"), pick("other_day"), pick(WEDNESDAY))),
        "fix": lambda: c_route(to_confirm(locale) + (pick("no"),)),
        "time": lambda: c_route(new_patient(locale) + (pick("dept:1"), pick("other_day"), pick(WEDNESDAY),
                                                       pick("morning"))),
        "confirm (read-back)": lambda: c_route(to_confirm(locale)),
        "soonest (book again)": lambda: c_route((pick("again:"),), fake=hospital(locale, linked=4, bookings=1)),
        "bookings": lambda: c_route((pick("bookings"),), fake=hospital(locale, linked=4, bookings=5)),
        "booking_action": lambda: c_route((pick("bookings"), pick("code:")),
                                          fake=hospital(locale, linked=4, bookings=1)),
        "cancel_confirm": lambda: c_route((pick("bookings"), pick("code:"), pick("cancel")),
                                          fake=hospital(locale, linked=4, bookings=1)),
        "who (4 names, one is me)": lambda: c_route((pick("book"),), fake=hospital(locale, linked=4)),
        "who (4 names, none is me)": lambda: c_route(
            (pick("book"),), fake=hospital(locale, linked=4, self_linked=False)),
        "request (draw)": lambda: c_route(new_patient(locale) + (pick("dept:1"),), fake=draw_hospital(locale)),
        "request (waitlist)": lambda: c_route(new_patient(locale) + (pick("dept:1"),),
                                              fake=waitlist_hospital(locale)),
        "request read-back": lambda: c_route(new_patient(locale) + (pick("dept:1"), pick("request:")),
                                             fake=draw_hospital(locale)),
        "question (offer)": lambda: asked(locale, "offer"),
        "question (reminder)": lambda: asked(locale, "reminder"),
    }

    def c_route(route, fake=None):
        fake = fake or hospital(locale)
        return fake, drive(fake, route, locale=locale, now=NOW)

    for label, make in arrivals.items():
        fake, turn = make()
        c.keep(f"arrive {label}", turn)
        c.around(label, make)

    # Someone else's details, and the pages behind "More".
    for label, route in {
        "their id_number": (pick("other"),),
        "their name": (pick("other"), say(CN_ID)),
        "their birth_date": new_patient(locale, family=True, id_number=GENERIC_ID),
        "their read-back": to_confirm(locale, family=True),
        "department page 2": new_patient(locale) + (pick("more"),),
        "day page 2": new_patient(locale) + (pick("dept:1"), pick("other_day"), pick("more")),
        "time page 2": new_patient(locale) + (pick("dept:1"), pick("other_day"), pick(WEDNESDAY),
                                              pick("morning"), pick("more")),
    }.items():
        c.go(label, route)
    c.go("bookings page 2", (pick("bookings"), pick("more")), fake=hospital(locale, linked=4, bookings=7))
    c.go("who page 2 (none is me)", (pick("book"), pick("more")),
         fake=hospital(locale, linked=4, self_linked=False))
    fake, linked_readback = c.go("linked patient's read-back",
                                 (pick("book"), pick("patient:1"), pick("dept:1"), pick("slot:")),
                                 fake=hospital(locale, linked=4), expect=Step.CONFIRM)
    c.then("linked patient's read-back: no", fake, linked_readback, "2")

    # Answers that need another try.
    fake, at_id = c.go("id prompt", (pick("me"),))
    for label, text in {"checksum": CN_ID[:-1] + ("1" if CN_ID[-1] != "1" else "2"),
                        "length": "1101051950030700", "birth_date_invalid": BAD_BIRTH_ID,
                        "pattern": "??"}.items():
        c.then(f"id retry: {label}", fake, at_id, text)
    id_ask = at_id.replies[-1]
    for reason, hint in ID_HINTS.items():  # also the hints the fake never gives
        c.cases.append(Case(f"id hint: {reason}", (Say(hint), id_ask)))
    fake, at_name = c.go("name prompt", (pick("me"), say(CN_ID)))
    c.then("name retry", fake, at_name, "123")
    fake, at_birth = c.go("birth date prompt", new_patient(locale, id_number=GENERIC_ID))
    c.then("birth date retry", fake, at_birth, "sometime")
    c.then("birth date in the future", fake, at_birth, "2030-01-01")
    fake, at_fix = c.go("fix prompt", to_confirm(locale) + (pick("no"),), expect=Step.FIX)
    c.then("fix: the time", fake, at_fix, "1")
    c.then("fix: the identity", fake, at_fix, "2")
    c.then("fix retry", fake, at_fix, "xyzzy")
    fake, at_soonest = c.go("soonest prompt", new_patient(locale) + (pick("dept:1"),), expect=Step.SOONEST)
    c.then("soonest: a typed day", fake, at_soonest, WEDNESDAY)
    c.then("soonest: a time not free", fake, at_soonest, "23:00")
    c.then("soonest: afternoons", fake, at_soonest, "afternoon")
    c.then("soonest: a day that opens later", fake, at_soonest, "2027-01-05")
    c.then("greeting mid-conversation", fake, at_soonest, "hello")
    fake, at_department = c.go("department prompt", new_patient(locale))
    c.then("department not found", fake, at_department, "xyzzy")
    fake, at_document = c.go("document prompt", (pick("me"), say(GENERIC_ID)))
    c.then("document retry", fake, at_document, "xyzzy")
    fake, at_country = c.go("country prompt", (pick("me"), say(GENERIC_ID), pick("passport")))
    c.then("country retry", fake, at_country, "Atlantis")
    fake, at_id2 = c.go("id prompt (resident ID inside)", (pick("me"),))
    c.then("id retry: contains_resident_id", fake, at_id2, "A" + CN_ID)

    # A large hospital: areas first, then departments; "did you mean" for a sentence.
    large = lambda: FakeBackend.from_hospital_file(ROOT / "config" / "large_hospital.toml", TODAY)  # noqa: E731
    fake, at_areas = c.go("area menu", new_patient(locale), fake=large(), expect=Step.DEPARTMENT)
    c.then("an area", fake, at_areas, "1")
    meant = c.then("did you mean", fake, at_areas, "our 2 year old needs an operation for a hernia")
    c.then("another department", fake, meant, key_of(meant, "all"))
    c.then("area menu: not found", fake, at_areas, "xyzzy")

    # A booking someone else made: found by its code and the ID's last four.
    fake, at_claim = c.go("claim code prompt", (pick("bookings"), pick("claim")))
    c.then("claim code retry", fake, at_claim, "??")
    fake, at_last4 = c.go("claim last4 prompt", (pick("bookings"), pick("claim"), say("CODE0001")))
    c.then("claim last4 retry", fake, at_last4, "12")
    c.then("claim not found", fake, at_last4, "9999")
    fake = hospital(locale, linked=1, bookings=1)
    fake.bookings_[0].mine = False
    _, at_last4 = c_route((pick("bookings"), pick("claim"), say(fake.bookings_[0].code)), fake=fake)
    c.then("claim found", fake, at_last4, CN_ID[-4:])
    fake, at_day = c.go("day prompt", new_patient(locale) + (pick("dept:1"), pick("other_day")))
    c.then("day opens later", fake, at_day, "2027-01-05")
    c.then("day without times", fake, at_day, "2027-02-10")
    fake, at_time = c.go("time prompt", new_patient(locale) + (pick("dept:1"), pick("other_day"),
                                                               pick(WEDNESDAY), pick("morning")))
    c.then("time not free", fake, at_time, "11:00")

    # The read-back, and what a yes or a no leads to.
    fake, at_confirm = c.go("read-back", to_confirm(locale), expect=Step.CONFIRM)
    c.then("read-back: no", fake, at_confirm, "2")
    c.then("booked", fake, at_confirm, "1")
    for refused in REFUSALS:
        fake, at_confirm = c_route(to_confirm(locale))
        fake.refuse_next = refused
        c.then(f"refused: {refused.rule} {dict(refused.params)}", fake, at_confirm, "1")
    fake = hospital(locale, linked=4, bookings=1)
    _, again = c.go("book again read-back", (pick("again:"), pick("slot:")), fake=fake, expect=Step.CONFIRM)
    c.then("booked again", fake, again, "1")

    # Managing a booking: cancel, keep, reschedule, refusals.
    for answer in ("1", "2"):
        fake = hospital(locale, linked=4, bookings=1)
        _, at_cancel = c.go("cancel confirm", (pick("bookings"), pick("code:"), pick("cancel")), fake=fake)
        c.then(f"cancel confirm: {answer}", fake, at_cancel, answer)
    for refused in CANCEL_REFUSALS:
        fake = hospital(locale, linked=4, bookings=1)
        _, at_cancel = c_route((pick("bookings"), pick("code:"), pick("cancel")), fake=fake)
        fake.refuse_next = refused
        c.then(f"cancel refused: {refused.rule}", fake, at_cancel, "1")
    fake = hospital(locale, linked=4, bookings=1)
    _, at_move = c.go("reschedule read-back", (pick("bookings"), pick("code:"), pick("change"), pick("slot:")),
                      fake=fake, expect=Step.CONFIRM)
    c.then("rescheduled", fake, at_move, "1")
    fake = hospital(locale, linked=4, bookings=1)
    _, at_action = c_route((pick("bookings"), pick("code:")), fake=fake)
    c.then("keep it", fake, at_action, key_of(at_action, "keep"))
    fake.bookings_[0].status = "cancelled"
    c.then("booking gone", fake, at_action, "9")

    # A fair release: requests in a draw, a full day's waiting list, their refusals.
    for kind, make in (("draw", draw_hospital), ("waitlist", waitlist_hospital)):
        fake, at_request = c.go(f"{kind} request menu", new_patient(locale) + (pick("dept:1"),),
                                fake=make(locale), expect=Step.REQUEST)
        page2 = c.then(f"{kind} request menu page 2", fake, at_request, key_of(at_request, "more"))
        first = [value for _, value in at_request.state.menu if value.startswith("request:")]
        second = [value for _, value in page2.state.menu if value.startswith("request:")]
        assert len(first) + len(second) == 7, (first, second)  # 3 + 3 + 1: every day and part

        def to(value: str):
            return (pick("dept:1"),) + ((pick("more"),) if value in second else ()) + (pick(value),)

        for value in first + second:  # every day and part; the last is a whole day, "any time"
            c.go(f"{kind} read-back {value}", new_patient(locale) + to(value), fake=make(locale),
                 expect=Step.CONFIRM)
        fake, at_read_back = c.go(f"{kind} read-back", new_patient(locale) + to(value), fake=make(locale),
                                  expect=Step.CONFIRM)
        c.then(f"{kind} read-back: no", fake, at_read_back, "2")
        c.then(f"{kind} request sent", fake, at_read_back, "1")
        fake = make(locale, linked=4)
        _, at_read_back = c.go(f"{kind} read-back, linked patient", (pick("book"), pick("patient:1")) + to(value),
                               fake=fake, expect=Step.CONFIRM)
        c.then(f"{kind} request sent, linked patient", fake, at_read_back, "1")
        for refused in REQUEST_REFUSALS:
            fake, at_read_back = c_route(new_patient(locale) + to(value), fake=make(locale))
            fake.refuse_next = refused
            c.then(f"{kind} request refused: {refused.rule} {dict(refused.params)}", fake, at_read_back, "1")
    fake, at_waitlist = c_route(new_patient(locale) + (pick("dept:1"),), fake=waitlist_hospital(locale))
    c.then("waitlist: a day not offered", fake, at_waitlist, "xyzzy")
    fake, at_draw = c.go("draw: another day", new_patient(locale) + (pick("dept:1"),),
                         fake=draw_hospital(locale), expect=Step.REQUEST)
    c.then("draw: another day chosen", fake, at_draw, key_of(at_draw, "other_day"))

    # Answering what we asked by message: a freed place, the day-before reminder.
    for kind in ("offer", "reminder"):
        for answer in ("1", "2", "yes", "no", "xyzzy"):
            fake, at_question = asked(locale, kind)
            c.then(f"question ({kind}): {answer}", fake, at_question, answer)
        fake, at_question = asked(locale, kind)
        c.then(f"question ({kind}): too late", fake, at_question, "1", now=NOW + timedelta(hours=1))
        fake, at_question = asked(locale, kind)
        fake.question = None
        c.then(f"question ({kind}): answered elsewhere", fake, at_question, "2")
        # The first message after the offer answers it straight away.
        fake, _ = asked(locale, kind)
        c.keep(f"question ({kind}) answered at once", send(fake, None, "1", hint=locale, now=NOW))
    # A "1" sent after an offer's time ran out is told so.
    fake, _ = asked(locale, "offer")
    fake.question = ports.Question("missed_offer", fake.departments_[0].names, NOW + timedelta(days=1),
                                   NOW - timedelta(minutes=5), NOW - timedelta(minutes=5))
    c.keep("offer answered too late", send(fake, None, "1", hint=locale, now=NOW))

    # The hospital has nothing to offer, or fails.
    fake = hospital(locale)
    c.go("no bookings", (pick("bookings"),), fake=fake)
    fake = hospital(locale)
    _, at_dept = c_route(new_patient(locale), fake=fake)
    fake.slots = [s for s in fake.slots if s.department_id != 1]
    c.then("department without times", fake, at_dept, "1")
    fake = hospital(locale)
    _, at_name = c_route(new_patient(locale)[:-1], fake=fake)
    fake.departments_ = []
    c.then("no departments", fake, at_name, NAMES[locale][0])
    fake = hospital(locale)
    _, at_part = c_route(new_patient(locale) + (pick("dept:1"), pick("other_day"), pick(WEDNESDAY)), fake=fake)
    for slot in fake.slots:
        slot.booked = slot.capacity
    c.then("times just taken", fake, at_part, "1")
    broken = BrokenBackend.demo(TODAY, long_names=True)
    _, at_confirm = c_route(to_confirm(locale), fake=broken)
    broken.broken = "book"
    failed = send(broken, at_confirm.state, "1", now=NOW)
    assert failed.error
    c.cases.append(Case("backend failure", failed.replies))
    for handoff in (Handoff("requested", None, None), Handoff("requested", "+86 10 6512 0000", None)):
        c.cases.append(Case(f"handoff {handoff.desk_phone}", (handoff,)))
    return c.cases


def key_of(turn: Turn, value: str) -> str:
    return next(k for k, v in turn.state.menu if v == value)


# ---- rendering and measuring -----------------------------------------------------------------


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    compile_catalogs(LOCALES_DIR)
    return Renderer(Catalogs(LOCALES_DIR, default="en"), "Asia/Shanghai")


@lru_cache(maxsize=None)
def cases(locale: str) -> tuple[Case, ...]:
    return tuple(collect(locale))


LAYOUT = {"{name}", "{date}", "{time}", "{date} {time}"}  # labels built in code, not catalog ids


def msgids(replies) -> list[str]:
    """The catalog ids a turn's SMS is made of, options and handoff included."""
    found = []

    def walk(m: Msg) -> None:
        if m.text not in LAYOUT:
            found.append(m.text)
        for value in m.params.values():
            if isinstance(value, Msg):
                walk(value)

    for reply in replies:
        if isinstance(reply, Say):
            walk(reply.msg)
        elif isinstance(reply, Ask):
            walk(reply.msg)
            for option in reply.expect.options:
                walk(option.label)
        elif isinstance(reply, Handoff):
            walk(handoff_message(reply))
    return found


@dataclass(frozen=True)
class Measured:
    label: str
    body: str
    segments: int
    units: int
    encoding: str
    msgids: tuple[str, ...]

    def describe(self, locale: str) -> str:
        return (f"[{locale}] {self.label}: {self.segments} segments ({self.units} {self.encoding} units), "
                f"msgids {list(self.msgids)}\n    {self.body!r}")


def measure(locale: str, renderer: Renderer) -> list[Measured]:
    measured = []
    for case in cases(locale):
        rendered = render_sms(case.replies, locale, renderer)
        assert rendered.messages, case.label
        for body in rendered.messages:
            count = count_segments(body)
            measured.append(Measured(case.label, body, count.segments, count.units, count.encoding,
                                     tuple(dict.fromkeys(msgids(case.replies)))))
    return measured


LARGEST: dict[str, Measured] = {}


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_is_ready_to_measure(locale):
    po = Path(LOCALES_DIR) / locale / "LC_MESSAGES" / "messages.po"
    assert po.is_file()
    assert catalog_problems(po) == []


@pytest.mark.parametrize("locale", LOCALES)
def test_every_sms_fits_in_two_segments(locale, renderer):
    measured = measure(locale, renderer)
    assert len(measured) > 250  # the walk really covered the conversation
    largest = max(measured, key=lambda m: (m.segments, m.units))
    LARGEST[locale] = largest
    print(f"\nlargest SMS in {locale}: {largest.segments} segments ({largest.units} "
          f"{largest.encoding} units) at {largest.label!r}")
    over = [m for m in measured if m.segments > PROMPT_SEGMENTS]
    unique = {(m.body, m.segments): m for m in over}.values()
    assert not over, f"{len(unique)} SMS bodies over {PROMPT_SEGMENTS} segments:\n" + "\n".join(
        m.describe(locale) for m in sorted(unique, key=lambda m: -m.units))
    assert largest.segments <= PROMPT_SEGMENTS


def sentence_texts(replies, locale: str, renderer: Renderer) -> list[str]:
    """Each sentence as SMS sends it (names shortened only when it would not fit)."""
    texts = []
    for reply in replies:
        if isinstance(reply, Say):
            texts.append(fitted_sentence(reply.msg, locale, renderer))
        elif isinstance(reply, Handoff):
            texts.append(fitted_sentence(handoff_message(reply), locale, renderer))
    return texts


@pytest.mark.parametrize("locale", LOCALES)
def test_every_question_alone_fits_in_two_segments(locale, renderer):
    over = {}
    for case in cases(locale):
        for reply in case.replies:
            if isinstance(reply, Ask):
                body, _ = ask_body(reply, locale, renderer)
                count = count_segments(body)
                if count.segments > PROMPT_SEGMENTS:
                    over.setdefault(reply.msg.text, f"[{locale}] {reply.msg.text!r}: {count.segments} segments "
                                                    f"({count.units} {count.encoding} units) at {case.label!r}"
                                                    f"\n    {body!r}")
    assert not over, "\n".join(over.values())


@pytest.mark.parametrize("locale", LOCALES)
def test_every_sentence_alone_fits_in_two_segments(locale, renderer):
    over = {}
    for case in cases(locale):
        for text in sentence_texts(case.replies, locale, renderer):
            count = count_segments(text)
            if count.segments > PROMPT_SEGMENTS:
                over.setdefault(text, f"[{locale}] {count.segments} segments ({count.units} {count.encoding} "
                                      f"units) at {case.label!r}\n    {text!r}")
    assert not over, "\n".join(over.values())


@pytest.mark.parametrize("locale", LOCALES)
def test_sentences_that_fit_alone_are_not_joined_past_the_budget(locale, renderer):
    # render_sms may send several sentences in one SMS, but only while it fits.
    joined = {}
    for case in cases(locale):
        sentences = sentence_texts(case.replies, locale, renderer)
        for body in render_sms(case.replies, locale, renderer).messages:
            parts = body.split("\n")
            if (count_segments(body).segments > PROMPT_SEGMENTS and len(parts) > 1
                    and all(p in sentences for p in parts)
                    and all(count_segments(p).segments <= PROMPT_SEGMENTS for p in parts)):
                joined.setdefault(body, f"[{locale}] {case.label!r}: {count_segments(body).segments} segments "
                                        f"({count_segments(body).units} units) from sentences of "
                                        f"{[count_segments(p).units for p in parts]} units\n    {body!r}")
    assert not joined, "\n".join(joined.values())


@pytest.mark.parametrize("locale", LOCALES)
def test_plain_yes_no_question_fits_in_one_segment(locale, renderer):
    seen, over = 0, []
    for case in cases(locale):
        for reply in case.replies:
            if isinstance(reply, Ask) and reply.msg.text in PLAIN_YES_NO:
                assert reply.expect.kind is ExpectKind.YES_NO
                seen += 1
                body, _ = ask_body(reply, locale, renderer)
                count = count_segments(body)
                if count.segments > YES_NO_SEGMENTS:
                    over.append(f"[{locale}] {case.label}: {reply.msg.text!r} -> {count.segments} segments "
                                f"({count.units} {count.encoding} units)\n    {body!r}")
    assert seen >= 4
    assert not over, "\n".join(over)


@pytest.mark.parametrize("locale", LOCALES)
def test_arriving_at_a_yes_no_question_sends_one_segment(locale, renderer):
    arrivals = [c for c in cases(locale) if c.label == "arrive cancel_confirm"]
    assert len(arrivals) == 1
    for case in arrivals:
        rendered = render_sms(case.replies, locale, renderer)
        assert [count_segments(b).segments for b in rendered.messages] == [1], (case.label, rendered.messages)


@pytest.mark.parametrize("locale", LOCALES)
def test_read_backs_fit_in_two_segments(locale, renderer):
    seen = set()
    for case in cases(locale):
        for reply in case.replies:
            if isinstance(reply, Ask) and reply.msg.text in READ_BACKS:
                seen.add(reply.msg.text)
                body, _ = ask_body(reply, locale, renderer)
                count = count_segments(body)
                assert count.segments <= PROMPT_SEGMENTS, (
                    f"[{locale}] {case.label}: {reply.msg.text!r} -> {count.segments} segments "
                    f"({count.units} {count.encoding} units): {body!r}")
    assert seen == READ_BACKS


@pytest.mark.parametrize("locale", LOCALES)
def test_shortened_options_stay_distinguishable(locale, renderer):
    # Shortening labels to fit the budget must not leave two options that read the
    # same: the patient could not tell which booking "1" and "2" are.
    alike = []
    for case in cases(locale):
        for reply in case.replies:
            if not (isinstance(reply, Ask) and reply.expect.kind is ExpectKind.CHOICE):
                continue
            body, options = ask_body(reply, locale, renderer)
            shown = [line.split(" ", 1)[1] for line in body.split("\n")[-len(options):]]
            full = [o.label for o in options]
            if len(set(full)) == len(full) and len(set(shown)) < len(shown):
                alike.append(f"[{locale}] {reply.msg.text!r} at {case.label!r}: {shown}\n    from {full}")
    assert not alike, f"{len(alike)} menus, for example:\n" + "\n".join(alike[:2])


def engine_msgids() -> set[str]:
    """Every N_("...") id in the engine and in the channels' shared sentences."""
    files = list(ENGINE_DIR.rglob("*.py")) + [TEXT_FORMS]
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "N_"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.add(node.args[0].value)
    return found


@pytest.mark.parametrize("locale", LOCALES)
def test_the_walk_emits_every_message_the_engine_has(locale):
    emitted = {text for case in cases(locale) for text in msgids(case.replies)}
    assert len(engine_msgids()) > 80
    assert sorted(engine_msgids() - emitted) == []


@pytest.mark.parametrize("locale", ["zh_Hans", "es"])
def test_every_message_the_engine_sent_is_translated(locale):
    with open(Path(LOCALES_DIR) / locale / "LC_MESSAGES" / "messages.po", "rb") as po_file:
        catalog = read_po(po_file)
    missing = sorted({text for case in cases(locale) for text in msgids(case.replies)
                      if not (catalog.get(text) and catalog.get(text).string)})
    assert missing == []


def test_every_english_sms_is_plain_gsm_7(renderer):
    # One "中文" or "…" would turn an English SMS into UCS-2, which costs double. Only the
    # language menu itself shows each language in its own script, so its readers find it.
    wide = [(case.label, body) for case in cases("en") if "language" not in case.label and "+8" not in case.label
            for body in render_sms(case.replies, "en", renderer).messages if not is_gsm7(body)]
    assert wide == []


@pytest.mark.parametrize("locale", ("en", "es"))
def test_latin_catalogs_use_plain_punctuation(locale):
    # «», "…" and curly quotes force UCS-2 where a plain form would do.
    with open(Path(LOCALES_DIR) / locale / "LC_MESSAGES" / "messages.po", "rb") as po_file:
        catalog = read_po(po_file)
    fancy = [m.string for m in catalog if m.string and any(ch in m.string for ch in "«»“”‘’")]
    assert fancy == []


def test_largest_sms_per_language_is_within_budget(renderer):
    for locale in LOCALES:
        if locale not in LARGEST:
            measured = measure(locale, renderer)
            LARGEST[locale] = max(measured, key=lambda m: (m.segments, m.units))
    print("\nlargest SMS per language:")
    for locale, largest in LARGEST.items():
        print(f"  {locale:8} {largest.segments} segments, {largest.units} {largest.encoding} units: "
              f"{largest.label}")
    over = {locale: m.segments for locale, m in LARGEST.items() if m.segments > PROMPT_SEGMENTS}
    assert over == {}
