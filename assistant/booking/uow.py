"""Unit of work: one transaction per use case.

Rule: rollback is the default. A use case calls `commit()` explicitly; anything else,
an exception included, rolls back. Side effects outside the database (sending a message)
are registered with `after_commit` and run only once the commit has succeeded.
"""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from assistant.booking import audit
from assistant.booking.database import READ_ONLY

log = logging.getLogger(__name__)


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker) -> None:
        self._session_factory = session_factory
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
        hooks, self._after_commit = self._after_commit, []
        for hook in hooks:
            try:
                hook()
            except Exception:  # a failed notification must not undo a committed booking
                log.exception("after-commit hook failed")

    def after_commit(self, hook: Callable[[], None]) -> None:
        self._after_commit.append(hook)


class UnitOfWorkFactory:
    """Makes writing and read-only units of work bound to one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = sessionmaker(engine, expire_on_commit=False)
        self._reader = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self._writer)

    def read_only(self) -> UnitOfWork:
        return UnitOfWork(self._reader)
