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
        self._check_on_close = True

    @property
    def app(self) -> App:
        """The app, its keys checked against the database (a wrong key, or a rotation
        under way, stops the command here)."""
        if self._app is None:
            self._app = self._build(check_keys=True)
        return self._app

    def _build(self, *, check_keys: bool) -> App:
        settings = load_settings(self.config_file)
        clock = fixed_clock(parse_now(self.now, settings.timezone)) if self.now else None
        return build(settings, clock=clock, check_keys=check_keys)

    @property
    def migrated_app(self) -> App:
        """The app, after checking the database schema is the code's."""
        app = self.app
        self._require_head(app)
        return app

    def rotation_app(self) -> App:
        """For `assistant keys rotate`: built without the key check, which the rotation
        makes itself (it must run while one is under way)."""
        if self._app is None:
            self._app = self._build(check_keys=False)
            self._check_on_close = False  # the rotation has left the new keys' check row
        self._require_head(self._app)
        return self._app

    @staticmethod
    def _require_head(app: App) -> None:
        from assistant.booking import migrate

        current, head = migrate.current_revision(app.engine), migrate.head_revision()
        if current != head:
            _fail(f"the database schema is {current or 'missing'}, the code needs {head}: "
                  "run `assistant db upgrade` first")

    def record_key_check(self) -> None:
        """After a schema upgrade created the key_check table: check the keys against
        the data and record the check row."""
        if self._app is not None and self._check_on_close and not self._app.keys_checked:
            try:
                self._app.check_keys()
            except SettingsError as exc:
                _fail(str(exc))
            except Exception:  # the command's own error, if any, is the one to show
                logging.getLogger(__name__).warning("key check after the command failed",
                                                    exc_info=True)

    def close(self) -> None:
        if self._app is not None:
            try:
                # `db upgrade` and `seed` may have just created the key_check table.
                self.record_key_check()
            finally:
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
                "channel": row.channel, "name_differs": row.name_differs,
                "checksum_verified": row.checksum_verified,
            }, ensure_ascii=False))
        return
    if not rows:
        click.echo("no bookings")
    for row in rows:
        flags = ("  [name differs from earlier bookings]" if row.name_differs else "") + (
            "  [ID never checksum-verified]" if not row.checksum_verified else "")
        click.echo(f"{row.code}  {row.starts_at:%Y-%m-%d %H:%M}Z  {row.department_code:<14} "
                   f"{row.status:<10} {row.masked_id}  {row.masked_name}  via {row.channel}{flags}")


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
        click.echo(f"{row['id']}  {row['rule']:<13} until {row['until']:%Y-%m-%d %H:%M}Z  "
                   f"{row['scope']:<8} {row['who']}")


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
    """Check every event's hash and link, and the head's seal, then that the bookings and
    slots are what the events say (patient, slot and status of each booking; capacity
    and places booked of each slot); exit 1 on any problem or difference. Keep the
    printed newest event and hash somewhere else (a log, a ticket, an email): a later
    run must show that event with that hash, or newer."""
    from assistant.booking import reconcile

    with obj.migrated_app.services.uow.read_only() as uow:
        result = reconcile.check(uow.session, obj.migrated_app.services.keyring.audit_key)
    report, found = result.chain, result.reconciliation
    newest = f"newest event {report.newest_event}, hash {report.newest_hash}"
    if result.ok:
        click.echo(f"audit trail intact: {report.checked} events; {newest}; "
                   f"bookings and slots reconcile")
        return
    if report.ok:
        click.echo(f"audit chain unbroken: {report.checked} events; {newest}")
    else:
        click.echo(f"audit trail BROKEN ({len(report.problems)} problems in {report.checked} events):")
        for problem in report.problems:
            click.echo(f"  {problem}")
    if not found.ok:
        click.echo(f"bookings and slots DO NOT MATCH the audit trail ({len(found.differences)} "
                   f"differences in {found.bookings} bookings and {found.slots} slots):")
        for difference in found.differences:
            click.echo(f"  {difference}")
    else:
        click.echo(f"bookings and slots reconcile ({found.bookings} bookings, {found.slots} slots)")
    sys.exit(1)


# ---- the desk and the outbox ---------------------------------------------------------------


@main.group()
def desk() -> None:
    """The front desk on the command line (the same as its web page, /admin/desk)."""


@desk.command("check-in")
@click.argument("code")
@click.option("--by", "username", default="desk", show_default=True,
              help="The staff member checking the patient in (kept in the audit trail).")
@click.pass_obj
def desk_check_in(obj: Context, code: str, username: str) -> None:
    """Check a patient in: type the ID number from her card at the prompt (never on the
    command line, so it stays out of shell history). A patient who booked "for me"
    has that phone or chat verified as her own."""
    from assistant.booking import results, service

    app = obj.migrated_app
    number = click.prompt("ID number from the card", hide_input=True, err=True)
    result = service.check_in(app.services, code=code, id_number=number, now=app.clock(),
                              staff=service.Staff(username))
    if isinstance(result, results.Refusal):
        _fail({"booking_not_found": "no booking with that code matches that ID number",
               "not_active": f"the booking is {getattr(result, 'status', 'not active')}",
               "not_visit_day": "the booking is for another day"}.get(result.rule, result.rule))
    booking = result.booking
    click.echo(f"checked in: {booking.code}, {booking.department_code}, "
               f"{booking.starts_at:%Y-%m-%d %H:%M}Z")
    click.echo(f"name given for this booking: {result.name}")
    if result.other_names:
        click.echo("  other names given for this ID number (compare with the card): "
                   + "; ".join(result.other_names))
    if not result.checksum_verified:
        click.echo("  this ID number has no check character: compare it with the card")
    if result.verified_address:
        click.echo("  the phone or chat that booked is now verified as the patient's own")


@desk.command("flags")
@click.pass_obj
def desk_flags(obj: Context) -> None:
    """Identities to look at: several phones or chats claim to be the patient's own, or
    bookings were made under different names. Compare with the ID card at check-in."""
    from assistant.booking import service

    rows = service.flagged_identities(obj.migrated_app.services)
    if not rows:
        click.echo("nothing flagged")
    for row in rows:
        click.echo(f"{row.masked_id}  'for me' claims: {row.own_claims} "
                   f"({row.verified_claims} verified)  names used: {row.names}"
                   + ("" if row.checksum_verified else "  [ID never checksum-verified]"))


@main.group()
def outbox() -> None:
    """Notices waiting to be sent (to a patient when someone else acts in her name)."""


@outbox.command("list")
@click.option("--limit", type=click.IntRange(1, 100000), default=200, show_default=True)
@click.pass_obj
def outbox_list(obj: Context, limit: int) -> None:
    """Pending notices, oldest first: the address masked, the text in its language."""
    from assistant.booking import identity, outbox as box
    from assistant.bootstrap import renderer_for
    from assistant.notices import notice_message

    app = obj.migrated_app
    renderer = renderer_for(app)
    with app.services.uow.read_only() as uow:
        waiting = box.pending(uow.session, limit=limit)
    if not waiting:
        click.echo("no notices waiting")
    for notice in waiting:
        value = app.services.keyring.decrypt(notice.address_encrypted) or ""
        masked = identity.mask_phone(value) if notice.address_kind == "phone" else identity.mask_id(value)
        locale = notice.locale or app.settings.default_locale
        text = renderer.text(notice_message(notice.message, notice.params), locale)
        click.echo(f"{notice.id}  {notice.created_at:%Y-%m-%d %H:%M}Z  {notice.address_kind} "
                   f"{masked}  [{locale}] {text}")


# ---- telegram ----------------------------------------------------------------------------


@main.group()
def telegram() -> None:
    """The Telegram bot: register its webhook, or poll without a public address."""


@telegram.command("set-webhook")
@click.pass_obj
def telegram_set_webhook(obj: Context) -> None:
    """Register {public_url}/telegram with the Bot API, with the secret token."""
    from assistant.telegram_polling import set_webhook

    settings = obj.app.settings
    token, secret = settings.telegram.get("bot_token"), settings.telegram.get("secret_token")
    if not token or not secret or not settings.public_url:
        _fail("set ASSISTANT_TELEGRAM_BOT_TOKEN, ASSISTANT_TELEGRAM_SECRET_TOKEN and ASSISTANT_PUBLIC_URL")
    if set_webhook(token, f"{settings.public_url}/telegram", secret):
        click.echo(f"webhook registered: {settings.public_url}/telegram")
    else:
        _fail("the Bot API did not accept the webhook")


@telegram.command("poll")
@click.pass_obj
def telegram_poll(obj: Context) -> None:
    """Answer the bot by long polling (no public HTTPS address needed); Ctrl+C stops."""
    import threading

    from assistant.bootstrap import renderer_for
    from assistant.telegram_polling import poll

    app = obj.migrated_app
    token = app.settings.telegram.get("bot_token")
    if not token:
        _fail("set ASSISTANT_TELEGRAM_BOT_TOKEN")
    stop = threading.Event()
    click.echo("polling Telegram; Ctrl+C stops")
    try:
        poll(app, renderer_for(app), token, stop=stop)
    except KeyboardInterrupt:
        stop.set()


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

    renderer = renderer_for(app)

    def run_turn(channel_name, address_value, inbound):
        return conversations.run_turn(app.services, channel_name, address_value, inbound, app.clock(),
                                      renderer)

    session = ConsoleSession(channel, address, renderer, run_turn,
                             app.settings.default_locale, language_hint=hint)
    if jsonl:
        run_jsonl(session, sys.stdin, sys.stdout)
    else:
        run_interactive(session, sys.stdin, sys.stdout)


# ---- serve --------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Run CareLine's web server. On an empty database it creates the schema and loads
    the demo hospital (settings: demo_seed_file)."""
    from assistant import jobs
    from assistant.web import create_app

    obj: Context = ctx.obj
    source = ctx.find_root().get_parameter_source("now")
    if obj.now and source != click.core.ParameterSource.COMMANDLINE:
        _fail("serve refuses a fixed clock from ASSISTANT_NOW (a leftover would freeze "
              "time for every patient): unset it, or pass --now before `serve` for a demo")
    prepared = jobs.prepare_for_serving(obj.app)
    obj.record_key_check()  # the upgrade may have just created the key_check table
    for line in prepared:
        click.echo(line)
    app = _served(obj.app, host)
    click.echo(f"CareLine on http://{host}:{port}/  (Ctrl+C stops)")
    for line in webhook_lines(app.settings, f"http://{host}:{port}"):
        click.echo(line)
    for line in _demo_admin_lines(app, f"http://{host}:{port}"):
        click.echo(line)
    flask_app = create_app(app)
    stop = _deliver_in_background(obj.app) if obj.app.settings.is_sqlite else None
    try:
        flask_app.run(host=host, port=port, debug=False, use_reloader=False)
    finally:
        if stop is not None:
            stop.set()


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _served(app: App, host: str) -> App:
    """`serve` is the demo: /try is public when left at "demo". It speaks plain HTTP (a
    hospital puts gunicorn behind HTTPS instead), so on this machine's own address the
    session cookie can't be Secure: the browser would never send it back."""
    from dataclasses import replace

    web = app.settings.web
    if web.try_access == "demo":
        web = replace(web, try_access="public")
    if host in LOOPBACK and web.cookie_secure:
        web = replace(web, cookie_secure=False)
    return replace(app, settings=replace(app.settings, web=web))


def _demo_admin_lines(app: App, url: str) -> list[str]:
    """On the demo database with no staff yet: an admin with a new random password,
    shown once here."""
    from assistant import accounts

    if not app.settings.is_sqlite or accounts.has_users(app.services):
        return [f"Staff pages: {url}/admin/  (`assistant admin create-user` adds accounts)"]
    password = accounts.new_demo_password()
    accounts.create_user(app.services, username="admin", password=password, role="admin", now=app.clock())
    return [f"Staff pages: {url}/admin/  log in as admin with the password {password}",
            "  (shown only now; `assistant admin create-user` adds more accounts)"]


def _deliver_in_background(app):
    """The SQLite demo runs the worker (scheduled jobs and outbox delivery) in a thread
    of its own (a hospital on PostgreSQL runs `assistant worker` processes instead)."""
    import threading

    from assistant import jobs, notify
    from assistant.bootstrap import build_senders, renderer_for

    senders = build_senders(app.settings)
    if not senders:
        click.echo("Notices wait in the outbox: no Twilio or Telegram sender is configured")
    stop = threading.Event()
    threading.Thread(target=notify.run, name="careline-worker", daemon=True, args=(
        app.services, senders, renderer_for(app), app.clock),
        kwargs={"default_locale": app.settings.default_locale, "stop": stop,
                "due_work": lambda now, name: jobs.run_due_work(app.services, now, worker=name)}).start()
    if senders:
        click.echo(f"Delivering notices by {', '.join(sorted(senders))}")
    return stop


@main.group()
def admin() -> None:
    """Staff accounts for the web pages under /admin."""


@admin.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "clerk"]), default="clerk", show_default=True,
              help="admin: everything; clerk: bookings, check-in and no-shows.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input (for scripts); otherwise it is asked for twice.")
@click.pass_obj
def admin_create_user(obj: Context, username: str, role: str, password_stdin: bool) -> None:
    """Create a staff account. The password is never taken on the command line, where
    other users and the shell history would see it."""
    from assistant import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    app = obj.migrated_app
    try:
        created = accounts.create_user(app.services, username=username, password=password, role=role,
                                       now=app.clock())
    except accounts.AccountError as exc:
        _fail(exc.message.format(**exc.params))
    click.echo(f"created {created.role} {created.username}")


@main.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@click.option("--interval", type=click.FloatRange(0.5, 3600), default=5.0, show_default=True,
              help="Seconds to wait when nothing is due.")
@click.pass_obj
def worker(obj: Context, once: bool, interval: float) -> None:
    """Run the scheduled jobs (draws, waitlist offers, reminders, no-shows) and deliver
    the outbox by SMS, phone call and Telegram. Several workers may run at once: each
    job and each message is claimed by one."""
    import threading

    from assistant import jobs, notify
    from assistant.bootstrap import build_senders, renderer_for

    app = obj.migrated_app
    senders = build_senders(app.settings)
    if not senders:
        click.echo("no sender is configured, so messages wait in the outbox: set "
                   "ASSISTANT_TWILIO_ACCOUNT_SID, ASSISTANT_TWILIO_AUTH_TOKEN and "
                   "ASSISTANT_TWILIO_FROM_NUMBER, or ASSISTANT_TELEGRAM_BOT_TOKEN", err=True)
    renderer = renderer_for(app)

    def due_work(now, name):
        return jobs.run_due_work(app.services, now, worker=name)

    try:
        if once:
            name = notify.worker_name()
            done = due_work(app.clock(), name)
            click.echo(f"draws run {done.draws_run} (opened {done.draws_opened}), offers made "
                       f"{done.offers_made} (expired {done.offers_expired}), places back on sale "
                       f"{done.places_released}, reminders {done.reminders}, no-shows {done.no_shows}")
            if senders:
                report = notify.deliver_due(app.services, senders, renderer, app.clock(), worker=name,
                                            default_locale=app.settings.default_locale, limit=1000)
                click.echo(f"sent {report.sent}, to retry {report.retried}, given up {report.failed}")
            return
        stop = threading.Event()
        try:
            notify.run(app.services, senders, renderer, app.clock,
                       default_locale=app.settings.default_locale, stop=stop, interval=interval,
                       due_work=due_work)
        except KeyboardInterrupt:
            stop.set()
    finally:
        for sender in senders.values():
            sender.close()


@main.group()
def draw() -> None:
    """Draws: list them, and check one against its published seed."""


@draw.command("list")
@click.pass_obj
def draw_list(obj: Context) -> None:
    from assistant.booking import release

    for row in release.list_draws(obj.app.services):
        click.echo(f"{row.id}\t{row.department}\t{row.visit_date}\t{row.status}\tdraw at "
                   f"{row.draw_at.isoformat()}\trequests {row.requests}\tcommitment {row.seed_hash}"
                   + (f"\tseed {row.seed}" if row.seed else ""))


@draw.command("publish")
@click.argument("draw_id", type=int)
@click.pass_obj
def draw_publish(obj: Context, draw_id: int) -> None:
    """Print, as JSON, what the hospital may publish about a draw for anyone to check:
    the commitment, the seed (after the draw), the places and each request number's
    result. No patient and no booking code appears in it."""
    import json

    from assistant.booking import release

    record = release.public_record(obj.app.services, draw_id)
    if record is None:
        _fail(f"no draw {draw_id}")
    click.echo(json.dumps(record, ensure_ascii=False, indent=2))


@draw.command("verify")
@click.argument("draw_id", type=int)
@click.pass_obj
def draw_verify(obj: Context, draw_id: int) -> None:
    """Recompute a draw from its seed and stored requests and compare it with the
    bookings made; exit status 1 if anything differs."""
    from assistant.booking import release

    report = release.verify_draw(obj.app.services, draw_id)
    if report.ok:
        click.echo(f"draw {draw_id}: verified. The seed matches its commitment, and {report.requests} "
                   f"requests give the {report.placed} places and the waitlist order recorded.")
        return
    for problem in report.problems:
        click.echo(f"draw {draw_id}: {problem}", err=True)
    raise SystemExit(1)


def webhook_lines(settings, local_url: str) -> list[str]:
    """Where providers should send their webhooks, and what is still missing."""
    base = settings.public_url or local_url
    lines = [f"Twilio SMS webhook (POST): {base}/sms   status callback: {base}/sms/status",
             f"Twilio Voice webhook (POST): {base}/voice   status callback: {base}/voice/status"]
    if not settings.twilio.get("auth_token"):
        lines.append("  both refuse every request until ASSISTANT_TWILIO_AUTH_TOKEN is set")
    lines.append(f"Telegram webhook: {base}/telegram (assistant telegram set-webhook), "
                 "or assistant telegram poll")
    if not settings.telegram.get("secret_token"):
        lines.append("  it refuses every request until ASSISTANT_TELEGRAM_SECRET_TOKEN is set")
    if not settings.public_url:
        lines.append("  behind a proxy, set ASSISTANT_PUBLIC_URL to the address providers call")
    access = settings.web.try_access
    if access == "off":
        lines.append("Try the patient's side without a phone: assistant chat")
    else:
        lines.append(f"Try the patient's side without a phone: {local_url}/try"
                     + (" (administrators only)" if access in ("admin", "demo") else "")
                     + ", or assistant chat")
    return lines


# ---- keys ---------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """The blind-index and encryption keys: make new ones and rotate to them."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new key pair as TOML lines for the secrets file; writes nothing."""
    from assistant.booking.identity import Keyring

    new = Keyring.generate()
    click.echo("# add these lines to the secrets file, then run `assistant keys rotate`")
    click.echo(f'new_blind_index_key = "{new.blind_index_key.decode()}"')
    click.echo(f'new_encryption_key = "{new.encryption_key.decode()}"')


@keys.command("rotate")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="Rows per transaction; each commits its progress.")
@click.pass_obj
def keys_rotate(obj: Context, batch_size: int) -> None:
    """Re-encrypt every stored value and rebuild every blind index and the audit chain
    under the new keys (ASSISTANT_NEW_BLIND_INDEX_KEY and ASSISTANT_NEW_ENCRYPTION_KEY,
    else new_blind_index_key and new_encryption_key in the secrets file). Stop CareLine
    first. If it is interrupted, run it again with the same keys: it carries on, and
    every other command refuses to run until it has finished."""
    from assistant.booking import keys as key_store
    from assistant.bootstrap import load_new_keyring

    app = obj.rotation_app()
    new = load_new_keyring(app.settings)

    def show(progress) -> None:
        click.echo(f"  {progress['step']}: {progress.get('rows', {})}", err=True)

    try:
        report = key_store.rotate(app.services.uow, app.services.keyring, new, app.clock(),
                                  batch_size=batch_size, after_batch=show)
    except key_store.KeyCheckError as exc:
        _fail(str(exc))
    rows = ", ".join(f"{name} {count}" for name, count in sorted(report.rows.items())) or "no rows"
    click.echo(("rotation finished" if report.resumed else "keys rotated") + f": {rows}")
    click.echo(
        "Now make the new keys the current ones, or every command stops at the key check:\n"
        f"  in {app.settings.secrets_file}: set blind_index_key to new_blind_index_key and "
        "encryption_key to new_encryption_key (or encryption_keys = [new, old]: the old key "
        "may stay as a second entry, it still decrypts), then delete the new_* lines;\n"
        "  or in the environment: ASSISTANT_BLIND_INDEX_KEY and ASSISTANT_ENCRYPTION_KEY "
        "(new[,old]) take the new values, and ASSISTANT_NEW_* are unset.")


def run() -> None:  # pragma: no cover - console entry
    try:
        main()
    except SettingsError as exc:
        _fail(str(exc))
