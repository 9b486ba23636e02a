"""A turn reads its world in one transaction and writes in one (booking/uow.py).

Inside `shared_reads()` every read-only unit shares one read transaction; a write
committed meanwhile ends it, so the next read sees what was written; an error in a read
doesn't spoil the reads after it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from assistant import conversations
from assistant.booking.models import ProcessedEvent
from assistant.engine.messages import Inbound
from bench.common import count_transactions


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
