"""Idempotency: each inbound event is claimed once.

Rule: a claim is an INSERT … ON CONFLICT DO NOTHING RETURNING into processed_event, made
in the caller's transaction. A concurrent claimer of the same key waits on the primary
key until the first transaction ends, then sees the key as taken. RETURNING is used
rather than rowcount, which psycopg reports as -1.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from assistant.booking.models import ProcessedEvent


def dialect_insert(session: Session):
    """The INSERT construct that knows ON CONFLICT for this session's database."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def claim_event(session: Session, key: str, now: datetime) -> bool:
    """True when this transaction is the first to claim `key`."""
    claimed = session.execute(
        dialect_insert(session)(ProcessedEvent).values(key=key, claimed_at=now, result=None)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(ProcessedEvent.key)
    ).first()
    return claimed is not None
