"""Scheduled jobs claimed once: the draws, reminders and no-show marking that `assistant
worker` runs when they fall due.

Rule: a job is named by a key ("draw:12", "reminders:5:2026-12-01") and claimed by
inserting that key into `job_run` in the job's own transaction. The claim commits with
the job's work or not at all, so two workers never run one job twice, and a job that
failed part-way leaves no claim and runs again whole. Work that is idempotent row by row
(offers expiring, held places going back on sale) needs no key: its conditional updates
are the claim.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from assistant.booking import driver
from assistant.booking.models import UTCDateTime
from sqlalchemy import JSON, bindparam

CLAIM_JOB = text(
    "INSERT INTO job_run (key, claimed_by, finished_at, result) VALUES (:key, :worker, :now, :result) "
    "ON CONFLICT (key) DO NOTHING RETURNING key"
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("result", type_=JSON))


def claim_job(session: Session, key: str, *, worker: str, now: datetime,
              result: dict[str, Any] | None = None) -> bool:
    """Claim `key` in the session's transaction: True for the one caller that gets it.
    On PostgreSQL a second claimer waits for the first to commit or roll back."""
    return driver.Cursor(session.connection()).run(CLAIM_JOB, {
        "key": key[:200], "worker": worker[:64], "now": now, "result": result}).first() is not None
