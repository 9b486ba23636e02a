"""Fixed statements run on the database driver's own cursor, in batches where it can.

Rule: only the statements that run all the time use this: the booking path and the
audit trail (booking runs at release time, when everyone books at once), and what every
conversation turn reads and writes (its state, its replay check, the address, the
catalogue's version, the free places). There SQLAlchemy's work around each statement
(building a result, events, looking up the compiled form) costs more than the
statements themselves. The statements stay SQLAlchemy `text()` objects (statements.py). Each is
compiled once per dialect together with SQLAlchemy's own type processors, so values are
written and read exactly as the ORM writes and reads them. Everything runs inside a
transaction that SQLAlchemy began on its connection, and SQLAlchemy commits or rolls it
back.

A batch is a list of statements whose results are read after the last one is sent. On
PostgreSQL it goes out in psycopg's pipeline mode: one round trip for the batch instead
of one per statement. SQLite has no round trips, so there a batch simply runs each
statement as it is added. Driver errors come out as SQLAlchemy's exceptions
(`IntegrityError` and so on), as they would from `Connection.execute`.
"""

from __future__ import annotations

import logging
from collections import namedtuple
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

Statement = TextClause | TextualSelect


@dataclass(frozen=True)
class _Compiled:
    """One statement as one dialect's driver takes it."""

    statement: Statement  # kept so the id() used as the cache key stays unique
    sql: str
    positional: tuple[str, ...] | None  # parameter order for qmark/format drivers
    bind: tuple[tuple[str, Callable[[Any], Any]], ...]  # parameters needing conversion
    result: tuple[Callable[[Any], Any] | None, ...] | None  # per selected column


_compiled: dict[tuple[int, str], _Compiled] = {}


def _compile(statement: Statement, dialect) -> _Compiled:
    key = (id(statement), dialect.name)
    found = _compiled.get(key)
    if found is not None:
        return found
    compiled = statement.compile(dialect=dialect)
    bind = []
    for name, parameter in compiled.binds.items():
        process = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            bind.append((name, process))
    result = None
    if isinstance(statement, TextualSelect):
        processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in statement.selected_columns)
        result = processors if any(processors) else None
    positional = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    found = _Compiled(statement, compiled.string, positional, tuple(bind), result)
    _compiled[key] = found
    return found


# Statements and parameters are logged where SQLAlchemy logs its own, when an operator
# turns SQL logging on (INFO on this logger), so the SQL log stays complete.
sql_log = logging.getLogger("sqlalchemy.engine.Engine")

# Who wants to know each statement run here (the benchmarks count them); usually nobody.
observers: list[Callable[[str], None]] = []


_row_types: dict[tuple[str, ...], type] = {}


def _row_type(names: tuple[str, ...]) -> type:
    """A named tuple per column list, made once: rows read like SQLAlchemy's (row.id)."""
    found = _row_types.get(names)
    if found is None:
        found = _row_types.setdefault(names, namedtuple("Row", names, rename=True))
    return found


class Rows:
    """The rows one statement returned, converted like SQLAlchemy would. In a
    PostgreSQL batch they are fetched on first use, once the batch has been sent."""

    def __init__(self, compiled: _Compiled, cursor: Any, owner: "Cursor") -> None:
        self._compiled = compiled
        self._cursor = cursor
        self._owner = owner
        self._sent_in = owner._pipeline  # the batch it went out in, if any
        self._rows: list | None = None

    def _fetch(self) -> list:
        if self._rows is None:
            if self._sent_in is not None and self._sent_in is self._owner._pipeline:
                self._owner._sync()  # read inside its own batch: send the batch and wait
            self._rows = self._read()
        return self._rows

    def _read(self) -> list:
        cursor = self._cursor
        if cursor.description is None:  # no RETURNING
            return []
        dialect = self._owner._dialect
        try:
            raw = cursor.fetchall()
        except dialect.loaded_dbapi.Error as error:
            raise _translated(error, self._compiled, dialect) from error
        row_type = _row_type(tuple(column[0] for column in cursor.description))
        processors = self._compiled.result
        if processors is None:
            return [row_type._make(row) for row in raw]
        return [row_type._make(value if process is None else process(value)
                               for process, value in zip(processors, row))
                for row in raw]

    def all(self) -> list:
        return self._fetch()

    def __iter__(self) -> Iterator:
        return iter(self._fetch())

    def first(self):
        rows = self._fetch()
        return rows[0] if rows else None

    def one(self):
        rows = self._fetch()
        if len(rows) != 1:
            raise LookupError(f"expected one row, got {len(rows)}")
        return rows[0]

    def scalar(self):
        row = self.first()
        return None if row is None else row[0]


class Cursor:
    """Runs compiled statements on the DBAPI connection beneath `connection`, inside the
    transaction SQLAlchemy began there."""

    def __init__(self, connection: Connection) -> None:
        self._dialect = connection.dialect
        self._dbapi = connection.connection.dbapi_connection
        self._pipelines = self._dialect.name == "postgresql" and hasattr(self._dbapi, "pipeline")
        self._pipeline = None  # psycopg's Pipeline while a batch is open
        self._echo = sql_log.isEnabledFor(logging.INFO)

    def run(self, statement: Statement, parameters: dict[str, Any] | None = None) -> Rows:
        compiled = _compile(statement, self._dialect)
        arguments = self._arguments(compiled, parameters or {})
        self._observe(compiled, arguments)
        try:
            cursor = self._dbapi.cursor()
            cursor.execute(compiled.sql, arguments)
        except self._dialect.loaded_dbapi.Error as error:
            raise _translated(error, compiled, self._dialect) from error
        rows = Rows(compiled, cursor, self)
        if self._pipeline is None:
            rows.all()  # SQLite must finish a statement (RETURNING included) before the next
        return rows

    def run_many(self, statement: Statement, parameter_list: Sequence[dict[str, Any]]) -> None:
        compiled = _compile(statement, self._dialect)
        arguments = [self._arguments(compiled, parameters) for parameters in parameter_list]
        self._observe(compiled, arguments)
        try:
            self._dbapi.cursor().executemany(compiled.sql, arguments)
        except self._dialect.loaded_dbapi.Error as error:
            raise _translated(error, compiled, self._dialect) from error

    @contextmanager
    def batch(self) -> Iterator["Cursor"]:
        """Statements run in the block are sent together; read their rows after it."""
        if not self._pipelines or self._pipeline is not None:
            yield self
            return
        try:
            with self._dbapi.pipeline() as pipeline:
                self._pipeline = pipeline
                yield self
        except self._dialect.loaded_dbapi.Error as error:
            raise _translated(error, None, self._dialect) from error
        finally:
            self._pipeline = None

    def _sync(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.sync()
            except self._dialect.loaded_dbapi.Error as error:
                raise _translated(error, None, self._dialect) from error

    def _observe(self, compiled: _Compiled, arguments: Any) -> None:
        if self._echo:
            sql_log.info("%s", compiled.sql)
            sql_log.info("[driver] %r", arguments)
        for observe in observers:
            observe(compiled.sql)

    @staticmethod
    def _arguments(compiled: _Compiled, parameters: dict[str, Any]):
        if compiled.bind:
            parameters = dict(parameters)
            for name, process in compiled.bind:
                if name in parameters:
                    parameters[name] = process(parameters[name])
        if compiled.positional is not None:
            return tuple(parameters[name] for name in compiled.positional)
        return parameters


def _translated(error: Exception, compiled: _Compiled | None, dialect) -> DBAPIError:
    return DBAPIError.instance(compiled.sql if compiled else "(batch)", None, error,
                               dialect.loaded_dbapi.Error, dialect=dialect)
