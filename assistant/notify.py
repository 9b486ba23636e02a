"""Delivering the outbox: notices for patients, through the channel senders, after commit.

Rule: a message is sent only once it is committed (the outbox row is written in the
transaction of the change it reports). A worker claims a few due messages under a lease,
sends each through the sender of its address's kind (a patient who uses the phone line
gets a call when calls are configured: an offer or reminder rings and asks "press 1"), and records the result: sent (with
the provider's reference), retried later with backoff, or given up (after the last retry,
or at once for an address that sent STOP). Kinds without a configured sender are left
waiting, not failed. Logs name messages by id, never an address or a text.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping

from assistant.booking import outbox
from assistant.channels.senders import Sender, SendError
from assistant.notices import QUESTIONS, notice_message

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed


def worker_name() -> str:
    return f"worker-{uuid.uuid4().hex[:12]}"


def deliver_due(ctx, senders: Mapping[str, Sender], renderer, now: datetime, *, worker: str,
                default_locale: str, limit: int = 20) -> DeliveryReport:
    """One round: claim what is due for the configured senders, send, record."""
    report = DeliveryReport()
    for notice in outbox.claim_due(ctx, worker=worker, now=now, limit=limit, kinds=tuple(senders)):
        if notice.opted_out:
            outbox.finish(ctx, notice, worker=worker, now=now, error="the address sent STOP", give_up=True)
            report.failed += 1
            continue
        locale = notice.locale or default_locale
        calling = notice.channel == "voice" and "voice" in senders
        text = renderer.text(notice_message(notice.message, notice.params, spoken=calling), locale,
                             spoken=calling)
        try:
            if calling and notice.message in QUESTIONS:
                reference = senders["voice"].ring(notice.address)  # the call asks: "press 1"
            elif calling:
                reference = senders["voice"].send(notice.address, text, locale=locale)
            else:
                reference = senders[notice.address_kind].send(notice.address, text)
        except SendError as exc:
            status = outbox.finish(ctx, notice, worker=worker, now=now, error=str(exc))
            log.warning("outbox message %s not sent (%s): %s", notice.id, status, exc)
            if status == "failed":
                report.failed += 1
            else:
                report.retried += 1
            continue
        outbox.finish(ctx, notice, worker=worker, now=now, provider_ref=reference)
        report.sent += 1
    return report


def run(ctx, senders: Mapping[str, Sender], renderer, clock: Callable[[], datetime], *,
        default_locale: str, stop: threading.Event, interval: float = 5.0,
        due_work: Callable[[datetime, str], Any] | None = None) -> None:
    """Run the scheduled jobs (`due_work`) and deliver, until `stop` is set; a failing
    round is logged and the loop goes on."""
    worker = worker_name()
    while not stop.is_set():
        busy = False
        if due_work is not None:
            try:
                busy = bool(due_work(clock(), worker).anything)
            except Exception as exc:  # a job failed: its claim rolled back, so it runs again
                log.error("a scheduled job failed: %s", type(exc).__name__)
        try:
            report = deliver_due(ctx, senders, renderer, clock(), worker=worker,
                                 default_locale=default_locale) if senders else DeliveryReport()
        except Exception as exc:  # the database may be away for a moment: try again later
            log.error("an outbox round failed: %s", type(exc).__name__)
            report = DeliveryReport()
        if report.handled == 0 and not busy:
            stop.wait(interval)
