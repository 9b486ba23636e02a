"""Typed results and refusals of the service layer, and their JSON form.

Rule: a use case returns one of these values and never raises for a patient's mistake
or a rule. Each refusal names its `rule` and, where one exists, the moment it lifts or
opens, so the engine can say what the patient can do next. Results are stored as JSON
for idempotent replays, so they hold no name, ID number or phone number.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, ClassVar


@dataclass(frozen=True)
class DepartmentView:
    id: int
    code: str
    names: dict[str, str]
    keywords: dict[str, list[str]]
    hospital_timezone: str
    group: str | None = None


@dataclass(frozen=True)
class SlotView:
    id: int
    department_id: int
    starts_at: datetime
    ends_at: datetime
    visit_date: date
    free: int


@dataclass(frozen=True)
class BookingView:
    code: str
    status: str
    patient_ref: int
    department_id: int
    department_code: str
    department_names: dict[str, str]
    slot_id: int
    starts_at: datetime
    ends_at: datetime
    visit_date: date
    channel: str
    cancel_deadline: datetime


@dataclass(frozen=True)
class LinkedPatient:
    """A patient an address may book for, by the name that address gave. Built for one
    conversation turn and never stored: `name` and `id_last4` are decrypted."""

    patient_ref: int
    name: str
    id_last4: str
    relation: str


@dataclass(frozen=True)
class NamedBooking:
    """A booking with the name typed for it, for the one who may see it. Built for one
    turn and never stored."""

    booking: BookingView
    name: str


# ---- successes -------------------------------------------------------------------


@dataclass(frozen=True)
class Booked:
    booking: BookingView


@dataclass(frozen=True)
class Cancelled:
    booking: BookingView


@dataclass(frozen=True)
class Rescheduled:
    booking: BookingView  # the new booking
    previous_code: str


@dataclass(frozen=True)
class CheckedIn:
    """For the desk only, never stored: it carries the names typed for the identity,
    for the clerk to compare with the ID card."""

    booking: BookingView
    verified_address: bool = False  # the address that booked "for me" is now verified
    name: str = ""
    other_names: tuple[str, ...] = ()  # other names earlier bookings used
    checksum_verified: bool = True


@dataclass(frozen=True)
class Requested:
    """A place asked for: in a draw (`kind` "draw", decided at `draw_at`), or on the
    waitlist of a full day (`kind` "waitlist", `position` in its queue)."""

    kind: str
    department_id: int
    department_names: dict
    visit_date: date
    part: str  # morning | afternoon | any
    draw_at: datetime | None = None
    position: int | None = None


@dataclass(frozen=True)
class Answered:
    """A reply to a question we sent: an offer taken (`booking` set) or passed on, a
    reminder kept or its place released. `question` is "offer" or "reminder"."""

    question: str
    accepted: bool
    code: str | None = None
    booking: BookingView | None = None


@dataclass(frozen=True)
class NoShowReport:
    marked: int
    suspended_patients: int
    suspended_addresses: int = 0


@dataclass(frozen=True)
class SuspensionLifted:
    suspension_id: int


# ---- refusals ----------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    rule: ClassVar[str] = "refused"


@dataclass(frozen=True)
class InvalidIdentity(Refusal):
    rule: ClassVar[str] = "invalid_identity"
    field: str  # id_number | name | birth_date | document | country
    reason: str


@dataclass(frozen=True)
class InvalidAddress(Refusal):
    """The sender's address can't be read (never reported as an ID problem)."""

    rule: ClassVar[str] = "invalid_address"


@dataclass(frozen=True)
class SlotNotFound(Refusal):
    rule: ClassVar[str] = "slot_not_found"


@dataclass(frozen=True)
class SlotFull(Refusal):
    rule: ClassVar[str] = "slot_full"


@dataclass(frozen=True)
class NotYetOpen(Refusal):
    rule: ClassVar[str] = "not_yet_open"
    opens_at: datetime


@dataclass(frozen=True)
class BookingClosed(Refusal):
    rule: ClassVar[str] = "booking_closed"
    closed_at: datetime


@dataclass(frozen=True)
class AlreadyBooked(Refusal):
    rule: ClassVar[str] = "already_booked"
    code: str


@dataclass(frozen=True)
class QuotaExceeded(Refusal):
    """`quota` is per_department_per_day, per_visit_day, per_7_days or per_90_days.
    `by_others`: bookings made from other addresses fill it, so the patient is told how
    to free them (the codes in her notices, or the desk)."""

    rule: ClassVar[str] = "quota_exceeded"
    quota: str
    limit: int
    by_others: bool = False


@dataclass(frozen=True)
class Suspended(Refusal):
    """`reason` is no_shows or cancellations; booking is possible again from `until`.
    `scope` is identity (the patient's own verified address caused it) or address (this
    address's bookings did: it may not book for anyone)."""

    rule: ClassVar[str] = "suspended"
    reason: str
    until: datetime
    scope: str = "identity"


@dataclass(frozen=True)
class TooManyPatients(Refusal):
    rule: ClassVar[str] = "patients_per_address"
    limit: int


@dataclass(frozen=True)
class AlreadyRequested(Refusal):
    """The identity already asked for a place in this department on this day."""

    rule: ClassVar[str] = "already_requested"


@dataclass(frozen=True)
class RequestsClosed(Refusal):
    """The day's draw has run, or requests are not open yet (`opens_at`)."""

    rule: ClassVar[str] = "requests_closed"
    opens_at: datetime | None = None


@dataclass(frozen=True)
class PlacesFree(Refusal):
    """The day still has free places: book one rather than wait."""

    rule: ClassVar[str] = "places_free"


@dataclass(frozen=True)
class NothingToAnswer(Refusal):
    """No offer or reminder is waiting for this address (it expired, or was answered)."""

    rule: ClassVar[str] = "nothing_to_answer"


@dataclass(frozen=True)
class BookingNotFound(Refusal):
    rule: ClassVar[str] = "booking_not_found"


@dataclass(frozen=True)
class NotPermitted(Refusal):
    """The requester has no rights over this booking (or the code is unknown: the two
    are never told apart)."""

    rule: ClassVar[str] = "not_permitted"


@dataclass(frozen=True)
class NotActive(Refusal):
    """The booking is already cancelled, checked in or marked as a no-show."""

    rule: ClassVar[str] = "not_active"
    status: str


@dataclass(frozen=True)
class CancellationClosed(Refusal):
    rule: ClassVar[str] = "cancellation_deadline"
    deadline: datetime


@dataclass(frozen=True)
class NotVisitDay(Refusal):
    rule: ClassVar[str] = "not_visit_day"
    visit_date: date


@dataclass(frozen=True)
class SuspensionNotFound(Refusal):
    rule: ClassVar[str] = "suspension_not_found"


@dataclass(frozen=True)
class ReasonRequired(Refusal):
    rule: ClassVar[str] = "reason_required"


Result = Any  # one of the dataclasses above


# ---- JSON form, for idempotent replays ----------------------------------------------

_REGISTRY: dict[str, type] = {}


def _register_all() -> None:
    for value in list(globals().values()):
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            _REGISTRY[value.__name__] = value


def to_json(result: Any) -> dict[str, Any]:
    return {"type": type(result).__name__, **_encode_fields(result)}


def _encode_fields(obj: Any) -> dict[str, Any]:
    return {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return to_json(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def from_json(data: dict[str, Any]) -> Any:
    cls = _REGISTRY[data["type"]]
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        kwargs[f.name] = _decode(hints[f.name], data[f.name])
    return cls(**kwargs)


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict) and "type" in value and value["type"] in _REGISTRY:
        return from_json(value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is date:
        return date.fromisoformat(value)
    return value


_register_all()
