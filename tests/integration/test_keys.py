"""Keys: where they come from, the key check against the database, rotation, and the
startup safety around them (file modes, --now), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import stat
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from assistant import cli
from assistant.booking import audit, keys, results as r, service
from assistant.booking.identity import Keyring, address_purpose, name_for_index, name_purpose
from assistant.booking.models import (
    AuditEvent,
    Booking,
    ChannelAddress,
    ConversationRecord,
    KeyCheck,
    Patient,
    PatientLink,
    ProcessedEvent,
)
from assistant.bootstrap import build, fixed_clock
from assistant.config import SettingsError, load_settings
from tests.conftest import TEST_KEYS, keys_environ
from tests.support import add_hospital, add_slot, person, phone

VISIT = date(2026, 12, 5)  # released 28 Nov 15:00; the tests' now is 1 Dec 09:00


# ---- helpers --------------------------------------------------------------------------


def env_for(keyring: Keyring, *, new: Keyring | None = None) -> dict[str, str]:
    environ = {"ASSISTANT_BLIND_INDEX_KEY": keyring.blind_index_key.decode(),
               "ASSISTANT_ENCRYPTION_KEY": ",".join(k.decode() for k in keyring.encryption_keys)}
    if new is not None:
        environ.update({"ASSISTANT_NEW_BLIND_INDEX_KEY": new.blind_index_key.decode(),
                        "ASSISTANT_NEW_ENCRYPTION_KEY": new.encryption_key.decode()})
    return environ


def base_env(app, **extra: str) -> dict[str, str]:
    return {"ASSISTANT_DATABASE_URL": app.settings.database_url,
            "ASSISTANT_INSTANCE_PATH": str(app.settings.instance_path),
            "ASSISTANT_GENERATE_SECRETS": "false", **extra}


def build_with(app, keys_env: dict[str, str], now, **extra: str):
    environ = {**base_env(app, **extra), **keys_env}
    return build(load_settings(environ=environ), clock=fixed_clock(now), environ=environ)


def run_cli(monkeypatch, capsys, environ: dict[str, str], *args: str) -> tuple[int, str, str]:
    """The real entry point (`assistant`), as an operator runs it: settings errors come
    out as `error:` lines with exit code 2."""
    for name in list(os.environ):
        if name.startswith("ASSISTANT_"):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.argv", ["assistant", *args])
    code = 0
    try:
        cli.run()
    except SystemExit as exited:
        code = exited.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def count(services, model) -> int:
    with services.uow.read_only() as uow:
        return uow.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def booked(services, now):
    """Two patients booked from two phones, a conversation and a stored turn."""
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        slots = [add_slot(uow.session, depts[d], VISIT, 9, capacity=3)
                 for d in ("cardiology", "eyes", "bones")]
        uow.commit()
    people = [person("Wang Fang"), person("Li Wei", birth=date(1948, 6, 1))]
    for n, who in enumerate(people):
        result = service.book_slot(services, identity_input=who, slot_id=slots[0], channel="sms",
                                   now=now, booked_by=phone(n), idempotency_key=f"k{n}")
        assert isinstance(result, r.Booked), result
    keyring = services.keyring
    with services.uow() as uow:
        uow.session.add(ConversationRecord(
            channel="sms", address_index=keyring.blind_index("conversation:sms:phone", "+x"),
            state_encrypted=keyring.encrypt("{}"), version=0, updated_at=now))
        uow.session.add(ProcessedEvent(key="turn:sms:e1", claimed_at=now,
                                       result={"turn": keyring.encrypt('{"ended": false}')}))
        uow.commit()
    return {"people": people, "slots": slots}


# ---- where keys come from -------------------------------------------------------------


def test_missing_secrets_file_with_patients_is_refused_and_nothing_generated(
        app, booked, now, monkeypatch, capsys):
    settings_env = base_env(app, ASSISTANT_GENERATE_SECRETS="true")
    settings = load_settings(environ=settings_env)
    assert not settings.secrets_file.exists()
    with pytest.raises(SettingsError) as raised:
        build(settings, clock=fixed_clock(now), environ={})
    message = str(raised.value)
    assert f"no keys found at {settings.secrets_file}" in message
    assert "restore the secrets file" in message and "\n" not in message
    assert not settings.secrets_file.exists()
    # Every command, `audit verify` included, stops the same way.
    code, out, err = run_cli(monkeypatch, capsys, settings_env, "audit", "verify")
    assert code == 2 and out == ""
    assert "no keys found at" in one_error_line(err)
    assert not settings.secrets_file.exists()
    assert count(app.services, Patient) == 2


def test_audit_events_alone_also_forbid_generating_keys(app, now):
    with app.services.uow() as uow:
        audit.append(uow.session, app.services.keyring.audit_key, actor=audit.SYSTEM,
                     action="test.event", subject="x", details={}, at=now)
        uow.commit()
    settings = load_settings(environ=base_env(app, ASSISTANT_GENERATE_SECRETS="true"))
    with pytest.raises(SettingsError, match="holds patients or audit events"):
        build(settings, environ={})
    assert not settings.secrets_file.exists()


@pytest.mark.parametrize("present", ["ASSISTANT_BLIND_INDEX_KEY", "ASSISTANT_ENCRYPTION_KEY"])
def test_a_partial_environment_is_refused_naming_the_missing_key(app, booked, now, present):
    missing = ({"ASSISTANT_BLIND_INDEX_KEY", "ASSISTANT_ENCRYPTION_KEY"} - {present}).pop()
    with pytest.raises(SettingsError, match=f"{missing} is not"):
        build_with(app, {present: keys_environ()[present]}, now,
                   ASSISTANT_GENERATE_SECRETS="true")
    assert not app.settings.secrets_file.exists()


def test_generation_is_allowed_on_an_empty_demo_database(database_url, tmp_path, now):
    environ = {"ASSISTANT_DATABASE_URL": database_url,
               "ASSISTANT_INSTANCE_PATH": str(tmp_path / "instance"),
               "ASSISTANT_GENERATE_SECRETS": "true"}
    settings = load_settings(environ=environ)
    built = build(settings, clock=fixed_clock(now), environ={})
    try:
        assert settings.secrets_file.exists()
        assert stat.S_IMODE(settings.secrets_file.stat().st_mode) == 0o600
        with built.services.uow.read_only() as uow:
            recorded = uow.session.get(KeyCheck, 1).blind_index_check
        assert recorded == keys.blind_check(built.services.keyring)
    finally:
        built.close()
    again = build(settings, clock=fixed_clock(now), environ={})  # the same keys, from the file
    try:
        assert again.services.keyring == built.services.keyring
    finally:
        again.close()


def test_generation_on_a_fresh_database_without_tables(tmp_path, now):
    environ = {"ASSISTANT_INSTANCE_PATH": str(tmp_path / "instance"),
               "ASSISTANT_GENERATE_SECRETS": "true"}
    settings = load_settings(environ=environ)
    built = build(settings, clock=fixed_clock(now), environ={})
    try:
        assert settings.secrets_file.exists()
        assert built.keys_checked is False  # no key_check table yet: checked after upgrading
    finally:
        built.close()


# ---- the key check ----------------------------------------------------------------------


def test_the_check_row_is_recorded_on_first_start(app):
    with app.services.uow.read_only() as uow:
        row = uow.session.get(KeyCheck, 1)
        assert row is not None and row.rotation is None
        assert row.blind_index_check == keys.blind_check(TEST_KEYS)
        assert TEST_KEYS.decrypt(row.encryption_check) == keys.CHECK_TEXT
        assert Keyring.generate().decrypt(row.encryption_check) is None


def test_a_wrong_blind_index_key_is_named(app, booked, now, monkeypatch, capsys):
    wrong = Keyring(Keyring.generate().blind_index_key, TEST_KEYS.encryption_keys)
    with pytest.raises(keys.KeyCheckError) as raised:
        build_with(app, env_for(wrong), now)
    message = str(raised.value)
    assert message.startswith("the blind-index key does not match the one this database "
                              "was written with (key check)")
    code, out, err = run_cli(monkeypatch, capsys, {**base_env(app), **env_for(wrong)},
                             "bookings", "list")
    assert code == 2 and out == ""
    assert "the blind-index key does not match" in one_error_line(err)


def test_a_wrong_encryption_key_is_named(app, booked, now, monkeypatch, capsys):
    wrong = Keyring(TEST_KEYS.blind_index_key, (Keyring.generate().encryption_key,))
    with pytest.raises(keys.KeyCheckError, match="^the encryption key does not match .*key check"):
        build_with(app, env_for(wrong), now)
    code, _, err = run_cli(monkeypatch, capsys, {**base_env(app), **env_for(wrong)},
                           "audit", "verify")
    assert code == 2 and "the encryption key does not match" in one_error_line(err)


def test_without_a_check_row_the_keys_are_confirmed_against_the_data(app, booked, now):
    with app.services.uow() as uow:
        uow.session.query(KeyCheck).delete()
        uow.commit()
    wrong_blind = Keyring(Keyring.generate().blind_index_key, TEST_KEYS.encryption_keys)
    with pytest.raises(keys.KeyCheckError, match="^the blind-index key .*stored data"):
        build_with(app, env_for(wrong_blind), now)
    wrong_encryption = Keyring(TEST_KEYS.blind_index_key, (Keyring.generate().encryption_key,))
    with pytest.raises(keys.KeyCheckError, match="^the encryption key .*stored data"):
        build_with(app, env_for(wrong_encryption), now)
    assert count(app.services, KeyCheck) == 0  # nothing recorded under a wrong key
    right = build_with(app, env_for(TEST_KEYS), now)
    right.close()
    assert count(app.services, KeyCheck) == 1


def test_an_older_schema_is_checked_by_its_addresses_before_an_upgrade_moves_data(tmp_path, now):
    from sqlalchemy import text

    from assistant.booking import migrate
    from assistant.booking.database import create_db_engine

    path = tmp_path / "old.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate.upgrade(engine, "0004")
    value = "+8613800138000"
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO channel_address (kind, address_index, address_encrypted, version, "
            "created_at) VALUES ('phone', :index, :token, 0, '2026-11-01 00:00:00')"),
            {"index": TEST_KEYS.blind_index(address_purpose("phone"), value),
             "token": TEST_KEYS.encrypt(value)})
    engine.dispose()
    env = {"ASSISTANT_DATABASE_URL": f"sqlite:///{path}",
           "ASSISTANT_INSTANCE_PATH": str(tmp_path / "instance"),
           "ASSISTANT_GENERATE_SECRETS": "false"}
    wrong = Keyring(TEST_KEYS.blind_index_key, (Keyring.generate().encryption_key,))
    result = CliRunner().invoke(cli.main, ["db", "upgrade"], env={**env, **env_for(wrong)})
    assert isinstance(result.exception, keys.KeyCheckError), result.output
    assert "the encryption key does not match" in str(result.exception)
    result = CliRunner().invoke(cli.main, ["db", "upgrade"], env={**env, **env_for(TEST_KEYS)})
    assert result.exit_code == 0, result.output
    built = build(load_settings(environ={**env, **env_for(TEST_KEYS)}),
                  environ={**env, **env_for(TEST_KEYS)}, clock=fixed_clock(now))
    try:
        with built.services.uow.read_only() as uow:
            assert uow.session.get(KeyCheck, 1) is not None
    finally:
        built.close()


def test_db_upgrade_records_the_check_row_of_a_fresh_database(tmp_path):
    path = tmp_path / "fresh.db"
    env = {"ASSISTANT_DATABASE_URL": f"sqlite:///{path}",
           "ASSISTANT_INSTANCE_PATH": str(tmp_path / "instance"),
           "ASSISTANT_GENERATE_SECRETS": "false", **keys_environ()}
    result = CliRunner().invoke(cli.main, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    settings = load_settings(environ=env)
    built = build(settings, environ=env)
    try:
        with built.services.uow.read_only() as uow:
            assert uow.session.get(KeyCheck, 1).blind_index_check == keys.blind_check(TEST_KEYS)
    finally:
        built.close()


# ---- rotation ---------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def interrupt_after(batches: int):
    seen = []

    def after_batch(progress):
        seen.append(progress)
        if len(seen) >= batches:
            raise Interrupted(progress)
    return after_batch


def test_an_interrupted_rotation_resumes_and_moves_everything_to_the_new_keys(
        app, booked, now, monkeypatch, capsys):
    old, new = TEST_KEYS, Keyring.generate()
    events_before = count(app.services, AuditEvent)
    with pytest.raises(Interrupted):
        keys.rotate(app.services.uow, old, new, now, batch_size=1, after_batch=interrupt_after(1))
    with app.services.uow.read_only() as uow:
        progress = uow.session.get(KeyCheck, 1).rotation
    assert progress["step"] == "patient" and progress["after"] is not None

    # Mid-rotation every other command refuses, with the old keys or the new ones.
    for keyring in (old, new):
        with pytest.raises(keys.KeyCheckError, match="a key rotation is under way"):
            build_with(app, env_for(keyring), now)
    code, out, err = run_cli(monkeypatch, capsys, {**base_env(app), **env_for(old)},
                             "bookings", "list")
    assert code == 2 and "run `assistant keys rotate` again" in one_error_line(err)
    # ... and a rotation towards other new keys is refused too.
    with pytest.raises(keys.KeyCheckError, match="not the ones this rotation started with"):
        keys.rotate(app.services.uow, old, Keyring.generate(), now)

    report = keys.rotate(app.services.uow, old, new, now, batch_size=2)
    assert report.resumed
    assert report.rows["patient"] == 2 and report.rows["conversation"] == 1
    assert report.rows["processed_event"] == 1

    # The new keys pass the key check; the old ones are refused by it.
    with pytest.raises(keys.KeyCheckError, match="blind-index key and the encryption key do not"):
        build_with(app, env_for(old), now)
    rotated = build_with(app, env_for(Keyring(new.blind_index_key,
                                              new.encryption_keys + old.encryption_keys)), now)
    try:
        services = rotated.services
        with services.uow.read_only() as uow:
            session = uow.session
            for p in session.execute(select(Patient)).scalars():
                number = new.decrypt(p.id_encrypted)
                assert number in {who.number for who in booked["people"]}
                assert old.decrypt(p.id_encrypted) is None
                assert new.decrypt(p.birth_date_encrypted) is not None
            for model in (Booking, PatientLink):
                for row in session.execute(select(model)).scalars():
                    if row.name_encrypted is None:
                        continue
                    name = new.decrypt(row.name_encrypted)
                    assert name in ("Wang Fang", "Li Wei")
                    assert row.name_index == new.blind_index(name_purpose(), name_for_index(name))
            for address in session.execute(select(ChannelAddress)).scalars():
                value = new.decrypt(address.address_encrypted)
                assert value is not None
                assert address.address_index == new.blind_index(address_purpose(address.kind), value)
            assert session.execute(select(func.count()).select_from(ConversationRecord)).scalar_one() == 0
            turn = session.get(ProcessedEvent, "turn:sms:e1").result["turn"]
            assert new.decrypt(turn) == '{"ended": false}' and old.decrypt(turn) is None
            report = audit.verify(session, new.audit_key)
            assert report.ok, report.problems
            assert report.checked == events_before + 1
            newest = session.get(AuditEvent, report.newest_event)
            assert newest.action == keys.ROTATED
            assert not audit.verify(session, old.audit_key).ok
            assert session.get(KeyCheck, 1).rotation is None

        # The same identity is found again: booking again makes no new patient.
        patients = count(services, Patient)
        again = service.book_slot(services, identity_input=booked["people"][0],
                                  slot_id=booked["slots"][1], channel="sms", now=now,
                                  booked_by=phone(0), idempotency_key="after-rotation")
        assert isinstance(again, r.Booked), again
        assert count(services, Patient) == patients
        with services.uow.read_only() as uow:
            assert audit.verify(uow.session, new.audit_key).ok
    finally:
        rotated.close()

    # Rotating again with the same keys says it is done.
    with pytest.raises(keys.KeyCheckError, match="already uses the new keys"):
        keys.rotate(app.services.uow, old, new, now)


def test_rotation_refuses_to_start_on_a_broken_audit_trail(app, booked, now):
    with app.services.uow() as uow:
        uow.session.execute(update(AuditEvent).where(AuditEvent.id == 1).values(subject="edited"))
        uow.commit()
    with pytest.raises(keys.KeyCheckError, match="audit trail does not verify"):
        keys.rotate(app.services.uow, TEST_KEYS, Keyring.generate(), now)
    with app.services.uow.read_only() as uow:
        assert uow.session.get(KeyCheck, 1).rotation is None  # nothing started


def test_rotation_with_wrong_current_keys_is_refused(app, booked, now):
    wrong = Keyring(TEST_KEYS.blind_index_key, (Keyring.generate().encryption_key,))
    with pytest.raises(keys.KeyCheckError, match="the encryption key does not match"):
        keys.rotate(app.services.uow, wrong, Keyring.generate(), now)


def test_keys_generate_and_rotate_on_the_command_line(app, booked, now, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, {}, "keys", "generate")
    assert code == 0
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    import tomllib
    generated = tomllib.loads("\n".join(lines))
    assert set(generated) == {"new_blind_index_key", "new_encryption_key"}
    new = Keyring(generated["new_blind_index_key"].encode(),
                  (generated["new_encryption_key"].encode(),))

    env = {**base_env(app), **env_for(TEST_KEYS, new=new)}
    code, out, err = run_cli(monkeypatch, capsys, env, "--now", "2026-12-01T09:00",
                             "keys", "rotate")
    assert code == 0, err
    assert "keys rotated:" in out and "patient 2" in out
    assert "delete the new_* lines" in out

    code, _, err = run_cli(monkeypatch, capsys, {**base_env(app), **env_for(TEST_KEYS)},
                           "audit", "verify")
    assert code == 2 and "do not match" in one_error_line(err)
    code, out, err = run_cli(monkeypatch, capsys, {**base_env(app), **env_for(new)},
                             "bookings", "list")
    assert code == 0, err
    assert len(out.splitlines()) == 2


def test_keys_rotate_reads_the_new_keys_from_the_secrets_file(app, booked, now, monkeypatch,
                                                              capsys):
    new = Keyring.generate()
    path = app.settings.secrets_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'blind_index_key = "{TEST_KEYS.blind_index_key.decode()}"\n'
                    f'encryption_key = "{TEST_KEYS.encryption_key.decode()}"\n'
                    f'new_blind_index_key = "{new.blind_index_key.decode()}"\n'
                    f'new_encryption_key = "{new.encryption_key.decode()}"\n')
    os.chmod(path, 0o600)
    code, out, err = run_cli(monkeypatch, capsys, base_env(app), "keys", "rotate",
                             "--batch-size", "1")
    assert code == 0, err
    # The operator makes the new keys current, keeping the old encryption key second.
    path.write_text(f'blind_index_key = "{new.blind_index_key.decode()}"\n'
                    f'encryption_keys = ["{new.encryption_key.decode()}", '
                    f'"{TEST_KEYS.encryption_key.decode()}"]\n')
    code, out, err = run_cli(monkeypatch, capsys, base_env(app), "audit", "verify")
    assert code == 0, err


# ---- startup safety ---------------------------------------------------------------------


def test_serve_refuses_a_clock_fixed_by_the_environment(tmp_path, monkeypatch):
    served = []
    monkeypatch.setattr("assistant.web.create_app",
                        lambda app: type("Fake", (), {"run": lambda self, **kw: served.append(kw)})())
    env = {"ASSISTANT_INSTANCE_PATH": str(tmp_path / "instance"),
           "ASSISTANT_GENERATE_SECRETS": "false", "ASSISTANT_NOW": "2026-12-01T09:00",
           **keys_environ()}
    result = CliRunner().invoke(cli.main, ["serve"], env=env)
    assert result.exit_code == 2
    assert "error: serve refuses a fixed clock from ASSISTANT_NOW" in result.output
    assert not served and not (tmp_path / "instance").exists()  # refused before anything

    env.pop("ASSISTANT_NOW")
    result = CliRunner().invoke(cli.main, ["--now", "2026-12-01T09:00", "serve", "--port", "0"],
                                env=env)
    assert result.exit_code == 0, result.output
    assert served == [{"host": "127.0.0.1", "port": 0, "debug": False, "use_reloader": False}]
    # serve upgraded the fresh database and recorded its key check.
    settings = load_settings(environ=env)
    built = build(settings, environ=env)
    try:
        with built.services.uow.read_only() as uow:
            assert uow.session.get(KeyCheck, 1) is not None
    finally:
        built.close()


def test_sqlite_database_and_instance_folder_are_created_owner_only(tmp_path):
    instance = tmp_path / "instance"
    env = {"ASSISTANT_INSTANCE_PATH": str(instance), **keys_environ(),
           "ASSISTANT_GENERATE_SECRETS": "false"}
    old = os.umask(0)
    try:
        built = build(load_settings(environ=env), environ=env)
        built.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert stat.S_IMODE((instance / "careline.db").stat().st_mode) == 0o600


def test_an_existing_readable_sqlite_file_is_tightened(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    database = instance / "careline.db"
    database.touch()
    os.chmod(database, 0o644)
    env = {"ASSISTANT_INSTANCE_PATH": str(instance), **keys_environ(),
           "ASSISTANT_GENERATE_SECRETS": "false"}
    build(load_settings(environ=env), environ=env).close()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_now_out_of_range_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, {"ASSISTANT_INSTANCE_PATH": str(Path("inst"))},
                             "--now", "0001-01-01T00:00", "audit", "verify")
    assert code == 2 and out == ""
    assert "--now '0001-01-01T00:00' is out of range" in one_error_line(err)


def test_rotation_moves_an_open_draws_seed_and_the_names_of_requests_and_waitlists(app, now):
    """A draw taking requests when the keys change still runs, and still verifies."""
    from datetime import timedelta

    from assistant.booking import release
    from assistant.booking.models import Draw, DrawRequest

    services = app.services
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        add_slot(uow.session, depts["eyes"], date(2026, 12, 7), 9, release_at=now + timedelta(hours=2),
                 requests_open_at=now - timedelta(hours=1))
        uow.commit()
    for n, name in enumerate(("Wang Fang", "Li Wei")):
        assert isinstance(release.request_place(services, department_id=depts["eyes"], visit_date=date(2026, 12, 7),
                                                part="any", channel="sms", now=now, booked_by=phone(n),
                                                identity_input=person(name)), r.Requested)
    with services.uow.read_only() as uow:
        seed = TEST_KEYS.decrypt(uow.session.execute(select(Draw.seed_encrypted)).scalar_one())
    new = Keyring.generate()
    report = keys.rotate(services.uow, TEST_KEYS, new, now)
    assert report.rows["draw"] == 1 and report.rows["draw_request"] == 2
    rotated = build_with(app, env_for(Keyring(new.blind_index_key, new.encryption_keys + TEST_KEYS.encryption_keys)),
                         now)
    try:
        with rotated.services.uow.read_only() as uow:
            assert new.decrypt(uow.session.execute(select(Draw.seed_encrypted)).scalar_one()) == seed
            names = {new.decrypt(q.name_encrypted) for q in uow.session.execute(select(DrawRequest)).scalars()}
            draw_id = uow.session.execute(select(Draw.id)).scalar_one()
        assert names == {"Wang Fang", "Li Wei"}
        drawn = release.run_draw(rotated.services, draw_id, now=now + timedelta(hours=2), worker="w")
        assert drawn.placed == 1 and drawn.waitlisted == 1
        assert release.verify_draw(rotated.services, draw_id).ok
    finally:
        rotated.close()
