"""How many messages a patient sends to get a booking code, on every channel and language.

Scripted patients read each reply and choose by its label, as a person would: on SMS and
voice they send the key of the option they want, on Telegram they tap its button. Every
message counts, the first greeting included. The limits: a new patient books in at most
7, a returning patient (another department) in at most 5, and "book again" (the same
department) in at most 4. Through run_turn and the real service layer, on SQLite and
PostgreSQL, against the demo hospital.
"""

from __future__ import annotations

import pytest

from assistant import conversations, jobs
from assistant.bootstrap import parse_now, renderer_for
from assistant.channels.console import ConsoleSession
from assistant.booking import service
from assistant.config import PROJECT_ROOT
from assistant.engine.messages import N_, msg

NOW = "2026-12-01T09:00"
LIMITS = {"new": 7, "returning": 5, "again": 4}
CHANNELS = ("sms", "voice", "telegram")
LOCALES = ("en", "zh_Hans", "es")
GREETING = {"en": "hello", "zh_Hans": "你好", "es": "hola"}
YES = {"en": "yes", "zh_Hans": "是", "es": "sí"}
# Each language's speakers write from a phone of their country (Telegram has no number).
ADDRESS = {("sms", "en"): "+14155550101", ("sms", "zh_Hans"): "+8613800000201",
           ("sms", "es"): "+34612345601", ("voice", "en"): "+14155550102",
           ("voice", "zh_Hans"): "+8613800000202", ("voice", "es"): "+34612345602",
           ("telegram", "en"): "500000101", ("telegram", "zh_Hans"): "500000102",
           ("telegram", "es"): "500000103"}
PATIENT = {"en": ("110101195203150034", "Wang Fang"), "zh_Hans": ("110101195203150034", "王芳"),
           "es": ("110101195203150034", "María López")}
FIRST_DEPARTMENT = {"en": "Cardiology", "zh_Hans": "心内科", "es": "Cardiología"}
SECOND_DEPARTMENT = {"en": "General Medicine", "zh_Hans": "全科", "es": "Medicina general"}


class Patient:
    """Talks to the assistant on one channel, choosing options by their labels."""

    def __init__(self, app, channel: str, locale: str, clock, address: str | None = None) -> None:
        renderer = renderer_for(app)
        self.renderer, self.channel, self.locale = renderer, channel, locale
        self.session = ConsoleSession(
            channel, address or ADDRESS[(channel, locale)], renderer,
            lambda ch, address, inbound: conversations.run_turn(app.services, ch, address, inbound,
                                                                clock(), renderer),
            app.settings.default_locale)
        self.sent = 0
        self.last = None

    def say(self, text: str):
        self.sent += 1
        self.last = self.session.send(text)
        return self.last

    def choose(self, label: str):
        """Pick the option whose label holds `label`: its button on Telegram, else its key."""
        for index, option in enumerate(self.last.options):
            if label in option.label:
                if self.channel == "telegram":
                    return self.say(self.last.buttons[index][0])
                return self.say(option.key)
        raise AssertionError(f"no option {label!r} in {self.last}")

    def label(self, english: str, **params) -> str:
        return self.renderer.text(msg(english, **params), self.locale)

    def first_time(self):
        return self.say(self.last.options[0].key if self.channel != "telegram" else self.last.buttons[0][0])



@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_new_returning_and_book_again_flows_keep_to_their_limits(app, channel, locale):
    moment = parse_now(NOW, app.settings.timezone)
    app.clock = lambda: moment
    jobs.seed_file(app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    patient = Patient(app, channel, locale, app.clock)
    number, name = PATIENT[locale]
    counts = {}

    def booked(expected: int) -> bool:
        return len(service.staff_bookings(app.services)) == expected

    patient.say(GREETING[locale])
    patient.choose(patient.label(N_("For me")))
    patient.say(number)
    patient.say(name)
    patient.say(FIRST_DEPARTMENT[locale])
    patient.first_time()
    patient.say(YES[locale])
    assert booked(1), patient.last
    counts["new"], patient.sent = patient.sent, 0

    patient.say(GREETING[locale])
    patient.choose(patient.label(N_("Book for {name}"), name=name))
    patient.say(SECOND_DEPARTMENT[locale])
    patient.first_time()
    patient.say(YES[locale])
    assert booked(2), patient.last
    counts["returning"], patient.sent = patient.sent, 0

    patient.say(GREETING[locale])
    patient.choose(patient.label(N_("Book again: {department} for {name}"),
                                 department=SECOND_DEPARTMENT[locale], name=name).split(":")[0])
    patient.first_time()
    patient.say(YES[locale])
    assert booked(3), patient.last
    counts["again"] = patient.sent

    print(channel, locale, counts)
    assert all(counts[flow] <= limit for flow, limit in LIMITS.items()), counts


@pytest.mark.parametrize("locale", ("en", "es"))
def test_a_plus_86_caller_speaking_english_or_spanish_books_in_seven(app, locale):
    """The number says Chinese, the caller's first words say otherwise: the first reply
    is in the caller's language, so choosing it costs no key presses."""
    moment = parse_now(NOW, app.settings.timezone)
    app.clock = lambda: moment
    jobs.seed_file(app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    patient = Patient(app, "voice", locale, app.clock, address="+8613800000399")
    number, name = PATIENT[locale]
    patient.say(GREETING[locale])
    assert patient.label(N_("For me")) in [o.label for o in patient.last.options]
    patient.choose(patient.label(N_("For me")))
    for text in (number, name, FIRST_DEPARTMENT[locale]):
        patient.say(text)
    patient.first_time()
    patient.say(YES[locale])
    assert len(service.staff_bookings(app.services)) == 1 and patient.sent == 7
