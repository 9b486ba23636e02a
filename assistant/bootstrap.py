"""Wiring: the one place that turns Settings into an engine, units of work, keys and a
clock.

Rule: objects with a lifetime (database engines, keys, clocks) are built here, on demand,
and handed down. Nothing is created at import time.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from assistant.booking.database import create_db_engine
from assistant.booking.identity import Keyring
from assistant.booking.inputs import ServiceContext
from assistant.booking.uow import UnitOfWorkFactory
from assistant.config import ENV_PREFIX, Settings, SettingsError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


def fixed_clock(moment: datetime) -> Clock:
    """For demos and scripted tests (`--now`): the same instant on every call."""
    return lambda: moment


def parse_now(text: str, default_tz: str) -> datetime:
    """`2026-12-01T09:00` is read in the settings' time zone; an offset wins."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise SettingsError(f"--now must look like 2026-12-01T09:00, got {text!r}") from exc
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(default_tz))
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:
        raise SettingsError(f"--now {text!r} is out of range") from exc


BLIND_ENV = ENV_PREFIX + "BLIND_INDEX_KEY"
ENCRYPTION_ENV = ENV_PREFIX + "ENCRYPTION_KEY"
NEW_BLIND_ENV = ENV_PREFIX + "NEW_BLIND_INDEX_KEY"
NEW_ENCRYPTION_ENV = ENV_PREFIX + "NEW_ENCRYPTION_KEY"


def load_keyring(settings: Settings, environ: Mapping[str, str] | None = None, *,
                 engine: Engine | None = None) -> Keyring:
    """Keys from the environment (both of them), else the secrets file, else generated
    once, but only for the demo (`generate_secrets`) and only while the database holds
    no patient and no audit event: new keys must never replace lost ones silently.
    `engine` is the database to look at (None: one is opened for the look)."""
    environ = os.environ if environ is None else environ
    from_env = _env_pair(environ, BLIND_ENV, ENCRYPTION_ENV)
    if from_env is not None:
        return _checked_keyring(*from_env, "the environment")
    path = settings.secrets_file
    stored = _read_secrets(path)
    if stored is not None:
        blind = stored.get("blind_index_key")
        if not blind:
            raise SettingsError(f"{path} has no blind_index_key")
        return _checked_keyring(blind, _file_encryption_keys(stored, path), str(path))
    if not settings.generate_secrets:
        raise SettingsError(
            f"no keys: set {BLIND_ENV} and {ENCRYPTION_ENV}, or write blind_index_key and "
            f"encryption_key to {path}"
        )
    if _database_holds_data(settings, engine):
        raise SettingsError(
            f"no keys found at {path}, but the database holds patients or audit events: "
            f"restore the secrets file or set {BLIND_ENV} and {ENCRYPTION_ENV} "
            "(new keys would make that data unreadable)"
        )
    keyring = Keyring.generate()
    try:
        _write_secrets(path, keyring)
    except FileExistsError:  # another process generated them first: use those
        return load_keyring(settings, environ, engine=engine)
    log.warning("generated new demo secrets in %s; keep this file or set the keys", path)
    return keyring


def load_new_keyring(settings: Settings, environ: Mapping[str, str] | None = None) -> Keyring:
    """The keys `assistant keys rotate` moves to: ASSISTANT_NEW_BLIND_INDEX_KEY and
    ASSISTANT_NEW_ENCRYPTION_KEY, else new_blind_index_key and new_encryption_key in the
    secrets file."""
    environ = os.environ if environ is None else environ
    from_env = _env_pair(environ, NEW_BLIND_ENV, NEW_ENCRYPTION_ENV)
    if from_env is not None:
        return _checked_keyring(*from_env, "the environment (new keys)")
    path = settings.secrets_file
    stored = _read_secrets(path) or {}
    blind, encryption = stored.get("new_blind_index_key"), stored.get("new_encryption_key")
    if not blind and not encryption:
        raise SettingsError(
            f"no new keys: run `assistant keys generate` and add its lines to {path}, or set "
            f"{NEW_BLIND_ENV} and {NEW_ENCRYPTION_ENV}")
    for name, value in (("new_blind_index_key", blind), ("new_encryption_key", encryption)):
        if not isinstance(value, str) or not value:
            raise SettingsError(f"{path} has no {name} (both new keys are needed)")
    return _checked_keyring(blind, _split_keys(encryption), f"{path} (new keys)")


def _env_pair(environ: Mapping[str, str], blind_name: str,
              encryption_name: str) -> tuple[str, tuple[str, ...]] | None:
    """Both keys from the environment, or None; one alone is an error, never mixed with
    the file's other half."""
    blind, encryption = environ.get(blind_name), environ.get(encryption_name)
    if blind and encryption:
        return blind, _split_keys(encryption)
    if blind or encryption:
        missing = encryption_name if blind else blind_name
        present = blind_name if blind else encryption_name
        raise SettingsError(f"{present} is set but {missing} is not: set both, or neither "
                            "(then the secrets file is read)")
    return None


def _split_keys(text: str) -> tuple[str, ...]:
    """One Fernet key, or several separated by commas: the first encrypts, all decrypt."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _read_secrets(path: Path) -> dict | None:
    """The secrets file's keys, or None when there is no file. Refused when group or
    others may read or write it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & 0o077:
        raise SettingsError(f"{path} can be read or written by group or others (mode "
                            f"{stat.S_IMODE(mode):04o}): run `chmod 600 {path}`")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"can't read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from exc


def _file_encryption_keys(stored: dict, path: Path) -> tuple[str, ...]:
    single, several = stored.get("encryption_key"), stored.get("encryption_keys")
    if single is not None and several is not None:
        raise SettingsError(f"{path} has both encryption_key and encryption_keys: keep one")
    if several is not None:
        if not isinstance(several, list) or not several or \
                not all(isinstance(k, str) and k for k in several):
            raise SettingsError(f"{path}: encryption_keys must be a list of Fernet keys, "
                                "the one to encrypt with first")
        return tuple(several)
    if not single:
        raise SettingsError(f"{path} has no encryption_key (or encryption_keys)")
    if not isinstance(single, str):
        raise SettingsError(f"{path}: encryption_key must be a string")
    return (single,)


def _checked_keyring(blind: str, encryption: tuple[str, ...], where: str) -> Keyring:
    if not isinstance(blind, str):
        raise SettingsError(f"the blind-index key in {where} must be a string")
    if not encryption:
        raise SettingsError(f"no encryption key in {where}")
    for key in encryption:
        try:
            if len(base64.urlsafe_b64decode(key.encode())) != 32:
                raise ValueError
            Fernet(key.encode())
        except (ValueError, TypeError, AttributeError) as exc:
            raise SettingsError(f"an encryption key in {where} is not a Fernet key") from exc
    if len(blind) < 32:
        raise SettingsError(f"the blind-index key in {where} must be at least 32 characters")
    return Keyring(blind_index_key=blind.encode(),
                   encryption_keys=tuple(key.encode() for key in encryption))


def _database_holds_data(settings: Settings, engine: Engine | None) -> bool:
    from assistant.booking import keys

    if engine is None:
        if settings.is_sqlite:
            database = make_url(settings.database_url).database
            if not database or database == ":memory:" or not Path(database).exists():
                return False
        engine = create_db_engine(settings.database_url,
                                  sqlite_busy_timeout=settings.sqlite_busy_timeout)
        try:
            return _database_holds_data(settings, engine)
        finally:
            engine.dispose()
    with engine.connect() as connection:
        with Session(connection) as session:
            return keys.holds_data(session)


def _write_secrets(path: Path, keyring: Keyring) -> None:
    _private_folder(path.parent)
    content = (
        "# CareLine secrets, generated for the demo. Never commit this file.\n"
        f'blind_index_key = "{keyring.blind_index_key.decode()}"\n'
        f'encryption_key = "{keyring.encryption_key.decode()}"\n'
    )
    # Created with 0600 from the start, so the keys are never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


def _private_folder(path: Path) -> None:
    """Create `path` (and missing parents) readable by the owner only; an existing
    folder is left as it is."""
    if path.is_dir():
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask


def prepare_sqlite_files(settings: Settings) -> None:
    """The instance folder (0700) and the SQLite file (0600), created before SQLite
    opens it, so the database is never readable by others, even for a moment; an
    existing file that group or others can read is tightened."""
    _private_folder(settings.instance_path)
    database = make_url(settings.database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.parent.is_dir():
        return  # SQLite says so when it opens it
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
            log.warning("%s was readable by group or others (mode %04o): now %04o",
                        path, mode, mode & 0o700)


@dataclass
class App:
    """Everything a command needs, built from one Settings."""

    settings: Settings
    engine: Engine
    services: ServiceContext
    clock: Clock
    # False when the database had no key_check table yet (a fresh or older schema): the
    # keys are checked, and the check row recorded, again once the schema is upgraded.
    keys_checked: bool = True

    def check_keys(self) -> bool:
        """Compare the keys with the database's key check (recording it if absent)."""
        from assistant.booking import keys

        self.keys_checked = keys.check(self.services.uow, self.services.keyring, self.clock())
        return self.keys_checked

    def close(self) -> None:
        self.engine.dispose()


def build_senders(settings: Settings) -> dict:
    """The configured channel senders, by the address kind they reach: Twilio SMS for
    phones (account SID, auth token and a from number), Twilio calls for patients who use
    the phone line (also the public URL, which the call's answers come back to), the
    Telegram bot for chats. A channel not configured has no sender, and its notices
    wait (a call falls back to an SMS)."""
    from assistant.channels.senders import BackgroundLoop, TelegramSender, TwilioCallSender, TwilioSmsSender

    senders = {}
    twilio = settings.twilio
    if twilio.get("account_sid") and twilio.get("auth_token") and twilio.get("from_number"):
        senders["phone"] = TwilioSmsSender(
            twilio.get("account_sid"), twilio.get("auth_token"), twilio.get("from_number"),
            status_callback=f"{settings.public_url}/sms/status" if settings.public_url else None)
        if settings.public_url:
            # Offers and reminders to voice patients are calls that answer at /voice.
            senders["voice"] = TwilioCallSender(
                twilio.get("account_sid"), twilio.get("auth_token"), twilio.get("from_number"),
                answer_url=f"{settings.public_url}/voice", speech_language=settings.voice.language)
    if settings.telegram.get("bot_token"):
        senders["telegram"] = TelegramSender(settings.telegram.get("bot_token"), BackgroundLoop())
    return senders


def install_words() -> None:
    """Hand every language's words (locales/<code>/words.toml) to the engine's parsers."""
    from assistant.config import LOCALES_DIR
    from assistant.engine.parse import use_words
    from assistant.i18n.words import load_words

    use_words(load_words(LOCALES_DIR))


def build(settings: Settings, *, clock: Clock | None = None,
          environ: Mapping[str, str] | None = None, check_keys: bool = True) -> App:
    """The engine comes first: whether keys may be generated depends on what the
    database holds. Then the keys are checked against the database (`check_keys=False`
    only for `assistant keys rotate`, which checks them itself)."""
    install_words()
    if settings.is_sqlite:
        prepare_sqlite_files(settings)
    engine = create_db_engine(settings.database_url, sqlite_busy_timeout=settings.sqlite_busy_timeout)
    try:
        keyring = load_keyring(settings, environ, engine=engine)
        services = ServiceContext(uow=UnitOfWorkFactory(engine), keyring=keyring, settings=settings)
        app = App(settings=settings, engine=engine, services=services,
                  clock=clock or system_clock, keys_checked=False)
        if check_keys:
            app.check_keys()
    except BaseException:
        engine.dispose()
        raise
    return app


def renderer_for(app: App):
    """Catalogs compiled if stale (the .mo files are built, never committed) and a
    Renderer in the hospital's zone."""
    from assistant.booking import service
    from assistant.channels.render import Renderer
    from assistant.config import LOCALES_DIR
    from assistant.i18n import Catalogs, compile_catalogs

    compile_catalogs(LOCALES_DIR)
    hospital = service.hospital(app.services)
    timezone_name = hospital.timezone if hospital else app.settings.timezone
    return Renderer(Catalogs(LOCALES_DIR, default="en"), timezone_name)
