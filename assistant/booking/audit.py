"""The audit trail: append-only events, each chained to the one before by a keyed hash.

Rule: every state change appends one event in the same transaction. Events name
patients only by masked or blinded values. The hash is an HMAC under a key kept outside
the database, so someone who can edit rows cannot forge a consistent chain; the head row
records the newest event, so deleting the tail is noticed too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assistant.booking.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who made a change: 'system', 'staff:<username>' or 'address:<blind prefix>'."""

    name: str
    channel: str


SYSTEM = Actor("system", "system")


def event_hash(key: bytes, prev_hash: str, event: dict[str, Any]) -> str:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, f"{prev_hash}\n{canonical}".encode(), hashlib.sha256).hexdigest()


def _hashed_fields(event_id: int, at: datetime, actor: str, channel: str, action: str,
                   subject: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "channel": channel,
        "action": action,
        "subject": subject,
        "details": details,
    }


def append(session: Session, key: bytes, *, actor: Actor, action: str, subject: str,
           details: dict[str, Any], at: datetime) -> AuditEvent:
    """Append one event. Locks the head row, so appends are ordered across instances."""
    head = _lock_head(session)
    event_id = head.last_event_id + 1
    at = at.astimezone(timezone.utc)  # the column keeps UTC; verify() hashes what it reads
    fields_ = _hashed_fields(event_id, at, actor.name, actor.channel, action, subject, details)
    digest = event_hash(key, head.last_hash, fields_)
    event = AuditEvent(
        id=event_id, at=at, actor=actor.name, channel=actor.channel, action=action,
        subject=subject, details=details, prev_hash=head.last_hash, hash=digest,
    )
    session.add(event)
    session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(
            last_event_id=event_id, last_hash=digest, event_count=AuditHead.event_count + 1
        )
    )
    return event


def _lock_head(session: Session) -> AuditHead:
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        session.add(AuditHead(id=1, last_event_id=0, last_hash=GENESIS_HASH, event_count=0))
        session.flush()
        head = session.execute(
            select(AuditHead).where(AuditHead.id == 1).with_for_update()
        ).scalar_one()
    return head


@dataclass(frozen=True)
class AuditReport:
    checked: int
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, key: bytes) -> AuditReport:
    """Walk the chain from the first event and report every break."""
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    expected_id = 1
    checked = 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
    for event in rows:
        checked += 1
        if event.id != expected_id:
            problems.append(f"event {expected_id} is missing (next is {event.id})")
        if event.prev_hash != expected_prev:
            problems.append(f"event {event.id}: does not follow the event before it")
        fields_ = _hashed_fields(event.id, event.at, event.actor, event.channel,
                                 event.action, event.subject, event.details)
        if not hmac.compare_digest(event_hash(key, event.prev_hash, fields_), event.hash):
            problems.append(f"event {event.id}: contents do not match its hash")
        expected_prev = event.hash
        expected_id = event.id + 1
    head = session.get(AuditHead, 1)
    if head is not None:
        if head.last_event_id != expected_id - 1 or head.last_hash != expected_prev:
            problems.append(
                f"the newest event should be {head.last_event_id}, found {expected_id - 1}"
            )
        if head.event_count != checked:
            problems.append(f"{head.event_count} events were written, {checked} remain")
    elif checked:
        problems.append("the audit head is missing")
    return AuditReport(checked=checked, problems=tuple(problems))
