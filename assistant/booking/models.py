"""Database models: SQLAlchemy 2 typed mappings and the constraints a race can't break.

Rule: the schema enforces what concurrency could otherwise violate: a slot's booked count
stays within its capacity (CHECK), a patient holds at most one active booking per slot
(partial unique index), an identity exists once (unique blind index), and an inbound
event is processed once (primary key). Behaviour lives in `service`; this module only
describes tables. Patients' ID numbers, names and addresses appear only as blind
indexes and ciphertexts.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Booking statuses. Active ones hold a place in their slot (a no-show used its place up)
# and count towards quotas; only a cancellation gives the place back.
BOOKED = "booked"
CANCELLED = "cancelled"
CHECKED_IN = "checked_in"
NO_SHOW = "no_show"
BOOKING_STATUSES = (BOOKED, CANCELLED, CHECKED_IN, NO_SHOW)
ACTIVE_STATUSES = (BOOKED, CHECKED_IN, NO_SHOW)
QUOTA_STATUSES = ACTIVE_STATUSES

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stores UTC without a zone (SQLite has none) and hands back aware UTC datetimes,
    so both databases compare instants the same way."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class Hospital(Base):
    __tablename__ = "hospital"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    names: Mapped[dict[str, str]] = mapped_column(JSON)  # locale -> display name
    timezone: Mapped[str] = mapped_column(String(64))
    desk_phone: Mapped[str | None] = mapped_column(String(32))
    desk_hours: Mapped[dict[str, str] | None] = mapped_column(JSON)  # locale -> text
    policy_overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Areas that group departments in the menu of a large hospital, in order:
    # [{"code": "medicine", "names": {locale: name}}, ...]; empty for a small one.
    department_groups: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Bumped by every flush that changes a hospital or a department (booking/catalogue.py):
    # app instances cache the catalogue against it.
    catalogue_version: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    departments: Mapped[list["Department"]] = relationship(back_populates="hospital")


class Department(Base):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("hospital_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"))
    code: Mapped[str] = mapped_column(String(64))
    names: Mapped[dict[str, str]] = mapped_column(JSON)  # locale -> display name
    keywords: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    policy_overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    group_code: Mapped[str | None] = mapped_column(String(64))  # one of the hospital's groups

    hospital: Mapped[Hospital] = relationship(back_populates="departments")


class Doctor(Base):
    __tablename__ = "doctor"
    __table_args__ = (UniqueConstraint("department_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    code: Mapped[str] = mapped_column(String(64))
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)


class ScheduleTemplate(Base):
    """A weekly pattern: on `weekday`, slots of `slot_minutes` from start to end."""

    __tablename__ = "schedule_template"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("slot_minutes > 0", name="slot_minutes"),
        CheckConstraint("capacity >= 0", name="capacity"),
        CheckConstraint("end_time > start_time", name="hours"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("doctor.id"))
    weekday: Mapped[int]  # 0 = Monday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int]
    capacity: Mapped[int]  # patients per slot
    # Release rule; None means the department's policy.
    release_days_ahead: Mapped[int | None]
    release_time: Mapped[time | None] = mapped_column(Time)
    # How places are given out: 'first_come', or 'draw' (requests until the draw time,
    # then a seeded random order). None means the department's policy.
    release_mode: Mapped[str | None] = mapped_column(String(16))
    draw_time: Mapped[time | None] = mapped_column(Time)
    active: Mapped[bool] = mapped_column(default=True)


class ScheduleException(Base):
    """A closure (no slots that day) or changed hours (the day's templates run within
    start_time..end_time instead). department_id None means the whole hospital."""

    __tablename__ = "schedule_exception"
    __table_args__ = (CheckConstraint("kind IN ('closed', 'hours')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[time | None] = mapped_column(Time)
    end_time: Mapped[time | None] = mapped_column(Time)
    reason: Mapped[str] = mapped_column(String(200), default="")


class Slot(Base):
    __tablename__ = "slot"
    __table_args__ = (
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
        CheckConstraint("held >= 0 AND booked + held <= capacity", name="held_within_capacity"),
        CheckConstraint("release_mode IN ('first_come', 'draw')", name="release_mode"),
        CheckConstraint("ends_at > starts_at", name="times"),
        UniqueConstraint("template_id", "starts_at"),
        Index("ix_slot_department_day", "department_id", "visit_date"),
        # The draws not yet run, by department: every booking conversation asks whether
        # its department is taking requests (statements.DRAW_TAKING_REQUESTS).
        Index("ix_slot_draw_pending", "department_id", "release_at",
              sqlite_where=text("release_mode = 'draw' AND NOT drawn"),
              postgresql_where=text("release_mode = 'draw' AND NOT drawn")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("doctor.id"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("schedule_template.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    visit_date: Mapped[date] = mapped_column(Date)  # the local day, for day quotas
    capacity: Mapped[int]
    booked: Mapped[int] = mapped_column(default=0)
    # First-come: when the places go on sale. Draw: the draw time; the places nobody
    # drew go on sale once the draw has run (`drawn`).
    release_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Staff set this slot's capacity by hand: slot generation keeps it, not the schedule's.
    capacity_set_by_staff: Mapped[bool] = mapped_column(default=False, server_default=false())
    release_mode: Mapped[str] = mapped_column(String(16), default="first_come",
                                              server_default=text("'first_come'"))
    requests_open_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # draw mode only
    drawn: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Freed places kept off sale: offered to the waitlist, or waiting for the next
    # release time (booking/waitlist.py). Nobody books them first-come.
    held: Mapped[int] = mapped_column(default=0, server_default=text("0"))


class Patient(Base):
    __tablename__ = "patient"

    """An identity: one ID number. No part of it, and not the birth date, is stored in
    plain text; names live with each booking and link, since anyone may type one."""

    id: Mapped[int] = mapped_column(primary_key=True)
    id_kind: Mapped[str] = mapped_column(String(32))
    # A generic identity's document type and issuing country (part of its blind index).
    id_document: Mapped[str | None] = mapped_column(String(32))
    id_country: Mapped[str | None] = mapped_column(String(2))
    # False for kinds without a check character: the desk is told it was never verified.
    checksum_verified: Mapped[bool] = mapped_column(default=True)
    id_index: Mapped[str] = mapped_column(String(64), unique=True)  # HMAC blind index
    id_encrypted: Mapped[str] = mapped_column(Text)  # Fernet; masks and tails come from it
    birth_date_encrypted: Mapped[str | None] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(String(16))
    # Bumped to take the patient's row lock before quotas are counted.
    version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelAddress(Base):
    """Where messages come from: a phone number (SMS and voice share it) or a chat."""

    __tablename__ = "channel_address"
    __table_args__ = (
        UniqueConstraint("kind", "address_index"),
        CheckConstraint("kind IN ('phone', 'telegram', 'console')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    address_index: Mapped[str] = mapped_column(String(64))
    address_encrypted: Mapped[str] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(String(16))
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The caller asked the phone to speak more slowly; kept for every later call.
    slow_speech: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A Telegram chat whose user shared their own number (Telegram vouches for it) books,
    # lists and cancels as that phone's address (booking/phone_links.py).
    # An address id, without a foreign key (see migration 0010).
    phone_address_id: Mapped[int | None] = mapped_column(Integer)
    # Bumped to take the address's row lock before counting its patients.
    version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Until when a question we sent (a waitlist offer, a reminder) may be waiting for
    # this address's answer: a turn looks for one only before then.
    question_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Refused too often this hour (a bot trying identities or limits): until then, its
    # attempts get a kind "please wait" instead of another try (service.note_refusal).
    throttled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PatientLink(Base):
    """An address may book for this patient: as the patient ('self') or for family. A
    link lets the address book again for the patient and shows it nothing else. A 'self'
    link is a claim; the desk verifies it by checking the patient in against her ID card,
    and only then do her cancellations and no-shows from that address count against the
    identity."""

    __tablename__ = "patient_link"
    __table_args__ = (
        UniqueConstraint("address_id", "patient_id"),
        CheckConstraint("relation IN ('self', 'family')", name="relation"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("channel_address.id"))
    # No index of its own: links are always looked up by address first.
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    relation: Mapped[str] = mapped_column(String(16))
    # The name this address gave for the patient (encrypted), shown back only to it.
    name_encrypted: Mapped[str | None] = mapped_column(Text)
    name_index: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_via: Mapped[str] = mapped_column(String(16))  # channel that made the link
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_by: Mapped[str | None] = mapped_column(String(64))


class Booking(Base):
    """A place held by one identity. The address that made it owns it."""

    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint(
            "status IN ('booked', 'cancelled', 'checked_in', 'no_show')", name="status"
        ),
        # One active booking per patient per slot, even when two requests race.
        Index(
            "uq_booking_active_slot_patient",
            "slot_id",
            "patient_id",
            unique=True,
            sqlite_where=text("status <> 'cancelled'"),
            postgresql_where=text("status <> 'cancelled'"),
        ),
        Index("ix_booking_patient_day", "patient_id", "visit_date"),
        CheckConstraint("counted_against IN ('identity', 'address')", name="counted_against"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    visit_date: Mapped[date] = mapped_column(Date)  # copied from the slot, for quotas
    status: Mapped[str] = mapped_column(String(16), default=BOOKED)
    channel: Mapped[str] = mapped_column(String(16))
    booked_by_address_id: Mapped[int | None] = mapped_column(ForeignKey("channel_address.id"))
    booked_by_staff: Mapped[str | None] = mapped_column(String(64))
    # The name typed for this booking, for the desk to compare with the ID card; flagged
    # when it differs from the names on the identity's earlier bookings.
    name_encrypted: Mapped[str | None] = mapped_column(Text)
    name_index: Mapped[str | None] = mapped_column(String(64))
    name_differs: Mapped[bool] = mapped_column(default=False)
    # Who a cancellation or no-show of this booking counted against (None: nobody).
    counted_against: Mapped[str | None] = mapped_column(String(16))
    rescheduled_from_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The day-before reminder: when it was queued, and the "1, keep it" answer.
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kept_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Suspension(Base):
    """Booking paused for an identity (its own verified address misbehaved) or for an
    address (bookings it made were cancelled or missed): exactly one of the two."""

    __tablename__ = "suspension"
    __table_args__ = (
        CheckConstraint("(patient_id IS NULL) <> (address_id IS NULL)", name="one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("channel_address.id"), index=True)
    rule: Mapped[str] = mapped_column(String(32))  # no_shows | cancellations
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(64))
    lift_reason: Mapped[str | None] = mapped_column(String(500))


class ProcessedEvent(Base):
    """An inbound event claimed once; a replay gets `result` back and changes nothing."""

    __tablename__ = "processed_event"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AuditEvent(Base):
    """Append-only. `hash` is a keyed hash over this event and `prev_hash`."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))  # `audit verify` checks the chain


class AuditHead(Base):
    """The newest event's id and hash, and the count, sealed: appending locks this one
    row, which orders the chain across instances, and it lets `audit verify` notice a
    deleted tail."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    last_event_id: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    event_count: Mapped[int] = mapped_column(default=0)
    # HMAC over the three values above; None until the first append seals it.
    seal: Mapped[str | None] = mapped_column(String(64))


class OutboxMessage(Base):
    """A message waiting to be sent to an address, written in the transaction of the
    change it reports. It holds a message id and parameters (booking code, department,
    time), never a name or a number; the sender renders it in `locale`."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        Index("ix_outbox_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("channel_address.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"))
    message: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    locale: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Delivery: a worker claims a message for a while (so two never send it), and a
    # failed attempt waits before the next.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_ref: Mapped[str | None] = mapped_column(String(64))  # Twilio SID, Telegram message id
    delivery_status: Mapped[str | None] = mapped_column(String(32))  # from the provider's callbacks
    last_error: Mapped[str | None] = mapped_column(String(200))
    # 'voice' makes the message a phone call (an offer's "press 1"); None: the address's
    # own kind of message (SMS for a phone, a chat message for Telegram).
    channel: Mapped[str | None] = mapped_column(String(16))


class StaffUser(Base):
    """A hospital staff member who logs in to /admin: an admin, or a desk clerk."""

    __tablename__ = "staff_user"
    __table_args__ = (CheckConstraint("role IN ('admin', 'clerk')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)  # lower case
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AddressRefusal(Base):
    """How many times the service refused a phone or chat in one clock hour (UTC), and
    the last rule: a burst is what a bot trying identities or limits looks like."""

    __tablename__ = "address_refusal"

    address_id: Mapped[int] = mapped_column(ForeignKey("channel_address.id"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    refusals: Mapped[int] = mapped_column(default=0)
    last_rule: Mapped[str] = mapped_column(String(40))


class LoginThrottle(Base):
    """Failed logins per account ("user:<name>") and per client ("ip:<keyed hash>"):
    after too many, that key waits until `locked_until`, on every instance alike."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KeyCheck(Base):
    """Check values of the keys this database was written with, so a missing or wrong
    key stops every command before anything is written. `rotation` holds the progress of
    `assistant keys rotate` while one is under way."""

    __tablename__ = "key_check"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    blind_index_check: Mapped[str] = mapped_column(String(64))
    encryption_check: Mapped[str] = mapped_column(Text)  # a Fernet token of a known text
    rotation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationRecord(Base):
    """One conversation's engine state, keyed by channel and blinded address. The state
    can hold an ID number and name being typed in, so it is stored encrypted."""

    __tablename__ = "conversation"
    __table_args__ = (UniqueConstraint("channel", "address_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address_index: Mapped[str] = mapped_column(String(64))
    state_encrypted: Mapped[str] = mapped_column(Text)
    # Optimistic lock: two messages handled at once can't both save.
    version: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)



class Draw(Base):
    """One department's draw for one visit day. The seed is chosen, and its SHA-256
    published in the audit trail, when requests open; it is written out only at the
    draw, so nobody, staff included, can know the order while requests come in."""

    __tablename__ = "draw"
    __table_args__ = (
        UniqueConstraint("department_id", "visit_date"),
        CheckConstraint("status IN ('open', 'drawn', 'cancelled')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    visit_date: Mapped[date] = mapped_column(Date)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    draw_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seed_hash: Mapped[str] = mapped_column(String(64))  # the commitment
    seed_encrypted: Mapped[str] = mapped_column(Text)  # kept secret until the draw
    seed: Mapped[str | None] = mapped_column(String(64))  # revealed at the draw
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | drawn | cancelled (day closed)
    drawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Draw request statuses.
REQUESTED = "requested"
PLACED = "placed"
WAITLISTED = "waitlisted"
REFUSED = "refused"
WITHDRAWN = "withdrawn"


class DrawRequest(Base):
    """One identity's request in one draw ("a place on that day, in the morning"). The
    address that requested it owns it, as it would own the booking."""

    __tablename__ = "draw_request"
    __table_args__ = (
        UniqueConstraint("draw_id", "patient_id"),
        CheckConstraint("part IN ('morning', 'afternoon', 'any')", name="part"),
        CheckConstraint("status IN ('requested', 'placed', 'waitlisted', 'refused', 'withdrawn')",
                        name="status"),
        Index("ix_draw_request_patient", "patient_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("draw.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    address_id: Mapped[int] = mapped_column(ForeignKey("channel_address.id"))
    channel: Mapped[str] = mapped_column(String(16))
    part: Mapped[str] = mapped_column(String(16))
    relation: Mapped[str] = mapped_column(String(16))
    name_encrypted: Mapped[str | None] = mapped_column(Text)
    name_index: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=REQUESTED)
    position: Mapped[int | None]  # 1-based place in the draw's order
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    refusal: Mapped[str | None] = mapped_column(String(40))  # a rule broken by draw time
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Waitlist entry statuses.
WAITING = "waiting"
OFFERED = "offered"
BOOKED_FROM_LIST = "booked"
LEFT = "left"  # declined, let an offer expire, or the day has passed


class WaitlistEntry(Base):
    """A patient waiting for a place on one department's day: the draw's losers in the
    draw's order, then whoever joins later, in a keyed random order."""

    __tablename__ = "waitlist_entry"
    __table_args__ = (
        CheckConstraint("part IN ('morning', 'afternoon', 'any')", name="part"),
        CheckConstraint("status IN ('waiting', 'offered', 'booked', 'left')", name="status"),
        Index("uq_waitlist_entry_active", "department_id", "visit_date", "patient_id", unique=True,
              sqlite_where=text("status IN ('waiting', 'offered')"),
              postgresql_where=text("status IN ('waiting', 'offered')")),
        Index("ix_waitlist_entry_queue", "department_id", "visit_date", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    visit_date: Mapped[date] = mapped_column(Date)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    address_id: Mapped[int] = mapped_column(ForeignKey("channel_address.id"))
    channel: Mapped[str] = mapped_column(String(16))
    part: Mapped[str] = mapped_column(String(16))
    relation: Mapped[str] = mapped_column(String(16))
    name_encrypted: Mapped[str | None] = mapped_column(Text)
    name_index: Mapped[str | None] = mapped_column(String(64))
    draw_position: Mapped[int | None]  # from the draw; None for those who joined later
    # Those who joined later queue by this keyed hash (waitlist.queue_key), not by speed.
    queue_key: Mapped[str | None] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=WAITING)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    left_reason: Mapped[str | None] = mapped_column(String(32))
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Freed place statuses.
HELD = "held"  # nobody waits: back on sale at the next release time
OFFER_OPEN = "offered"
TAKEN = "taken"
RELEASED = "released"
DROPPED = "dropped"  # the slot has passed, or staff reduced its capacity


class FreedPlace(Base):
    """A place given back (a cancellation, the old half of a reschedule, a released
    reminder, a capacity increase, a closed day's rebooking). It stays off sale: it is
    offered down the waitlist, one patient at a time, and only when nobody waits does
    it go back on sale, at the next release time."""

    __tablename__ = "freed_place"
    __table_args__ = (
        CheckConstraint("status IN ('held', 'offered', 'taken', 'released', 'dropped')",
                        name="status"),
        Index("ix_freed_place_status", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    visit_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(32))
    freed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=HELD)
    release_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when nobody waits
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("waitlist_entry.id"))
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offers_made: Mapped[int] = mapped_column(default=0)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobRun(Base):
    """A scheduled job claimed once by its key ("draw:12", "reminders:3:2026-12-01"): the
    claim commits with the job's work, so two workers never run one job twice and a job
    that failed part-way is run again whole."""

    __tablename__ = "job_run"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    claimed_by: Mapped[str] = mapped_column(String(64))
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
