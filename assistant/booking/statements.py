"""The booking path's SQL, written once as textual statements.

Rule: booking is the one use case that runs at release time, when everyone books at
once, so its transaction is a short, fixed list of statements that both SQLite (3.35+)
and PostgreSQL run as written: upserts that lock (ON CONFLICT … DO UPDATE … RETURNING),
one query per kind of fact, and a conditional UPDATE for capacity. Compiled once at
import, they cost a fraction of building ORM statements per call. Types are declared
so both databases hand back the same Python values. Only the booking path (book.py),
records.py and a turn's own state (conversations.py, at the end of this file) use
these, through driver.py.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Date, Integer, String, Text, bindparam, text

from assistant.booking.models import UTCDateTime

REPLAYED_RESULT = text(
    "SELECT result FROM processed_event WHERE key = :key"
).columns(result=JSON)

STORE_RESULT = text(
    "INSERT INTO processed_event (key, claimed_at, result) VALUES (:key, :now, :result) "
    "ON CONFLICT (key) DO NOTHING RETURNING key"
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("result", type_=JSON))

# Released slots with a free place (queries.availability), and the days that have one
# (queries.open_days). Every booking conversation asks, so they go straight to the
# driver; a large hospital has thousands of slots a month, so days are asked for as
# days, and the soonest slots with a LIMIT.
_FREE_SLOTS = (
    "FROM slot WHERE department_id = :department_id AND visit_date >= :date_from "
    "AND visit_date <= :date_to AND release_at <= :now AND booked + held < capacity "
    "AND (release_mode = 'first_come' OR drawn) ")
_SLOT_COLUMNS = dict(id=Integer, department_id=Integer, starts_at=UTCDateTime, ends_at=UTCDateTime,
                     visit_date=Date, free=Integer)
_RANGE = (bindparam("date_from", type_=Date), bindparam("date_to", type_=Date),
          bindparam("now", type_=UTCDateTime))
AVAILABLE_SLOTS = text(
    "SELECT id, department_id, starts_at, ends_at, visit_date, capacity - booked - held AS free "
    + _FREE_SLOTS + "ORDER BY starts_at, id"
).bindparams(*_RANGE).columns(**_SLOT_COLUMNS)
FIRST_AVAILABLE_SLOTS = text(
    "SELECT id, department_id, starts_at, ends_at, visit_date, capacity - booked - held AS free "
    + _FREE_SLOTS + "ORDER BY starts_at, id LIMIT :limit"
).bindparams(*_RANGE).columns(**_SLOT_COLUMNS)
OPEN_DAYS = text(
    "SELECT DISTINCT visit_date " + _FREE_SLOTS + "ORDER BY visit_date"
).bindparams(*_RANGE).columns(visit_date=Date)

# Whether a department takes requests for a draw now: asked by every booking
# conversation, answered from the partial index of draws not yet run.
DRAW_TAKING_REQUESTS = text(
    "SELECT 1 FROM slot WHERE department_id = :department_id AND release_mode = 'draw' AND NOT drawn "
    "AND release_at > :now AND requests_open_at <= :now LIMIT 1"
).bindparams(bindparam("now", type_=UTCDateTime))

# An address as the reads see it (records.find_address), without a lock.
FIND_ADDRESS = text(
    "SELECT id, kind, locale, opted_out_at, slow_speech, phone_address_id, address_encrypted, "
    "question_until, throttled_until "
    "FROM channel_address WHERE kind = :kind AND address_index = :address_index"
).columns(id=Integer, kind=String, locale=String, opted_out_at=UTCDateTime, slow_speech=Boolean,
          phone_address_id=Integer, address_encrypted=Text, question_until=UTCDateTime,
          throttled_until=UTCDateTime)

# Creates the address on first use, and takes its row lock either way.
LOCK_ADDRESS = text(
    "INSERT INTO channel_address (kind, address_index, address_encrypted, version, created_at) "
    "VALUES (:kind, :address_index, :address_encrypted, 0, :now) "
    "ON CONFLICT (kind, address_index) DO UPDATE SET version = channel_address.version + 1 "
    "RETURNING id, version"
).bindparams(bindparam("now", type_=UTCDateTime))

# Creates the patient on first booking, and takes the patient's row lock either way:
# quotas are counted only after this. An identity is its ID number alone: a name or
# birth date typed with it never decides anything (the name is stored per booking).
LOCK_PATIENT = text(
    "INSERT INTO patient (id_kind, id_document, id_country, checksum_verified, id_index, "
    "id_encrypted, birth_date_encrypted, version, created_at) "
    "VALUES (:id_kind, :id_document, :id_country, :checksum_verified, :id_index, "
    ":id_encrypted, :birth_date_encrypted, 0, :now) "
    "ON CONFLICT (id_index) DO UPDATE SET version = patient.version + 1 "
    "RETURNING id, version"
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("checksum_verified", type_=Boolean)
             ).columns(id=Integer, version=Integer)

LOCK_PATIENT_BY_ID = text(
    "UPDATE patient SET version = version + 1 WHERE id = :patient_id RETURNING id"
)

# The name an address gave for a patient it is linked to ("book again for Mother").
LINKED_NAME = text(
    "SELECT l.name_encrypted, l.name_index FROM patient_link l "
    "JOIN channel_address a ON a.id = l.address_id "
    "WHERE a.kind = :kind AND a.address_index = :address_index AND l.patient_id = :patient_id"
).columns(name_encrypted=String, name_index=String)

SLOT_WITH_RULES = text(
    "SELECT s.id, s.department_id, s.starts_at, s.ends_at, s.visit_date, s.release_at, "
    "s.release_mode, s.drawn, "
    "d.code, d.names, d.policy_overrides, h.timezone, h.policy_overrides AS hospital_policy "
    "FROM slot s JOIN department d ON d.id = s.department_id "
    "JOIN hospital h ON h.id = d.hospital_id WHERE s.id = :slot_id"
).columns(id=Integer, department_id=Integer, starts_at=UTCDateTime, ends_at=UTCDateTime,
          visit_date=Date, release_at=UTCDateTime, release_mode=String, drawn=Boolean, code=String,
          names=JSON, policy_overrides=JSON, timezone=String, hospital_policy=JSON)

# Bookings that count towards quotas, within 90 days either side of the visit day.
HELD_BOOKINGS = text(
    "SELECT id, slot_id, department_id, visit_date, status, code, booked_by_address_id FROM booking "
    "WHERE patient_id = :patient_id AND status <> 'cancelled' "
    "AND visit_date > :earliest AND visit_date < :latest"
).bindparams(bindparam("earliest", type_=Date), bindparam("latest", type_=Date)).columns(
    id=Integer, slot_id=Integer, department_id=Integer, visit_date=Date, status=String,
    code=String, booked_by_address_id=Integer)

_SUSPENSION_OF = (
    "SELECT {column} FROM suspension WHERE {subject} = :{subject} AND lifted_at IS NULL "
    "AND starts_at <= :now AND ends_at > :now ORDER BY ends_at DESC LIMIT 1")

# The address's own standing: its suspension (bookings it made were cancelled or missed)
# and how many patients it is linked to.
_ADDRESS_FACTS = (
    "(" + _SUSPENSION_OF.format(column="ends_at", subject="address_id") + ") AS address_until, "
    "(" + _SUSPENSION_OF.format(column="rule", subject="address_id") + ") AS address_rule, "
    "(SELECT count(*) FROM patient_link WHERE address_id = :address_id) AS links")

ADDRESS_FACTS = text("SELECT " + _ADDRESS_FACTS).bindparams(
    bindparam("now", type_=UTCDateTime)).columns(
    address_until=UTCDateTime, address_rule=String, links=Integer)

# Everything booking needs to know about a patient who booked before, under its lock.
# The patient's own address (for notices) is the one the desk verified, else the first
# that claimed "for me".
PATIENT_FACTS = text(
    "SELECT "
    "(" + _SUSPENSION_OF.format(column="ends_at", subject="patient_id") + ") AS until, "
    "(" + _SUSPENSION_OF.format(column="rule", subject="patient_id") + ") AS rule, "
    + _ADDRESS_FACTS + ", "
    "(SELECT count(*) FROM patient_link WHERE address_id = :address_id "
    " AND patient_id = :patient_id) AS linked, "
    "(SELECT address_id FROM patient_link WHERE patient_id = :patient_id AND relation = 'self' "
    " ORDER BY verified_at IS NULL, verified_at DESC, created_at, id LIMIT 1) AS own_address_id, "
    "(SELECT count(*) FROM booking WHERE patient_id = :patient_id AND name_index IS NOT NULL "
    " AND name_index <> :name_index) AS other_names"
).bindparams(bindparam("now", type_=UTCDateTime)).columns(
    until=UTCDateTime, rule=String, address_until=UTCDateTime, address_rule=String,
    links=Integer, linked=Integer, own_address_id=Integer, other_names=Integer)

# The capacity rule: succeeds only while a place is free, whatever runs alongside.
# Held places (offered to the waitlist, or waiting for the next release) are not free,
# and a draw's places are not sold before its draw has run.
TAKE_PLACE = text(
    "UPDATE slot SET booked = booked + 1 WHERE id = :slot_id AND booked + held < capacity "
    "AND (release_mode = 'first_come' OR drawn) RETURNING id"
)

INSERT_LINK = text(
    "INSERT INTO patient_link (address_id, patient_id, relation, name_encrypted, name_index, "
    "created_at, created_via) "
    "VALUES (:address_id, :patient_id, :relation, :name_encrypted, :name_index, :now, :channel)"
).bindparams(bindparam("now", type_=UTCDateTime))

INSERT_BOOKING = text(
    "INSERT INTO booking (code, patient_id, slot_id, department_id, visit_date, status, channel, "
    "booked_by_address_id, booked_by_staff, rescheduled_from_id, name_encrypted, name_index, "
    "name_differs, created_at, updated_at) "
    "VALUES (:code, :patient_id, :slot_id, :department_id, :visit_date, 'booked', :channel, "
    ":address_id, :staff, :replacing_id, :name_encrypted, :name_index, :name_differs, :now, :now) "
    "RETURNING id"
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("visit_date", type_=Date),
             bindparam("name_differs", type_=Boolean))

# A notice for the patient's own address, in its language (else hers), written with the
# change; none for a console address (the terminal, /try), which nothing delivers to.
INSERT_NOTICE = text(
    "INSERT INTO outbox (address_id, patient_id, message, params, locale, status, attempts, "
    "created_at) "
    "SELECT a.id, p.id, :message, :params, COALESCE(a.locale, p.locale), 'pending', 0, :now "
    "FROM channel_address a, patient p WHERE a.id = :address_id AND p.id = :patient_id "
    "AND a.kind <> 'console'"
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("params", type_=JSON))


# ---- a turn's own state (conversations.py): every turn runs these ------------------------

CONVERSATION_STATE = text(
    "SELECT state_encrypted, version FROM conversation "
    "WHERE channel = :channel AND address_index = :address_index"
).columns(state_encrypted=Text, version=Integer)

# A new conversation; nothing comes back when a concurrent first message created it.
INSERT_CONVERSATION = text(
    "INSERT INTO conversation (channel, address_index, state_encrypted, version, updated_at) "
    "VALUES (:channel, :address_index, :state, 1, :now) "
    "ON CONFLICT (channel, address_index) DO NOTHING RETURNING id"
).bindparams(bindparam("now", type_=UTCDateTime))

# The optimistic lock: nothing comes back when another message saved in between.
UPDATE_CONVERSATION = text(
    "UPDATE conversation SET state_encrypted = :state, version = :version + 1, updated_at = :now "
    "WHERE channel = :channel AND address_index = :address_index AND version = :version "
    "RETURNING id"
).bindparams(bindparam("now", type_=UTCDateTime))

# One more refusal of an address in this clock hour (service.note_refusal).
COUNT_REFUSAL = text(
    "INSERT INTO address_refusal (address_id, hour, refusals, last_rule) "
    "VALUES (:address_id, :hour, 1, :rule) "
    "ON CONFLICT (address_id, hour) DO UPDATE SET refusals = address_refusal.refusals + 1, "
    "last_rule = excluded.last_rule RETURNING refusals"
).bindparams(bindparam("hour", type_=UTCDateTime))
