"""The booking path's SQL, written once as textual statements.

Rule: booking is the one use case that runs at release time, when everyone books at
once, so its transaction is a short, fixed list of statements that both SQLite (3.35+)
and PostgreSQL run as written: upserts that lock (ON CONFLICT … DO UPDATE … RETURNING),
one query per kind of fact, and a conditional UPDATE for capacity. Compiled once at
import, they cost a fraction of building ORM statements per call. Types are declared
so both databases hand back the same Python values. Only the booking path (book.py) and
records.py use these, through driver.py.
"""

from __future__ import annotations

from sqlalchemy import JSON, Date, Integer, String, bindparam, text

from assistant.booking.models import UTCDateTime

REPLAYED_RESULT = text(
    "SELECT result FROM processed_event WHERE key = :key"
).columns(result=JSON)

STORE_RESULT = text(
    "INSERT INTO processed_event (key, claimed_at, result) VALUES (:key, :now, :result) "
    "ON CONFLICT (key) DO NOTHING RETURNING key"
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("result", type_=JSON))

# Creates the address on first use, and takes its row lock either way.
LOCK_ADDRESS = text(
    "INSERT INTO channel_address (kind, address_index, address_encrypted, version, created_at) "
    "VALUES (:kind, :address_index, :address_encrypted, 0, :now) "
    "ON CONFLICT (kind, address_index) DO UPDATE SET version = channel_address.version + 1 "
    "RETURNING id, version"
).bindparams(bindparam("now", type_=UTCDateTime))

# Creates the patient on first booking, and takes the patient's row lock either way:
# quotas are counted only after this.
LOCK_PATIENT = text(
    "INSERT INTO patient (id_kind, id_index, id_encrypted, id_last4, name_index, name_encrypted, "
    "birth_date, version, created_at) "
    "VALUES (:id_kind, :id_index, :id_encrypted, :id_last4, :name_index, :name_encrypted, "
    ":birth_date, 0, :now) "
    "ON CONFLICT (id_index) DO UPDATE SET version = patient.version + 1 "
    "RETURNING id, name_index, birth_date, id_last4, version"
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("birth_date", type_=Date)).columns(
    id=Integer, name_index=String, birth_date=Date, id_last4=String, version=Integer)

LOCK_PATIENT_BY_ID = text(
    "UPDATE patient SET version = version + 1 WHERE id = :patient_id RETURNING id, id_last4"
)

SLOT_WITH_RULES = text(
    "SELECT s.id, s.department_id, s.starts_at, s.ends_at, s.visit_date, s.release_at, "
    "d.code, d.names, d.policy_overrides, h.timezone, h.policy_overrides AS hospital_policy "
    "FROM slot s JOIN department d ON d.id = s.department_id "
    "JOIN hospital h ON h.id = d.hospital_id WHERE s.id = :slot_id"
).columns(id=Integer, department_id=Integer, starts_at=UTCDateTime, ends_at=UTCDateTime,
          visit_date=Date, release_at=UTCDateTime, code=String, names=JSON,
          policy_overrides=JSON, timezone=String, hospital_policy=JSON)

# Bookings that count towards quotas, within 90 days either side of the visit day.
HELD_BOOKINGS = text(
    "SELECT id, slot_id, department_id, visit_date, status, code FROM booking "
    "WHERE patient_id = :patient_id AND status <> 'cancelled' "
    "AND visit_date > :earliest AND visit_date < :latest"
).bindparams(bindparam("earliest", type_=Date), bindparam("latest", type_=Date)).columns(
    id=Integer, slot_id=Integer, department_id=Integer, visit_date=Date, status=String,
    code=String)

SUSPENSION_AND_LINKS = text(
    "SELECT "
    "(SELECT ends_at FROM suspension WHERE patient_id = :patient_id AND lifted_at IS NULL "
    " AND starts_at <= :now AND ends_at > :now ORDER BY ends_at DESC LIMIT 1) AS until, "
    "(SELECT rule FROM suspension WHERE patient_id = :patient_id AND lifted_at IS NULL "
    " AND starts_at <= :now AND ends_at > :now ORDER BY ends_at DESC LIMIT 1) AS rule, "
    "(SELECT count(*) FROM patient_link WHERE address_id = :address_id) AS links, "
    "(SELECT count(*) FROM patient_link WHERE address_id = :address_id "
    " AND patient_id = :patient_id) AS linked"
).bindparams(bindparam("now", type_=UTCDateTime)).columns(
    until=UTCDateTime, rule=String, links=Integer, linked=Integer)

LINKS_OF_ADDRESS = text(
    "SELECT count(*) AS links FROM patient_link WHERE address_id = :address_id")

# The capacity rule: succeeds only while a place is free, whatever runs alongside.
TAKE_PLACE = text(
    "UPDATE slot SET booked = booked + 1 WHERE id = :slot_id AND booked < capacity RETURNING id"
)

INSERT_LINK = text(
    "INSERT INTO patient_link (address_id, patient_id, relation, created_at, created_via) "
    "VALUES (:address_id, :patient_id, :relation, :now, :channel)"
).bindparams(bindparam("now", type_=UTCDateTime))

INSERT_BOOKING = text(
    "INSERT INTO booking (code, patient_id, slot_id, department_id, visit_date, status, channel, "
    "booked_by_address_id, booked_by_staff, rescheduled_from_id, created_at, updated_at) "
    "VALUES (:code, :patient_id, :slot_id, :department_id, :visit_date, 'booked', :channel, "
    ":address_id, :staff, :replacing_id, :now, :now) RETURNING id"
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("visit_date", type_=Date))
