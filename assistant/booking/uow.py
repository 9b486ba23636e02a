"""Unit of work: one transaction per use case.

Rule: rollback is the default. A use case calls `commit()` explicitly; anything else,
an exception included, rolls back. Side effects outside the database (sending a message)
are registered with `after_commit` and run only once the commit has succeeded.

Inside `shared_reads()` (a conversation turn), every read-only unit shares one read
transaction instead of opening its own; a write committed meanwhile ends that
transaction, so the reads after it see what was written.

Inside `one_write()` (also a turn), every writing unit is part of one write
transaction that the turn commits once, with its state: a booking and the turn that
told the patient about it stand or fall together. A unit's `commit()` releases its
writes into the turn; leaving a unit without it rolls back that unit's writes only (a
savepoint, when other units' writes must survive). Once the turn has written, its
reads go to the write transaction, so they see what it wrote.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from assistant.booking import audit, catalogue  # noqa: F401  catalogue: every write keeps its version
from assistant.booking.database import READ_ONLY, TRANSACTION_CACHE

log = logging.getLogger(__name__)


# The open shared read: (its factory, its session), for this thread or task only.
_shared_read: ContextVar[tuple[object, Session] | None] = ContextVar("careline_shared_read", default=None)
# The open turn write (`one_write`), for this thread or task only.
_turn_write: ContextVar["TurnWrite | None"] = ContextVar("careline_turn_write", default=None)


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker | None,
                 on_commit: Callable[[], None] | None = None) -> None:
        self._session_factory = session_factory
        self._on_commit = on_commit
        self._after_commit: list[Callable[[], None]] = []
        self.session: Session

    def __enter__(self) -> "UnitOfWork":
        self.session = self._session_factory()
        self._after_commit = []
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        audit.write_pending(self.session)  # the audit head is the last lock taken
        self.session.commit()
        if self._on_commit is not None:
            self._on_commit()
        hooks, self._after_commit = self._after_commit, []
        _run_hooks(hooks)

    def after_commit(self, hook: Callable[[], None]) -> None:
        self._after_commit.append(hook)


class _SharedReadUnit(UnitOfWork):
    """A read inside `shared_reads()`: uses the open read transaction and leaves it open."""

    def __init__(self, session: Session) -> None:
        super().__init__(None)  # the session is given, not made
        self.session = session

    def __enter__(self) -> "UnitOfWork":
        return self

    def __exit__(self, exc_type, *_rest) -> None:
        if exc_type is not None:  # PostgreSQL refuses every statement after an error
            self.session.rollback()


class TurnWrite:
    """One write transaction for a whole turn. The session begins at the first write,
    so a turn that writes nothing costs nothing. Until a unit has been released into
    the turn, a unit needs no savepoint: rolling back the whole session undoes only it."""

    def __init__(self, factory: "UnitOfWorkFactory") -> None:
        self.factory = factory
        self.session: Session | None = None
        self.holds_writes = False  # some unit's commit() has released writes into the turn
        self._after_commit: list[Callable[[], None]] = []

    def unit(self, *, reading: bool = False) -> UnitOfWork:
        if self.session is None:
            self.session = self.factory._writer()
        return _TurnUnit(self, reading)

    def commit(self) -> None:
        """Commit every unit released so far, then run their after-commit hooks."""
        if self.session is None:
            return
        audit.write_pending(self.session)  # still the last lock: taken at the one commit
        self.session.commit()
        self.holds_writes = False
        self.factory._end_shared_read()
        hooks, self._after_commit = self._after_commit, []
        _run_hooks(hooks)

    def rollback(self) -> None:
        if self.session is not None:
            self.session.rollback()
            self.session.info.pop(audit.PENDING, None)
            self.holds_writes = False
            self._after_commit = []

    def close(self) -> None:
        if self.session is not None:
            try:
                self.rollback()
            finally:
                self.session.close()
                self.session = None


class _TurnUnit(UnitOfWork):
    """A unit inside `one_write()`: `commit()` releases its writes into the turn; leaving
    without it undoes them (by a savepoint once the turn holds other units' writes)."""

    def __init__(self, turn: TurnWrite, reading: bool) -> None:
        super().__init__(None)  # the session is given, not made
        self._turn = turn
        self._reading = reading  # a read writes nothing to undo: no savepoint
        self.session = turn.session

    def __enter__(self) -> "UnitOfWork":
        self._after_commit = []
        self._released = False
        # Audit entries are written at the turn's commit; remember which are this unit's.
        self._audit_mark = len(self.session.info.get(audit.PENDING, []))
        needs_savepoint = self._turn.holds_writes and not self._reading
        self._savepoint = self.session.begin_nested() if needs_savepoint else None
        return self

    def __exit__(self, exc_type, *_rest) -> None:
        if self._released or (self._reading and exc_type is None):
            return
        if self._savepoint is None:
            self._turn.rollback()
        else:
            self._savepoint.rollback()
            del self.session.info.get(audit.PENDING, [])[self._audit_mark:]
            self.session.info.pop(TRANSACTION_CACHE, None)  # it may hold what was undone

    def commit(self) -> None:
        if self._savepoint is not None:
            self._savepoint.commit()
        else:
            self.session.flush()
        self._released = True
        self._turn.holds_writes = True
        self._turn._after_commit.extend(self._after_commit)
        self._after_commit = []


def _run_hooks(hooks: list[Callable[[], None]]) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:  # a failed notification must not undo a committed booking
            log.exception("after-commit hook failed")


class UnitOfWorkFactory:
    """Makes writing and read-only units of work bound to one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = sessionmaker(engine, expire_on_commit=False)
        self._reader = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    def __call__(self) -> UnitOfWork:
        turn = _turn_write.get()
        if turn is not None and turn.factory is self:
            return turn.unit()
        return UnitOfWork(self._writer, on_commit=self._end_shared_read)

    def read_only(self) -> UnitOfWork:
        turn = _turn_write.get()
        if turn is not None and turn.factory is self and turn.holds_writes:
            return turn.unit(reading=True)  # see what this turn wrote
        shared = _shared_read.get()
        if shared is not None and shared[0] is self:
            return _SharedReadUnit(shared[1])
        return UnitOfWork(self._reader)

    @contextmanager
    def shared_reads(self) -> Iterator[None]:
        """Every read_only() unit inside reads in one transaction: a turn reads its world
        once rather than opening a transaction per question."""
        current = _shared_read.get()
        if current is not None and current[0] is self:
            yield
            return
        session = self._reader()
        token = _shared_read.set((self, session))
        try:
            yield
        finally:
            _shared_read.reset(token)
            try:
                session.rollback()
            finally:
                session.close()

    @contextmanager
    def one_write(self) -> Iterator[TurnWrite]:
        """Every unit of work inside writes into one transaction, committed only by the
        yielded TurnWrite's `commit()`; anything not committed is rolled back at the end."""
        if _turn_write.get() is not None:
            raise RuntimeError("one_write() is already open in this context")
        turn = TurnWrite(self)
        token = _turn_write.set(turn)
        try:
            yield turn
        finally:
            _turn_write.reset(token)
            turn.close()

    def _end_shared_read(self) -> None:
        shared = _shared_read.get()
        if shared is not None and shared[0] is self:
            shared[1].rollback()  # the next read begins after this commit
