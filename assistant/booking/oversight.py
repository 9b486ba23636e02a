"""Read-only questions behind the staff's oversight pages: what looks like misuse, the
audit trail as staff may read it, and whether it still verifies.

Rule: every function runs in one read-only unit of work and changes nothing. Patients
leave this module masked (ID number, phone number) or as row ids, never in full. Audit
event details are shown through `shown_value`: a patient only by row id, codes and
numbers as they are, and any free text (which staff may have typed a name into)
withheld.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from assistant.booking import identity, reconcile
from assistant.booking.inputs import ServiceContext
from assistant.booking.models import (
    CANCELLED,
    AddressRefusal,
    AuditEvent,
    Booking,
    ChannelAddress,
    Hospital,
    Patient,
    PatientLink,
)
from assistant.booking.queries import mask_address
from assistant.booking.records import id_number_of
from assistant.config import Policy

# Cancellations are counted over this many days, whatever the suspension rule's window.
CANCELLATION_DAYS = 90
# When the cancellation suspension rule is switched off (limit 0), this many still flag.
CANCELLATIONS_FLAGGED_WITHOUT_RULE = 2
# Refusals are looked at back this many hours, and this many in one clock hour from one
# phone or chat is a burst (a person gets a few; a bot trying identities gets many).
REFUSAL_HOURS = 24
REFUSAL_BURST = 5
AUDIT_PAGE_SIZE = 50


def hospital_policy(ctx: ServiceContext) -> Policy:
    """The served hospital's policy (the first loaded one, as the catalogue has it)."""
    with ctx.uow.read_only() as uow:
        overrides = uow.session.execute(
            select(Hospital.policy_overrides).order_by(Hospital.id).limit(1)).scalar_one_or_none()
    return ctx.settings.policy.overridden(overrides)


# ---- addresses at their patient limit ------------------------------------------------------


@dataclass(frozen=True)
class AddressAtLimit:
    kind: str  # phone, telegram or console
    masked: str
    patients: int  # patients it may book for (its links)
    own: int  # of those, linked as "for me"


def addresses_at_limit(ctx: ServiceContext, limit: int) -> list[AddressAtLimit]:
    """Addresses linked to `limit` patients or more (a limit of 0: the rule is off)."""
    if not limit:
        return []
    with ctx.uow.read_only() as uow:
        session = uow.session
        counts = session.execute(
            select(PatientLink.address_id, func.count(),
                   func.sum(case((PatientLink.relation == "self", 1), else_=0)))
            .group_by(PatientLink.address_id).having(func.count() >= limit)).all()
        addresses = {a.id: a for a in session.execute(
            select(ChannelAddress).where(ChannelAddress.id.in_([row[0] for row in counts]))).scalars()}
        found = [AddressAtLimit(addresses[address_id].kind, mask_address(ctx, addresses[address_id]),
                                patients, int(own or 0))
                 for address_id, patients, own in counts]
    return sorted(found, key=lambda row: (-row.patients, row.kind, row.masked))


# ---- identities with repeated cancellations ----------------------------------------------


@dataclass(frozen=True)
class RepeatedCancellations:
    masked_id: str
    cancellations: int  # by the patient's side, within CANCELLATION_DAYS
    against_identity: int  # of those, how many counted against the identity itself
    last: datetime


def cancellation_threshold(policy: Policy) -> int:
    return policy.cancel_limit or CANCELLATIONS_FLAGGED_WITHOUT_RULE


def repeated_cancellations(ctx: ServiceContext, *, threshold: int, now: datetime) -> list[RepeatedCancellations]:
    """Identities whose bookings were cancelled `threshold` times or more in the last
    CANCELLATION_DAYS by whoever booked them. Staff cancellations (a clinic closed) and
    reschedules are not the patient's doing and don't count."""
    since = now - timedelta(days=CANCELLATION_DAYS)
    with ctx.uow.read_only() as uow:
        session = uow.session
        counts = session.execute(
            select(Booking.patient_id, func.count(),
                   func.sum(case((Booking.counted_against == "identity", 1), else_=0)),
                   func.max(Booking.cancelled_at))
            .where(Booking.status == CANCELLED, Booking.cancel_reason == "patient",
                   Booking.cancelled_at > since)
            .group_by(Booking.patient_id).having(func.count() >= threshold)).all()
        patients = {p.id: p for p in session.execute(
            select(Patient).where(Patient.id.in_([row[0] for row in counts]))).scalars()}
        found = [RepeatedCancellations(identity.mask_id(id_number_of(ctx, patients[patient_id])),
                                       cancellations, int(against or 0), last)
                 for patient_id, cancellations, against, last in counts]
    return sorted(found, key=lambda row: (-row.cancellations, row.masked_id))


# ---- bursts of refusals from one phone or chat --------------------------------------------------


@dataclass(frozen=True)
class RefusalBurst:
    """A phone or chat the service refused at least `REFUSAL_BURST` times within one
    clock hour of the last `REFUSAL_HOURS` (service.note_refusal counts them)."""

    masked_address: str
    kind: str
    busiest_hour: datetime  # the start of that clock hour (UTC)
    in_busiest_hour: int
    total: int
    last_rule: str


def refusal_bursts(ctx: ServiceContext, *, now: datetime, hours: int = REFUSAL_HOURS,
                   burst: int = REFUSAL_BURST) -> list[RefusalBurst]:
    since = (now - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    with ctx.uow.read_only() as uow:
        rows = uow.session.execute(
            select(AddressRefusal, ChannelAddress).join(ChannelAddress, AddressRefusal.address_id == ChannelAddress.id)
            .where(AddressRefusal.hour >= since).order_by(AddressRefusal.address_id, AddressRefusal.hour)).all()
        by_address: dict[int, list] = {}
        for counted, address in rows:
            by_address.setdefault(address.id, []).append((counted, address))
        found = []
        for items in by_address.values():
            busiest, address = max(items, key=lambda item: (item[0].refusals, item[0].hour))
            if busiest.refusals < burst:
                continue
            found.append(RefusalBurst(mask_address(ctx, address), address.kind, busiest.hour, busiest.refusals,
                                      sum(c.refusals for c, _ in items), items[-1][0].last_rule))
    return sorted(found, key=lambda row: (-row.in_busiest_hour, row.masked_address))


# ---- the audit trail ---------------------------------------------------------------------------

# Codes, rules, booking codes, timestamps: no spaces, nothing but these characters.
_CODE_LIKE = re.compile(r"[A-Za-z0-9_.:+\-/@]{1,80}")
# Seven digits in a row is an ID or a phone number, never a code or a date.
_LONG_NUMBER = re.compile(r"\d{7,}")
_SHOWN_IN_FULL = 10  # a longer list is shown as its length


def shown_value(key: str, value: Any) -> str | None:
    """How a detail of an audit event may be shown to staff; None: withheld."""
    if key == "patient":
        row_id = reconcile.patient_id(value)  # an older "7/**1234" loses its tail
        return None if row_id is None else str(row_id)
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, str):
        safe = not value or (_CODE_LIKE.fullmatch(value) and not _LONG_NUMBER.search(value))
        return value if safe else None
    if isinstance(value, (list, tuple)) and len(value) <= _SHOWN_IN_FULL:
        shown = [shown_value("", item) for item in value]
        if all(item is not None for item in shown):
            return ", ".join(shown) if shown else "—"
    if isinstance(value, (list, tuple, dict)):
        return f"[{len(value)}]"  # slot capacities, row counts: only how many
    return None


def shown_reference(value: str) -> str | None:
    """An actor or subject: "patient:<row id>", "booking:<code>", "staff:<name>"..."""
    if value.startswith("patient:"):
        row_id = reconcile.patient_id(value[len("patient:"):])
        return None if row_id is None else f"patient:{row_id}"
    return shown_value("", value)


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str | None  # None: withheld
    channel: str
    action: str
    subject: str | None
    details: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class AuditPage:
    rows: tuple[AuditRow, ...]
    older: int | None  # pass as `before` for the next page; None on the last page


def audit_page(ctx: ServiceContext, *, before: int | None = None, size: int = AUDIT_PAGE_SIZE) -> AuditPage:
    """The newest events (older than event `before`, if given), newest first. Paged by
    id rather than by offset, so a page costs the same however far back it is."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(size + 1)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    with ctx.uow.read_only() as uow:
        events = uow.session.execute(query).scalars().all()
        rows = tuple(AuditRow(
            e.id, e.at, shown_reference(e.actor), e.channel, e.action, shown_reference(e.subject),
            _shown_details(e.details)) for e in events[:size])
    return AuditPage(rows, rows[-1].id if len(events) > size else None)


def _shown_details(details: Any) -> tuple[tuple[str, str | None], ...]:
    if not isinstance(details, dict):
        return (("details", shown_value("details", details)),)
    return tuple((str(key), shown_value(str(key), value)) for key, value in sorted(details.items()))


def audit_check(ctx: ServiceContext) -> reconcile.Check:
    """What `assistant audit verify` checks: the chain, then the tables against it."""
    with ctx.uow.read_only() as uow:
        return reconcile.check(uow.session, ctx.keyring.audit_key)
