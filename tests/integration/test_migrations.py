"""Migrations keep a hospital's data: a database booked on under an earlier revision is
upgraded to head with its bookings, replay results and audit chain intact, and the
latest migration can be undone; on both databases."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlalchemy import func, select

from assistant.booking import audit, migrate, results as r, service
from assistant.booking.models import AuditEvent, Booking, ProcessedEvent
from tests.support import add_hospital, add_slot, person, phone

VISIT = date(2026, 12, 5)


def move_to(engine, revision: str, *, down: bool) -> None:
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def counts(services) -> tuple[int, int, int]:
    with services.uow.read_only() as uow:
        session = uow.session
        return tuple(session.execute(select(func.count()).select_from(model)).scalar_one()
                     for model in (Booking, ProcessedEvent, AuditEvent))


def test_data_booked_before_0003_survives_the_upgrade(app, services, now):
    move_to(app.engine, "0002", down=True)
    assert migrate.current_revision(app.engine) == "0002"
    with services.uow() as uow:
        slot = add_slot(uow.session, add_hospital(uow.session)["cardiology"], VISIT, 9, capacity=3)
        uow.commit()
    booked = [service.book_slot(services, identity_input=person(), slot_id=slot, channel="sms",
                                now=now, booked_by=phone(n), idempotency_key=f"e{n}")
              for n in range(2)]
    assert all(isinstance(b, r.Booked) for b in booked), booked
    before = counts(services)

    move_to(app.engine, "head", down=False)

    assert migrate.current_revision(app.engine) == migrate.head_revision()
    assert migrate.differences(app.engine) == []
    assert counts(services) == before
    replay = service.book_slot(services, identity_input=person(), slot_id=slot, channel="sms",
                               now=now, booked_by=phone(0), idempotency_key="e0")
    assert replay == booked[0]  # the stored result is still there
    with services.uow.read_only() as uow:
        assert audit.verify(uow.session, services.keyring.audit_key).ok


def test_0003_can_be_undone_and_redone(app):
    move_to(app.engine, "0002", down=True)
    assert migrate.current_revision(app.engine) == "0002"
    move_to(app.engine, "head", down=False)
    assert migrate.differences(app.engine) == []
