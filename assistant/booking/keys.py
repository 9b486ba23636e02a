"""The keys against the database: the key check, and rotating to new keys.

Rule: a database remembers check values of the keys it was written with (the one
`key_check` row): an HMAC of a fixed text under the blind-index key and a Fernet token of
that text. Every start compares the keys it was given with them, so a wrong or missing
key stops a command before it writes anything under it. `rotate` re-encrypts every
stored value and rebuilds every blind index and the audit chain under new keys, in
batches that each commit their progress in `key_check.rotation`; running it again with
the same keys carries on where it stopped, and every other command refuses to run until
it has finished.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import delete, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assistant.booking import audit, driver
from assistant.booking.identity import (
    Keyring,
    address_purpose,
    id_purpose,
    name_for_index,
    name_purpose,
)
from assistant.booking.models import (
    AuditEvent,
    AuditHead,
    Booking,
    ChannelAddress,
    ConversationRecord,
    Draw,
    DrawRequest,
    KeyCheck,
    Patient,
    PatientLink,
    ProcessedEvent,
    WaitlistEntry,
)
from assistant.booking.uow import UnitOfWorkFactory
from assistant.config import SettingsError

CHECK_TEXT = "CareLine key check"
ROTATED = "keys.rotated"
BATCH_SIZE = 500
ROTATION_UNDER_WAY = ("a key rotation is under way: run `assistant keys rotate` again to "
                      "finish it (no other command runs until it has finished)")
_BLIND = "the blind-index key"
_ENCRYPTION = "the encryption key"
# The order `rotate` works through; each step commits its progress with its batch.
STEPS = ("patient", "booking", "patient_link", "channel_address", "processed_event",
         "conversation", "draw", "draw_request", "waitlist_entry", "audit_event")


class KeyCheckError(SettingsError):
    """The keys given are not the ones the database was written with, or a rotation
    can't go on. The command line prints it as one `error:` line."""


def blind_check(keyring: Keyring) -> str:
    return hmac.new(keyring.blind_index_key, CHECK_TEXT.encode(), hashlib.sha256).hexdigest()


def encryption_check(keyring: Keyring) -> str:
    return keyring.encrypt(CHECK_TEXT)


def _matches(keyring: Keyring, blind_value: str, encryption_value: str) -> tuple[bool, bool]:
    return (hmac.compare_digest(blind_value, blind_check(keyring)),
            keyring.decrypt(encryption_value) == CHECK_TEXT)


def _mismatch(blind_ok: bool, encryption_ok: bool, where: str = "(key check)") -> KeyCheckError:
    wrong = " and ".join(name for name, ok in ((_BLIND, blind_ok), (_ENCRYPTION, encryption_ok))
                         if not ok)
    verb = "do" if not (blind_ok or encryption_ok) else "does"
    return KeyCheckError(
        f"{wrong} {verb} not match the one this database was written with {where}: "
        "restore the right key in the secrets file or the environment")


def has_table(session: Session, name: str) -> bool:
    return inspect(session.connection()).has_table(name)


def holds_data(session: Session) -> bool:
    """Patients or audit events: a database whose keys must never be replaced by new
    ones. Absent tables count as empty."""
    for model in (Patient, AuditEvent):
        if has_table(session, model.__tablename__) and \
                session.execute(select(model.id).limit(1)).first() is not None:
            return True
    return False


def confirm_against_data(session: Session, keyring: Keyring, *,
                         addresses_only: bool = False) -> None:
    """Before the first check row is recorded: the keys must read what is stored (one
    address, else one patient: decrypted, and its blind index recomputed). Addresses
    have been stored the same way in every schema, so an older one is checked by them."""
    found = session.execute(
        select(ChannelAddress.kind, ChannelAddress.address_index, ChannelAddress.address_encrypted)
        .order_by(ChannelAddress.id).limit(1)).first()
    if found is not None:
        kind, index, token = found
        value = keyring.decrypt(token)
        purpose = address_purpose(kind)
    elif addresses_only:
        return
    else:
        patient = session.execute(
            select(Patient.id_kind, Patient.id_document, Patient.id_country, Patient.id_index,
                   Patient.id_encrypted).order_by(Patient.id).limit(1)).first()
        if patient is None:
            return
        kind, document, country, index, token = patient
        value = keyring.decrypt(token)
        purpose = id_purpose(kind, document, country)
    if value is None:
        raise _mismatch(True, False, "(checked against the stored data)")
    if not hmac.compare_digest(keyring.blind_index(purpose, value), index):
        raise _mismatch(False, True, "(checked against the stored data)")


def check(uow: UnitOfWorkFactory, keyring: Keyring, now: datetime) -> bool:
    """Compare the keys with the database's check row, recording it when absent (after
    confirming the keys against stored data). False when the table doesn't exist yet (a
    fresh database or an older schema): the caller checks again after upgrading. An older
    schema's stored addresses are checked all the same, before an upgrade moves data
    under the keys."""
    with uow.read_only() as work:
        session = work.session
        if not has_table(session, KeyCheck.__tablename__):
            if has_table(session, ChannelAddress.__tablename__):
                confirm_against_data(session, keyring, addresses_only=True)
            return False
        row = session.get(KeyCheck, 1)
        if row is not None:
            _compare(row, keyring)
            return True
        confirm_against_data(session, keyring)
    with uow() as work:
        session = work.session
        row = session.get(KeyCheck, 1)
        if row is None:
            session.add(KeyCheck(id=1, blind_index_check=blind_check(keyring),
                                 encryption_check=encryption_check(keyring), rotation=None,
                                 updated_at=now))
            try:
                work.commit()
                return True
            except IntegrityError:  # another instance recorded it first
                work.session.rollback()
                row = work.session.get(KeyCheck, 1)
        _compare(row, keyring)
    return True


def _compare(row: KeyCheck, keyring: Keyring) -> None:
    if row.rotation:
        raise KeyCheckError(ROTATION_UNDER_WAY)
    blind_ok, encryption_ok = _matches(keyring, row.blind_index_check, row.encryption_check)
    if not (blind_ok and encryption_ok):
        raise _mismatch(blind_ok, encryption_ok)


# ---- rotation -----------------------------------------------------------------------------


@dataclass
class RotationReport:
    rows: dict[str, int] = field(default_factory=dict)  # step -> rows rewritten (or deleted)
    resumed: bool = False


def rotate(uow: UnitOfWorkFactory, old: Keyring, new: Keyring, now: datetime, *,
           batch_size: int = BATCH_SIZE,
           after_batch: Callable[[dict[str, Any]], None] | None = None) -> RotationReport:
    """Move every stored value from the `old` keys to the `new` ones. Each batch is one
    transaction that also records the progress; `after_batch(progress)` runs after each
    commit (tests interrupt a rotation there). Run again with the same keys, it carries
    on. The audit trail is verified under the old keys before anything changes."""
    report = RotationReport()
    progress = _start(uow, old, new, now, report)
    # Values are read with every key (a row is either still old or already new).
    reader = Keyring(old.blind_index_key, new.encryption_keys + old.encryption_keys)
    while progress["step"] != "finish":
        progress = _run_batch(uow, reader, new, progress, batch_size, now, report)
        if after_batch is not None:
            after_batch(dict(progress))
    _finish(uow, new, progress, now, report)
    return report


def _start(uow: UnitOfWorkFactory, old: Keyring, new: Keyring, now: datetime,
           report: RotationReport) -> dict[str, Any]:
    with uow() as work:
        session = work.session
        if not has_table(session, KeyCheck.__tablename__):
            raise KeyCheckError("the database schema is too old for a key rotation: "
                                "run `assistant db upgrade` first")
        row = session.get(KeyCheck, 1)
        if row is None:
            confirm_against_data(session, old)
            row = KeyCheck(id=1, blind_index_check=blind_check(old),
                           encryption_check=encryption_check(old), rotation=None, updated_at=now)
            session.add(row)
        if row.rotation:
            progress = dict(row.rotation)
            if not all(_matches(old, row.blind_index_check, row.encryption_check)):
                raise KeyCheckError("the current keys are not the ones this rotation started "
                                    "from: run it with the same keys as before")
            if not all(_matches(new, progress["new_blind_check"], progress["new_encryption_check"])):
                raise KeyCheckError("the new keys are not the ones this rotation started with: "
                                    "run it with the same new keys as before")
            report.resumed = True
            report.rows = dict(progress.get("rows", {}))
            return progress
        if all(_matches(new, row.blind_index_check, row.encryption_check)):
            raise KeyCheckError("this database already uses the new keys: make them the "
                                "current ones and delete the new_* entries")
        blind_ok, encryption_ok = _matches(old, row.blind_index_check, row.encryption_check)
        if not (blind_ok and encryption_ok):
            raise _mismatch(blind_ok, encryption_ok)
        if new.blind_index_key == old.blind_index_key and new.encryption_key == old.encryption_key:
            raise KeyCheckError("the new keys are the current ones: run `assistant keys "
                                "generate` for new keys")
        verified = audit.verify(session, old.audit_key)
        if not verified.ok:
            raise KeyCheckError(
                f"the audit trail does not verify under the current keys ({len(verified.problems)} "
                "problems; see `assistant audit verify`): a rotation would re-seal it as if "
                "intact, so it does not start")
        progress = {"step": STEPS[0], "after": None, "prev_hash": audit.GENESIS_HASH,
                    "new_blind_check": blind_check(new),
                    "new_encryption_check": encryption_check(new), "rows": {},
                    "started_at": now.isoformat()}
        row.rotation = progress
        row.updated_at = now
        work.commit()
        return progress


def _next_step(progress: dict[str, Any]) -> dict[str, Any]:
    index = STEPS.index(progress["step"]) + 1
    return {**progress, "step": STEPS[index] if index < len(STEPS) else "finish", "after": None}


def _run_batch(uow: UnitOfWorkFactory, reader: Keyring, new: Keyring, progress: dict[str, Any],
               batch_size: int, now: datetime, report: RotationReport) -> dict[str, Any]:
    """One batch of the current step, and the progress after it, in one transaction."""
    step = progress["step"]
    with uow() as work:
        session = work.session
        done, last, more = _STEP_FUNCTIONS[step](session, reader, new, progress, batch_size)
        progress = {**progress, **more, "after": last} if last is not None else _next_step(progress)
        if done:
            rows = dict(progress.get("rows", {}))
            rows[step] = rows.get(step, 0) + done
            progress["rows"] = rows
        report.rows = dict(progress.get("rows", {}))
        _save_progress(session, progress, now)
        work.commit()
    return progress


def _save_progress(session: Session, progress: dict[str, Any], now: datetime) -> None:
    session.execute(update(KeyCheck).where(KeyCheck.id == 1)
                    .values(rotation=progress, updated_at=now))


def _decrypted(reader: Keyring, token: str | None, where: str) -> str | None:
    if token is None:
        return None
    value = reader.decrypt(token)
    if value is None:
        raise KeyCheckError(f"{where} can't be decrypted with the current keys: the rotation "
                            "stopped there (nothing after it changed)")
    return value


def _after_id(model, progress: dict[str, Any], batch_size: int, session: Session):
    query = select(model).order_by(model.id).limit(batch_size)
    if progress["after"] is not None:
        query = query.where(model.id > progress["after"])
    return session.execute(query).scalars().all()


def _patients(session, reader, new, progress, batch_size):
    rows = _after_id(Patient, progress, batch_size, session)
    changes = []
    for p in rows:
        number = _decrypted(reader, p.id_encrypted, f"patient {p.id}")
        born = _decrypted(reader, p.birth_date_encrypted, f"patient {p.id}")
        changes.append({
            "id": p.id, "id_encrypted": new.encrypt(number),
            "id_index": new.blind_index(id_purpose(p.id_kind, p.id_document, p.id_country), number),
            "birth_date_encrypted": None if born is None else new.encrypt(born)})
    return _write(session, Patient, rows, changes)


def _names(model):
    def run(session, reader, new, progress, batch_size):
        rows = _after_id(model, progress, batch_size, session)
        changes = []
        for row in rows:
            name = _decrypted(reader, row.name_encrypted, f"{model.__tablename__} {row.id}")
            if name is None:
                continue
            changes.append({"id": row.id, "name_encrypted": new.encrypt(name),
                            "name_index": new.blind_index(name_purpose(), name_for_index(name))})
        return _write(session, model, rows, changes)
    return run


def _addresses(session, reader, new, progress, batch_size):
    rows = _after_id(ChannelAddress, progress, batch_size, session)
    changes = []
    for a in rows:
        value = _decrypted(reader, a.address_encrypted, f"channel_address {a.id}")
        changes.append({"id": a.id, "address_encrypted": new.encrypt(value),
                        "address_index": new.blind_index(address_purpose(a.kind), value)})
    return _write(session, ChannelAddress, rows, changes)


def _processed_events(session, reader, new, progress, batch_size):
    query = select(ProcessedEvent.key, ProcessedEvent.result).order_by(ProcessedEvent.key) \
        .limit(batch_size)
    if progress["after"] is not None:
        query = query.where(ProcessedEvent.key > progress["after"])
    rows = session.execute(query).all()
    changes = []
    for key, result in rows:
        if isinstance(result, dict) and isinstance(result.get("turn"), str):
            turn = _decrypted(reader, result["turn"], f"processed_event {key!r}")
            changes.append({"key": key, "result": {**result, "turn": new.encrypt(turn)}})
    if changes:
        session.execute(update(ProcessedEvent), changes)
    return len(changes), (rows[-1][0] if rows else None), {}


def _conversations(session, reader, new, progress, batch_size):
    """Their index is over the raw address, which is not stored: conversations in
    progress start over (the language stays on channel_address)."""
    deleted = session.execute(select(func.count()).select_from(ConversationRecord)).scalar_one()
    session.execute(delete(ConversationRecord))
    return deleted, None, {}


def _write(session: Session, model, rows, changes) -> tuple[int, int | None, dict]:
    if changes:
        session.execute(update(model), changes)
    return len(changes), (rows[-1].id if rows else None), {}


def _audit_events(session, reader, new, progress, batch_size):
    """Re-hash a batch of events under the new audit key, chained from the last one
    re-hashed. The head is re-sealed at the end."""
    rows = _after_id(AuditEvent, progress, batch_size, session)
    prev = progress["prev_hash"]
    changes = []
    key = new.audit_key
    for event in rows:
        fields_ = audit._hashed_fields(event.id, event.at, event.actor, event.channel,
                                       event.action, event.subject, event.details)
        digest = audit.event_hash(key, prev, fields_)
        changes.append({"id": event.id, "prev_hash": prev, "hash": digest})
        prev = digest
    if changes:
        session.execute(update(AuditEvent), changes)
    last = rows[-1].id if rows else None
    return len(changes), last, {"prev_hash": prev, "rechained_to": last}


def _draws(session, reader, new, progress, batch_size):
    """A draw's seed, kept secret until the draw. (A waitlist entry's queue key stays as
    it is: re-keying it would reshuffle a queue people are waiting in.)"""
    rows = _after_id(Draw, progress, batch_size, session)
    changes = [{"id": d.id, "seed_encrypted": new.encrypt(_decrypted(reader, d.seed_encrypted, f"draw {d.id}"))}
               for d in rows]
    return _write(session, Draw, rows, changes)


_STEP_FUNCTIONS = {
    "patient": _patients,
    "booking": _names(Booking),
    "patient_link": _names(PatientLink),
    "channel_address": _addresses,
    "processed_event": _processed_events,
    "conversation": _conversations,
    "draw": _draws,
    "draw_request": _names(DrawRequest),
    "waitlist_entry": _names(WaitlistEntry),
    "audit_event": _audit_events,
}


def _finish(uow: UnitOfWorkFactory, new: Keyring, progress: dict[str, Any], now: datetime,
            report: RotationReport) -> None:
    """Re-seal the head under the new audit key, record `keys.rotated` under it, and
    make the new check values the database's: one transaction."""
    with uow() as work:
        session = work.session
        db = driver.Cursor(session.connection())
        head = audit.lock_head(db).first()
        # Events appended since the audit step ended (CareLine should be stopped, but the
        # chain must stay whole either way) are re-hashed here, under the head's lock.
        late = {**progress, "after": progress.get("rechained_to")}
        while True:
            done, last, more = _audit_events(session, None, new, late, BATCH_SIZE)
            if last is None:
                break
            late = {**late, **more, "after": last}
            progress = {**progress, "rows": {**progress.get("rows", {}), "audit_event":
                                             progress.get("rows", {}).get("audit_event", 0) + done}}
        prev, rechained_to = late["prev_hash"], late.get("rechained_to") or 0
        if head is not None:
            last_id, _, count, _ = head
            if last_id != rechained_to:
                raise KeyCheckError(
                    f"the audit head names event {last_id} as the newest, but the trail ends at "
                    f"{rechained_to}: run `assistant audit verify`")
            seal = audit.head_seal(new.audit_key, last_id, prev, count)
            session.execute(update(AuditHead).where(AuditHead.id == 1)
                            .values(last_hash=prev, seal=seal))
            head = (last_id, prev, count, seal)
        entry = audit.Entry(audit.SYSTEM, ROTATED, "keys",
                            {"rows": dict(sorted(progress.get("rows", {}).items()))}, now)
        audit.write_locked(db, new.audit_key, head, [entry])
        session.execute(update(KeyCheck).where(KeyCheck.id == 1).values(
            blind_index_check=progress["new_blind_check"],
            encryption_check=progress["new_encryption_check"], rotation=None, updated_at=now))
        work.commit()
    report.rows = dict(progress.get("rows", {}))


