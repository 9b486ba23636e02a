"""No patient's ID number, name or phone number, and no fragment of one, is stored or
logged in plain text.

A realistic day runs through the service layer and the CLI with every log captured
(SQL statements and their parameters included). Then every value of every table and
the log text are searched for each identity in every spelling a leak could take: the
number, its last four characters, the region code next to the birth date, the birth
date in any format, names in both scripts. The ciphertexts are decrypted to prove the
data is really there, only encrypted.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from assistant.booking import identity, results as r, service
from assistant.booking.models import Base, Booking, ChannelAddress, Patient
from assistant.booking.service import AddressInput, IdentityInput, Staff
from assistant.cli import main
from tests.conftest import keys_environ
from tests.support import add_hospital, add_slot, cn_id, local

VISIT = date(2026, 12, 5)  # Saturday; released 28 Nov 15:00, closes 4 Dec 16:00


@dataclass(frozen=True)
class Person:
    identity: IdentityInput
    normalised_id: str
    other_script: str = ""  # the name in the other script, which must not leak either


def _person(kind: str, typed: str, normalised: str, name: str, birth: date | None = None,
            other_script: str = "", **kw) -> Person:
    return Person(IdentityInput(kind, typed, name, birth, **kw), normalised, other_script)


# Typed the way people type them: lowercase x, spaces, dashes.
WANG = _person("cn_resident_id", "110105 19491231 002x", "11010519491231002X", "王芳", date(1949, 12, 31),
               "Wang Fang")
LI = _person("cn_resident_id", "31010419620815019x", "31010419620815019X", "Li Wei", date(1962, 8, 15),
             "李伟")
MARIA = _person("generic", "e1234-5678", "E12345678", "María José O'Neil-García", date(1981, 4, 27),
                document="passport", country="es")
_zhang_id = cn_id(date(1988, 11, 3), region="440106", sequence=5)
ZHANG = _person("cn_resident_id", _zhang_id, _zhang_id, "张伟", date(1988, 11, 3), "Zhang Wei")
_min_id = cn_id(date(1975, 6, 1), region="320311", sequence=77)
ZHANG_MIN = _person("cn_resident_id", _min_id, _min_id, "Zhang Min", date(1975, 6, 1), "张敏")
# Refused attempts must leave no trace either.
IMPOSTOR_NAME = "赵磊"
BAD_ID = "110105194912310021"  # wrong check character
BAD_ID_NAME = "Chen Jie"

PEOPLE = (WANG, LI, MARIA, ZHANG, ZHANG_MIN)

# (as typed, E.164, national significant number)
PHONE_WANG = ("13800138000", "+8613800138000", "13800138000")
PHONE_LI = ("+86 139 1234 5678", "+8613912345678", "13912345678")
PHONE_MARIA = ("+34 612 345 678", "+34612345678", "612345678")
PHONE_MIN = ("137-0000-1234", "+8613700001234", "13700001234")
PHONES = (PHONE_WANG, PHONE_LI, PHONE_MARIA, PHONE_MIN)
TELEGRAM_CHAT = "5012345678"


def by_phone(entry) -> AddressInput:
    return AddressInput("phone", entry[0])


TELEGRAM = AddressInput("telegram", TELEGRAM_CHAT)


def id_spellings(person: Person) -> set[str]:
    value = person.normalised_id
    forms = {value, value.lower(), value[:-1] + value[-1].lower(), person.identity.number,
             "".join(person.identity.number.split())}
    if person.identity.kind == "cn_resident_id":
        forms.add(value[:17])  # everything but the check character is as good as the number
        forms.add(value[:14])  # the region code next to the birth date
    return forms


def fragment_spellings(person: Person) -> set[str]:
    """Short fragments: the last four characters and the birth date in any format. They
    are searched for outside ciphertexts and hashes, where four digits turn up by chance."""
    value = person.normalised_id
    forms = {value[-4:], value[-4:].lower()}
    born = person.identity.birth_date
    if born is not None:
        forms |= {born.isoformat(), f"{born:%Y%m%d}", f"{born:%Y/%m/%d}", f"{born:%Y.%m.%d}",
                  f"{born:%d/%m/%Y}", f"{born:%m/%d/%Y}", f"{born:%d.%m.%Y}",
                  f"{born.year}年{born.month}月{born.day}日", f"{born:%B} {born.day}, {born.year}",
                  f"{born:%b} {born.day}, {born.year}", f"{born.day} {born:%B} {born.year}",
                  f"{born.year}-{born.month}-{born.day}"}
    return forms


# Fernet tokens (whole, or cut short by SQLAlchemy's log), hex digests (a digest has a
# letter somewhere among its characters) and the SQL log's timings: four digits turn up
# in them by chance.
OPAQUE = re.compile(r"gAAAAA[A-Za-z0-9_\-=]+|\[(?:cached since|generated in) [0-9.e\-]+s(?: ago)?\]"
                    r"|[A-Za-z0-9_\-=]*\s*\.\.\.\s*\(?\d+ characters truncated\)?\s*\.\.\.\s*[A-Za-z0-9_\-=]*"
                    r"|\b(?=[0-9a-f]*[a-f])[0-9a-f]{12,}\b")


def last_fours() -> set[str]:
    """Masks show the last four to staff by design (1101**********002X)."""
    return {form for person in PEOPLE for form in (person.normalised_id[-4:],
                                                     person.normalised_id[-4:].lower())}


def name_spellings(name: str) -> set[str]:
    return {name, name.casefold(), identity.name_for_index(name), name.upper()}


def phone_spellings(entry) -> set[str]:
    typed, e164, national = entry
    return {typed, e164, e164.lstrip("+"), national}


def all_secrets() -> dict[str, str]:
    """Every plain-text form that must never appear, mapped to what it is."""
    found = {}
    for person in PEOPLE:
        for form in id_spellings(person):
            found[form] = f"ID number of {person.identity.name}"
        for form in name_spellings(person.identity.name) | name_spellings(person.other_script):
            found[form] = f"name {person.identity.name}"
        for form in fragment_spellings(person):
            found[form] = f"ID fragment or birth date of {person.identity.name}"
    found.pop("", None)
    for form in name_spellings(IMPOSTOR_NAME) | name_spellings(BAD_ID_NAME):
        found[form] = "name from a refused attempt"
    found[BAD_ID] = found[BAD_ID.lower()] = "ID number from a refused attempt"
    for entry in PHONES:
        for form in phone_spellings(entry):
            found[form] = f"phone {entry[1]}"
    found[TELEGRAM_CHAT] = "telegram chat id"
    return found


def leaks(corpus: str, where: str, allowed: set[str] = frozenset()) -> list[str]:
    corpus = OPAQUE.sub("<opaque>", corpus)
    folded = corpus.casefold()
    return [
        f"{what} ({form!r}) appears in {where}"
        for form, what in sorted(all_secrets().items()) if form and form not in allowed
        if form in corpus or form.casefold() in folded
    ]


def dump_database(engine) -> str:
    """Every value of every table, both as SQLAlchemy types them and as raw rows."""
    parts = []

    def add(value):
        parts.append(str(value))
        if isinstance(value, (dict, list)):
            parts.append(json.dumps(value, ensure_ascii=False, default=str))

    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                for value in row:
                    add(value)
            for row in connection.execute(text(f"SELECT * FROM {table.name}")):
                for value in row:
                    add(value)
    return "\n".join(parts)


def cli_env(app) -> dict[str, str]:
    return {
        "ASSISTANT_DATABASE_URL": app.settings.database_url,
        "ASSISTANT_INSTANCE_PATH": str(app.settings.instance_path),
        "ASSISTANT_GENERATE_SECRETS": "false",
        "ASSISTANT_LOG_LEVEL": "DEBUG",
        "ASSISTANT_IDENTITY_KINDS": '["cn_resident_id", "generic"]',
        **keys_environ(),
    }


def run_scenario(app, services, now: datetime) -> dict[str, object]:
    """A realistic day; returns what staff and the CLI were shown."""
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        slot = {
            "card9": add_slot(uow.session, depts["cardiology"], VISIT, 9, capacity=3),
            "card10": add_slot(uow.session, depts["cardiology"], VISIT, 10, capacity=3),
            "eyes9": add_slot(uow.session, depts["eyes"], VISIT, 9, capacity=2),
            "bones9": add_slot(uow.session, depts["bones"], VISIT, 9, capacity=2),
            **{f"min{h}": add_slot(uow.session, depts["cardiology"], VISIT, h) for h in (11, 12, 13)},
            "min_eyes": add_slot(uow.session, depts["eyes"], VISIT, 11),
        }
        uow.commit()

    def book(person, slot_key, address, channel="sms", **kw):
        return service.book_slot(services, identity_input=person.identity, slot_id=slot[slot_key],
                                 channel=channel, now=now, booked_by=address, **kw)

    wang = book(WANG, "card9", by_phone(PHONE_WANG), idempotency_key="SMwang1")
    assert isinstance(wang, r.Booked), wang
    assert book(WANG, "card9", by_phone(PHONE_WANG), idempotency_key="SMwang1") == wang
    li = book(LI, "eyes9", by_phone(PHONE_LI), channel="voice")
    assert isinstance(li, r.Booked), li
    maria = book(MARIA, "bones9", by_phone(PHONE_MARIA))
    assert isinstance(maria, r.Booked), maria
    # A daughter on Telegram books for her father and her mother.
    zhang = book(ZHANG, "card9", TELEGRAM, channel="telegram", relation="family",
                 idempotency_key="tg-1001")
    assert isinstance(zhang, r.Booked), zhang
    wang_eyes = book(WANG, "eyes9", TELEGRAM, channel="telegram", relation="family")
    assert isinstance(wang_eyes, r.Booked), wang_eyes

    # Another name with a known ID number is not refused for the name; here Wang's two
    # bookings that day fill her quota.
    impostor = Person(IdentityInput("cn_resident_id", WANG.identity.number, IMPOSTOR_NAME), "")
    assert book(impostor, "bones9", by_phone(PHONE_LI)) == r.QuotaExceeded("per_visit_day", 2)
    bad = Person(IdentityInput("cn_resident_id", BAD_ID, BAD_ID_NAME), "")
    assert book(bad, "bones9", by_phone(PHONE_LI)) == r.InvalidIdentity("id_number", "checksum")

    cancelled = service.cancel_booking(services, code=li.booking.code, requester=by_phone(PHONE_LI),
                                       channel="voice", now=now)
    assert isinstance(cancelled, r.Cancelled), cancelled
    moved = service.reschedule_booking(services, code=wang.booking.code, new_slot_id=slot["card10"],
                                       requester=by_phone(PHONE_WANG), channel="sms", now=now)
    assert isinstance(moved, r.Rescheduled), moved

    # Three cancellations in a row suspend Zhang Min's phone (never verified at the desk).
    for hour in (11, 12, 13):
        held = book(ZHANG_MIN, f"min{hour}", by_phone(PHONE_MIN))
        assert isinstance(held, r.Booked), held
        assert isinstance(service.cancel_booking(
            services, code=held.booking.code, requester=by_phone(PHONE_MIN), channel="sms",
            now=now), r.Cancelled)
    refused = book(ZHANG_MIN, "min_eyes", by_phone(PHONE_MIN))
    assert isinstance(refused, r.Suspended) and refused.reason == "cancellations"

    shown = {
        "linked": service.linked_patients(services, TELEGRAM),
        "patient_bookings": service.find_bookings_of_identity(services, WANG.identity),
        "address_bookings": service.address_bookings(services, TELEGRAM, now=now),
        "suspensions": service.active_suspensions(services, now=now),
        "staff_all": service.staff_bookings(services),
        "staff_day": service.staff_bookings(services, day=VISIT),
    }
    assert {p.name for p in shown["linked"]} == {"王芳", "张伟"}  # decrypted for the turn

    checked = service.check_in(services, code=maria.booking.code, id_number="e1234 5678",
                               now=local(VISIT, 8, 40), staff=Staff("desk1"))
    assert isinstance(checked, r.CheckedIn), checked
    report = service.mark_no_shows(services, now=local(VISIT + timedelta(days=1), 1))
    assert report == r.NoShowReport(marked=3, suspended_patients=0)
    shown["outbox"] = CliRunner().invoke(main, ["--now", "2026-12-06T09:00", "outbox", "list"],
                                         env=cli_env(app)).output

    result = CliRunner().invoke(main, ["--now", "2026-12-06T09:00", "bookings", "list", "--json"],
                                env=cli_env(app))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 9
    assert {row["status"] for row in rows} == {"cancelled", "no_show", "checked_in"}
    shown["cli_json"] = result.output
    text_result = CliRunner().invoke(main, ["bookings", "list", "--date", VISIT.isoformat()],
                                     env=cli_env(app))
    assert text_result.exit_code == 0, text_result.output
    shown["cli_text"] = text_result.output
    suspensions = CliRunner().invoke(main, ["--now", "2026-12-06T09:00", "suspensions", "list"],
                                     env=cli_env(app))
    assert suspensions.exit_code == 0 and "cancellations" in suspensions.output
    shown["cli_suspensions"] = suspensions.output
    return shown


@pytest.fixture
def app(generic_app):
    """The scenario has a passport holder: the hospital accepts the generic kind."""
    return generic_app


@pytest.fixture
def scenario(app, services, now, caplog):
    caplog.set_level(logging.DEBUG)
    # SQL and its parameters too: they show what the service hands the database.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    shown = run_scenario(app, services, now)
    return shown, caplog.text


def test_scenario_was_logged(scenario):
    _, log_text = scenario
    # The SQL log proves the capture works, so an empty log can't pass the next tests.
    assert "INSERT INTO booking" in log_text
    assert "INSERT INTO patient" in log_text
    assert "gAAAAA" in log_text  # Fernet tokens: the parameters are in the log as well


def test_leak_search_finds_every_spelling():
    secrets_ = all_secrets()
    assert "11010519491231002x" in secrets_ and "+8613800138000" in secrets_
    assert "13800138000" in secrets_ and "maría josé o'neil-garcía" in secrets_
    for form in secrets_:
        assert leaks(f"before {form} after", "a sample"), form
        assert leaks(f"BEFORE{form.upper()}AFTER", "a sample"), form
    assert leaks("1101**********002X W*** +86*******8000", "masks", allowed=last_fours()) == []
    assert leaks("1101**********002X", "masks")  # only staff may see the last four


def test_database_holds_no_plain_identity(app, scenario):
    assert leaks(dump_database(app.engine), "the database") == []


def test_logs_hold_no_plain_identity(scenario):
    _, log_text = scenario
    assert leaks(log_text, "the logs") == []


def test_staff_views_and_cli_hold_no_plain_identity(scenario):
    shown, _ = scenario
    # "linked" and "address_bookings" are what the address itself is shown, names decrypted.
    staff_text = repr({k: v for k, v in shown.items() if k not in ("linked", "address_bookings")})
    assert leaks(staff_text, "what staff are shown", allowed=last_fours()) == []


def test_staff_see_masked_identities(scenario):
    shown, _ = scenario
    masked_ids = {row.masked_id for row in shown["staff_all"]}
    assert "1101**********002X" in masked_ids
    assert identity.mask_id("E12345678") in masked_ids
    assert {row.masked_name for row in shown["staff_all"]} >= {"王*", "L* W**"}
    rows = [json.loads(line) for line in shown["cli_json"].splitlines()]
    assert {row["patient_id"] for row in rows} == masked_ids
    assert all(re.fullmatch(r"\S{4}\*+\S{4}|\S\*+\S", row["patient_id"]) for row in rows)
    assert "1101**********002X" in shown["cli_text"]


def test_encrypted_columns_decrypt_to_the_originals(app, services, scenario):
    keys = services.keyring
    with services.uow.read_only() as uow:
        patients = uow.session.execute(select(Patient)).scalars().all()
        addresses = uow.session.execute(select(ChannelAddress)).scalars().all()
        bookings = uow.session.execute(select(Booking)).scalars().all()
        assert {keys.decrypt(p.id_encrypted) for p in patients} == {p.normalised_id for p in PEOPLE}
        assert {date.fromisoformat(keys.decrypt(p.birth_date_encrypted)) for p in patients} == {
            p.identity.birth_date for p in PEOPLE}
        assert {keys.decrypt(b.name_encrypted) for b in bookings} == {p.identity.name for p in PEOPLE}
        for p in patients:
            number = keys.decrypt(p.id_encrypted)
            assert p.id_index == keys.blind_index(identity.id_purpose(p.id_kind, p.id_document, p.id_country),
                                                  number)
            assert p.checksum_verified == (p.id_kind == "cn_resident_id")
        for b in bookings:
            assert b.name_index == keys.blind_index("name", identity.name_for_index(keys.decrypt(b.name_encrypted)))
        assert {(a.kind, keys.decrypt(a.address_encrypted)) for a in addresses} == (
            {("phone", entry[1]) for entry in PHONES} | {("telegram", TELEGRAM_CHAT)})
