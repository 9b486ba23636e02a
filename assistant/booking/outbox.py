"""The outbox: messages for patients, written in the transaction of the change they report.

Rule: whenever someone other than the patient books, cancels or moves a booking in her
name, a notice for her own address (records.own_address_id) is added here, in the same
transaction, so the change and the notice commit together or not at all. A notice holds
a message id and the booking's code, department and time: never a name or a number.
The channel senders deliver them; `assistant outbox list` shows what is waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
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
    one acting. True when a notice was queued."""
    own = own_address_id(session, booking.patient_id)
    if own is None or (own == acting_address_id and not by_staff):
        return False
    slot = session.get(Slot, booking.slot_id)
    department = session.get(Department, booking.department_id)
    address = session.get(ChannelAddress, own)
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
