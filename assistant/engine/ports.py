"""The engine's one window on the world: the `Backend` protocol and the data it returns.

Rule: the engine reads and writes hospitals, slots, patients and bookings only through
this protocol. A Backend is bound to one conversation's channel and address. The
service layer implements it (assistant/conversation_backend.py); tests pass an
in-memory fake. Everything here is engine-side data: no SQLAlchemy rows cross over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Mapping, Protocol, Sequence

from assistant.engine.messages import Msg


@dataclass(frozen=True)
class HospitalInfo:
    timezone: str
    default_locale: str
    locales: tuple[str, ...]
    desk_phone: str | None
    desk_hours: Mapping[str, str] | None
    identity_kinds: tuple[str, ...]  # in the order to try them
    # Each language's name in itself ("中文", "Español"), to offer a switch.
    language_names: Mapping[str, str] = field(default_factory=dict)
    # Each language's name in each other language ({"en": {"zh_Hans": "Chinese"}}).
    language_names_in: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Areas a large hospital's department menu starts with: (code, names per locale).
    department_groups: tuple[tuple[str, Mapping[str, str]], ...] = ()
    # Document types a generic ID may be (passport, …), when that kind is accepted.
    generic_documents: tuple[str, ...] = ("passport",)


@dataclass(frozen=True)
class DepartmentInfo:
    id: int
    names: Mapping[str, str]
    keywords: Mapping[str, Sequence[str]]
    group: str | None = None  # one of HospitalInfo.department_groups


@dataclass(frozen=True)
class SlotInfo:
    id: int
    starts_at: datetime
    free: int


@dataclass(frozen=True)
class PatientInfo:
    ref: int
    name: str
    id_last4: str
    relation: str  # self | family


@dataclass(frozen=True)
class BookingInfo:
    code: str
    patient_ref: int
    patient_name: str
    department_id: int
    department_names: Mapping[str, str]
    starts_at: datetime
    cancel_deadline: datetime


@dataclass(frozen=True)
class RecentBooking:
    """The newest booking this address made: offered as "book again"."""

    patient_ref: int
    patient_name: str
    department_id: int
    department_names: Mapping[str, str]


@dataclass(frozen=True)
class IdCheck:
    """A typed-in ID number, checked. `reason` names the problem when not ok."""

    ok: bool
    kind: str | None = None
    value: str | None = None
    last4: str | None = None
    birth_date: date | None = None
    reason: str | None = None


@dataclass(frozen=True)
class NewPatient:
    id_kind: str
    id_number: str
    name: str
    birth_date: date | None
    document: str | None = None  # generic IDs: document type and issuing country
    country: str | None = None


@dataclass(frozen=True)
class Done:
    """A booking, cancellation or reschedule went through."""

    code: str
    starts_at: datetime | None = None
    department_names: Mapping[str, str] = field(default_factory=dict)
    patient_ref: int | None = None


@dataclass(frozen=True)
class Refused:
    """The backend said no. `rule` names why; `params` holds dates and limits to tell
    the patient (opens_at, until, deadline, limit, quota, field, reason)."""

    rule: str
    params: Mapping[str, object] = field(default_factory=dict)


Outcome = Done | Refused


@dataclass(frozen=True)
class RequestDay:
    """A day to ask a place for: in its draw ("draw", until `closes_at`), or on its
    waitlist because it is full ("waitlist"). `parts`: morning and/or afternoon."""

    day: date
    kind: str
    parts: tuple[str, ...]
    closes_at: datetime | None = None


@dataclass(frozen=True)
class Requested:
    """A request taken: the draw's time, or the place in the waitlist's queue."""

    kind: str  # draw | waitlist
    day: date
    part: str  # morning | afternoon | any
    department_names: Mapping[str, str] = field(default_factory=dict)
    draw_at: datetime | None = None
    position: int | None = None
    patient_ref: int | None = None


@dataclass(frozen=True)
class Question:
    """Something we asked this address by message that a "1" or "2" answers: a freed
    place offered from the waitlist ("offer"), or the day-before reminder ("reminder");
    or an offer it let expire lately ("missed_offer"), so a late "1" is told so."""

    kind: str
    department_names: Mapping[str, str]
    starts_at: datetime
    expires_at: datetime
    asked_at: datetime
    code: str | None = None


@dataclass(frozen=True)
class Answered:
    """The answer was taken: an offer accepted (with the new booking's code) or passed
    on, a reminder kept or its booking released."""

    kind: str
    accepted: bool
    code: str | None = None
    starts_at: datetime | None = None


class Backend(Protocol):
    def hospital(self) -> HospitalInfo: ...

    def departments(self) -> Sequence[DepartmentInfo]: ...

    def open_days(self, department_id: int, now: datetime, limit: int) -> Sequence[date]:
        """Local days from today with at least one free, released, bookable slot."""

    def free_slots(self, department_id: int, day: date, now: datetime) -> Sequence[SlotInfo]: ...

    def soonest_slots(self, department_id: int, now: datetime, limit: int) -> Sequence[SlotInfo]:
        """The first free, bookable slots from now on, across days."""

    def opens_at(self, department_id: int, day: date, now: datetime) -> datetime | None:
        """When booking opens for that day, if it has slots not yet released."""

    def linked_patients(self) -> Sequence[PatientInfo]:
        """Patients this address has booked for before."""

    def last_booked(self) -> RecentBooking | None: ...

    def check_id_number(self, text: str, today: date) -> IdCheck: ...

    def check_name(self, text: str) -> str | None:
        """The cleaned name, or None when it can't be a name."""

    def label_text(self, label: Msg, locale: str) -> str | None:
        """The words a patient sees for an option label, so that the label sent back
        (a tapped Telegram button, a label typed out) is understood. None: unknown."""

    def check_country(self, text: str, locale: str) -> str | None:
        """An issuing country's ISO 3166 code from its name (in `locale` or English) or
        its code, or None."""

    def book(self, who: NewPatient | int, slot_id: int, relation: str, now: datetime,
             key: str | None) -> Outcome:
        """`who` is a new patient's identity or a linked patient's ref."""

    def bookings(self, now: datetime) -> Sequence[BookingInfo]:
        """Upcoming bookings this address made (the only ones it may see)."""

    def find_booking(self, code: str, id_last4: str, now: datetime) -> BookingInfo | None:
        """An upcoming booking someone else made, for whoever holds its code and the
        last four characters of the patient's ID; None for a wrong code or tail alike."""

    def cancel(self, code: str, now: datetime, key: str | None,
               id_last4: str | None = None) -> Outcome:
        """Cancel a booking this address made, or (with `id_last4`) one whose code the
        patient holds."""

    def reschedule(self, code: str, slot_id: int, now: datetime, key: str | None,
                   id_last4: str | None = None) -> Outcome: ...

    def request_days(self, department_id: int, now: datetime, kind: str | None = None) -> Sequence[RequestDay]:
        """Days whose places are given by a draw open for requests, then full days with
        a waitlist to join (`kind`: "draw" or "waitlist" only)."""

    def request(self, who: NewPatient | int, department_id: int, day: date, part: str, relation: str,
                now: datetime, key: str | None) -> Requested | Refused: ...

    def pending_question(self, now: datetime) -> Question | None:
        """An offer or reminder this address may answer now."""

    def answer_question(self, accept: bool, now: datetime, key: str | None) -> Answered | Refused: ...

    def remember_locale(self, locale: str, patient_ref: int | None, now: datetime) -> None: ...

    def remembered_locale(self) -> str | None: ...

    def remember_slow_speech(self, now: datetime) -> None:
        """The person asked to be spoken to more slowly (the phone applies it)."""

    def set_opted_out(self, opted_out: bool, now: datetime) -> None: ...

    def is_opted_out(self) -> bool: ...
