"""Database engines for SQLite and PostgreSQL, configured for safe concurrent writes.

Rule: how a connection is opened lives here. SQLite runs in WAL mode with a busy
timeout, and every write transaction starts with BEGIN IMMEDIATE so writers queue at
the start instead of failing half-way; read-only units of work use a plain BEGIN.
PostgreSQL uses READ COMMITTED plus explicit row locks taken by the service layer.
`transaction_cache` keeps what one transaction has read for the rest of it.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

READ_ONLY = "careline_read_only"


def create_db_engine(url: str, *, sqlite_busy_timeout: float = 30.0, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, sqlite_busy_timeout)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=50,
        pool_pre_ping=True,
        isolation_level="READ COMMITTED",
    )


def _sqlite_engine(url: str, busy_timeout: float) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
        pool_size=20,
        max_overflow=50,
        pool_timeout=busy_timeout,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # Straight to the driver: this runs at the start of every transaction.
        dbapi_connection = connection.connection.dbapi_connection
        if connection.get_execution_options().get(READ_ONLY):
            dbapi_connection.execute("BEGIN")
        else:
            dbapi_connection.execute("BEGIN IMMEDIATE")

    return engine


def is_read_only(session: Session) -> bool:
    """Whether the session was made by a read-only unit of work."""
    return bool(session.get_bind().get_execution_options().get(READ_ONLY))


TRANSACTION_CACHE = "careline_transaction_cache"  # the session.info key


def transaction_cache(session: Session) -> dict:
    """A dict that lives as long as the session's current transaction: what one
    transaction has read holds until it ends (a turn asks the same question from several
    places). Begins the transaction if it hasn't begun."""
    session.connection()
    transaction = session.get_transaction()
    held = session.info.get(TRANSACTION_CACHE)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        session.info[TRANSACTION_CACHE] = held
    return held[1]

