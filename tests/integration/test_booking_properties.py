"""Property tests: random sequences of use cases against the real service layer.

A Hypothesis state machine books, cancels, reschedules, checks in, marks no-shows and
moves the clock on a small hospital, on SQLite and on PostgreSQL. Each example gets a
database of its own. After every step the tables must satisfy the rules that hold
whatever the order of events:

- a slot's `booked` column equals its active bookings (`models.ACTIVE_STATUSES`:
  booked, checked in, or a no-show, which used its place up) and stays within capacity;
- no patient's quota-counting bookings (`models.QUOTA_STATUSES`) break a quota;
- the audit chain verifies;
- an address is linked to no more patients than the policy allows;
- every booking's status is the one the results so far imply.

Every call must return a typed result (a success or a `Refusal`), never raise, and a
refusal must be one the model agrees with where the model can tell.
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, event, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import create_engine, func, select

from assistant.booking import audit, policy as rules, results as r, service
from assistant.booking.models import (
    ACTIVE_STATUSES,
    QUOTA_STATUSES,
    AuditHead,
    Base,
    Booking,
    PatientLink,
    Slot,
)
from assistant.booking.service import AddressInput, CodeHolder, IdentityInput, Staff
from assistant.bootstrap import build, fixed_clock
from tests.conftest import settings_for
from tests.support import TZ, add_hospital, add_slot, cn_id, local, phone

# Tuesday 1 December 2026, 08:00 in Beijing. Slots open at 15:00 a week before the
# visit (2 to 7 Dec are open; 8 Dec opens at 15:00 today, 9 Dec tomorrow); booking and
# patient cancellation close at 16:00 the day before the visit.
START = local(date(2026, 12, 1), 8)
LAST_MOMENT = local(date(2026, 12, 7), 12)  # 8 and 9 Dec can still be booked
DEPARTMENTS = ("cardiology", "eyes", "bones")
# (department, visit day, hour, capacity): two cardiology slots and three departments
# on 2 Dec, so the per-department and per-day quotas can bite; 2 to 9 Dec for the
# 7-day quota.
SLOTS = (
    ("cardiology", date(2026, 12, 2), 9, 2),
    ("cardiology", date(2026, 12, 2), 11, 1),
    ("eyes", date(2026, 12, 2), 10, 1),
    ("bones", date(2026, 12, 2), 14, 1),
    ("eyes", date(2026, 12, 3), 9, 1),
    ("bones", date(2026, 12, 3), 10, 2),
    ("cardiology", date(2026, 12, 5), 9, 1),
    ("eyes", date(2026, 12, 8), 10, 1),
    ("bones", date(2026, 12, 9), 9, 1),
)
# The quotas keep their defaults (1 per department per day, 2 per visit day, 3 per
# 7 days, 5 per 90 days). Smaller address and suspension limits let short runs reach
# those rules too.
POLICY_ENV = {
    "ASSISTANT_POLICY_PATIENTS_PER_ADDRESS": "2",
    "ASSISTANT_POLICY_CANCEL_LIMIT": "2",
    "ASSISTANT_POLICY_NO_SHOW_LIMIT": "2",
}


def _identity(name: str, birth: date, sequence: int) -> IdentityInput:
    return IdentityInput("cn_resident_id", cn_id(birth, sequence=sequence), name, birth)


PATIENTS = (
    _identity("Wang Fang", date(1950, 3, 7), 11),
    _identity("Li Wei", date(1948, 7, 21), 12),
    _identity("Zhang Min", date(1962, 1, 30), 13),
    _identity("Chen Jie", date(1975, 11, 2), 14),
)
# Wang Fang's ID number with another name: booked in her name (and flagged for the desk),
# never a lock-out of the real Wang Fang.
IMPOSTOR = IdentityInput("cn_resident_id", PATIENTS[0].number, "Zhao Lei", PATIENTS[0].birth_date)
# Holders of a booking code with the last four characters of an ID number.
CODE_HOLDERS = tuple(CodeHolder(p.number[-4:]) for p in PATIENTS)
ADDRESSES = (phone(21), phone(22), AddressInput("telegram", "424242"))
DESK = Staff("desk")

SUCCESSES = {
    "book": r.Booked,
    "cancel": r.Cancelled,
    "reschedule": r.Rescheduled,
    "check_in": r.CheckedIn,
    "mark_no_shows": r.NoShowReport,
}

# Set by the test function before the machine runs: `make` returns the URL of an
# empty, migrated database for one example and a function that removes it.
_fresh_database: dict[str, Any] = {}


class BookingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        url, self._drop_database = _fresh_database["make"]()
        app_settings, environ = settings_for(url, _fresh_database["instance"], **POLICY_ENV)
        self.app = build(app_settings, clock=fixed_clock(START), environ=environ)
        self.ctx = self.app.services
        self.policy = self.ctx.settings.policy
        self.now: datetime = START
        self.job_ran_at: datetime | None = None
        with self.ctx.uow() as uow:
            depts = add_hospital(uow.session, departments=DEPARTMENTS)
            self.slots = [
                add_slot(uow.session, depts[dept], day, hh, capacity=capacity)
                for dept, day, hh, capacity in SLOTS
            ]
            uow.commit()
        self.slot_facts = {
            slot_id: (depts[dept], day, capacity)
            for slot_id, (dept, day, _, capacity) in zip(self.slots, SLOTS)
        }
        # The model: what the results so far imply.
        self.status: dict[str, str] = {}  # booking code -> status
        self.booking_of: dict[str, tuple[str, int, AddressInput | None]] = {}  # code -> (ID number, slot, booked by)
        self.links: set[tuple[AddressInput, str]] = set()  # (address, ID number)
        self.patient_refs: dict[str, int] = {}  # ID number -> patient row, once booked
        # Cancellations and no-shows counted against ("identity", ID number) or
        # ("address", address): see `liable`.
        self.cancellations: Counter[tuple[str, Any]] = Counter()
        self.no_shows: Counter[tuple[str, Any]] = Counter()
        self.replies: dict[str, Any] = {}  # idempotency key -> first result

    def teardown(self) -> None:
        self.app.close()
        self._drop_database()

    # ---- helpers -----------------------------------------------------------------------

    def call(self, use_case: str, function: Callable[..., Any], *, replay: bool = False,
             **kwargs: Any) -> Any:
        """Call a use case; check the result is typed and, unless it is a stored reply
        to a replayed key, that a suspension refusal has a cause in the model."""
        try:
            result = function(self.ctx, **kwargs)
        except Exception as exc:  # a rule or a mistake must come back as a value
            raise AssertionError(f"{use_case} raised {type(exc).__name__}: {exc}") from exc
        event(f"{use_case}: {type(result).__name__}")
        expected = SUCCESSES[use_case]
        assert isinstance(result, (expected, r.Refusal)), (
            f"{use_case} returned {type(result).__name__}, not {expected.__name__} or a refusal")
        if isinstance(result, r.Suspended) and not replay:
            if result.scope == "address":
                subject = ("address", kwargs["booked_by"] if "booked_by" in kwargs
                           else self.booking_of[kwargs["code"]][2])
            elif "identity_input" in kwargs:
                subject = ("identity", kwargs["identity_input"].number)
            elif "patient_ref" in kwargs:
                subject = ("identity", next(n for n, ref in self.patient_refs.items()
                                            if ref == kwargs["patient_ref"]))
            else:
                subject = ("identity", self.booking_of[kwargs["code"]][0])
            if result.reason == "cancellations":
                assert self.cancellations[subject] >= self.policy.cancel_limit, subject
            else:
                assert result.reason == "no_shows"
                assert self.no_shows[subject] >= self.policy.no_show_limit, subject
        return result

    def liable(self, code: str) -> tuple[str, Any]:
        """No address here is ever verified as a patient's own (every link is 'family'),
        so a cancellation or no-show counts against the address that booked; a booking
        the desk made counts against the identity."""
        number, _, by = self.booking_of[code]
        return ("address", by) if by is not None else ("identity", number)

    def local_today(self) -> date:
        return self.now.astimezone(TZ).date()

    def active_in(self, slot_id: int) -> int:
        return sum(1 for code, (_, slot, _) in self.booking_of.items()
                   if slot == slot_id and self.status[code] in ACTIVE_STATUSES)

    def taken_in(self, slot_id: int) -> int:
        """Places nobody may book first-come: the active bookings, and the places freed
        by cancellations, held for the waitlist until the next release (waitlist.py)."""
        with self.ctx.uow.read_only() as uow:
            held = uow.session.get(Slot, slot_id).held
        return self.active_in(slot_id) + held

    def authorised(self, code: str, requester: Any) -> bool:
        """Rights follow the booking: its address, a code holder with the ID's last four
        characters, or staff. A link to the patient gives none."""
        number, _, by = self.booking_of[code]
        if isinstance(requester, Staff):
            return True
        if isinstance(requester, CodeHolder):
            return requester.id_last4 == number[-4:]
        return requester == by

    def pick_code(self, data, prefer: Callable[[str], bool] = lambda code: True) -> str:
        """Mostly a booking that is still booked (and `prefer`red), sometimes any booking.
        Codes are random, so they are drawn by position in the order they were made."""
        every = list(self.status)
        booked = [code for code in every if self.status[code] == "booked" and prefer(code)]
        choices = [st.sampled_from(every)] + [st.sampled_from(booked)] * (3 if booked else 0)
        return data.draw(st.one_of(choices), label="code")

    def pick_requester(self, data, code: str) -> Any:
        """Mostly someone entitled to act on the booking, sometimes anyone."""
        number, _, by = self.booking_of[code]
        holder = CodeHolder(number[-4:])
        entitled = st.sampled_from([x for x in (by, holder, DESK) if x is not None])
        anyone = st.sampled_from(ADDRESSES + CODE_HOLDERS)
        return data.draw(st.one_of(entitled, entitled, anyone), label="requester")

    def record_booking(self, result: r.Booked | r.Rescheduled, number: str, slot_id: int,
                       address: AddressInput | None) -> None:
        view = result.booking
        assert view.status == "booked" and view.slot_id == slot_id
        assert number[-4:] not in repr(r.to_json(result)).replace(view.code, "")
        assert view.code not in self.status, "a booking code was issued twice"
        assert self.active_in(slot_id) < self.slot_facts[slot_id][2], "booked a full slot"
        assert self.patient_refs.setdefault(number, view.patient_ref) == view.patient_ref
        self.status[view.code] = "booked"
        self.booking_of[view.code] = (number, slot_id, address)

    # ---- rules --------------------------------------------------------------------------

    # Wang Fang and Li Wei are drawn more often, so their quotas come into play.
    @rule(who=st.sampled_from(PATIENTS[:2] + PATIENTS + (IMPOSTOR,)),
          slot=st.integers(0, len(SLOTS) - 1),
          by=st.sampled_from(ADDRESSES + (None,)),
          key=st.one_of(st.none(), st.none(), st.sampled_from(["SM1", "SM2"])))
    def book(self, who, slot, by, key):
        self.attempt_booking(who, slot, by, key)

    @precondition(lambda self: self.status)
    @rule(slot=st.integers(0, len(SLOTS) - 1), data=st.data())
    def book_again(self, slot, data):
        """Someone who has booked before books another visit: the quotas' business."""
        number, _, by = self.booking_of[self.pick_code(data)]
        who = next(p for p in PATIENTS if p.number == number)
        self.attempt_booking(who, slot, by, None)

    @precondition(lambda self: self.patient_refs)
    @rule(slot=st.integers(0, len(SLOTS) - 1), by=st.sampled_from(ADDRESSES), data=st.data())
    def book_linked(self, slot, by, data):
        """An address books for a patient it chose from its list (by patient row, with no
        ID number typed): only patients linked to that address may be chosen."""
        number = data.draw(st.sampled_from(list(self.patient_refs)), label="patient")
        who = next(p for p in PATIENTS if p.number == number)
        result = self.attempt_booking(who, slot, by, None, by_ref=True)
        if (by, number) not in self.links:
            assert result == r.NotPermitted()

    def attempt_booking(self, who: IdentityInput, slot: int, by: AddressInput | None,
                        key: str | None, by_ref: bool = False) -> Any:
        slot_id = self.slots[slot]
        replay = key is not None and key in self.replies
        person = {"patient_ref": self.patient_refs[who.number]} if by_ref else {"identity_input": who}
        result = self.call("book", service.book_slot, replay=replay, **person,
                           slot_id=slot_id, channel="sms" if by else "desk", now=self.now,
                           booked_by=by, staff=None if by else DESK, relation="family",
                           idempotency_key=key)
        if replay:
            assert result == self.replies[key], "a replayed key must get the stored result"
            return result
        if key is not None:
            self.replies[key] = result
        linked = {number for address, number in self.links if address == by}
        if isinstance(result, r.TooManyPatients):
            assert by is not None and who.number not in linked
            assert len(linked) >= self.policy.patients_per_address
        if isinstance(result, r.SlotFull):
            assert self.taken_in(slot_id) == self.slot_facts[slot_id][2]
        if isinstance(result, r.NotYetOpen):
            assert self.now < result.opens_at
        if isinstance(result, r.BookingClosed):
            assert self.now >= result.closed_at
        if isinstance(result, r.Booked):
            if by is not None:
                self.links.add((by, who.number))
            self.record_booking(result, who.number, slot_id, by)
        return result

    @precondition(lambda self: self.status)
    @rule(data=st.data())
    def cancel(self, data):
        code = self.pick_code(data)
        requester = self.pick_requester(data, code)
        before = self.status[code]
        result = self.call("cancel", service.cancel_booking, code=code, requester=requester,
                           channel="sms", now=self.now)
        if not self.authorised(code, requester):
            assert result == r.NotPermitted()
        elif before != "booked":
            assert result == r.NotActive(status=before)
        elif isinstance(result, r.CancellationClosed):
            assert not isinstance(requester, Staff) and self.now >= result.deadline
        else:
            assert isinstance(result, r.Cancelled), result
            assert (result.booking.code, result.booking.status) == (code, "cancelled")
            self.status[code] = "cancelled"
            if not isinstance(requester, Staff):
                self.cancellations[self.liable(code)] += 1

    @precondition(lambda self: self.status)
    @rule(slot=st.integers(0, len(SLOTS) - 1), data=st.data())
    def reschedule(self, slot, data):
        code = self.pick_code(data)
        requester = self.pick_requester(data, code)
        number, old_slot, by = self.booking_of[code]
        before = self.status[code]
        new_slot = self.slots[slot]
        result = self.call("reschedule", service.reschedule_booking, code=code,
                           new_slot_id=new_slot, requester=requester, channel="telegram",
                           now=self.now)
        if not self.authorised(code, requester):
            assert result == r.NotPermitted()
        elif before != "booked":
            assert result == r.NotActive(status=before)
        elif new_slot == old_slot:
            assert result == r.AlreadyBooked(code=code)
        if isinstance(result, r.SlotFull):
            assert self.taken_in(new_slot) == self.slot_facts[new_slot][2]
        if isinstance(result, r.Rescheduled):
            assert result.previous_code == code and before == "booked"
            self.status[code] = "cancelled"  # moved: not a cancellation that counts
            self.record_booking(result, number, new_slot, by)

    @precondition(lambda self: self.status)
    @rule(data=st.data(), right_id=st.sampled_from([True, True, True, False]))
    def check_in(self, data, right_id):
        today = self.local_today()
        code = self.pick_code(data, lambda c: self.slot_facts[self.booking_of[c][1]][1] == today)
        number, slot_id, _ = self.booking_of[code]
        given = number if right_id else next(p.number for p in PATIENTS if p.number != number)
        result = self.call("check_in", service.check_in, code=code, id_number=given,
                           now=self.now)
        visit_day = self.slot_facts[slot_id][1]
        if not right_id:
            assert result == r.BookingNotFound()
        elif self.status[code] != "booked":
            assert result == r.NotActive(status=self.status[code])
        elif self.local_today() != visit_day:
            assert result == r.NotVisitDay(visit_date=visit_day)
        else:
            assert isinstance(result, r.CheckedIn), result
            assert result.booking.status == "checked_in"
            self.status[code] = "checked_in"

    @precondition(lambda self: self.status and self.job_ran_at != self.now)
    @rule()
    def mark_no_shows(self):
        """The no-show job, run by hand at any moment."""
        self.run_no_show_job()

    @precondition(lambda self: self.now < LAST_MOMENT)
    @rule()
    def night_passes(self):
        """Midnight passes and the nightly job runs at 00:30."""
        self.now = min(local(self.local_today() + timedelta(days=1), 0, 30), LAST_MOMENT)
        self.run_no_show_job()

    def run_no_show_job(self) -> None:
        self.job_ran_at = self.now
        result = self.call("mark_no_shows", service.mark_no_shows, now=self.now)
        missed = [code for code, state in self.status.items() if state == "booked"
                  and self.slot_facts[self.booking_of[code][1]][1] < self.local_today()]
        assert result.marked == len(missed)
        for code in missed:
            self.status[code] = "no_show"
            self.no_shows[self.liable(code)] += 1

    @precondition(lambda self: self.now < LAST_MOMENT)
    @rule(step=st.sampled_from(["1h", "3h", "8h", "next 08:00", "next 17:00"]))
    def pass_time(self, step):
        """A few hours, or on to the next morning (a visit day's check-in) or evening
        (after booking and cancelling for the day after have closed)."""
        if step.endswith("h"):
            moment = self.now + timedelta(hours=int(step[:-1]))
        else:
            moment = local(self.local_today() + timedelta(days=1), int(step[5:7]))
        self.now = min(moment, LAST_MOMENT)

    # ---- invariants ---------------------------------------------------------------------

    @invariant()
    def slot_counts_match_active_bookings(self):
        with self.ctx.uow.read_only() as uow:
            active = dict(uow.session.execute(
                select(Booking.slot_id, func.count())
                .where(Booking.status.in_(ACTIVE_STATUSES)).group_by(Booking.slot_id)
            ).all())
            slots = uow.session.execute(select(Slot.id, Slot.booked, Slot.capacity)).all()
        for slot_id, booked, capacity in slots:
            assert booked == active.get(slot_id, 0), (
                f"slot {slot_id}: booked column {booked}, active bookings {active.get(slot_id, 0)}")
            assert 0 <= booked <= capacity

    @invariant()
    def quotas_hold(self):
        held: dict[int, list[rules.HeldBooking]] = {}
        with self.ctx.uow.read_only() as uow:
            for patient_id, day, dept in uow.session.execute(
                select(Booking.patient_id, Booking.visit_date, Booking.department_id)
                .where(Booking.status.in_(QUOTA_STATUSES))
            ):
                held.setdefault(patient_id, []).append(rules.HeldBooking(day, dept))
        for patient_id, bookings in held.items():
            breach = rules.quotas_respected(self.policy, bookings)
            assert breach is None, (patient_id, breach, bookings)

    @invariant()
    def audit_chain_verifies(self):
        with self.ctx.uow.read_only() as uow:
            report = audit.verify(uow.session, self.ctx.keyring.audit_key)
        assert report.ok, report.problems

    @invariant()
    def addresses_book_for_few_patients(self):
        with self.ctx.uow.read_only() as uow:
            counts = uow.session.execute(
                select(PatientLink.address_id, func.count()).group_by(PatientLink.address_id)
            ).all()
        assert all(n <= self.policy.patients_per_address for _, n in counts), counts

    @invariant()
    def statuses_match_the_results(self):
        with self.ctx.uow.read_only() as uow:
            stored = dict(uow.session.execute(select(Booking.code, Booking.status)).all())
        assert stored == self.status


PROPERTY_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    database=None,  # no example files in the work tree; a failure prints its steps
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.filter_too_much],
)


def test_service_layer_keeps_its_invariants(request, database_url: str, tmp_path: Path):
    if database_url.startswith("sqlite"):
        template = request.getfixturevalue("sqlite_template")
        numbers = itertools.count()

        def make() -> tuple[str, Callable[[], None]]:
            path = tmp_path / f"example-{next(numbers)}.db"
            shutil.copy(template, path)

            def drop() -> None:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

            return f"sqlite:///{path}", drop
    else:
        # Like conftest's _clean_postgres, but DELETE instead of TRUNCATE: on tables this
        # small it is ~30 times faster, which matters when Hypothesis shrinks a failure.
        # Ids don't restart; nothing here depends on them.
        cleaner = create_engine(database_url)
        request.addfinalizer(cleaner.dispose)

        def make() -> tuple[str, Callable[[], None]]:
            with cleaner.begin() as connection:
                for table in reversed(Base.metadata.sorted_tables):
                    connection.execute(table.delete())
                connection.execute(AuditHead.__table__.insert().values(
                    id=1, last_event_id=0, last_hash=audit.GENESIS_HASH, event_count=0))
            return database_url, lambda: None

    _fresh_database.update(make=make, instance=tmp_path / "instance")
    try:
        run_state_machine_as_test(BookingMachine, settings=PROPERTY_SETTINGS)
    finally:
        _fresh_database.clear()


# ---- a policy value the machine takes from the settings ---------------------------------


def test_hospital_policy_limits_patients_per_address(services, now):
    """A hospital file's [hospital.policy] overrides every policy value (see
    docs/configuration.md), the number of patients per address included."""
    with services.uow() as uow:
        depts = add_hospital(uow.session, departments=("cardiology",),
                             policy={"patients_per_address": 1})
        slot_id = add_slot(uow.session, depts["cardiology"], date(2026, 12, 5), 9, capacity=3)
        uow.commit()
    family_phone = phone(31)

    def book_for(who: IdentityInput):
        return service.book_slot(services, identity_input=who, slot_id=slot_id, channel="sms",
                                 now=now, booked_by=family_phone, relation="family")

    assert isinstance(book_for(PATIENTS[0]), r.Booked)
    assert book_for(PATIENTS[1]) == r.TooManyPatients(limit=1)
