"""Unit of work: one transaction per use case.

Rule: rollback is the default. A use case calls `commit()` explicitly; anything else,
an exception included, rolls back. Side effects outside the database (sending a message)
are registered with `after_commit` and run only once the commit has succeeded.

Inside `shared_reads()` (a conversation turn), every read-only unit shares one read
transaction instead of opening its own; a write committed meanwhile ends that
transaction, so the reads after it see what was written.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from assistant.booking import audit, catalogue  # noqa: F401  catalogue: every write keeps its version
from assistant.booking.database import READ_ONLY

log = logging.getLogger(__name__)


# The open shared read: (its factory, its session), for this thread or task only.
_shared_read: ContextVar[tuple[object, Session] | None] = ContextVar("careline_shared_read", default=None)


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker, on_commit: Callable[[], None] | None = None) -> None:
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
        for hook in hooks:
            try:
                hook()
            except Exception:  # a failed notification must not undo a committed booking
                log.exception("after-commit hook failed")

    def after_commit(self, hook: Callable[[], None]) -> None:
        self._after_commit.append(hook)


class _SharedReadUnit(UnitOfWork):
    """A read inside `shared_reads()`: uses the open read transaction and leaves it open."""

    def __init__(self, session: Session) -> None:
        super().__init__(sessionmaker())
        self.session = session

    def __enter__(self) -> "UnitOfWork":
        return self

    def __exit__(self, exc_type, *_rest) -> None:
        if exc_type is not None:  # PostgreSQL refuses every statement after an error
            self.session.rollback()


class UnitOfWorkFactory:
    """Makes writing and read-only units of work bound to one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = sessionmaker(engine, expire_on_commit=False)
        self._reader = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self._writer, on_commit=self._end_shared_read)

    def read_only(self) -> UnitOfWork:
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

    def _end_shared_read(self) -> None:
        shared = _shared_read.get()
        if shared is not None and shared[0] is self:
            shared[1].rollback()  # the next read begins after this commit
