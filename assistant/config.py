"""Settings: one frozen object, built once and passed down.

Rule: settings are read here and nowhere else. The layers are, each overriding the one
before: config/default.toml, the file named by --config or ASSISTANT_CONFIG, then
ASSISTANT_* environment variables named after the setting. Nothing in this module opens
a database or a network connection.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import time, timedelta
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_CONFIG_FILE = CONFIG_DIR / "default.toml"
LOCALES_DIR = PROJECT_ROOT / "locales"
ENV_PREFIX = "ASSISTANT_"


class SettingsError(ValueError):
    """A setting is missing, misspelt or of the wrong type."""


@dataclass(frozen=True)
class Policy:
    """Booking rules. Defaults live in config/default.toml; hospitals and departments
    may override any of them."""

    per_department_per_day: int
    per_visit_day: int
    per_7_days: int
    per_90_days: int
    open_days_ahead: int
    release_time: time
    close_time: time
    cancel_deadline_time: time
    no_show_limit: int
    no_show_window_days: int
    no_show_suspension_days: int
    cancel_limit: int
    cancel_window_days: int
    cancel_suspension_days: int
    patients_per_address: int
    # A fair release (booking/release.py, booking/waitlist.py, booking/reminders.py).
    release_mode: str = "first_come"  # or "draw": requests until draw_time, then a draw
    draw_time: time = time(20, 0)  # the draw, on the day requests open (or the next day)
    offer_minutes: int = 30  # a waitlist offer waits this long for "1"
    reminder_time: time = time(10, 0)  # the day-before reminder goes out at this time
    # A phone or chat refused this many times in one hour waits for the next (0: never).
    refusals_per_hour: int = 20

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Policy":
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise SettingsError(f"unknown policy settings: {', '.join(sorted(unknown))}")
        converted = {}
        for f in fields(cls):
            if f.name not in values:
                if f.default is not MISSING:
                    continue
                raise SettingsError(f"policy.{f.name} is missing")
            converted[f.name] = _convert_policy_value(f.name, values[f.name])
        return cls(**converted)

    def overridden(self, overrides: Mapping[str, Any] | None) -> "Policy":
        """This policy with a hospital's or department's overrides applied."""
        if not overrides:
            return self
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise SettingsError(f"unknown policy settings: {', '.join(sorted(unknown))}")
        return replace(
            self, **{k: _convert_policy_value(k, v) for k, v in overrides.items()}
        )


RELEASE_MODES = ("first_come", "draw")


def _convert_policy_value(name: str, value: Any) -> Any:
    if name == "release_mode":
        if value not in RELEASE_MODES:
            raise SettingsError(f"policy.release_mode must be one of {', '.join(RELEASE_MODES)}, got {value!r}")
        return value
    if name.endswith("_time"):
        if isinstance(value, time):
            return value
        try:
            return time.fromisoformat(str(value))
        except ValueError as exc:
            raise SettingsError(f"policy.{name} must be HH:MM, got {value!r}") from exc
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingsError(f"policy.{name} must be a whole number >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class IdentitySettings:
    kinds: tuple[str, ...]
    generic_pattern: str
    generic_documents: tuple[str, ...] = ("passport",)


@dataclass(frozen=True)
class ConversationSettings:
    sms_expiry_hours: float
    telegram_expiry_hours: float
    console_expiry_hours: float

    def expiry(self, channel: str) -> timedelta | None:
        """How long a conversation on `channel` may idle; None: only the call ends it."""
        hours = getattr(self, f"{channel}_expiry_hours", None)
        return None if hours is None else timedelta(hours=hours)


@dataclass(frozen=True)
class ProviderSettings:
    """Credentials of one provider (Twilio: account_sid/auth_token; Telegram:
    bot_token/secret_token). Kept out of repr, so they never reach a log."""

    values: dict[str, str] = field(default_factory=dict, repr=False)

    def get(self, name: str) -> str:
        return self.values.get(name, "")


@dataclass(frozen=True)
class VoiceSettings:
    """How calls sound: per language, the speech tag and the voice; how long to wait."""

    speech_languages: dict[str, str] = field(default_factory=lambda: {"en": "en-US"})
    voices: dict[str, str] = field(default_factory=dict)
    gather_timeout: int = 8

    def language(self, locale: str) -> str:
        return self.speech_languages.get(locale) or self.speech_languages.get("en", "en-US")

    def voice(self, locale: str) -> str | None:
        return self.voices.get(locale) or (None if locale in self.speech_languages else self.voices.get("en"))


@dataclass(frozen=True)
class WebSettings:
    """The staff pages and the /try simulator."""

    cookie_secure: bool = True
    try_access: str = "demo"  # demo | public | admin | off
    login_failures_allowed: int = 5
    login_lockout_minutes: int = 15


TRY_ACCESS = ("demo", "public", "admin", "off")


def _pairs(values: list, name: str) -> dict[str, str]:
    """["en=en-US", ...] -> {"en": "en-US"}."""
    pairs = {}
    for item in values:
        code, sep, value = str(item).partition("=")
        if not sep or not code.strip() or not value.strip():
            raise SettingsError(f"{name}: {item!r} must look like \"en=en-US\"")
        pairs[code.strip()] = value.strip()
    return pairs


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    sqlite_busy_timeout: float
    timezone: str
    default_phone_region: str
    locales: tuple[str, ...]
    default_locale: str
    secrets_file: Path
    generate_secrets: bool
    demo_seed_file: Path | None
    identity: IdentitySettings
    policy: Policy
    conversation: ConversationSettings
    public_url: str = ""
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    twilio: ProviderSettings = field(default_factory=ProviderSettings)
    telegram: ProviderSettings = field(default_factory=ProviderSettings)
    web: WebSettings = field(default_factory=WebSettings)
    # Where the values came from, for `assistant config show`; not a setting itself.
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(
    config_file: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from the three layers. `environ` defaults to os.environ."""
    environ = os.environ if environ is None else environ
    values = _read_toml(DEFAULT_CONFIG_FILE)
    sources = [str(DEFAULT_CONFIG_FILE)]
    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        _merge(values, _read_toml(Path(config_file)), where=str(config_file))
        sources.append(str(config_file))
    applied = _apply_environment(values, environ)
    if applied:
        sources.append("environment: " + ", ".join(applied))
    return _build(values, tuple(sources))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise SettingsError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc


def _merge(base: dict[str, Any], override: Mapping[str, Any], where: str, prefix: str = "") -> None:
    for key, value in override.items():
        name = prefix + key
        if key not in base:
            raise SettingsError(f"{where}: unknown setting {name!r}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise SettingsError(f"{where}: {name!r} must be a table")
            _merge(base[key], value, where, prefix=name + ".")
        else:
            base[key] = _checked_type(f"{where}: {name}", value, base[key])


def _checked_type(name: str, value: Any, default: Any) -> Any:
    """A file's value must have the default's type ("false" is not a boolean)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, list):
        ok = isinstance(value, list)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise SettingsError(f"{name} must be a {type(default).__name__}, got {value!r}")
    return value


def _apply_environment(values: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Override each known setting from ASSISTANT_<SECTION>_<NAME>; return names used."""
    applied = []
    for path, current in _leaves(values):
        env_name = ENV_PREFIX + "_".join(path).upper()
        if env_name not in environ:
            continue
        raw = environ[env_name]
        target = values
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = _parse_env_value(env_name, raw, current)
        applied.append(env_name)
    return applied


def _leaves(values: Mapping[str, Any], prefix: tuple[str, ...] = ()):
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _parse_env_value(name: str, raw: str, current: Any) -> Any:
    try:
        if isinstance(current, bool):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, list):
            parsed = json.loads(raw)
            if not isinstance(parsed, list):
                raise ValueError(raw)
            return parsed
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {type(current).__name__}") from exc
    return raw


def _build(values: dict[str, Any], sources: tuple[str, ...]) -> Settings:
    instance = _resolve(values["instance_path"])
    database_url = values["database_url"] or f"sqlite:///{instance / 'careline.db'}"
    secrets_file = _resolve(values["secrets_file"]) if values["secrets_file"] else instance / "secrets.toml"
    # The demo file ships with the code, so a relative name is read from the project.
    demo_file = _resolve(values["demo_seed_file"], PROJECT_ROOT) if values["demo_seed_file"] else None
    try:
        ZoneInfo(values["timezone"])
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"timezone {values['timezone']!r} is not an IANA time zone") from exc
    locales = tuple(values["locales"])
    if values["default_locale"] not in locales:
        raise SettingsError("default_locale must be one of locales")
    identity = values["identity"]
    return Settings(
        instance_path=instance,
        database_url=database_url,
        sqlite_busy_timeout=float(values["sqlite_busy_timeout"]),
        timezone=values["timezone"],
        default_phone_region=values["default_phone_region"],
        locales=locales,
        default_locale=values["default_locale"],
        secrets_file=secrets_file,
        generate_secrets=bool(values["generate_secrets"]),
        demo_seed_file=demo_file,
        identity=IdentitySettings(
            kinds=tuple(identity["kinds"]), generic_pattern=identity["generic_pattern"],
            generic_documents=tuple(d.lower() for d in identity["generic_documents"]),
        ),
        policy=Policy.from_mapping(values["policy"]),
        conversation=ConversationSettings(**values["conversation"]),
        public_url=values["public_url"].strip().rstrip("/"),
        voice=VoiceSettings(_pairs(values["voice"]["speech_languages"], "voice.speech_languages"),
                            _pairs(values["voice"]["voices"], "voice.voices"),
                            int(values["voice"]["gather_timeout"])),
        twilio=ProviderSettings(dict(values["twilio"])),
        telegram=ProviderSettings(dict(values["telegram"])),
        web=_web(values["web"]),
        sources=sources,
    )


def _web(values: Mapping[str, Any]) -> WebSettings:
    if values["try_access"] not in TRY_ACCESS:
        raise SettingsError(f"web.try_access must be one of {', '.join(TRY_ACCESS)}")
    if int(values["login_failures_allowed"]) < 1 or int(values["login_lockout_minutes"]) < 1:
        raise SettingsError("web.login_failures_allowed and web.login_lockout_minutes must be at least 1")
    return WebSettings(bool(values["cookie_secure"]), values["try_access"],
                       int(values["login_failures_allowed"]), int(values["login_lockout_minutes"]))


def _resolve(path: str, base: Path | None = None) -> Path:
    """Relative paths are relative to the working directory, like any CLI tool's."""
    resolved = Path(path).expanduser()
    if base is not None and not resolved.is_absolute():
        resolved = base / resolved
    return resolved.resolve()
