"""Jobs that span several steps: seeding a hospital, generating slots, preparing the
demo. Each step is its own transaction.

Rule: orchestration only; the rules live in booking/.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from assistant.booking import migrate, schedule, seed
from assistant.booking.models import Hospital
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
