"""The floor for bench/engine.py: a conversation turn's least work, on the plain driver.

Rule: per turn, the engine's own work exactly as the fake path does it (`engine.handle`
over `tests.fakes.FakeBackend.demo()`), plus the least persistence any design of a turn
needs, on the plain `sqlite3` module: no SQLAlchemy, no service layer, no reads for the
engine. The database has CareLine's schema (migrated and seeded as the sqlite path's,
in a file of its own) and CareLine's durability (WAL, foreign keys on, `synchronous`
left at its default, FULL; plain BEGIN to read, BEGIN IMMEDIATE to write). A turn:

  1. the address's blind index (the project's `Keyring`), once;
  2. one read transaction (BEGIN, 2 SELECTs, ROLLBACK): the conversation's row by channel
     and blind index, and the processed_event row of the turn's event (the replay check);
  3. the stored state decrypted (`state.from_json`); `engine.handle`; the next state
     (`state.to_json`) and the replies (CareLine's reply encoding) encrypted;
  4. one write transaction (BEGIN IMMEDIATE, 2 statements, COMMIT): the event claimed
     with its encrypted replies in one INSERT, and the conversation inserted (first
     turn) or updated under its version. On the turn where the engine booked, the same
     transaction writes a new patient's booking rows too, 7 statements more: the
     address, the patient, the link, the slot's count (a conditional UPDATE), the
     booking, the audit head (UPDATE ... RETURNING) and its two events (one INSERT).

So a turn is 4 statements in 2 transactions with one durable commit, and the booking
turn 11. Why nothing can do less: a turn must find out whether its event was handled
and what the conversation's state is (one read, in its own transaction so the engine
never runs holding SQLite's only write lock; a WAL read costs no fsync). It must then
make the claim, the replies (for a retried webhook) and the next state durable together:
one commit. State and replies can hold a name or an ID number, so they are encrypted,
and the conversation is found by a keyed index of the sender, never the number itself.
The booking's rows are the ones the schema requires of a new patient's booking (see
bench/floor.py), written in the turn's own transaction, so the booking needs no commit
and no idempotency row of its own. As in bench/floor.py, no rule is checked and the
booking's values (blind indexes, ciphertexts, code, audit hashes and seal) are prepared
before the clock starts, with the same keyring; only ids known inside the transaction
are filled in there. So floor/fake bounds what sqlite/fake can reach, and sqlite/floor
is what CareLine's layers, reads and checks cost on top.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant import engine
from assistant.booking.book import CODE_ALPHABET, CODE_LENGTH
from assistant.booking.identity import (
    CN_RESIDENT_ID,
    Keyring,
    address_purpose,
    id_purpose,
    name_for_index,
    name_purpose,
)
from assistant.conversations import _encode_reply
from assistant.engine.messages import Inbound
from assistant.engine.state import from_json, to_json

_READ_CONVERSATION = ("SELECT state_encrypted, version FROM conversation "
                      "WHERE channel = ? AND address_index = ?")
_READ_EVENT = "SELECT result FROM processed_event WHERE key = ?"
_CLAIM = ("INSERT INTO processed_event (key, claimed_at, result) VALUES (?, ?, ?) "
          "ON CONFLICT (key) DO NOTHING")
_NEW_CONVERSATION = ("INSERT INTO conversation (channel, address_index, state_encrypted, "
                     "version, updated_at) VALUES (?, ?, ?, 1, ?)")
_NEXT_STATE = ("UPDATE conversation SET state_encrypted = ?, version = ?, updated_at = ? "
               "WHERE channel = ? AND address_index = ? AND version = ?")
_ADDRESS = ("INSERT INTO channel_address (kind, address_index, address_encrypted, version, "
            "created_at) VALUES ('phone', ?, ?, 0, ?)")
_PATIENT = ("INSERT INTO patient (id_kind, checksum_verified, id_index, id_encrypted, "
            "birth_date_encrypted, version, created_at) VALUES (?, 1, ?, ?, ?, 0, ?)")
_LINK = ("INSERT INTO patient_link (address_id, patient_id, relation, name_encrypted, "
         "name_index, created_at, created_via) VALUES (?, ?, 'self', ?, ?, ?, ?)")
_TAKE_PLACE = "UPDATE slot SET booked = booked + 1 WHERE id = ? AND booked < capacity"
_BOOKING = ("INSERT INTO booking (code, patient_id, slot_id, department_id, visit_date, status, "
            "channel, booked_by_address_id, name_encrypted, name_index, name_differs, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'booked', ?, ?, ?, ?, 0, ?, ?)")
_HEAD = ("UPDATE audit_head SET last_event_id = last_event_id + 2, event_count = event_count + 2, "
         "last_hash = ?, seal = ? WHERE id = 1 RETURNING last_event_id")
_EVENTS = ("INSERT INTO audit_event (id, at, actor, channel, action, subject, details, prev_hash, "
           "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_PLACES = ("SELECT s.id, s.department_id, s.visit_date, s.starts_at, d.code, s.capacity - s.booked "
           "FROM slot s JOIN department d ON d.id = s.department_id "
           "ORDER BY s.visit_date, s.starts_at, s.id")


def stamp(moment: datetime) -> str:
    """A UTC instant as CareLine's UTCDateTime stores it on SQLite."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def connect(path: Path) -> sqlite3.Connection:
    """As assistant/booking/database.py opens SQLite: transactions are begun by hand."""
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA busy_timeout=30000")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


class TurnFloor:
    """Whole conversations through the floor, on its own migrated and seeded file.

    `run` takes (conversation, backend) pairs: each conversation has `n`, `address`,
    `now` and `texts` (bench/engine.py's Script), each backend is a fresh FakeBackend,
    and `check(path, conversation, index, turn)` checks every turn, as on the other paths.
    """

    def __init__(self, path: Path, keyring: Keyring, channel: str, expiry: timedelta) -> None:
        self.db = connect(path)
        self.keyring, self.channel, self.expiry = keyring, channel, expiry
        # Every free place of the seeded hospital, in order; each booking takes the next.
        self.places = [row[:5] for row in self.db.execute(_PLACES) for _ in range(row[5])]
        self.started = 0
        self.turns = 0

    def _rows(self, conversation: Any) -> dict[str, Any]:
        """What the conversation's booking writes, prepared before the clock: from the ID
        number and name the conversation types, blinded and encrypted with the keyring."""
        if self.started >= len(self.places):
            raise SystemExit(f"floor: only {len(self.places)} places")
        k, now = self.keyring, stamp(conversation.now)
        number = conversation.texts[2].replace(" ", "").upper()
        name = conversation.texts[3]
        born = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
        self.started += 1
        return {
            "now": now,
            "address": (k.blind_index(address_purpose("phone"), conversation.address),
                        k.encrypt(conversation.address), now),
            "patient": (CN_RESIDENT_ID, k.blind_index(id_purpose(CN_RESIDENT_ID), number),
                        k.encrypt(number), k.encrypt(born), now),
            "name": (k.encrypt(name), k.blind_index(name_purpose(), name_for_index(name))),
            "place": self.places[self.started - 1],
            "code": "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)),
            "hashes": [secrets.token_hex(32) for _ in range(4)],  # prev, two events, seal
        }

    def run(self, prepared: Sequence[tuple[Any, Any]],
            check: Callable[[str, Any, int, engine.Turn], None]) -> float:
        """Turns per second."""
        rows = [self._rows(conversation) for conversation, _ in prepared]
        db, keyring, channel, expiry = self.db, self.keyring, self.channel, self.expiry
        handle = engine.handle
        turns = 0
        started = time.perf_counter()
        for (conversation, backend), booking in zip(prepared, rows):
            now = booking["now"]
            for index, text in enumerate(conversation.texts):
                key = f"turn:{channel}:SMfloor{conversation.n:07d}t{index:02d}"
                address_index = keyring.blind_index(f"conversation:{channel}:phone", conversation.address)
                db.execute("BEGIN")
                stored = db.execute(_READ_CONVERSATION, (channel, address_index)).fetchone()
                replayed = db.execute(_READ_EVENT, (key,)).fetchone()
                db.execute("ROLLBACK")  # as CareLine ends a read-only unit of work
                if replayed is not None:
                    raise AssertionError(f"floor: event {key} already handled")
                state, version = None, None
                if stored is not None:
                    state, version = from_json(keyring.decrypt(stored[0])), stored[1]
                booked_before = len(backend.bookings_)
                turn = handle(state, Inbound(text), backend, conversation.now, expiry=expiry)
                check("floor", conversation, index, turn)
                next_state = keyring.encrypt(to_json(turn.state))
                replies = json.dumps({"turn": keyring.encrypt(json.dumps(
                    [_encode_reply(reply) for reply in turn.replies], ensure_ascii=False))})
                db.execute("BEGIN IMMEDIATE")
                if db.execute(_CLAIM, (key, now, replies)).rowcount != 1:
                    raise AssertionError(f"floor: event {key} claimed twice")
                if version is None:
                    db.execute(_NEW_CONVERSATION, (channel, address_index, next_state, now))
                elif db.execute(_NEXT_STATE, (next_state, version + 1, now, channel, address_index,
                                              version)).rowcount != 1:
                    raise AssertionError("floor: the conversation changed under it")
                if len(backend.bookings_) > booked_before:
                    self._book(booking)
                db.execute("COMMIT")
                turns += 1
        elapsed = time.perf_counter() - started
        self.turns += turns
        return turns / elapsed

    def _book(self, rows: dict[str, Any]) -> None:
        """A new patient's booking rows, inside the turn's write transaction."""
        db, channel, now = self.db, self.channel, rows["now"]
        address_id = db.execute(_ADDRESS, rows["address"]).lastrowid
        patient_id = db.execute(_PATIENT, rows["patient"]).lastrowid
        db.execute(_LINK, (address_id, patient_id, *rows["name"], now, channel))
        slot_id, department_id, visit_date, starts_at, department = rows["place"]
        if db.execute(_TAKE_PLACE, (slot_id,)).rowcount != 1:
            raise AssertionError("floor: the slot is full")
        code = rows["code"]
        db.execute(_BOOKING, (code, patient_id, slot_id, department_id, visit_date, channel,
                              address_id, *rows["name"], now, now))
        prev, first, second, seal = rows["hashes"]
        (last_id,) = db.execute(_HEAD, (second, seal)).fetchone()
        actor = f"address:{address_id}"
        details = json.dumps({"patient": patient_id, "slot": slot_id, "department": department,
                              "starts_at": starts_at})
        db.execute(_EVENTS, (last_id - 1, now, actor, channel, "link.created", f"patient:{patient_id}",
                             '{"relation": "self"}', prev, first,
                             last_id, now, actor, channel, "booking.created", f"booking:{code}",
                             details, first, second))

    def traced(self, run: Callable[[], object]) -> tuple[int, int]:
        """(statements, transactions) that `run` sends; BEGIN, COMMIT and ROLLBACK are
        not statements, as in bench/common.py's counts."""
        seen: list[str] = []
        self.db.set_trace_callback(seen.append)
        try:
            run()
        finally:
            self.db.set_trace_callback(None)
        words = [sql.split(None, 1)[0].upper() for sql in seen]
        return (sum(word not in ("BEGIN", "COMMIT", "ROLLBACK") for word in words),
                words.count("BEGIN"))

    def counts(self) -> tuple[int, int, int]:
        """Conversations, bookings and claimed events stored."""
        return tuple(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                     for table in ("conversation", "booking", "processed_event"))

    def close(self) -> None:
        self.db.close()
