"""The `assistant` command line.

Rule: commands parse arguments, build the app through bootstrap, call one service or
job, and print the result. They hold no booking rules. Every command honours the
global --config and --now options.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from assistant import __version__
from assistant.bootstrap import App, build, fixed_clock, parse_now
from assistant.config import SettingsError, load_settings


class Context:
    """Lazily builds the App, so `--help` never touches a database."""

    def __init__(self, config_file: str | None, now: str | None) -> None:
        self.config_file = config_file
        self.now = now
        self._app: App | None = None

    @property
    def app(self) -> App:
        if self._app is None:
            settings = load_settings(self.config_file)
            clock = fixed_clock(parse_now(self.now, settings.timezone)) if self.now else None
            self._app = build(settings, clock=clock)
        return self._app

    @property
    def migrated_app(self) -> App:
        """The app, after checking the database schema is the code's."""
        from assistant.booking import migrate

        app = self.app
        current, head = migrate.current_revision(app.engine), migrate.head_revision()
        if current != head:
            _fail(f"the database schema is {current or 'missing'}, the code needs {head}: "
                  "run `assistant db upgrade` first")
        return app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="assistant")
@click.option("--config", "config_file", metavar="FILE", envvar="ASSISTANT_CONFIG",
              help="A settings file layered over config/default.toml.")
@click.option("--now", metavar="TIME", envvar="ASSISTANT_NOW",
              help="Fix the clock, e.g. 2026-12-01T09:00 (read in the configured time "
                   "zone unless it has an offset). For demos and scripted tests.")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, now: str | None) -> None:
    """CareLine: book hospital appointments by SMS, phone or Telegram.

    Every booking is bound to one patient's real identity. Start with
    `assistant serve` for the demo, or `assistant db upgrade` then
    `assistant seed --file HOSPITAL.toml` for a real hospital.
    """
    logging.basicConfig(level=os.environ.get("ASSISTANT_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config_file, now)
    ctx.call_on_close(ctx.obj.close)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


# ---- db ---------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Create and upgrade the database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Context) -> None:
    """Create the database, or upgrade it to the newest schema."""
    from assistant.booking import migrate

    migrate.upgrade(obj.app.engine, keyring=obj.app.services.keyring)
    click.echo(f"database at revision {migrate.current_revision(obj.app.engine)}")


@db.command("current")
@click.pass_obj
def db_current(obj: Context) -> None:
    """Print the schema revision of the database and of the code."""
    from assistant.booking import migrate

    click.echo(f"database: {migrate.current_revision(obj.app.engine) or 'empty'}; "
               f"code: {migrate.head_revision()}")


# ---- seed and slots -----------------------------------------------------------------------


@main.command()
@click.option("--file", "hospital_file", required=True, type=click.Path(dir_okay=False),
              help="A hospital file; config/demo_hospital.toml documents the format.")
@click.option("--days", type=click.IntRange(0, 366), default=None,
              help="Days of slots to generate (default: the file's slots.generate_days).")
@click.pass_obj
def seed(obj: Context, hospital_file: str, days: int | None) -> None:
    """Load a hospital, its departments and schedules, then generate slots."""
    from assistant import jobs

    from assistant.booking import migrate

    migrate.upgrade(obj.app.engine, keyring=obj.app.services.keyring)  # seeding a new database creates it first
    try:
        report, generated = jobs.seed_file(obj.app, Path(hospital_file), days=days)
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"hospital {report.hospital_code}: {report.departments} departments, "
               f"{report.templates} weekday schedules, {report.exceptions} exceptions")
    _echo_generation(generated)


@main.group()
def slots() -> None:
    """Turn weekly schedules into bookable slots."""


@slots.command("generate")
@click.option("--days", type=click.IntRange(1, 366), default=28, show_default=True,
              help="How many days ahead, from today.")
@click.pass_obj
def slots_generate(obj: Context, days: int) -> None:
    """Create missing slots; safe to run again (it never removes booked places)."""
    from assistant import jobs

    _echo_generation(jobs.generate_slots(obj.app, days=days))


def _echo_generation(report) -> None:
    click.echo(f"slots: {report.created} created, {report.updated} updated, "
               f"{report.removed} removed")
    if report.kept_with_bookings:
        click.echo(f"kept because they hold bookings (contact these patients): "
                   f"{len(report.kept_with_bookings)} slots, ids "
                   + ", ".join(map(str, report.kept_with_bookings[:20])))


# ---- bookings ----------------------------------------------------------------------------


@main.group()
def bookings() -> None:
    """Look at bookings (identities are always masked)."""


@bookings.command("list")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Only this visit day (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per booking.")
@click.pass_obj
def bookings_list(obj: Context, day, as_json: bool) -> None:
    """List bookings, oldest visit first."""
    from assistant.booking import service

    rows = service.staff_bookings(obj.migrated_app.services, day=day.date() if day else None)
    if as_json:
        for row in rows:
            click.echo(json.dumps({
                "code": row.code, "status": row.status, "department": row.department_code,
                "starts_at": row.starts_at.isoformat(), "visit_date": row.visit_date.isoformat(),
                "patient_id": row.masked_id, "patient_name": row.masked_name,
                "channel": row.channel,
            }, ensure_ascii=False))
        return
    if not rows:
        click.echo("no bookings")
    for row in rows:
        click.echo(f"{row.code}  {row.starts_at:%Y-%m-%d %H:%M}Z  {row.department_code:<14} "
                   f"{row.status:<10} {row.masked_id}  {row.masked_name}  via {row.channel}")


# ---- jobs, suspensions, audit -------------------------------------------------------------


@main.group("jobs")
def jobs_group() -> None:
    """Daily jobs, for cron or a systemd timer."""


@jobs_group.command("mark-no-shows")
@click.pass_obj
def jobs_no_shows(obj: Context) -> None:
    """Mark bookings of finished visit days as no-shows; suspend repeat no-shows."""
    from assistant.booking import service

    report = service.mark_no_shows(obj.migrated_app.services, now=obj.migrated_app.clock())
    click.echo(f"no-shows marked: {report.marked}; patients suspended: {report.suspended_patients}")


@main.group()
def suspensions() -> None:
    """Booking suspensions for repeated no-shows or cancellations."""


@suspensions.command("list")
@click.pass_obj
def suspensions_list(obj: Context) -> None:
    """Suspensions in force."""
    from assistant.booking import service

    rows = service.active_suspensions(obj.migrated_app.services, now=obj.migrated_app.clock())
    if not rows:
        click.echo("no suspensions in force")
    for row in rows:
        click.echo(f"{row['id']}  {row['rule']:<13} until {row['until']:%Y-%m-%d %H:%M}Z  {row['patient']}")


@suspensions.command("lift")
@click.argument("suspension_id", type=int)
@click.option("--by", "username", required=True, help="The staff member lifting it.")
@click.option("--reason", required=True, help="Why; kept in the audit trail.")
@click.pass_obj
def suspensions_lift(obj: Context, suspension_id: int, username: str, reason: str) -> None:
    """Lift a suspension early (staff only, audited)."""
    from assistant.booking import results, service

    result = service.lift_suspension(obj.migrated_app.services, suspension_id=suspension_id,
                                     staff=service.Staff(username), reason=reason,
                                     now=obj.migrated_app.clock())
    if isinstance(result, results.Refusal):
        _fail(f"not lifted: {result.rule}")
    click.echo(f"suspension {suspension_id} lifted")


@main.group()
def audit() -> None:
    """The hash-chained audit trail."""


@audit.command("verify")
@click.pass_obj
def audit_verify(obj: Context) -> None:
    """Check every event's hash and link, and the head's seal; exit 1 if anything was
    edited or deleted. Keep the printed newest event and hash somewhere else (a log, a
    ticket, an email): a later run must show that event with that hash, or newer."""
    from assistant.booking import audit as audit_trail

    with obj.migrated_app.services.uow.read_only() as uow:
        report = audit_trail.verify(uow.session, obj.migrated_app.services.keyring.audit_key)
    if report.ok:
        click.echo(f"audit trail intact: {report.checked} events; "
                   f"newest event {report.newest_event}, hash {report.newest_hash}")
        return
    click.echo(f"audit trail BROKEN ({len(report.problems)} problems in {report.checked} events):")
    for problem in report.problems:
        click.echo(f"  {problem}")
    sys.exit(1)


# ---- chat ---------------------------------------------------------------------------------


@main.command()
@click.option("--channel", type=click.Choice(["sms", "voice", "telegram"]), default="sms",
              show_default=True, help="Whose rendering rules to follow.")
@click.option("--from", "address", metavar="ADDRESS", default=None,
              help="The sender: a phone number (sms, voice) or a Telegram chat id.")
@click.option("--lang", metavar="L", default=None,
              help="Start in this language (en, zh_Hans, es, or a tag such as zh-CN).")
@click.option("--jsonl", is_flag=True,
              help="Read one message per line on stdin; write one JSON line for each.")
@click.pass_obj
def chat(obj: Context, channel: str, address: str | None, lang: str | None, jsonl: bool) -> None:
    """Talk to the assistant in the terminal, as an SMS, phone or Telegram user.

    Uses the configured database (the SQLite demo by default) and honours --now.
    With --jsonl each output line is {"replies": [...], "options": [{"key", "label"}],
    "expect": "...", "ended": false}. On the voice channel an empty line is silence.
    """
    from assistant import conversations
    from assistant.bootstrap import renderer_for
    from assistant.channels.console import DEFAULT_ADDRESS, ConsoleSession, run_interactive, run_jsonl
    from assistant.i18n import negotiate

    app = obj.migrated_app
    address = address or DEFAULT_ADDRESS[channel]
    hint = negotiate(lang, app.settings.locales, app.settings.default_locale) if lang else None
    if hint:
        from assistant.conversation_backend import ServiceBackend

        ServiceBackend(app.services, channel, address).remember_locale(hint, None, app.clock())

    def run_turn(channel_name, address_value, inbound):
        return conversations.run_turn(app.services, channel_name, address_value, inbound, app.clock())

    session = ConsoleSession(channel, address, renderer_for(app), run_turn,
                             app.settings.default_locale, language_hint=hint)
    if jsonl:
        run_jsonl(session, sys.stdin, sys.stdout)
    else:
        run_interactive(session, sys.stdin, sys.stdout)


# ---- serve --------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.pass_obj
def serve(obj: Context, host: str, port: int) -> None:
    """Run CareLine's web server. On an empty database it creates the schema and loads
    the demo hospital (settings: demo_seed_file)."""
    from assistant import jobs
    from assistant.web import create_app

    prepared = jobs.prepare_for_serving(obj.app)
    for line in prepared:
        click.echo(line)
    click.echo(f"CareLine on http://{host}:{port}/  (Ctrl+C stops)")
    create_app(obj.app).run(host=host, port=port, debug=False, use_reloader=False)


def run() -> None:  # pragma: no cover - console entry
    try:
        main()
    except SettingsError as exc:
        _fail(str(exc))
