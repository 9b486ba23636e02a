"""Read-only figures for the staff dashboard: places booked per department and day, and
how the outbox is doing.

Rule: each figure is one aggregate statement, grouped in the database, in one read-only
unit of work, so the page costs the same few statements for three departments or for
sixty and never loads a slot into Python. The outbox is read by status, channel kind,
times, attempts and a masked, shortened error: never an address, a patient or a
message's parameters (those columns are not even selected).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select

from assistant.booking import results as r
from assistant.booking.catalogue import catalogue
from assistant.booking.models import ChannelAddress, OutboxMessage, Slot

# What a provider's status callback says when a message it took never arrived (Twilio).
UNDELIVERED = ("undelivered", "failed")
ERROR_CHARS = 80  # enough to tell one error from another in a table cell


@dataclass(frozen=True)
class DayLoad:
    day: date
    slots: int  # 0: no slots that day (closed, or none generated)
    capacity: int
    booked: int  # places taken: booked, checked in or missed

    @property
    def closed(self) -> bool:
        return self.slots == 0

    @property
    def share(self) -> float:
        return self.booked / self.capacity if self.capacity else 0.0


@dataclass(frozen=True)
class DepartmentLoad:
    department: r.DepartmentView
    days: tuple[DayLoad, ...]

    @property
    def booked(self) -> int:
        return sum(d.booked for d in self.days)

    @property
    def capacity(self) -> int:
        return sum(d.capacity for d in self.days)


def department_loads(ctx, *, first_day: date, days: int) -> list[DepartmentLoad]:
    """Every active department (menu order), each with one entry per day from
    `first_day`: the sums over that day's slots, or an empty day."""
    departments = catalogue(ctx.uow).departments
    if not departments:
        return []
    last_day = first_day + timedelta(days=days - 1)
    # Served by ix_slot_department_day (department_id, visit_date).
    query = (select(Slot.department_id, Slot.visit_date, func.count().label("slots"),
                    func.sum(Slot.capacity).label("capacity"), func.sum(Slot.booked).label("booked"))
             .where(Slot.department_id.in_([d.id for d in departments]),
                    Slot.visit_date >= first_day, Slot.visit_date <= last_day)
             .group_by(Slot.department_id, Slot.visit_date))
    with ctx.uow.read_only() as uow:
        found = {(row.department_id, row.visit_date): row for row in uow.session.execute(query)}
    loads = []
    for department in departments:
        row_days = []
        for offset in range(days):
            day = first_day + timedelta(days=offset)
            row = found.get((department.id, day))
            row_days.append(DayLoad(day, int(row.slots), int(row.capacity or 0), int(row.booked or 0))
                            if row else DayLoad(day, 0, 0, 0))
        loads.append(DepartmentLoad(department, tuple(row_days)))
    return loads


# ---- the outbox ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxFailure:
    id: int
    queued_at: datetime
    channel: str  # the address's kind: phone, telegram, console
    message: str  # the message id (booked_for_you…), not its text
    attempts: int
    error: str  # masked and shortened
    undelivered: bool  # the provider took it, then reported it undelivered


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    oldest_pending_at: datetime | None
    retrying: int  # pending again after a failed attempt
    pending_by_channel: tuple[tuple[str, int], ...]
    failed: int  # given up: retries spent, or the address sent STOP
    undelivered: int
    recent_failures: tuple[OutboxFailure, ...]


def outbox_status(ctx, *, recent: int = 10) -> OutboxStatus:
    undelivered_row = and_(OutboxMessage.status == "sent", OutboxMessage.delivery_status.in_(UNDELIVERED))
    with ctx.uow.read_only() as uow:
        session = uow.session
        # Only pending and failed rows: ix_outbox_status_id keeps the sent ones out.
        groups = session.execute(
            select(OutboxMessage.status, ChannelAddress.kind, func.count().label("n"),
                   func.min(OutboxMessage.created_at).label("oldest"),
                   func.sum(case((OutboxMessage.attempts > 0, 1), else_=0)).label("tried"))
            .join(ChannelAddress, OutboxMessage.address_id == ChannelAddress.id)
            .where(OutboxMessage.status.in_(("pending", "failed")))
            .group_by(OutboxMessage.status, ChannelAddress.kind)).all()
        undelivered = session.execute(
            select(func.count()).select_from(OutboxMessage).where(undelivered_row)).scalar_one()
        failures = session.execute(
            select(OutboxMessage.id, OutboxMessage.created_at, ChannelAddress.kind, OutboxMessage.message,
                   OutboxMessage.attempts, OutboxMessage.last_error, OutboxMessage.delivery_status,
                   OutboxMessage.status)
            .join(ChannelAddress, OutboxMessage.address_id == ChannelAddress.id)
            .where(or_(OutboxMessage.status == "failed", undelivered_row))
            .order_by(OutboxMessage.id.desc()).limit(recent)).all()
    pending = [g for g in groups if g.status == "pending"]
    oldest = min((g.oldest for g in pending), default=None)
    return OutboxStatus(
        pending=sum(g.n for g in pending), oldest_pending_at=oldest,
        retrying=sum(int(g.tried or 0) for g in pending),
        pending_by_channel=tuple(sorted((g.kind, g.n) for g in pending)),
        failed=sum(g.n for g in groups if g.status == "failed"), undelivered=undelivered,
        recent_failures=tuple(
            OutboxFailure(f.id, f.created_at, f.kind, f.message, f.attempts,
                          safe_error(f.last_error or f.delivery_status or ""), f.status == "sent")
            for f in failures))


# A run of 6 or more digits, spaces and dashes allowed between them: a phone number or a
# chat id. Senders keep them out of their errors already; this is the second line.
_NUMBER = re.compile(r"\+?\d(?:[\s\-]?\d){5,}")


def safe_error(text: str) -> str:
    masked = _NUMBER.sub("•••", text)
    return masked if len(masked) <= ERROR_CHARS else masked[:ERROR_CHARS - 1] + "…"
