"""The audit trail: append-only events, each chained to the one before by a keyed hash.

Rule: every state change appends one event in the same transaction. Events name
patients only by masked or blinded values. The hash is an HMAC under a key kept outside
the database, so someone who can edit rows cannot forge a consistent chain. The head row
records the newest event and the count, under a seal (an HMAC under the same key), so
deleting the tail is noticed even when the head is rewritten to match. An append that
finds the head changed outside CareLine still goes ahead (a booking must not fail for
it) but first records `audit.head_altered` in the chain, where it stays for `verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, bindparam, select, text
from sqlalchemy.orm import Session

from assistant.booking import driver
from assistant.booking.models import AuditEvent, AuditHead, Booking, UTCDateTime

GENESIS_HASH = "0" * 64
SEALED = "audit.sealed"  # the first append that finds the head unsealed (new or upgraded database)
HEAD_ALTERED = "audit.head_altered"  # an append found the head not matching its seal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who made a change: 'system', 'staff:<username>' or 'address:<blind prefix>'."""

    name: str
    channel: str


SYSTEM = Actor("system", "system")


def event_hash(key: bytes, prev_hash: str, event: dict[str, Any]) -> str:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, f"{prev_hash}\n{canonical}".encode(), hashlib.sha256).hexdigest()


def head_seal(key: bytes, last_event_id: int, last_hash: str, event_count: int) -> str:
    return hmac.new(key, f"audit head\n{last_event_id}\n{last_hash}\n{event_count}".encode(),
                    hashlib.sha256).hexdigest()


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


@dataclass(frozen=True)
class Entry:
    """One event to append: what happened, to what, by whom, when."""

    actor: Actor
    action: str
    subject: str
    details: dict[str, Any]
    at: datetime


# Textual statements: appending is on every booking's path, so they run on the driver's
# cursor (driver.py).
# An UPDATE that changes nothing still takes the row lock, on both databases; _MOVE_HEAD
# then sets the new values and the seal.
LOCK_HEAD = text(
    "UPDATE audit_head SET event_count = event_count WHERE id = 1 "
    "RETURNING last_event_id, last_hash, event_count, seal"
)
_INSERT_HEAD = text(
    "INSERT INTO audit_head (id, last_event_id, last_hash, event_count) "
    "VALUES (1, 0, :genesis, 0) ON CONFLICT (id) DO NOTHING"
)
_INSERT_EVENT = text(
    "INSERT INTO audit_event (id, at, actor, channel, action, subject, details, prev_hash, hash) "
    "VALUES (:id, :at, :actor, :channel, :action, :subject, :details, :prev_hash, :hash)"
).bindparams(bindparam("at", type_=UTCDateTime), bindparam("details", type_=JSON))
_MOVE_HEAD = text(
    "UPDATE audit_head SET last_event_id = :last_id, last_hash = :last_hash, "
    "event_count = :count, seal = :seal WHERE id = 1"
)
PENDING = "careline_audit_pending"


def append(session: Session, key: bytes, *, actor: Actor, action: str, subject: str,
           details: dict[str, Any], at: datetime) -> None:
    """Record an event to append when the unit of work commits."""
    defer(session, key, [Entry(actor, action, subject, details, at)])


def defer(session: Session, key: bytes, entries: list[Entry]) -> None:
    """Events are written just before commit, so the audit head, which every writer
    shares, is always the last lock a transaction takes: no deadlock can form around it,
    and it is held only for the commit."""
    pending = session.info.setdefault(PENDING, [])
    pending.extend((key, entry) for entry in entries)


def write_pending(session: Session) -> None:
    """Called by UnitOfWork.commit."""
    pending = session.info.pop(PENDING, [])
    if pending:
        append_many(driver.Cursor(session.connection()), pending[0][0],
                    [entry for _, entry in pending])


def append_many(db: driver.Cursor, key: bytes, entries: list[Entry]) -> None:
    """Append events in order. Locking the head row orders appends across instances."""
    if entries:
        write_locked(db, key, lock_head(db).first(), entries)


def lock_head(db: driver.Cursor) -> driver.Rows:
    """Lock the head row; it must be the last lock taken. Split from `write_locked` so
    the booking path can send it in a batch."""
    return db.run(LOCK_HEAD)


def write_locked(db: driver.Cursor, key: bytes, head: Any, entries: list[Entry]) -> None:
    """Write `entries` after the head row `lock_head` returned (None: a database created
    without the migration's head row, which is created here), and seal the new head."""
    if head is None:
        db.run(_INSERT_HEAD, {"genesis": GENESIS_HASH})
        head = lock_head(db).first()
    last_id, last_hash, count, seal = head
    finding = _head_finding(key, last_id, last_hash, count, seal, entries[0].at)
    if finding is not None:
        entries = [finding, *entries]
    rows = []
    for entry in entries:
        last_id += 1
        at = entry.at.astimezone(timezone.utc)  # the column keeps UTC; verify() hashes what it reads
        fields_ = _hashed_fields(last_id, at, entry.actor.name, entry.actor.channel,
                                 entry.action, entry.subject, entry.details)
        digest = event_hash(key, last_hash, fields_)
        rows.append({"id": last_id, "at": at, "actor": entry.actor.name,
                     "channel": entry.actor.channel, "action": entry.action,
                     "subject": entry.subject, "details": entry.details,
                     "prev_hash": last_hash, "hash": digest})
        last_hash = digest
    count += len(entries)
    db.run_many(_INSERT_EVENT, rows)
    db.run(_MOVE_HEAD, {"last_id": last_id, "last_hash": last_hash, "count": count,
                        "seal": head_seal(key, last_id, last_hash, count)})


def _head_finding(key: bytes, last_id: int, last_hash: str, count: int, seal: str | None,
                  at: datetime) -> Entry | None:
    """The event to append first when the head is not as CareLine sealed it."""
    found = {"newest_event": last_id, "events": count}
    if seal is None:
        return Entry(SYSTEM, SEALED, "audit", found, at)
    if hmac.compare_digest(seal, head_seal(key, last_id, last_hash, count)):
        return None
    log.error("audit head changed outside CareLine (newest event %s, %s events); "
              "recording %s and appending on", last_id, count, HEAD_ALTERED)
    return Entry(SYSTEM, HEAD_ALTERED, "audit", found, at)


@dataclass(frozen=True)
class AuditReport:
    checked: int
    problems: tuple[str, ...] = field(default=())
    newest_event: int = 0  # with newest_hash: worth keeping outside the database (see verify)
    newest_hash: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, key: bytes) -> AuditReport:
    """Walk the chain from the first event and report every break. One tampering only
    a copy kept outside the database can catch: putting back an earlier head, seal and
    all, after deleting every event since. `assistant audit verify` prints the newest
    event and its hash so that a hospital can keep them elsewhere, and also runs
    `reconcile.check`, which names the bookings and slots the remaining events no
    longer account for. This function checks the chain only."""
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    expected_id = 1
    checked = 0
    sealed_at: list[int] = []
    altered_at: list[int] = []
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
    for event in rows:
        checked += 1
        if event.action == SEALED:
            sealed_at.append(event.id)
        elif event.action == HEAD_ALTERED:
            altered_at.append(event.id)
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
        problems.extend(_seal_problems(key, head, sealed_at, altered_at))
    elif checked:
        problems.append("the audit head is missing")
    if not checked and session.execute(select(Booking.id).limit(1)).first() is not None:
        # Every booking wrote an event, so the trail was wiped and the head reset.
        problems.append("the audit trail is empty, but bookings exist")
    return AuditReport(checked=checked, problems=tuple(problems),
                       newest_event=expected_id - 1, newest_hash=expected_prev)


def _seal_problems(key: bytes, head: AuditHead, sealed_at: list[int],
                   altered_at: list[int]) -> list[str]:
    """The head must match its seal. It is unsealed only before the first append of a
    new or upgraded database: once an `audit.sealed` event exists, an unsealed head (or a
    second such event) means the seal was taken off, to rewrite the head."""
    problems = [f"event {event_id}: CareLine found the audit head changed outside it"
                for event_id in altered_at]
    problems += [f"event {event_id}: the audit head had lost its seal"
                 for event_id in sealed_at[1:]]
    if head.seal is None:
        if sealed_at:
            problems.append("the audit head has lost its seal")
    elif not hmac.compare_digest(head.seal, head_seal(key, head.last_event_id, head.last_hash,
                                                      head.event_count)):
        problems.append("the audit head does not match its seal: it was changed outside CareLine")
    return problems
