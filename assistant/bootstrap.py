"""Wiring: the one place that turns Settings into an engine, units of work, keys and a
clock.

Rule: objects with a lifetime (database engines, keys, clocks) are built here, on demand,
and handed down. Nothing is created at import time.
"""

from __future__ import annotations

import base64
import logging
import os
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

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
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(default_tz))
    return moment.astimezone(timezone.utc)


def load_keyring(settings: Settings, environ: Mapping[str, str] | None = None) -> Keyring:
    """Keys from the environment, else the secrets file, else (demo) generated once."""
    environ = os.environ if environ is None else environ
    blind = environ.get(ENV_PREFIX + "BLIND_INDEX_KEY")
    encryption = environ.get(ENV_PREFIX + "ENCRYPTION_KEY")
    if blind and encryption:
        return _checked_keyring(blind, encryption, "the environment")
    path = settings.secrets_file
    if path.exists():
        with open(path, "rb") as handle:
            stored = tomllib.load(handle)
        return _checked_keyring(
            blind or stored.get("blind_index_key", ""),
            encryption or stored.get("encryption_key", ""), str(path),
        )
    if not settings.generate_secrets:
        raise SettingsError(
            "no secrets: set ASSISTANT_BLIND_INDEX_KEY and ASSISTANT_ENCRYPTION_KEY, "
            f"or write them to {path}"
        )
    keyring = Keyring.generate()
    _write_secrets(path, keyring)
    log.warning("generated new demo secrets in %s; keep this file or set the keys", path)
    return keyring


def _checked_keyring(blind: str, encryption: str, where: str) -> Keyring:
    try:
        if len(base64.urlsafe_b64decode(encryption.encode())) != 32:
            raise ValueError
        keyring = Keyring(blind_index_key=blind.encode(), encryption_keys=(encryption.encode(),))
        keyring.encrypt("check")
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"the encryption key in {where} is not a Fernet key") from exc
    if len(blind) < 32:
        raise SettingsError(f"the blind-index key in {where} must be at least 32 characters")
    return keyring


def _write_secrets(path: Path, keyring: Keyring) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    content = (
        "# CareLine secrets, generated for the demo. Never commit this file.\n"
        f'blind_index_key = "{keyring.blind_index_key.decode()}"\n'
        f'encryption_key = "{keyring.encryption_key.decode()}"\n'
    )
    # Created with 0600 from the start, so the keys are never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


@dataclass
class App:
    """Everything a command needs, built from one Settings."""

    settings: Settings
    engine: Engine
    services: ServiceContext
    clock: Clock

    def close(self) -> None:
        self.engine.dispose()


def build(settings: Settings, *, clock: Clock | None = None,
          environ: Mapping[str, str] | None = None) -> App:
    if settings.is_sqlite:
        settings.instance_path.mkdir(parents=True, exist_ok=True)
    keyring = load_keyring(settings, environ)
    engine = create_db_engine(settings.database_url, sqlite_busy_timeout=settings.sqlite_busy_timeout)
    services = ServiceContext(uow=UnitOfWorkFactory(engine), keyring=keyring, settings=settings)
    return App(settings=settings, engine=engine, services=services, clock=clock or system_clock)


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
