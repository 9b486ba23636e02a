"""Settings layers (default file, --config file, ASSISTANT_* env) and key loading."""

from __future__ import annotations

import os
import stat
import tomllib
from datetime import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from assistant.booking.identity import Keyring
from assistant.bootstrap import load_keyring
from assistant.config import DEFAULT_CONFIG_FILE, SettingsError, load_settings


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Relative paths (the default instance folder) resolve inside tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- layers ---------------------------------------------------------------------------


def test_defaults_come_from_the_default_file():
    settings = load_settings(environ={})
    with open(DEFAULT_CONFIG_FILE, "rb") as handle:
        defaults = tomllib.load(handle)
    assert settings.policy.per_7_days == defaults["policy"]["per_7_days"] == 3
    assert settings.policy.release_time == time(15, 0)
    assert settings.timezone == "Asia/Shanghai"
    assert settings.locales == ("en", "zh_Hans", "es")
    assert settings.generate_secrets is True
    assert settings.sources == (str(DEFAULT_CONFIG_FILE),)


def test_default_database_is_an_sqlite_file_in_the_instance_folder(in_tmp):
    settings = load_settings(environ={})
    instance = (in_tmp / "instance").resolve()
    assert settings.instance_path == instance
    assert settings.is_sqlite
    assert settings.database_url == f"sqlite:///{instance / 'careline.db'}"
    assert settings.secrets_file == instance / "secrets.toml"


def test_config_file_overrides_the_defaults(in_tmp):
    config = write(in_tmp / "hospital.toml", """
timezone = "Europe/Madrid"
default_phone_region = "ES"
[policy]
per_7_days = 5
release_time = "08:00"
""")
    settings = load_settings(config, environ={})
    assert settings.timezone == "Europe/Madrid"
    assert settings.default_phone_region == "ES"
    assert settings.policy.per_7_days == 5
    assert settings.policy.release_time == time(8, 0)
    assert settings.policy.per_90_days == 5  # untouched default
    assert str(config) in settings.sources


def test_config_file_can_be_named_in_the_environment(in_tmp):
    config = write(in_tmp / "hospital.toml", "[policy]\nper_90_days = 9\n")
    settings = load_settings(environ={"ASSISTANT_CONFIG": str(config)})
    assert settings.policy.per_90_days == 9


def test_environment_overrides_the_config_file(in_tmp):
    config = write(in_tmp / "hospital.toml", "[policy]\nper_7_days = 5\nper_90_days = 8\n")
    settings = load_settings(config, environ={"ASSISTANT_POLICY_PER_7_DAYS": "4"})
    assert settings.policy.per_7_days == 4
    assert settings.policy.per_90_days == 8
    assert any("ASSISTANT_POLICY_PER_7_DAYS" in source for source in settings.sources)


def test_environment_sets_database_and_instance(in_tmp):
    settings = load_settings(environ={
        "ASSISTANT_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "ASSISTANT_INSTANCE_PATH": str(in_tmp / "elsewhere"),
    })
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert not settings.is_sqlite
    assert settings.instance_path == (in_tmp / "elsewhere").resolve()
    assert settings.secrets_file == (in_tmp / "elsewhere").resolve() / "secrets.toml"


def test_instance_folder_from_environment_moves_the_default_database(in_tmp):
    settings = load_settings(environ={"ASSISTANT_INSTANCE_PATH": "data"})
    assert settings.database_url == f"sqlite:///{(in_tmp / 'data').resolve() / 'careline.db'}"


def test_environment_lists_are_json():
    settings = load_settings(environ={"ASSISTANT_LOCALES": '["en", "es"]',
                                      "ASSISTANT_DEFAULT_LOCALE": "en"})
    assert settings.locales == ("en", "es")
    assert settings.default_locale == "en"


def test_environment_booleans_and_nested_strings():
    settings = load_settings(environ={"ASSISTANT_GENERATE_SECRETS": "false",
                                      "ASSISTANT_IDENTITY_GENERIC_PATTERN": r"^\d{9}$",
                                      "ASSISTANT_POLICY_CLOSE_TIME": "17:30"})
    assert settings.generate_secrets is False
    assert settings.identity.generic_pattern == r"^\d{9}$"
    assert settings.policy.close_time == time(17, 30)


# ---- refusals -------------------------------------------------------------------------


def test_unknown_key_in_config_file_is_rejected(in_tmp):
    config = write(in_tmp / "typo.toml", "databse_url = 'sqlite:///x.db'\n")
    with pytest.raises(SettingsError, match="unknown setting 'databse_url'"):
        load_settings(config, environ={})


def test_unknown_nested_key_in_config_file_is_rejected(in_tmp):
    config = write(in_tmp / "typo.toml", "[policy]\nper_week = 3\n")
    with pytest.raises(SettingsError, match=r"policy\.per_week") as raised:
        load_settings(config, environ={})
    assert str(config) in str(raised.value)


def test_table_given_as_value_is_rejected(in_tmp):
    config = write(in_tmp / "bad.toml", "policy = 3\n")
    with pytest.raises(SettingsError, match="must be a table"):
        load_settings(config, environ={})


def test_missing_or_broken_config_file_is_a_settings_error(in_tmp):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(in_tmp / "missing.toml", environ={})
    broken = write(in_tmp / "broken.toml", "[policy\nper_7_days = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(broken, environ={})


@pytest.mark.parametrize("name,value", [
    ("ASSISTANT_POLICY_PER_7_DAYS", "four"),
    ("ASSISTANT_POLICY_PER_7_DAYS", "-1"),
    ("ASSISTANT_GENERATE_SECRETS", "maybe"),
    ("ASSISTANT_LOCALES", "en,es"),
    ("ASSISTANT_LOCALES", '"en"'),
    ("ASSISTANT_POLICY_RELEASE_TIME", "3pm"),
])
def test_bad_type_in_environment_is_rejected(name, value):
    with pytest.raises(SettingsError):
        load_settings(environ={name: value})


def test_bad_type_in_environment_names_the_variable():
    with pytest.raises(SettingsError, match="ASSISTANT_POLICY_PER_7_DAYS='four'"):
        load_settings(environ={"ASSISTANT_POLICY_PER_7_DAYS": "four"})


def test_bad_policy_type_in_config_file_is_rejected(in_tmp):
    config = write(in_tmp / "bad.toml", '[policy]\nper_7_days = "four"\n')
    with pytest.raises(SettingsError, match="policy.per_7_days"):
        load_settings(config, environ={})


@pytest.mark.parametrize("line", [
    'generate_secrets = "false"',
    'sqlite_busy_timeout = "soon"',
    "timezone = 8",
    "default_phone_region = 86",
])
def test_bad_type_in_config_file_is_rejected(in_tmp, line):
    # A quoted "false" must not silently become True, and so on.
    name = line.split(" =")[0]
    config = write(in_tmp / "bad.toml", line + "\n")
    with pytest.raises(SettingsError, match=name):
        load_settings(config, environ={})


def test_fractional_busy_timeout_is_accepted_from_environment():
    settings = load_settings(environ={"ASSISTANT_SQLITE_BUSY_TIMEOUT": "2.5"})
    assert settings.sqlite_busy_timeout == 2.5


def test_default_locale_must_be_offered():
    with pytest.raises(SettingsError, match="default_locale"):
        load_settings(environ={"ASSISTANT_LOCALES": '["en"]'})


def test_settings_are_frozen():
    settings = load_settings(environ={})
    with pytest.raises(Exception):
        settings.timezone = "UTC"  # type: ignore[misc]


# ---- secrets --------------------------------------------------------------------------


def secret_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)
    return path


def _settings(tmp: Path, **env: str):
    return load_settings(environ={"ASSISTANT_INSTANCE_PATH": str(tmp / "instance"), **env})


def test_secrets_are_generated_once_with_mode_0600(in_tmp):
    settings = _settings(in_tmp)
    assert not settings.secrets_file.exists()
    first = load_keyring(settings, environ={})
    assert settings.secrets_file.exists()
    assert stat.S_IMODE(settings.secrets_file.stat().st_mode) == 0o600
    content = settings.secrets_file.read_bytes()
    second = load_keyring(settings, environ={})
    assert second == first
    assert settings.secrets_file.read_bytes() == content
    with open(settings.secrets_file, "rb") as handle:
        stored = tomllib.load(handle)
    assert stored["blind_index_key"].encode() == first.blind_index_key
    assert stored["encryption_key"].encode() == first.encryption_key


def test_secrets_file_mode_ignores_a_permissive_umask(in_tmp):
    old = os.umask(0)
    try:
        settings = _settings(in_tmp)
        load_keyring(settings, environ={})
    finally:
        os.umask(old)
    assert stat.S_IMODE(settings.secrets_file.stat().st_mode) == 0o600


def test_missing_secrets_are_refused_when_generation_is_off(in_tmp):
    settings = _settings(in_tmp, ASSISTANT_GENERATE_SECRETS="false")
    with pytest.raises(SettingsError, match="no keys: set ASSISTANT_BLIND_INDEX_KEY"):
        load_keyring(settings, environ={})
    assert not settings.secrets_file.exists()


def test_environment_keys_are_preferred(in_tmp):
    settings = _settings(in_tmp)
    stored = load_keyring(settings, environ={})
    env_keys = Keyring.generate()
    environ = {"ASSISTANT_BLIND_INDEX_KEY": env_keys.blind_index_key.decode(),
               "ASSISTANT_ENCRYPTION_KEY": env_keys.encryption_key.decode()}
    loaded = load_keyring(settings, environ=environ)
    assert loaded == env_keys != stored


def test_environment_keys_work_without_any_file(in_tmp):
    settings = _settings(in_tmp, ASSISTANT_GENERATE_SECRETS="false")
    env_keys = Keyring.generate()
    environ = {"ASSISTANT_BLIND_INDEX_KEY": env_keys.blind_index_key.decode(),
               "ASSISTANT_ENCRYPTION_KEY": env_keys.encryption_key.decode()}
    assert load_keyring(settings, environ=environ) == env_keys
    assert not settings.secrets_file.exists()


@pytest.mark.parametrize("present,missing", [
    ("ASSISTANT_ENCRYPTION_KEY", "ASSISTANT_BLIND_INDEX_KEY"),
    ("ASSISTANT_BLIND_INDEX_KEY", "ASSISTANT_ENCRYPTION_KEY"),
])
def test_one_environment_key_alone_is_refused_not_mixed_with_the_file(in_tmp, present, missing):
    settings = _settings(in_tmp)
    load_keyring(settings, environ={})  # a complete secrets file exists
    content = settings.secrets_file.read_bytes()
    env_keys = Keyring.generate()
    value = {"ASSISTANT_BLIND_INDEX_KEY": env_keys.blind_index_key.decode(),
             "ASSISTANT_ENCRYPTION_KEY": env_keys.encryption_key.decode()}[present]
    with pytest.raises(SettingsError) as raised:
        load_keyring(settings, environ={present: value})
    message = str(raised.value)
    assert f"{missing} is not" in message and "\n" not in message
    assert settings.secrets_file.read_bytes() == content


def test_one_environment_key_alone_is_refused_without_a_file_and_nothing_is_generated(in_tmp):
    settings = _settings(in_tmp)
    with pytest.raises(SettingsError, match="ASSISTANT_BLIND_INDEX_KEY is not"):
        load_keyring(settings, environ={"ASSISTANT_ENCRYPTION_KEY": Fernet.generate_key().decode()})
    assert not settings.secrets_file.exists()


def test_environment_encryption_key_may_list_several_the_first_encrypts(in_tmp):
    settings = _settings(in_tmp, ASSISTANT_GENERATE_SECRETS="false")
    old, new = Keyring.generate(), Keyring.generate()
    token = old.encrypt("Wang Fang")
    loaded = load_keyring(settings, environ={
        "ASSISTANT_BLIND_INDEX_KEY": new.blind_index_key.decode(),
        "ASSISTANT_ENCRYPTION_KEY": f"{new.encryption_key.decode()}, {old.encryption_key.decode()}"})
    assert loaded.encryption_keys == (new.encryption_key, old.encryption_key)
    assert loaded.decrypt(token) == "Wang Fang"
    assert new.decrypt(loaded.encrypt("x")) == "x"


def test_secrets_file_may_list_encryption_keys(in_tmp):
    settings = _settings(in_tmp, ASSISTANT_GENERATE_SECRETS="false")
    old, new = Keyring.generate(), Keyring.generate()
    secret_file(settings.secrets_file, f'''blind_index_key = "{new.blind_index_key.decode()}"
encryption_keys = ["{new.encryption_key.decode()}", "{old.encryption_key.decode()}"]
''')
    loaded = load_keyring(settings, environ={})
    assert loaded.encryption_keys == (new.encryption_key, old.encryption_key)
    assert loaded.decrypt(old.encrypt("kept")) == "kept"


@pytest.mark.parametrize("content,message", [
    ('encryption_key = "{enc}"\n', "has no blind_index_key"),
    ('blind_index_key = "{blind}"\n', "has no encryption_key"),
    ('blind_index_key = "{blind}"\nencryption_keys = []\n', "encryption_keys must be a list"),
    ('blind_index_key = "{blind}"\nencryption_key = "{enc}"\nencryption_keys = ["{enc}"]\n',
     "both encryption_key and encryption_keys"),
    ('blind_index_key = \n', "not valid TOML"),
])
def test_an_incomplete_secrets_file_is_one_clear_line(in_tmp, content, message):
    settings = _settings(in_tmp)  # generation on: it must not paper over the gap
    keys = Keyring.generate()
    secret_file(settings.secrets_file, content.format(blind=keys.blind_index_key.decode(),
                                                      enc=keys.encryption_key.decode()))
    before = settings.secrets_file.read_bytes()
    with pytest.raises(SettingsError, match=message) as raised:
        load_keyring(settings, environ={})
    assert "\n" not in str(raised.value).split(": ", 1)[0]
    assert settings.secrets_file.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644, 0o660])
def test_secrets_file_readable_or_writable_by_others_is_refused(in_tmp, mode):
    settings = _settings(in_tmp)
    load_keyring(settings, environ={})
    os.chmod(settings.secrets_file, mode)
    with pytest.raises(SettingsError) as raised:
        load_keyring(settings, environ={})
    message = str(raised.value)
    assert f"chmod 600 {settings.secrets_file}" in message and "\n" not in message
    assert stat.S_IMODE(settings.secrets_file.stat().st_mode) == mode  # not changed for you


def test_new_keys_come_from_the_environment_or_the_secrets_file(in_tmp):
    from assistant.bootstrap import load_new_keyring

    settings = _settings(in_tmp)
    with pytest.raises(SettingsError, match="keys generate"):
        load_new_keyring(settings, environ={})
    new = Keyring.generate()
    secret_file(settings.secrets_file, f'''blind_index_key = "{"b" * 40}"
encryption_key = "{Fernet.generate_key().decode()}"
new_blind_index_key = "{new.blind_index_key.decode()}"
new_encryption_key = "{new.encryption_key.decode()}"
''')
    assert load_new_keyring(settings, environ={}) == new
    other = Keyring.generate()
    assert load_new_keyring(settings, environ={
        "ASSISTANT_NEW_BLIND_INDEX_KEY": other.blind_index_key.decode(),
        "ASSISTANT_NEW_ENCRYPTION_KEY": other.encryption_key.decode()}) == other
    with pytest.raises(SettingsError, match="ASSISTANT_NEW_ENCRYPTION_KEY is not"):
        load_new_keyring(settings, environ={
            "ASSISTANT_NEW_BLIND_INDEX_KEY": other.blind_index_key.decode()})


# ---- --now ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0001-01-01T00:00", "9999-12-31T23:59-05:00",
                                  "0001-01-01T00:00+08:00"])
def test_now_out_of_range_is_a_settings_error(text):
    from assistant.bootstrap import parse_now

    with pytest.raises(SettingsError, match="out of range"):
        parse_now(text, "Asia/Shanghai")


def test_now_out_of_range_is_one_error_line_from_the_command_line(in_tmp, monkeypatch, capsys):
    from assistant import cli

    monkeypatch.setattr("sys.argv", ["assistant", "--now", "0001-01-01T00:00", "db", "current"])
    with pytest.raises(SystemExit) as exited:
        cli.run()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --now '0001-01-01T00:00' is out of range")
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("blind,encryption,message", [
    ("k" * 40, "not-a-fernet-key", "not a Fernet key"),
    ("short", Fernet.generate_key().decode(), "at least 32 characters"),
])
def test_bad_keys_are_refused(in_tmp, blind, encryption, message):
    settings = _settings(in_tmp)
    with pytest.raises(SettingsError, match=message):
        load_keyring(settings, environ={"ASSISTANT_BLIND_INDEX_KEY": blind,
                                        "ASSISTANT_ENCRYPTION_KEY": encryption})
    assert not settings.secrets_file.exists()


def test_conversation_expiry_is_set_per_channel_and_voice_lasts_the_call():
    from datetime import timedelta

    from assistant.config import load_settings

    settings = load_settings(environ={"ASSISTANT_CONVERSATION_SMS_EXPIRY_HOURS": "2.5"})
    assert settings.conversation.expiry("sms") == timedelta(hours=2.5)
    assert settings.conversation.expiry("telegram") == timedelta(hours=24)
    assert settings.conversation.expiry("voice") is None
