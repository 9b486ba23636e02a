"""The booking path's driver cursor reads and writes values exactly as the ORM does, keeps
a batch's results in order, and raises SQLAlchemy's exceptions; on both databases."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assistant.booking import driver, statements as sql
from assistant.booking.models import ProcessedEvent, Slot
from tests.support import add_hospital, add_slot

VISIT = date(2026, 12, 5)


@pytest.fixture
def slot_id(services) -> int:
    with services.uow() as uow:
        departments = add_hospital(uow.session)
        made = add_slot(uow.session, departments["cardiology"], VISIT, 9, capacity=2)
        uow.commit()
    return made


def test_rows_come_back_as_the_orm_reads_them(services, slot_id):
    with services.uow.read_only() as uow:
        orm = uow.session.get(Slot, slot_id)
        orm_starts_at = orm.starts_at
        row = driver.Cursor(uow.session.connection()).run(
            sql.SLOT_WITH_RULES, {"slot_id": slot_id}).one()
    assert row.id == slot_id
    assert row.starts_at == orm_starts_at and row.starts_at.tzinfo == timezone.utc
    assert row.visit_date == VISIT and isinstance(row.visit_date, date)
    assert isinstance(row.names, dict) and row.names["en"]
    assert isinstance(row.policy_overrides, dict)


def test_written_values_read_back_through_the_orm(services):
    claimed = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)
    with services.uow() as uow:
        db = driver.Cursor(uow.session.connection())
        kept = db.run(sql.STORE_RESULT, {"key": "k1", "now": claimed, "result": {"type": "X", "n": 1}})
        assert kept.scalar() == "k1"
        again = db.run(sql.STORE_RESULT, {"key": "k1", "now": claimed, "result": {}})
        assert again.first() is None  # ON CONFLICT DO NOTHING returns no row
        uow.commit()
    with services.uow.read_only() as uow:
        stored = uow.session.execute(select(ProcessedEvent)).scalar_one()
        assert stored.claimed_at == claimed
        assert stored.result == {"type": "X", "n": 1}


def test_a_batch_keeps_each_statements_rows(services, slot_id):
    with services.uow() as uow:
        db = driver.Cursor(uow.session.connection())
        with db.batch():
            first = db.run(sql.TAKE_PLACE, {"slot_id": slot_id})
            second = db.run(sql.TAKE_PLACE, {"slot_id": slot_id})
            third = db.run(sql.TAKE_PLACE, {"slot_id": slot_id})  # capacity is 2
            missing = db.run(sql.SLOT_WITH_RULES, {"slot_id": slot_id + 999})
        assert [first.scalar(), second.scalar(), third.first()] == [slot_id, slot_id, None]
        assert missing.all() == []
        uow.commit()
    with services.uow.read_only() as uow:
        assert uow.session.get(Slot, slot_id).booked == 2


def test_rows_read_inside_a_batch_are_there(services, slot_id):
    with services.uow.read_only() as uow:
        db = driver.Cursor(uow.session.connection())
        with db.batch():
            row = db.run(sql.SLOT_WITH_RULES, {"slot_id": slot_id}).one()
            after = db.run(sql.SLOT_WITH_RULES, {"slot_id": slot_id}).one()
    assert row == after and row.id == slot_id


def test_driver_errors_are_sqlalchemy_errors(services):
    claimed = datetime(2026, 12, 1, tzinfo=timezone.utc)
    insert = sql.INSERT_LINK  # a link to a patient and address that don't exist
    with services.uow() as uow:
        db = driver.Cursor(uow.session.connection())
        with pytest.raises(IntegrityError):
            with db.batch():
                db.run(insert, {"address_id": 999, "patient_id": 999, "relation": "self",
                                "name_encrypted": None, "name_index": None,
                                "now": claimed, "channel": "sms"}).all()
    with services.uow() as uow:  # the connection is usable afterwards
        db = driver.Cursor(uow.session.connection())
        assert db.run(sql.REPLAYED_RESULT, {"key": "nothing"}).first() is None


def test_statements_are_logged_when_sql_logging_is_on(services, slot_id, caplog):
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"):
        with services.uow.read_only() as uow:
            driver.Cursor(uow.session.connection()).run(sql.SLOT_WITH_RULES, {"slot_id": slot_id})
    assert "FROM slot s JOIN department" in caplog.text


def test_observers_see_every_statement(services, slot_id):
    seen: list[str] = []
    driver.observers.append(seen.append)
    try:
        with services.uow.read_only() as uow:
            db = driver.Cursor(uow.session.connection())
            with db.batch():
                db.run(sql.SLOT_WITH_RULES, {"slot_id": slot_id})
                db.run(sql.REPLAYED_RESULT, {"key": "x"})
    finally:
        driver.observers.remove(seen.append)
    assert len(seen) == 2 and "processed_event" in seen[1]
