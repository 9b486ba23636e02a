"""Who may touch a booking, tried as an attacker who knows a patient's ID number and name.

Each test is one finding of the review (issue "Who may touch a booking"): it failed on
the code before the fix. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Date, bindparam, select, text

from assistant.booking import results as r, service
from assistant.booking.models import Booking, OutboxMessage, Patient, PatientLink, Suspension
from assistant.booking.service import AddressInput, CodeHolder, IdentityInput, Staff
from tests.support import add_hospital, local, new_slot, person

VISIT = date(2026, 12, 5)  # released 28 Nov 15:00, closes 4 Dec 16:00
VICTIM_PHONE = AddressInput("phone", "+86 138 0000 0101")
ATTACKER = AddressInput("phone", "+86 139 0000 0202")
DAUGHTER = AddressInput("telegram", "700100200")


def slot(services, dept, day=VISIT, hh=9, mm=0, **kw) -> int:
    return new_slot(services, dept, day, hh, mm, **kw)


def book(services, who, slot_id, now, by, **kw) -> r.Booked | r.Refusal:
    return service.book_slot(services, identity_input=who, slot_id=slot_id, channel="sms",
                             now=now, booked_by=by, **kw)


def cancel(services, code, requester, now):
    return service.cancel_booking(services, code=code, requester=requester, channel="sms", now=now)


def codes(services, address, now) -> set[str]:
    return {b.booking.code for b in service.address_bookings(services, address, now=now)}


def notices(services) -> list[OutboxMessage]:
    with services.uow.read_only() as uow:
        found = uow.session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
        uow.session.expunge_all()  # plain values to look at after the unit of work
        return found


# ---- 1. rights follow the booking -------------------------------------------------------------


def test_a_link_for_family_never_shows_or_cancels_the_patients_own_bookings(services, depts, now):
    victim = person("Wang Fang")
    own = book(services, victim, slot(services, depts["cardiology"]), now, VICTIM_PHONE)
    made = book(services, victim, slot(services, depts["eyes"]), now, ATTACKER, relation="family")
    assert isinstance(own, r.Booked) and isinstance(made, r.Booked)
    assert codes(services, ATTACKER, now) == {made.booking.code}
    assert codes(services, VICTIM_PHONE, now) == {own.booking.code}
    assert cancel(services, own.booking.code, ATTACKER, now) == r.NotPermitted()
    moved = service.reschedule_booking(services, code=own.booking.code,
                                       new_slot_id=slot(services, depts["cardiology"], hh=10),
                                       requester=ATTACKER, channel="sms", now=now)
    assert moved == r.NotPermitted()
    # Knowing the ID number is not a right either (it was one before).
    assert cancel(services, own.booking.code, CodeHolder("0000"), now) == r.NotPermitted()


def test_a_code_with_the_ids_last_four_gives_rights_over_a_booking_a_relative_made(services, depts, now):
    mother = person("Wang Fang")
    made = book(services, mother, slot(services, depts["cardiology"]), now, DAUGHTER, relation="family")
    code = made.booking.code
    assert service.booking_for_holder(services, code=code, id_last4="9999", now=now) is None
    found = service.booking_for_holder(services, code=code, id_last4=mother.number[-4:].lower(), now=now)
    assert found is not None and found.booking.code == code and found.name == "Wang Fang"
    assert cancel(services, code, CodeHolder("9999"), now) == r.NotPermitted()
    assert cancel(services, "NOSUCHCODE", CodeHolder(mother.number[-4:]), now) == r.NotPermitted()
    assert isinstance(cancel(services, code, CodeHolder(mother.number[-4:]), now), r.Cancelled)


def test_booking_by_reference_needs_a_link_of_this_address(services, depts, now):
    victim = person("Wang Fang")
    own = book(services, victim, slot(services, depts["cardiology"]), now, VICTIM_PHONE)
    stolen = service.book_slot(services, patient_ref=own.booking.patient_ref,
                               slot_id=slot(services, depts["eyes"]), channel="sms", now=now,
                               booked_by=ATTACKER)
    assert stolen == r.NotPermitted()


# ---- 2. consequences land on whoever caused them ------------------------------------------------


def test_cancelling_bookings_made_in_her_name_suspends_the_attacker_not_the_patient(services, depts, now):
    victim = person("Wang Fang")
    assert isinstance(book(services, victim, slot(services, depts["cardiology"], hh=8), now, VICTIM_PHONE),
                      r.Booked)
    for hour in (9, 10, 11):
        made = book(services, victim, slot(services, depts["eyes"], hh=hour), now, ATTACKER,
                    relation="family")
        assert isinstance(cancel(services, made.booking.code, ATTACKER, now), r.Cancelled)
    refused = book(services, person("Li Wei"), slot(services, depts["bones"]), now, ATTACKER)
    assert refused == r.Suspended("cancellations", now + timedelta(days=30), scope="address")
    assert isinstance(book(services, victim, slot(services, depts["eyes"], hh=14), now, VICTIM_PHONE),
                      r.Booked)
    with services.uow.read_only() as uow:
        [subjects] = uow.session.execute(select(Suspension.patient_id, Suspension.address_id)).all()
    assert subjects[0] is None and subjects[1] is not None


def test_no_shows_of_bookings_made_in_her_name_suspend_the_attacker_not_the_patient(services, depts, now):
    victim = person("Wang Fang")
    release = local(date(2026, 11, 1), 8)
    for day in (date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 4)):
        made = book(services, victim, slot(services, depts["eyes"], day=day, release_at=release), now,
                    ATTACKER, relation="family")
        assert isinstance(made, r.Booked), made
    after = local(date(2026, 12, 5), 1)
    assert service.mark_no_shows(services, now=after) == r.NoShowReport(3, 0, 1)
    later = slot(services, depts["cardiology"], day=date(2026, 12, 12), release_at=release)
    assert isinstance(book(services, victim, later, after, VICTIM_PHONE), r.Booked)
    assert book(services, person("Li Wei"), later, after, ATTACKER).scope == "address"


def test_once_the_desk_verified_her_phone_her_own_cancellations_count_against_her(services, depts, now):
    victim = person("Wang Fang")
    today = slot(services, depts["cardiology"], day=date(2026, 12, 1), hh=15,
                 release_at=local(date(2026, 11, 20), 8))
    first = book(services, victim, today, local(date(2026, 11, 28), 9), VICTIM_PHONE)
    checked = service.check_in(services, code=first.booking.code, id_number=victim.number,
                               now=local(date(2026, 12, 1), 14, 50), staff=Staff("desk1"))
    assert isinstance(checked, r.CheckedIn) and checked.verified_address
    for hour in (9, 10, 11):
        held = book(services, victim, slot(services, depts["eyes"], hh=hour), now, VICTIM_PHONE)
        assert isinstance(cancel(services, held.booking.code, VICTIM_PHONE, now), r.Cancelled)
    # Her identity is suspended now, whoever books for her.
    refused = book(services, victim, slot(services, depts["bones"]), now, DAUGHTER, relation="family")
    assert refused == r.Suspended("cancellations", now + timedelta(days=30), scope="identity")


def test_a_later_claim_of_for_me_is_kept_for_staff_and_moves_nothing(services, depts, now):
    victim = person("Wang Fang")
    book(services, victim, slot(services, depts["cardiology"]), now, VICTIM_PHONE)
    claim = book(services, victim, slot(services, depts["eyes"]), now, ATTACKER, relation="self")
    assert isinstance(claim, r.Booked)
    [flag] = service.flagged_identities(services)
    assert (flag.own_claims, flag.verified_claims) == (2, 0)
    # Her notices still go to her phone, the first that said "for me".
    [notice] = notices(services)
    with services.uow.read_only() as uow:
        first_claim = uow.session.execute(
            select(PatientLink.address_id).order_by(PatientLink.id)).scalars().first()
    assert notice.address_id == first_claim
    # And cancelling his "own" booking counts against his phone, not her identity.
    cancel(services, claim.booking.code, ATTACKER, now)
    with services.uow.read_only() as uow:
        assert uow.session.execute(select(Booking.counted_against).where(
            Booking.code == claim.booking.code)).scalar_one() == "address"


def test_a_quota_filled_by_others_says_so(services, depts, now):
    victim = person("Wang Fang")
    for hour, dept in ((9, "cardiology"), (10, "eyes")):
        book(services, victim, slot(services, depts[dept], hh=hour), now, ATTACKER, relation="family")
    refused = book(services, victim, slot(services, depts["bones"], hh=11), now, VICTIM_PHONE)
    assert refused == r.QuotaExceeded("per_visit_day", 2, by_others=True)
    # Anyone else typing her number hears only the plain limit.
    stranger = book(services, victim, slot(services, depts["bones"], hh=12), now,
                    AddressInput("phone", "+8613700000999"), relation="family")
    assert stranger == r.QuotaExceeded("per_visit_day", 2, by_others=False)


# ---- 3. the patient hears about it --------------------------------------------------------------


def test_notices_go_to_her_own_address_in_her_language_for_each_change_others_make(services, depts, now):
    victim = person("Wang Fang")
    service.remember_locale(services, VICTIM_PHONE, "zh_Hans", patient_ref=None, now=now)
    book(services, victim, slot(services, depts["cardiology"]), now, VICTIM_PHONE)
    assert notices(services) == []  # her own booking: nothing to tell her
    made = book(services, victim, slot(services, depts["eyes"]), now, ATTACKER, relation="family")
    moved = service.reschedule_booking(services, code=made.booking.code,
                                       new_slot_id=slot(services, depts["eyes"], hh=11),
                                       requester=ATTACKER, channel="sms", now=now)
    cancel(services, moved.booking.code, ATTACKER, now)
    waiting = notices(services)
    assert [n.message for n in waiting] == ["booked_for_you", "moved_for_you", "cancelled_for_you"]
    assert {n.locale for n in waiting} == {"zh_Hans"} and {n.status for n in waiting} == {"pending"}
    assert [n.params["code"] for n in waiting] == [made.booking.code, moved.booking.code,
                                                   moved.booking.code]
    assert victim.number[-4:] not in repr([n.params for n in waiting])


def test_a_notice_is_written_in_the_transaction_of_the_change(services, depts, now):
    victim = person("Wang Fang")
    book(services, victim, slot(services, depts["cardiology"]), now, VICTIM_PHONE)
    full = slot(services, depts["eyes"], capacity=1)
    book(services, person("Li Wei"), full, now, DAUGHTER)
    assert isinstance(book(services, victim, full, now, ATTACKER, relation="family"), r.SlotFull)
    assert notices(services) == []  # the refused booking left no notice behind


# ---- 4. identity without squatting ---------------------------------------------------------------


def test_a_squatters_name_never_locks_the_real_patient_out(services, depts, now):
    victim = person("王芳")
    squatter = IdentityInput(victim.kind, victim.number, "Wang Fang", victim.birth_date)
    assert isinstance(book(services, squatter, slot(services, depts["cardiology"]), now, ATTACKER,
                           relation="family"), r.Booked)
    real = book(services, victim, slot(services, depts["eyes"]), now, VICTIM_PHONE)
    assert isinstance(real, r.Booked)
    assert {row.name_differs for row in service.staff_bookings(services)} == {False, True}
    with services.uow.read_only() as uow:
        assert len(uow.session.execute(select(Patient)).scalars().all()) == 1


def test_refusals_never_tell_whether_an_id_number_is_on_file(services, depts, now):
    known = person("Wang Fang")
    book(services, known, slot(services, depts["cardiology"]), now, VICTIM_PHONE)
    unknown = person("Li Wei")
    results = [book(services, IdentityInput(p.kind, p.number, "Somebody Else", p.birth_date),
                    slot(services, depts["eyes"], hh=h), now, AddressInput("phone", f"+8613700000{h:03d}"),
                    relation="family")
               for p, h in ((known, 10), (unknown, 11))]
    assert [type(x) for x in results] == [r.Booked, r.Booked]


# ---- 5. generic identities ----------------------------------------------------------------------


def passport(number: str, country: str = "FR", name: str = "Marie Curie") -> IdentityInput:
    return IdentityInput("generic", number, name, date(1967, 11, 7), document="passport", country=country)


def test_generic_identities_are_off_by_default(services, depts, now):
    assert book(services, passport("E12345678"), slot(services, depts["cardiology"]), now,
                VICTIM_PHONE) == r.InvalidIdentity("id_number", "unknown_kind")


def test_a_generic_identity_needs_a_document_and_country_and_is_normalised(generic_app, now):
    services = generic_app.services
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        uow.commit()
    no_country = IdentityInput("generic", "E12345678", "Marie Curie", document="passport")
    assert book(services, no_country, slot(services, depts["eyes"]), now, VICTIM_PHONE) == \
        r.InvalidIdentity("country", "invalid")
    assert isinstance(book(services, passport("e1234-5678"), slot(services, depts["cardiology"]), now,
                           VICTIM_PHONE), r.Booked)
    # The same passport typed another way is the same identity: one per department a day.
    assert book(services, passport(" E 1234 5678 "), slot(services, depts["cardiology"], hh=10), now,
                VICTIM_PHONE) == r.QuotaExceeded("per_department_per_day", 1)
    # The same number from another country is another document.
    assert isinstance(book(services, passport("E12345678", "DE"), slot(services, depts["cardiology"], hh=11),
                           now, VICTIM_PHONE), r.Booked)
    [row, *_] = service.staff_bookings(services)
    assert not row.checksum_verified


def test_a_resident_id_inside_a_generic_number_is_refused(generic_app, now):
    services = generic_app.services
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        uow.commit()
    real = person("Wang Fang")
    assert isinstance(book(services, real, slot(services, depts["cardiology"]), now, VICTIM_PHONE), r.Booked)
    second_self = passport("A" + real.number, "CN", "Wang Fang")
    assert book(services, second_self, slot(services, depts["cardiology"], hh=10), now, VICTIM_PHONE) == \
        r.InvalidIdentity("id_number", "contains_resident_id")


def test_each_generic_identity_counts_towards_patients_per_address(generic_app, now):
    services = generic_app.services
    with services.uow() as uow:
        depts = add_hospital(uow.session)
        uow.commit()
    for n in range(3):
        made = book(services, passport(f"P00000{n}1", name=f"Person {'ABC'[n]}"),
                    slot(services, depts["cardiology"], hh=9 + n), now, DAUGHTER, relation="family")
        assert isinstance(made, r.Booked), made
    assert book(services, passport("P0000091", name="Person Four"),
                slot(services, depts["eyes"]), now, DAUGHTER, relation="family") == r.TooManyPatients(3)


# ---- 9. small corrections -----------------------------------------------------------------------


def test_a_number_the_phone_library_calls_invalid_is_still_served(services, depts, now):
    new_range = AddressInput("phone", "+861380005061")  # too short for the library
    made = book(services, person("Wang Fang"), slot(services, depts["cardiology"]), now, new_range)
    assert isinstance(made, r.Booked), made
    assert codes(services, new_range, now) == {made.booking.code}
    short_code = AddressInput("phone", "95588")
    assert isinstance(book(services, person("Li Wei"), slot(services, depts["eyes"]), now, short_code),
                      r.Booked)
    assert book(services, person("Li Wei"), slot(services, depts["bones"]), now,
                AddressInput("phone", "call me")) == r.InvalidAddress()


def test_an_integrity_error_that_is_not_a_code_collision_is_reported_as_what_it_is(services, depts, now,
                                                                                   monkeypatch):
    from assistant.booking import book as booking_path

    monkeypatch.setattr(booking_path, "new_code", lambda: "SAMECODE")
    assert isinstance(book(services, person("Wang Fang"), slot(services, depts["cardiology"]), now,
                           VICTIM_PHONE), r.Booked)
    # A repeated code is retried (and here, always repeated, it finally fails as such).
    with pytest.raises(RuntimeError, match="unique constraints"):
        book(services, person("Li Wei"), slot(services, depts["eyes"]), now, VICTIM_PHONE)
    monkeypatch.undo()
    # Any other constraint names itself and is not retried as a code collision: here the
    # booking path is made blind to a patient's bookings, so the database's one active
    # booking per patient and slot is what stops the second one.
    twice, again = person("Zhang Min"), slot(services, depts["bones"], capacity=2)
    assert isinstance(book(services, twice, again, now, VICTIM_PHONE), r.Booked)
    held = booking_path.sql.HELD_BOOKINGS
    monkeypatch.setattr(booking_path.sql, "HELD_BOOKINGS", text(held.element.text + " AND 1 = 0").bindparams(
        bindparam("earliest", type_=Date), bindparam("latest", type_=Date)).columns(
        *held.selected_columns))
    with pytest.raises(booking_path.BookingConstraintError) as raised:
        book(services, twice, again, now, VICTIM_PHONE)
    assert "code" not in raised.value.constraint and "slot" in raised.value.constraint


def test_desk_check_in_reads_the_id_at_a_prompt_and_verifies_her_phone(app, services, depts, now):
    from click.testing import CliRunner

    from assistant.cli import main
    from tests.conftest import keys_environ

    env = {"ASSISTANT_DATABASE_URL": app.settings.database_url,
           "ASSISTANT_INSTANCE_PATH": str(app.settings.instance_path),
           "ASSISTANT_GENERATE_SECRETS": "false", **keys_environ()}
    victim = person("Wang Fang")
    made = book(services, victim, slot(services, depts["cardiology"]), now, VICTIM_PHONE)
    book(services, IdentityInput(victim.kind, victim.number, "Wang Fong", victim.birth_date),
         slot(services, depts["eyes"]), now, DAUGHTER, relation="family")
    on_the_day = ["--now", "2026-12-05T08:40", "desk", "check-in", made.booking.code, "--by", "desk1"]
    wrong = CliRunner().invoke(main, on_the_day, input=person("Li Wei").number + "\n", env=env)
    assert wrong.exit_code == 2 and "no booking with that code matches" in wrong.output
    right = CliRunner().invoke(main, on_the_day, input=victim.number + "\n", env=env)
    assert right.exit_code == 0, right.output
    assert victim.number not in right.output  # typed at a hidden prompt, never echoed
    assert "Wang Fang" in right.output and "Wang Fong" in right.output  # names to compare
    assert "now verified as the patient's own" in right.output
    with services.uow.read_only() as uow:
        verified = uow.session.execute(select(PatientLink.verified_by).where(
            PatientLink.relation == "self")).scalar_one()
    assert verified == "staff:desk1"
    flags = CliRunner().invoke(main, ["desk", "flags"], env=env)
    assert "names used: 2" in flags.output and victim.number not in flags.output
