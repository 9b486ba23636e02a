"""What goes into the engine and what comes out of it.

Rule: plain frozen data, no behaviour beyond construction. The engine never translates:
a `Msg` carries an English source text (also the gettext msgid, marked with `N_` so
`pybabel extract` finds it) and its parameters; the channel renders it in the
conversation's locale. Parameters that need the locale to render (a department's
names, a date) are typed values, never pre-formatted strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Mapping, Union


def N_(text: str) -> str:
    """Marks a message id for extraction; translation happens at the channel edge."""
    return text


class InboundKind(enum.Enum):
    TEXT = "text"  # a message, a keypad entry or recognised speech
    SILENCE = "silence"  # the caller said and pressed nothing
    START = "start"  # a new call or a Telegram /start, before anything is said
    RESUME = "resume"  # the channel answered the message itself (a shared contact): ask again


@dataclass(frozen=True)
class Inbound:
    text: str = ""
    kind: InboundKind = InboundKind.TEXT
    # The channel's best guess at the sender's language (Telegram's language_code, the
    # phone's country); only used to greet a new conversation.
    language_hint: str | None = None
    # The provider's id for this event (MessageSid, update_id, CallSid+step); makes
    # side effects idempotent.
    event_id: str | None = None


@dataclass(frozen=True)
class Names:
    """A name given per locale (department names); the channel picks one."""

    by_locale: Mapping[str, str]


@dataclass(frozen=True)
class When:
    """A moment or a day to render in the hospital's zone: style is date (in full, with
    the weekday), date_short, birth_date (no weekday), time, or datetime."""

    value: datetime | date
    style: str = "date"


Param = Union[str, int, "Msg", Names, When]


@dataclass(frozen=True)
class Msg:
    text: str
    params: Mapping[str, Param] = field(default_factory=dict)


def msg(text: str, **params: Param) -> Msg:
    return Msg(text, params)


class ExpectKind(enum.Enum):
    CHOICE = "choice"
    YES_NO = "yes_no"
    DIGITS = "digits"
    ID_NUMBER = "id_number"
    NAME = "name"
    BIRTH_DATE = "birth_date"
    DATE = "date"
    TEXT = "text"
    NONE = "none"


@dataclass(frozen=True)
class Option:
    key: str  # what the patient sends or presses: "1", "2", …
    label: Msg


@dataclass(frozen=True)
class Expect:
    kind: ExpectKind
    options: tuple[Option, ...] = ()
    digits: int | None = None  # how many keypad digits, when known

    @classmethod
    def choice(cls, options: tuple[Option, ...]) -> "Expect":
        return cls(ExpectKind.CHOICE, options)

    @classmethod
    def yes_no(cls, yes: Msg, no: Msg) -> "Expect":
        return cls(ExpectKind.YES_NO, (Option("1", yes), Option("2", no)))


@dataclass(frozen=True)
class Say:
    msg: Msg


@dataclass(frozen=True)
class Ask:
    msg: Msg
    expect: Expect


@dataclass(frozen=True)
class Handoff:
    """Hand the patient to a person: the phone dials the desk; text channels give the
    desk's number and hours. `reason` is requested, silence or error; desk_info only
    tells the number (after a refusal only staff can help with), even on the phone."""

    reason: str
    desk_phone: str | None
    desk_hours: Names | None


@dataclass(frozen=True)
class End:
    """The conversation is over for now (a call may hang up politely)."""


Reply = Union[Say, Ask, Handoff, End]
