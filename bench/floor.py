"""The floor for bench/bookings.py: a booking's rows, written the way the baseline writes.

Rule: per booking, one transaction through the same engine as the baseline, holding
exactly the writes a new patient's booking makes (the address, the patient, the link,
the slot's count, the booking, the audit head and two audit events, the stored result)
and nothing else. No rule is checked, nothing is looked up, validated, blinded,
encrypted or hashed: every value is prepared before the clock starts, copied in shape
from rows the real service wrote during the warm-up. No service can book faster than
this on the same schema and durability, so floor/baseline bounds service/baseline, and
service/floor is what the rules, checks and cryptography cost on top of the writes.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update

from assistant.booking import audit
from assistant.booking.book import CODE_ALPHABET, CODE_LENGTH
from assistant.booking.models import (
    AuditEvent,
    AuditHead,
    Booking,
    ChannelAddress,
    Patient,
    PatientLink,
    ProcessedEvent,
    Slot,
)

_TAKE_PLACE = (update(Slot)
               .where(Slot.id == bindparam("slot"), Slot.booked < Slot.capacity)
               .values(booked=Slot.booked + 1))
_RESERVE_EVENTS = (update(AuditHead).where(AuditHead.id == 1)
                   .values(event_count=AuditHead.event_count + 2,
                           last_event_id=AuditHead.last_event_id + 2,
                           last_hash=bindparam("last_hash"), seal=bindparam("seal"))
                   .returning(AuditHead.last_event_id))


class BookingRows:
    """Writes n bookings' rows, one transaction each, into slots of its own."""

    def __init__(self, engine: Engine, audit_key: bytes, slot_ids: list[int],
                 places_per_slot: int, now: datetime) -> None:
        self.engine = engine
        self.audit_key = audit_key
        self.slot_ids = slot_ids
        self.places_per_slot = places_per_slot
        self.now = now
        self.written = 0
        self._shapes: dict[str, Any] | None = None

    def _copy_shapes(self) -> dict[str, Any]:
        """Column values from the newest booking the service wrote."""
        with self.engine.connect() as connection:
            booking = connection.execute(
                select(Booking).order_by(Booking.id.desc()).limit(1)).one()
            patient = connection.execute(
                select(Patient).where(Patient.id == booking.patient_id)).one()
            address = connection.execute(
                select(ChannelAddress).where(ChannelAddress.id == booking.booked_by_address_id)).one()
            result = connection.execute(
                select(ProcessedEvent.result).where(ProcessedEvent.result.is_not(None))
                .order_by(ProcessedEvent.claimed_at.desc()).limit(1)).scalar_one()
            events = connection.execute(
                select(AuditEvent).order_by(AuditEvent.id.desc()).limit(2)).all()
        return {"patient": patient, "address": address, "booking": booking,
                "result": result, "events": list(reversed(events))}

    def _rows(self, n: int) -> dict[str, Any]:
        """Everything booking n writes, prepared up front. Keys and indexed values are
        fresh random strings, as blind indexes, codes and hashes are."""
        s = self._shapes
        patient, address, booking = s["patient"], s["address"], s["booking"]
        # As random as book.py's codes, so the unique index sees the same spread.
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        return {
            "address": {"kind": address.kind, "address_index": secrets.token_hex(32),
                        "address_encrypted": address.address_encrypted, "version": 0,
                        "created_at": self.now},
            "patient": {"id_kind": patient.id_kind, "id_index": secrets.token_hex(32),
                        "id_encrypted": patient.id_encrypted, "checksum_verified": True,
                        "birth_date_encrypted": patient.birth_date_encrypted,
                        "version": 0, "created_at": self.now},
            "link": {"relation": "self", "created_at": self.now, "created_via": "sms",
                     "name_encrypted": booking.name_encrypted, "name_index": booking.name_index},
            "slot": self.slot_ids[n // self.places_per_slot],
            "booking": {"code": code, "department_id": booking.department_id,
                        "visit_date": booking.visit_date, "status": "booked",
                        "channel": "sms", "name_encrypted": booking.name_encrypted,
                        "name_index": booking.name_index, "name_differs": False,
                        "created_at": self.now, "updated_at": self.now},
            "events": [{"at": self.now, "actor": event.actor, "channel": event.channel,
                        "action": event.action, "subject": event.subject,
                        "details": event.details, "prev_hash": secrets.token_hex(32),
                        "hash": secrets.token_hex(32)} for event in s["events"]],
            "seal": secrets.token_hex(32),
            "processed": {"key": f"book:sms:floor-{n}:book", "claimed_at": self.now,
                          "result": s["result"]},
        }

    def write(self, n: int) -> float:
        """Bookings' rows per second."""
        if self._shapes is None:
            self._shapes = self._copy_shapes()
        prepared = [self._rows(k) for k in range(self.written, self.written + n)]
        engine = self.engine
        started = time.perf_counter()
        for rows in prepared:
            with engine.begin() as connection:
                address_id = connection.execute(
                    insert(ChannelAddress), rows["address"]).inserted_primary_key[0]
                patient_id = connection.execute(
                    insert(Patient), rows["patient"]).inserted_primary_key[0]
                connection.execute(insert(PatientLink), {
                    **rows["link"], "address_id": address_id, "patient_id": patient_id})
                if connection.execute(_TAKE_PLACE, {"slot": rows["slot"]}).rowcount != 1:
                    raise AssertionError("the floor's slots are full")
                connection.execute(insert(Booking), {
                    **rows["booking"], "patient_id": patient_id, "slot_id": rows["slot"],
                    "booked_by_address_id": address_id})
                first, second = rows["events"]
                last_id = connection.execute(
                    _RESERVE_EVENTS, {"last_hash": second["hash"],
                                      "seal": rows["seal"]}).scalar_one()
                connection.execute(insert(AuditEvent), [
                    {**first, "id": last_id - 1}, {**second, "id": last_id}])
                connection.execute(insert(ProcessedEvent), rows["processed"])
        elapsed = time.perf_counter() - started
        self.written += n
        self._reseal_head()
        return n / elapsed

    def _reseal_head(self) -> None:
        """Untimed: seal the head the floor moved with a stand-in seal, as CareLine would
        have, so the service's next booking doesn't record it as tampered with."""
        with self.engine.begin() as connection:
            head = connection.execute(select(AuditHead)).one()
            connection.execute(update(AuditHead).values(seal=audit.head_seal(
                self.audit_key, head.last_event_id, head.last_hash, head.event_count)))
