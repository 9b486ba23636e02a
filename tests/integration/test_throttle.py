"""Refused attempts are limited per phone or chat: at the hospital's refusals_per_hour
the address is turned away kindly until the hour ends, on both databases. A bot trying
ID numbers, booking codes or limits gets no more tries; the patient's own phone and
every other address are untouched."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from assistant.booking import results as r, service
from assistant.booking.models import AuditEvent
from assistant.conversation_backend import ServiceBackend
from assistant.engine import ports
from tests.support import add_hospital, add_slot, person

VISIT = date(2026, 12, 7)
BOT = "+8613800000666"


def hospital(services, now, limit=3):
    with services.uow() as uow:
        depts = add_hospital(uow.session, policy={"refusals_per_hour": limit})
        slot = add_slot(uow.session, depts["cardiology"], VISIT, 9, release_at=now + timedelta(days=2))
        uow.commit()
    return slot


def turn(services, channel: str, address: str) -> ServiceBackend:
    """The backend of one turn: each message gets a fresh one, as run_turn does."""
    return ServiceBackend(services, channel, address)


def new_patient(n: int) -> ports.NewPatient:
    who = person("Guess " + "ABCDEFGH"[n])
    return ports.NewPatient(who.kind, who.number, who.name, who.birth_date)


def test_a_phone_refused_too_often_is_turned_away_kindly_until_the_hour_ends(services, now):
    slot = hospital(services, now)
    for n in range(3):  # not open yet: refused, and counted
        assert turn(services, "sms", BOT).book(new_patient(n), slot, "self", now, None).rule == "not_yet_open"
    throttled = turn(services, "sms", BOT).book(new_patient(4), slot, "self", now, None)
    assert throttled.rule == "throttled"
    assert throttled.params["until"] == now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    # Guessing booking codes finds nothing while throttled, even a real one.
    assert turn(services, "sms", BOT).find_booking("ANYCODE1", "1234", now) is None
    # Another phone is not affected.
    other = ServiceBackend(services, "sms", "+8613800000777")
    assert other.book(new_patient(5), slot, "self", now, None).rule == "not_yet_open"
    # The next hour, the bot may try again.
    later = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert turn(services, "sms", BOT).book(new_patient(6), slot, "self", later, None).rule == "not_yet_open"
    with services.uow.read_only() as uow:
        assert uow.session.execute(select(AuditEvent.action).where(
            AuditEvent.action == "address.throttled")).scalars().all() == ["address.throttled"]


def test_failed_booking_code_lookups_count_as_refusals(services, now):
    hospital(services, now, limit=5)
    for n in range(5):
        assert turn(services, "telegram", "700000666").find_booking(f"CODE{n:04d}", "1234", now) is None
    assert turn(services, "telegram", "700000666").book(new_patient(1), 1, "self", now, None).rule == "throttled"


def test_a_limit_of_0_never_throttles(services, now):
    slot = hospital(services, now, limit=0)
    results = [turn(services, "sms", BOT).book(new_patient(n % 8), slot, "self", now, None) for n in range(30)]
    assert all(isinstance(x, ports.Refused) and x.rule == "not_yet_open" for x in results)
    assert isinstance(service.book_slot(services, slot_id=slot, channel="sms", now=now + timedelta(days=2),
                                        identity_input=person("Real Patient"),
                                        booked_by=service.AddressInput("phone", BOT)), r.Booked)
