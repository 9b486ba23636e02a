"""The outbox: messages for patients, written in the transaction of the change they report.

Rule: whenever someone other than the patient books, cancels or moves a booking in her
name, a notice for her own address (records.own_address_id) is added here, in the same
transaction, so the change and the notice commit together or not at all. A notice holds
a message id and the booking's code, department and time: never a name or a number.
Delivery (assistant/notify.py) claims due messages here, a few at a time and under a
lease so two workers never send one message, and records each send, retry or failure;
`assistant outbox list` shows what is waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from assistant.booking.models import Booking, ChannelAddress, Department, OutboxMessage, Patient, Slot
from assistant.booking.records import own_address_id

# Message ids; assistant/notices.py holds their sentences.
BOOKED_FOR_YOU = "booked_for_you"
CANCELLED_FOR_YOU = "cancelled_for_you"
MOVED_FOR_YOU = "moved_for_you"


def notice_params(code: str, department_names: Any, starts_at: datetime, by_staff: bool) -> dict:
    """What a notice says: no name and no number, only the booking."""
    return {"code": code, "department": dict(department_names),
            "starts_at": starts_at.isoformat(), "by": "staff" if by_staff else "someone"}


def tell_patient(session: Session, booking: Booking, message: str, *, acting_address_id: int | None,
                 by_staff: bool, now: datetime) -> bool:
    """Queue `message` about `booking` for the patient's own address, unless she is the
    one acting, or it is a console address (the terminal and /try), which nothing
    delivers to. True when a notice was queued."""
    own = own_address_id(session, booking.patient_id)
    if own is None or (own == acting_address_id and not by_staff):
        return False
    address = session.get(ChannelAddress, own)
    if address.kind == "console":
        return False
    slot = session.get(Slot, booking.slot_id)
    department = session.get(Department, booking.department_id)
    patient = session.get(Patient, booking.patient_id)
    session.add(OutboxMessage(
        address_id=own, patient_id=booking.patient_id, message=message,
        params=notice_params(booking.code, department.names, slot.starts_at, by_staff),
        locale=address.locale or patient.locale, status="pending", attempts=0, created_at=now))
    return True


@dataclass(frozen=True)
class PendingNotice:
    id: int
    address_kind: str
    address_encrypted: str
    message: str
    params: dict[str, Any]
    locale: str | None
    created_at: datetime


def pending(session: Session, *, limit: int = 1000) -> list[PendingNotice]:
    rows = session.execute(
        select(OutboxMessage, ChannelAddress.kind, ChannelAddress.address_encrypted)
        .join(ChannelAddress, OutboxMessage.address_id == ChannelAddress.id)
        .where(OutboxMessage.status == "pending")
        .order_by(OutboxMessage.id).limit(limit)
    ).all()
    return [PendingNotice(m.id, kind, encrypted, m.message, dict(m.params), m.locale, m.created_at)
            for m, kind, encrypted in rows]


# ---- delivery: claiming, finishing, retrying ---------------------------------------------

# Waits before each retry of a failed send; after the last, the message is given up.
RETRY_AFTER = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
               timedelta(hours=1), timedelta(hours=4))
LEASE = timedelta(minutes=2)  # how long a claim keeps other workers off a message


@dataclass(frozen=True)
class ClaimedNotice:
    """A message this worker may send now: where to, in which language, and what."""

    id: int
    address_kind: str
    address: str  # decrypted for the send only
    opted_out: bool
    message: str
    params: dict[str, Any]
    locale: str | None
    attempts: int
    channel: str | None = None  # 'voice': a phone call rather than an SMS


def claim_due(ctx, *, worker: str, now: datetime, limit: int = 20,
              kinds: tuple[str, ...] = ("phone", "telegram")) -> list[ClaimedNotice]:
    """Claim up to `limit` pending messages to addresses of `kinds` (those a sender is
    configured for) that are due and not claimed by a live worker. One transaction: on
    PostgreSQL the rows are locked with SKIP LOCKED, so several workers take different
    messages; SQLite serialises writers anyway."""
    with ctx.uow() as uow:
        session = uow.session
        due = (select(OutboxMessage.id)
               .join(ChannelAddress, OutboxMessage.address_id == ChannelAddress.id)
               .where(OutboxMessage.status == "pending", ChannelAddress.kind.in_(kinds),
                      or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
                      or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))
               .order_by(OutboxMessage.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=OutboxMessage)
        ids = session.execute(due).scalars().all()
        if not ids:
            return []
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                        .values(claimed_by=worker, claimed_until=now + LEASE))
        rows = session.execute(
            select(OutboxMessage, ChannelAddress)
            .join(ChannelAddress, OutboxMessage.address_id == ChannelAddress.id)
            .where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)).all()
        claimed = [ClaimedNotice(m.id, a.kind, ctx.keyring.decrypt(a.address_encrypted) or "",
                                 a.opted_out_at is not None, m.message, dict(m.params), m.locale,
                                 m.attempts, m.channel) for m, a in rows]
        uow.commit()
        return claimed


def finish(ctx, notice: ClaimedNotice, *, worker: str, now: datetime, provider_ref: str | None = None,
           error: str | None = None, give_up: bool = False) -> str:
    """Record how a send went: sent, or a failure retried after a wait, or given up (after
    the last retry, or at once for an address that opted out). Only the worker holding
    the claim may record it. Returns the new status."""
    attempts = notice.attempts + 1
    if error is None:
        values = {"status": "sent", "sent_at": now, "provider_ref": provider_ref, "last_error": None}
    elif give_up or attempts > len(RETRY_AFTER):
        values = {"status": "failed", "last_error": error[:200]}
    else:
        values = {"status": "pending", "next_attempt_at": now + RETRY_AFTER[attempts - 1],
                  "last_error": error[:200]}
    with ctx.uow() as uow:
        uow.session.execute(update(OutboxMessage).where(
            OutboxMessage.id == notice.id, OutboxMessage.claimed_by == worker)
            .values(attempts=attempts, claimed_by=None, claimed_until=None, **values))
        uow.commit()
    return values["status"]


def record_delivery_status(ctx, *, provider_ref: str, status: str) -> bool:
    """The provider's callback ("delivered", "undelivered"…) for a message it took."""
    with ctx.uow() as uow:
        changed = uow.session.execute(
            update(OutboxMessage).where(OutboxMessage.provider_ref == provider_ref)
            .values(delivery_status=status[:32]).returning(OutboxMessage.id)).first()
        uow.commit()
        return changed is not None


def backlog(ctx) -> int:
    """Messages waiting to be sent."""
    with ctx.uow.read_only() as uow:
        return uow.session.execute(select(func.count()).select_from(OutboxMessage)
                                   .where(OutboxMessage.status == "pending")).scalar_one()
