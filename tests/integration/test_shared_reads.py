"""A turn reads its world in one transaction and writes in one (booking/uow.py).

Inside `shared_reads()` every read-only unit shares one read transaction; a write
committed meanwhile ends it, so the next read sees what was written; an error in a read
doesn't spoil the reads after it. Inside `one_write()` every unit is a savepoint of one
write transaction: a unit left without commit loses only its own writes and audit
entries, reads see the turn's writes, hooks run after the one commit, and a turn that
books commits its booking with its state or not at all. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from assistant import conversations
from assistant.booking import audit
from assistant.booking.database import READ_ONLY
from assistant.booking.models import Booking, ConversationRecord, ProcessedEvent, Slot
from assistant.conversation_backend import ServiceBackend
from assistant.engine.messages import Inbound, Say
from bench.common import count_transactions
from tests.support import cn_id, new_slot


def test_reads_inside_share_one_session_and_outside_do_not(services):
    with services.uow.read_only() as first, services.uow.read_only() as second:
        assert first.session is not second.session
    with services.uow.shared_reads():
        with services.uow.read_only() as first, services.uow.read_only() as second:
            assert first.session is second.session


def test_a_write_committed_inside_is_seen_by_the_next_read(services, now):
    with services.uow.shared_reads():
        with services.uow.read_only() as uow:
            assert uow.session.get(ProcessedEvent, "shared-read-test") is None  # the snapshot begins
        with services.uow() as uow:
            uow.session.add(ProcessedEvent(key="shared-read-test", claimed_at=now, result=None))
            uow.commit()
        with services.uow.read_only() as uow:
            count = uow.session.execute(
                text("SELECT count(*) FROM processed_event WHERE key = 'shared-read-test'")).scalar_one()
            assert count == 1


def test_an_error_in_one_read_does_not_spoil_the_next(services):
    with services.uow.shared_reads():
        with pytest.raises(DBAPIError):
            with services.uow.read_only() as uow:
                uow.session.execute(text("SELECT * FROM no_such_table"))
        with services.uow.read_only() as uow:
            assert uow.session.execute(text("SELECT 1")).scalar_one() == 1


def test_a_turn_that_books_nothing_is_one_read_and_one_write(services, depts, now):
    address = "+8613800000999"

    def turn(body: str, sid: str):
        return conversations.run_turn(services, "sms", address, Inbound(body, event_id=sid), now)

    turn("hello", "SM-shared-1")
    assert count_transactions(services.uow.engine, lambda: turn("1", "SM-shared-2")) == 2
    # A replay is answered from its one read.
    assert count_transactions(services.uow.engine, lambda: turn("1", "SM-shared-2")) == 1


# ---- one write transaction per turn -------------------------------------------------------


def _keys(services) -> set[str]:
    """What another connection sees."""
    with services.uow.engine.execution_options(**{READ_ONLY: True}).connect() as connection:
        return set(connection.execute(select(ProcessedEvent.key)
                                      .where(ProcessedEvent.key.like("one-write-%"))).scalars())


def _claim(services, key: str, now, *, commit: bool = True) -> None:
    with services.uow() as uow:
        uow.session.add(ProcessedEvent(key=key, claimed_at=now, result=None))
        uow.session.flush()
        if commit:
            uow.commit()


def test_units_inside_one_write_commit_together_and_only_at_its_commit(services, now):
    with services.uow.one_write() as write:
        _claim(services, "one-write-kept", now)
        _claim(services, "one-write-dropped", now, commit=False)  # left without commit
        with pytest.raises(RuntimeError):
            with services.uow() as uow:
                uow.session.add(ProcessedEvent(key="one-write-failed", claimed_at=now, result=None))
                uow.session.flush()
                raise RuntimeError("the use case failed half-way")
        with services.uow.read_only() as uow:  # the turn reads what it wrote
            assert uow.session.get(ProcessedEvent, "one-write-kept") is not None
        assert _keys(services) == set()  # nothing is visible outside before the commit
        write.commit()
    assert _keys(services) == {"one-write-kept"}


def test_nothing_is_kept_when_one_write_ends_without_commit(services, now):
    with services.uow.one_write():
        _claim(services, "one-write-lost", now)
    assert _keys(services) == set()


def test_after_commit_hooks_wait_for_the_turns_commit(services, now):
    ran = []
    with services.uow.one_write() as write:
        with services.uow() as uow:
            uow.after_commit(lambda: ran.append("hook"))
            uow.commit()
        assert ran == []
        write.commit()
    assert ran == ["hook"]


def test_audit_entries_of_a_unit_left_without_commit_are_dropped(services, now):
    def entry(action: str) -> audit.Entry:
        return audit.Entry(audit.SYSTEM, action, "test", {}, now)

    with services.uow.one_write() as write:
        with services.uow() as uow:
            audit.defer(uow.session, services.keyring.audit_key, [entry("test.kept")])
            uow.commit()
        with services.uow() as uow:
            audit.defer(uow.session, services.keyring.audit_key, [entry("test.dropped")])
        write.commit()
    with services.uow.read_only() as uow:
        actions = uow.session.execute(text("SELECT action FROM audit_event ORDER BY id")).scalars().all()
    assert "test.kept" in actions and "test.dropped" not in actions


class _Patient:
    """One new patient booking by SMS in the test hospital: hello, for me, ID, name,
    cardiology, the first time, yes."""

    def __init__(self, services, now, address: str = "+8613800000777") -> None:
        self.services, self.now, self.address, self.n = services, now, address, 0
        self.texts = ["hello", "1", cn_id(), "Wang Fang", "cardiology", "1"]

    def send(self, body: str):
        self.n += 1
        return conversations.run_turn(self.services, "sms", self.address,
                                      Inbound(body, event_id=f"SM-one-write-{self.n}"), self.now)

    def to_confirm(self) -> None:
        for body in self.texts:
            self.send(body)


def _bookings_and_booked(services) -> tuple[int, int]:
    with services.uow.read_only() as uow:
        return (uow.session.execute(select(func.count()).select_from(Booking)).scalar_one(),
                uow.session.execute(select(func.sum(Slot.booked))).scalar_one() or 0)


def _state_version(services) -> int:
    with services.uow.read_only() as uow:
        return uow.session.execute(select(ConversationRecord.version)).scalar_one()


def test_the_turn_that_books_is_one_read_and_one_write(services, depts, now):
    new_slot(services, depts["cardiology"], date(2026, 12, 2), 9)
    patient = _Patient(services, now)
    patient.to_confirm()
    result = None

    def book():
        nonlocal result
        result = patient.send("yes")

    assert count_transactions(services.uow.engine, book) == 2
    assert any(isinstance(r, Say) and r.msg.text.startswith("Booked:") for r in result.turn.replies)
    assert _bookings_and_booked(services) == (1, 1)


def test_a_booking_whose_turn_could_not_be_saved_is_not_kept(services, depts, now, monkeypatch):
    new_slot(services, depts["cardiology"], date(2026, 12, 2), 9)
    patient = _Patient(services, now)
    patient.to_confirm()
    version = _state_version(services)

    def broken(*_args):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(conversations, "to_json", broken)  # the save fails after the booking
    with pytest.raises(RuntimeError):
        patient.send("yes")
    assert _bookings_and_booked(services) == (0, 0)
    assert _state_version(services) == version
    monkeypatch.undo()
    replies = patient.send("yes").turn.replies  # the same patient, trying again, books
    assert any(isinstance(r, Say) and r.msg.text.startswith("Booked:") for r in replies)
    assert _bookings_and_booked(services) == (1, 1)


def test_an_engine_error_after_the_booking_keeps_the_apology_and_not_the_booking(
        services, depts, now, monkeypatch):
    new_slot(services, depts["cardiology"], date(2026, 12, 2), 9)
    patient = _Patient(services, now)
    patient.to_confirm()
    version = _state_version(services)
    booked = ServiceBackend.book

    def book_then_fail(self, *args, **kwargs):
        booked(self, *args, **kwargs)
        raise RuntimeError("the engine failed after booking")

    monkeypatch.setattr(ServiceBackend, "book", book_then_fail)
    result = patient.send("yes")
    assert result.turn.error is not None
    assert not any(isinstance(r, Say) and r.msg.text.startswith("Booked:") for r in result.turn.replies)
    assert _bookings_and_booked(services) == (0, 0)
    assert _state_version(services) == version + 1  # the apology's state is saved
