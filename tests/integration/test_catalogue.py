"""The hospital and department catalogue is cached per process and never stale
(booking/catalogue.py), on SQLite and PostgreSQL.

A cached read is one statement; a change committed by this instance or by another one
(another engine on the same database, as another app instance would have) is seen on
the next read; a change rolled back moves nothing.
"""

from __future__ import annotations

from sqlalchemy import select

from assistant.booking import service
from assistant.booking.catalogue import catalogue
from assistant.booking.database import create_db_engine
from assistant.booking.models import Department
from assistant.booking.uow import UnitOfWorkFactory
from bench.common import count_statements


def rename(uow_factory, code: str, name: str) -> None:
    with uow_factory() as uow:
        department = uow.session.execute(select(Department).where(Department.code == code)).scalar_one()
        department.names = {**department.names, "en": name}
        uow.commit()


def names(departments) -> list[str]:
    return [d.names["en"] for d in departments]


def test_a_cached_read_is_one_statement(services, depts):
    first = service.list_departments(services)
    assert names(first) == ["Cardiology", "Eyes", "Bones"]
    assert count_statements(services.uow.engine, lambda: service.list_departments(services)) == 1
    assert count_statements(services.uow.engine, lambda: service.hospital(services)) == 1


def test_a_change_committed_here_is_seen_on_the_next_read(services, depts):
    service.list_departments(services)
    rename(services.uow, "eyes", "Ophthalmology")
    assert names(service.list_departments(services)) == ["Cardiology", "Ophthalmology", "Bones"]
    with services.uow() as uow:
        uow.session.get(Department, depts["bones"]).active = False
        uow.commit()
    assert names(service.list_departments(services)) == ["Cardiology", "Ophthalmology"]


def test_a_change_committed_by_another_instance_is_seen(services, database_url, depts):
    other = UnitOfWorkFactory(create_db_engine(database_url))
    try:
        assert names(catalogue(other).departments) == ["Cardiology", "Eyes", "Bones"]
        rename(services.uow, "cardiology", "Heart")
        assert names(catalogue(other).departments)[0] == "Heart"
    finally:
        other.engine.dispose()


def test_a_change_rolled_back_moves_nothing(services, depts):
    before = catalogue(services.uow)
    with services.uow() as uow:
        department = uow.session.get(Department, depts["eyes"])
        department.names = {"en": "Never committed"}
        uow.session.flush()  # the version moved inside the transaction, then rolls back
    after = catalogue(services.uow)
    assert after is before and "Never committed" not in names(after.departments)
