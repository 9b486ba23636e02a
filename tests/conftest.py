"""Shared fixtures: a CareLine App on SQLite and on PostgreSQL.

Database tests take the `app` fixture, which runs each test once per backend. The
schema comes from the real Alembic migrations: once per session per backend, then each
test gets clean tables (a copied SQLite file; truncated PostgreSQL tables in a schema
private to this run). PostgreSQL is read from ASSISTANT_TEST_POSTGRES_URL; when it is
unreachable the PostgreSQL runs fail under CI=true and are skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from assistant.booking import migrate
from assistant.booking.database import create_db_engine
from assistant.booking.identity import Keyring
from assistant.booking.models import Base
from assistant.bootstrap import App, build, fixed_clock, install_words
from assistant.config import load_settings

install_words()  # the engine's words, as an app would get them at start-up

POSTGRES_URL = os.environ.get(
    "ASSISTANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# A fixed "now" for tests that don't set their own: Tuesday 1 December 2026, 09:00 Beijing.
DEFAULT_NOW = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)
TEST_KEYS = Keyring.generate()


def keys_environ() -> dict[str, str]:
    return {
        "ASSISTANT_BLIND_INDEX_KEY": TEST_KEYS.blind_index_key.decode(),
        "ASSISTANT_ENCRYPTION_KEY": TEST_KEYS.encryption_key.decode(),
    }


def settings_for(url: str, instance: Path, **env: str):
    environ = {"ASSISTANT_DATABASE_URL": url, "ASSISTANT_INSTANCE_PATH": str(instance),
               "ASSISTANT_GENERATE_SECRETS": "false", **keys_environ(), **env}
    return load_settings(environ=environ), environ


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "careline.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    schema = f"careline_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        admin.dispose()
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message + "; set ASSISTANT_TEST_POSTGRES_URL or start PostgreSQL")
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _clean_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(text(
            "INSERT INTO audit_head (id, last_event_id, last_hash, event_count) "
            "VALUES (1, 0, :genesis, 0)"), {"genesis": "0" * 64})
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "careline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _clean_postgres(url)
    return url


@pytest.fixture
def now() -> datetime:
    return DEFAULT_NOW


def built_app(database_url: str, tmp_path: Path, now: datetime, **env: str):
    settings, environ = settings_for(database_url, tmp_path / "instance", **env)
    built = build(settings, clock=fixed_clock(now), environ=environ)
    yield built
    built.close()


@pytest.fixture
def app(database_url, tmp_path, now) -> App:
    yield from built_app(database_url, tmp_path, now)


@pytest.fixture
def generic_app(database_url, tmp_path, now) -> App:
    """A hospital that accepts passports too (the generic kind is off by default)."""
    yield from built_app(database_url, tmp_path, now,
                         ASSISTANT_IDENTITY_KINDS='["cn_resident_id", "generic"]')


@pytest.fixture
def services(app):
    return app.services


@pytest.fixture
def depts(services) -> dict[str, int]:
    """The small test hospital's departments (tests.support.add_hospital), by code."""
    from tests.support import add_hospital

    with services.uow() as uow:
        ids = add_hospital(uow.session)
        uow.commit()
    return ids
