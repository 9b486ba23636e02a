"""Booking a place: the use case that runs at release time, when everyone books at once.

Rule: one booking is one short transaction of fixed statements (statements.py) run on
the driver's cursor (driver.py) in four batches. On PostgreSQL each batch is one round
trip. Locks are taken in the service layer's order: address, patient, slot, and the
audit head last.

  1. the stored result of a replay; the address and patient row locks; the slot and
     its rules
  2. under the patient's lock: the patient's suspension, links and held bookings, which
     a patient created by this transaction doesn't have yet, so they are skipped
  3. the place (a conditional UPDATE), the link, the booking, and the audit head lock
  4. the audit events, the head and the stored result; then one commit

A refusal rolls back everything the transaction wrote and is then stored on its own, so
a replay of the same event is refused the same way. `book_locked` (steps 2 and 3) is
shared with rescheduling, which writes its audit events at commit instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from assistant.booking import audit, driver, outbox, policy as rules, results as r, statements as sql
from assistant.booking.inputs import AddressInput, IdentityInput, ServiceContext, Staff
from assistant.booking.models import ACTIVE_STATUSES, BOOKED
from assistant.booking.records import (
    LockedPatient,
    TypedName,
    address_actor,
    lock_address_row,
    lock_patient_row,
    patient_ref as masked_patient,
    prepare_address,
    prepare_identity,
)
from assistant.booking.uow import UnitOfWork

# Booking codes avoid characters that look or sound alike (0/O, 1/I/L, 2/Z, 5/S, 8/B).
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY3467"
CODE_LENGTH = 8  # 24^8 ≈ 1.1e11 codes: unguessable at any rate a rate limiter allows
CODE_ATTEMPTS = 3


def book_slot(ctx: ServiceContext, *, slot_id: int, channel: str, now: datetime,
              identity_input: IdentityInput | None = None, patient_ref: int | None = None,
              booked_by: AddressInput | None = None, staff: Staff | None = None,
              relation: str = "self", idempotency_key: str | None = None) -> r.Booked | r.Refusal:
    """Book one place in a slot for one real identity: typed in (`identity_input`), or
    a patient already linked to the booking address (`patient_ref`). The booking
    address owns the booking."""
    key = f"book:{idempotency_key}" if idempotency_key is not None else None
    prepared = prepare_parties(ctx, booked_by, identity_input, patient_ref, now)
    if isinstance(prepared, r.Refusal):
        return settle(ctx, key, prepared, now)
    address, given = prepared

    def attempt(uow: UnitOfWork, db: driver.Cursor) -> Any:
        replay, parties, slot_row = lock_parties(
            db, key, address, given, patient_ref, now,
            also=lambda: db.run(sql.SLOT_WITH_RULES, {"slot_id": slot_id}))
        if replay is not None:
            return replay
        if isinstance(parties, r.Refusal):
            return parties
        slot = slot_row.first()
        if slot is None:
            return r.SlotNotFound()
        actor = parties.actor(channel, staff)
        address_id, address_is_new, patient, name = (
            parties.address_id, parties.address_is_new, parties.patient, parties.name)
        placed = book_locked(ctx, db, patient, slot, channel, now, actor, name=name,
                             address_id=address_id, address_is_new=address_is_new,
                             acting_address_id=address_id,
                             staff=staff, replacing_id=None, relation=relation,
                             lock_audit_head=True)
        if isinstance(placed, r.Refusal):
            return placed
        with db.batch():  # 4
            audit.write_locked(db, ctx.keyring.audit_key, placed.audit_head.first(), placed.entries)
            kept = (db.run(sql.STORE_RESULT, {"key": key, "now": now,
                                              "result": r.to_json(placed.result)})
                    if key is not None else None)
        if kept is not None and kept.first() is None:
            return SUPERSEDED
        uow.commit()
        return placed.result

    return run_booking(ctx, key, now, attempt)


def prepare_parties(ctx: ServiceContext, booked_by: AddressInput | None, identity_input: IdentityInput | None,
                    patient_ref: int | None, now: datetime) -> tuple[Any, Any] | r.Refusal:
    """The address and identity checked, blinded and encrypted before the transaction
    starts: (address, identity), the identity None when a linked `patient_ref` is named."""
    address = prepare_address(ctx, booked_by) if booked_by is not None else None
    if isinstance(address, r.Refusal):
        return address
    if patient_ref is not None:
        return r.NotPermitted() if address is None else (address, None)
    if identity_input is None:
        return r.InvalidIdentity(field="id_number", reason="empty")
    given = prepare_identity(ctx, identity_input, now.date())
    return given if isinstance(given, r.Refusal) else (address, given)


@dataclass(frozen=True)
class Parties:
    """Who asks and for whom, with both row locks held: the booking address (created
    on first use) and the patient (created from a typed identity, or linked)."""

    address_id: int | None
    address_is_new: bool
    patient: LockedPatient
    name: TypedName | None

    def actor(self, channel: str, staff: Staff | None) -> audit.Actor:
        if staff is not None:
            return audit.Actor(f"staff:{staff.username}", channel)
        return audit.Actor(address_actor(self.address_id) if self.address_id is not None
                           else "anonymous", channel)


def lock_parties(db: driver.Cursor, key: str | None, address: Any, given: Any, patient_ref: int | None,
                 now: datetime, *, also: Callable[[], Any]) -> tuple[Any, Parties | r.Refusal, Any]:
    """Step 1 of a booking or a request, in one batch: the stored result of a replay,
    the address and patient row locks, and `also` (the slot or day and its rules).
    Returns (the replayed result or None, the parties or a refusal, what `also` gave)."""
    with db.batch():
        replay = db.run(sql.REPLAYED_RESULT, {"key": key}) if key is not None else None
        address_row = lock_address_row(db, address, now) if address is not None else None
        if given is not None:
            patient_row = lock_patient_row(db, given, now)
            linked_name = None
        else:
            patient_row = db.run(sql.LOCK_PATIENT_BY_ID, {"patient_id": patient_ref})
            linked_name = db.run(sql.LINKED_NAME, {
                "kind": address.kind, "address_index": address.index, "patient_id": patient_ref})
        extra = also()
    earlier = replay_in(replay) if replay is not None else None
    if earlier is not None:
        return earlier, r.NotPermitted(), extra
    address_id, address_is_new = None, False
    if address_row is not None:
        address_id, address_version = address_row.one()
        address_is_new = address_version == 0
    row = patient_row.first()
    if row is None:
        return None, r.NotPermitted(), extra
    if given is not None:
        return None, Parties(address_id, address_is_new, LockedPatient(row.id, is_new=row.version == 0),
                             given.name), extra
    link = linked_name.first()
    if link is None:  # only an address linked to the patient may act by reference
        return None, r.NotPermitted(), extra
    return None, Parties(address_id, address_is_new, LockedPatient(row.id),
                         TypedName(link.name_encrypted, link.name_index)), extra


@dataclass(frozen=True)
class Placed:
    """A place taken under the patient's lock: the result, and the audit entries to
    append if it stands (with the head row already locked, if asked for)."""

    result: r.Booked
    entries: list[audit.Entry]
    audit_head: driver.Rows | None


def book_locked(ctx: ServiceContext, db: driver.Cursor, patient: LockedPatient, slot: Any,
                channel: str, now: datetime, actor: audit.Actor, *, name: TypedName | None,
                address_id: int | None, staff: Staff | None, replacing_id: int | None,
                acting_address_id: int | None, relation: str = "self", address_is_new: bool = False,
                lock_audit_head: bool = False, notice: str = outbox.BOOKED_FOR_YOU,
                closing_applies: bool = True) -> Placed | r.Refusal:
    """Book `slot` (a SLOT_WITH_RULES row) with the patient's (and address's) row lock
    already held. `address_id` owns the booking; `acting_address_id` is who asks (the
    same, except when a code holder or staff moves someone's booking). `replacing_id` is
    left out of the quota counts: a reschedule moves a booking rather than adding one.
    When someone other than the patient acts in her name, a notice for her own address
    is written alongside (`notice` names it). A waitlist offer is taken even after
    booking closes (`closing_applies` False): it was offered for that time."""
    admitted = admit(ctx, db, patient, slot, now, name_index=name.index if name is not None else None,
                     address_id=address_id, address_is_new=address_is_new, staff=staff,
                     replacing_id=replacing_id, relation=relation, closing_applies=closing_applies)
    if isinstance(admitted, r.Refusal):
        return admitted
    policy, facts, new_link, own = admitted.policy, admitted.facts, admitted.new_link, admitted.own
    tz = ZoneInfo(slot.timezone)
    name_index = name.index if name is not None else None
    code = new_code()
    entries = []
    tell_patient = own is not None and (own != acting_address_id or staff is not None)
    with db.batch():  # 3
        taken = db.run(sql.TAKE_PLACE, {"slot_id": slot.id})
        if new_link:
            link_relation = "family" if relation == "family" else "self"
            db.run(sql.INSERT_LINK, {"address_id": address_id, "patient_id": patient.id,
                                     "relation": link_relation, "now": now, "channel": channel,
                                     "name_encrypted": name.encrypted if name else None,
                                     "name_index": name_index})
            entries.append(audit.Entry(actor, "link.created", f"patient:{masked_patient(patient)}",
                                       {"relation": link_relation}, now))
        db.run(sql.INSERT_BOOKING, {
            "code": code, "patient_id": patient.id, "slot_id": slot.id,
            "department_id": slot.department_id, "visit_date": slot.visit_date,
            "channel": channel, "address_id": address_id,
            "staff": staff.username if staff else None, "replacing_id": replacing_id,
            "name_encrypted": name.encrypted if name else None, "name_index": name_index,
            "name_differs": bool(not patient.is_new and name_index and facts.other_names),
            "now": now})
        entries.append(audit.Entry(actor, "booking.created", f"booking:{code}", {
            "patient": masked_patient(patient), "slot": slot.id, "department": slot.code,
            "starts_at": slot.starts_at.isoformat()}, now))
        if tell_patient:
            db.run(sql.INSERT_NOTICE, {"address_id": own, "patient_id": patient.id, "now": now,
                                       "message": notice, "params": outbox.notice_params(
                                           code, slot.names, slot.starts_at, staff is not None)})
            entries.append(audit.Entry(actor, "notice.queued", f"booking:{code}",
                                       {"patient": masked_patient(patient), "notice": notice}, now))
        # The head is locked after the place: it stays the last lock taken.
        head = audit.lock_head(db) if lock_audit_head else None
    if taken.first() is None:
        return r.SlotFull()  # the caller rolls back the link and booking sent alongside
    view = r.BookingView(
        code=code, status=BOOKED, patient_ref=patient.id,
        department_id=slot.department_id, department_code=slot.code,
        department_names=dict(slot.names), slot_id=slot.id, starts_at=slot.starts_at,
        ends_at=slot.ends_at, visit_date=slot.visit_date, channel=channel,
        cancel_deadline=rules.cancel_deadline(policy, slot.visit_date, tz))
    return Placed(r.Booked(view), entries, head)


@dataclass(frozen=True)
class Admitted:
    """The patient (and address) may have one more place: the rules that apply, the
    facts read under the locks, and whether a link must be made."""

    policy: Any
    facts: Any
    new_link: bool
    own: int | None  # the patient's own address, for notices


def admit(ctx: ServiceContext, db: driver.Cursor, patient: LockedPatient, place: Any, now: datetime, *,
          name_index: str | None, address_id: int | None, address_is_new: bool, staff: Staff | None,
          replacing_id: int | None, relation: str, closing_applies: bool = True,
          pending: Callable[[], list] | None = None) -> Admitted | r.Refusal:
    """Every rule a new place must pass, with the row locks held: the address's patient
    limit, the release window, suspensions, a place already held, and the quotas.
    `place` is a SLOT_WITH_RULES row, or a DAY_WITH_RULES row (a request: `id` None).
    `pending` adds the identity's requests still waiting for a draw to its bookings."""
    hospital_policy = ctx.settings.policy.overridden(place.hospital_policy)
    policy = hospital_policy.overridden(place.policy_overrides)
    tz = ZoneInfo(place.timezone)
    if patient.is_new:
        # A patient this transaction created has no links, suspension or bookings yet.
        facts = (NoHistory() if address_is_new or address_id is None else NoHistory(
            *db.run(sql.ADDRESS_FACTS, {"address_id": address_id, "now": now}).one()))
        held = []
    else:
        with db.batch():  # 2
            facts_rows = db.run(sql.PATIENT_FACTS, {
                "patient_id": patient.id, "address_id": address_id, "now": now,
                "name_index": name_index or ""})
            held_rows = db.run(sql.HELD_BOOKINGS, {
                "patient_id": patient.id, "earliest": place.visit_date - timedelta(days=90),
                "latest": place.visit_date + timedelta(days=90)})
        facts = facts_rows.one()
        held = [row for row in held_rows if row.id != replacing_id]
        if pending is not None:
            held += pending()
    new_link = address_id is not None and not facts.linked
    if new_link:
        limit = hospital_policy.patients_per_address  # an address's limit is hospital-wide
        if limit and facts.links >= limit:
            return r.TooManyPatients(limit=limit)
    if place.release_at is not None and now < place.release_at:
        return r.NotYetOpen(opens_at=place.release_at)
    if place.id is not None and place.release_mode == "draw" and not place.drawn:
        return r.NotYetOpen(opens_at=now)  # the draw is due and runs in a moment
    closes_at = rules.booking_closes_at(policy, place.visit_date, tz)
    if closing_applies and now >= closes_at:
        return r.BookingClosed(closed_at=closes_at)
    if facts.address_until is not None and staff is None:
        return r.Suspended(reason=facts.address_rule, until=facts.address_until, scope="address")
    if facts.until is not None:
        return r.Suspended(reason=facts.rule, until=facts.until, scope="identity")
    for row in held:
        if row.slot_id == place.id and row.status in ACTIVE_STATUSES:
            return r.AlreadyBooked(code=row.code)
    breach = rules.quota_breach(policy, [rules.HeldBooking(row.visit_date, row.department_id) for row in held],
                                rules.HeldBooking(place.visit_date, place.department_id))
    own = None if patient.is_new else facts.own_address_id
    if breach is not None:
        # Only the patient's own address hears that others' bookings fill her quota:
        # anyone else typing her number learns no more than the plain limit.
        is_own = own == address_id or (own is None and relation == "self")
        by_others = is_own and address_id is not None and any(
            row.booked_by_address_id != address_id for row in held)
        return r.QuotaExceeded(quota=breach.quota, limit=breach.limit, by_others=by_others)

    return Admitted(policy, facts, new_link, own)


@dataclass(frozen=True)
class NoHistory:
    """PATIENT_FACTS for a patient created by this transaction."""

    address_until: datetime | None = None
    address_rule: str | None = None
    links: int = 0
    linked: int = 0
    until: datetime | None = None
    rule: str | None = None


def new_code() -> str:
    """A random code; the unique index catches the rare repeat and the booking is
    retried with another (see run_booking)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


# ---- the transaction around a booking ------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    """The event was already handled; this is the result it got."""

    result: Any


SUPERSEDED = object()  # a concurrent replay of the same event committed first


def run_booking(ctx: ServiceContext, key: str | None, now: datetime,
                attempt: Callable[[UnitOfWork, driver.Cursor], Any]) -> Any:
    """Run `attempt` in a transaction, kept short; it commits a success itself. A
    refusal rolls everything back and is then stored on its own for replays."""
    result = None
    for _ in range(CODE_ATTEMPTS):
        try:
            with ctx.uow() as uow:
                result = attempt(uow, driver.Cursor(uow.session.connection()))
        except IntegrityError as exc:
            if is_code_collision(exc):
                continue  # a booking code was drawn twice (about 1 in 10^11): draw again
            raise BookingConstraintError(constraint_of(exc)) from exc
        break
    if isinstance(result, Replayed):
        return result.result
    if isinstance(result, r.Refusal) or result is SUPERSEDED:
        return settle(ctx, key, None if result is SUPERSEDED else result, now)
    if result is None:
        raise RuntimeError("booking kept failing on the database's unique constraints")
    return result


class BookingConstraintError(RuntimeError):
    """A database constraint other than the booking code's stopped a booking: a bug or
    a schema change, reported by the constraint's name (never a value, which could
    quote a patient)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(f"booking stopped by the database constraint {constraint}")
        self.constraint = constraint


def constraint_of(exc: IntegrityError) -> str:
    """The constraint an IntegrityError names: psycopg's diagnostics, or SQLite's text
    ("UNIQUE constraint failed: booking.code")."""
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return name
    text = str(exc.orig)
    return text.split(":", 1)[1].strip() if ":" in text else "unknown"


def is_code_collision(exc: IntegrityError) -> bool:
    return constraint_of(exc) in ("uq_booking_code", "booking.code")


def keep(ctx: ServiceContext, uow: UnitOfWork, db: driver.Cursor, key: str | None, result: Any,
         entries: list[audit.Entry], now: datetime) -> Any:
    """Commit a success with its audit entries (appended at commit) and, for replays,
    its result."""
    audit.defer(uow.session, ctx.keyring.audit_key, entries)
    if key is not None and db.run(sql.STORE_RESULT, {
            "key": key, "now": now, "result": r.to_json(result)}).first() is None:
        return SUPERSEDED
    uow.commit()
    return result


def replayed(db: driver.Cursor, key: str | None) -> Replayed | None:
    return replay_in(db.run(sql.REPLAYED_RESULT, {"key": key})) if key is not None else None


def replay_in(rows: driver.Rows) -> Replayed | None:
    """The earlier result in REPLAYED_RESULT's rows, if the event was handled before."""
    stored = rows.scalar()
    return Replayed(r.from_json(stored)) if stored is not None else None


def settle(ctx: ServiceContext, key: str | None, refusal: r.Refusal | None, now: datetime) -> Any:
    """Store a refusal for replays, unless the event already has a result: then that
    result is the answer."""
    if key is None:
        return refusal
    with ctx.uow() as uow:
        db = driver.Cursor(uow.session.connection())
        if refusal is not None and db.run(sql.STORE_RESULT, {
                "key": key, "now": now, "result": r.to_json(refusal)}).first() is not None:
            uow.commit()
            return refusal
        return r.from_json(db.run(sql.REPLAYED_RESULT, {"key": key}).scalar())
