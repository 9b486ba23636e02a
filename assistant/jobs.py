"""Jobs that span several steps: seeding a hospital, generating slots, preparing the
demo, and the worker's scheduled jobs (draws, the waitlist, reminders, no-shows). Each
step is its own transaction.

Rule: orchestration only; the rules live in booking/.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from assistant.booking import migrate, release, reminders, schedule, seed, service, waitlist
from assistant.booking.jobs import claim_job
from assistant.booking.models import Hospital, JobRun
from assistant.bootstrap import App


def seed_file(app: App, path: Path, *, days: int | None = None):
    data = seed.read_hospital_file(path)
    now = app.clock()
    with app.services.uow() as uow:
        report = seed.seed_hospital(uow.session, data, base_policy=app.settings.policy,
                                    audit_key=app.services.keyring.audit_key, now=now)
        uow.commit()
    generated = generate_slots(app, days=report.generate_days if days is None else days)
    return report, generated


def generate_slots(app: App, *, days: int) -> schedule.GenerationReport:
    """Slots for `days` days from today in the configured zone (hospitals are usually
    in one zone; a slot's own times always use its hospital's zone)."""
    now = app.clock()
    today = now.astimezone(ZoneInfo(app.settings.timezone)).date()
    with app.services.uow() as uow:
        report = schedule.generate_slots(
            uow.session, base_policy=app.settings.policy, start=today, days=days,
            audit_key=app.services.keyring.audit_key, now=now)
        uow.commit()
    return report


def prepare_for_serving(app: App) -> list[str]:
    """Upgrade the schema; on an empty database, load the demo hospital; keep slots
    generated ahead. Returns lines to show the operator."""
    lines = []
    migrate.upgrade(app.engine, keyring=app.services.keyring)
    with app.services.uow.read_only() as uow:
        has_hospital = uow.session.execute(select(Hospital.id).limit(1)).first() is not None
    if not has_hospital and app.settings.demo_seed_file is not None:
        report, generated = seed_file(app, app.settings.demo_seed_file)
        lines.append(f"loaded demo hospital {report.hospital_code!r} "
                     f"({report.departments} departments, {generated.created} slots)")
    elif has_hospital:
        generated = generate_slots(app, days=28)
        lines.append(f"slots: {generated.created} created for the next 28 days")
    else:
        lines.append("no hospital loaded: run `assistant seed --file HOSPITAL.toml`")
    return lines


@dataclass
class DueWork:
    """What one round of the worker's scheduled jobs did."""

    draws_opened: int = 0
    draws_run: int = 0
    offers_expired: int = 0
    offers_made: int = 0
    places_released: int = 0
    reminders: int = 0
    no_shows: int = 0

    @property
    def anything(self) -> bool:
        return any(vars(self).values())


def run_due_work(ctx, now: datetime, *, worker: str) -> DueWork:
    """The scheduled jobs, in order: open draws whose requests begin (their commitment),
    run due draws, move the waitlist on (expired offers, held places, releases), queue
    the day-before reminders, and mark yesterday's no-shows. Each is claimed by its key
    or made of conditional updates, so any number of workers may run this at once."""
    done = DueWork()
    done.draws_opened = release.open_due_draws(ctx, now)
    for draw_id in release.due_draws(ctx, now):
        if release.run_draw(ctx, draw_id, now=now, worker=worker) is not None:
            done.draws_run += 1
    moved = waitlist.run_due(ctx, now)
    done.offers_expired, done.offers_made, done.places_released = moved.expired, moved.offered, moved.released
    done.reminders = reminders.send_reminders(ctx, now, worker=worker).queued
    done.no_shows = _no_shows_once_a_day(ctx, now, worker=worker)
    return done


def _no_shows_once_a_day(ctx, now: datetime, *, worker: str) -> int:
    """Finished days' bookings still 'booked' become no-shows, scanned once per (UTC)
    day. Marking is idempotent row by row (service.mark_no_shows), so the key is claimed
    after the work: a failed scan leaves no claim and runs again on the next round."""
    key = f"no_shows:{now.date().isoformat()}"
    with ctx.uow.read_only() as uow:
        if uow.session.get(JobRun, key) is not None:
            return 0
    marked = service.mark_no_shows(ctx, now=now).marked
    with ctx.uow() as uow:
        if claim_job(uow.session, key, worker=worker, now=now, result={"marked": marked}):
            uow.commit()
    return marked
