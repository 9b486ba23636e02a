"""The engine's Backend port, implemented with the service layer.

Rule: a thin translation. Each method calls one service function and converts its
typed result into the engine's own data (`engine.ports`); no booking rule is decided
here. One instance serves one conversation: one channel and one address.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Sequence
from zoneinfo import ZoneInfo

from assistant.booking import identity, release, reminders, results as r, service, waitlist
from assistant.booking.identity import IdentityRefusal
from assistant.booking.inputs import AddressInput, IdentityInput, ServiceContext
from assistant.engine import ports
from assistant.engine.parse import parse_id_number
from assistant.i18n import babel_locale

ADDRESS_KIND = {"sms": "phone", "voice": "phone", "telegram": "telegram", "console": "console"}
DAYS_AHEAD = 31  # how far ahead the engine looks for free days


def address_for(channel: str, address: str, kind: str | None = None) -> AddressInput:
    """The service layer's address for a channel's sender. `kind` overrides the channel's
    own kind: the /try simulator talks as "sms" with a "console" address, which no sender
    ever delivers to."""
    return AddressInput(kind or ADDRESS_KIND.get(channel, "console"), address)


class ServiceBackend:
    def __init__(self, ctx: ServiceContext, channel: str, address: str, renderer=None,
                 address_kind: str | None = None) -> None:
        self.ctx = ctx
        self.channel = channel
        self.renderer = renderer  # channels.render.Renderer: labels as the patient sees them
        self.address = address_for(channel, address, address_kind)
        # Caches for this one turn: the world doesn't change under a single message,
        # and a turn may ask the same question from several steps.
        self._hospital: ports.HospitalInfo | None = None
        self._departments: list[ports.DepartmentInfo] | None = None
        self._profile: service.AddressProfile | None = None
        self._available_cache: dict[tuple, list[r.SlotView]] = {}

    # -- hospital and departments (cached for the turn: they don't change mid-turn)

    def hospital(self) -> ports.HospitalInfo:
        if self._hospital is None:
            settings = self.ctx.settings
            found = service.hospital(self.ctx)
            self._hospital = ports.HospitalInfo(
                timezone=found.timezone if found else settings.timezone,
                default_locale=settings.default_locale,
                locales=settings.locales,
                desk_phone=found.desk_phone if found else None,
                desk_hours=found.desk_hours if found else None,
                identity_kinds=settings.identity.kinds,
                language_names={code: _own_name(code) for code in settings.locales},
                language_names_in={reply: {code: _name_in(code, reply) for code in settings.locales}
                                   for reply in settings.locales},
                generic_documents=settings.identity.generic_documents,
                department_groups=found.department_groups if found else (),
            )
        return self._hospital

    def departments(self) -> Sequence[ports.DepartmentInfo]:
        if self._departments is None:
            self._departments = [
                ports.DepartmentInfo(d.id, d.names, d.keywords, d.group)
                for d in service.list_departments(self.ctx)
            ]
        return self._departments

    @property
    def tz(self) -> ZoneInfo:  # the hospital's, as the engine reads days
        return ZoneInfo(self.hospital().timezone)

    # -- availability

    def _open_days(self, department_id: int, now: datetime) -> list[date]:
        key = ("days", department_id, now)
        if key not in self._available_cache:
            today = now.astimezone(self.tz).date()
            self._available_cache[key] = service.open_days(
                self.ctx, department_id=department_id, date_from=today,
                date_to=today + timedelta(days=DAYS_AHEAD), now=now)
        return self._available_cache[key]

    def _available(self, department_id: int, start: date, end: date, now: datetime,
                   limit: int | None = None) -> list[r.SlotView]:
        key = (department_id, start, end, now, limit)
        if key not in self._available_cache:
            self._available_cache[key] = service.availability(
                self.ctx, department_id=department_id, date_from=start, date_to=end, now=now,
                limit=limit)
        return self._available_cache[key]

    def open_days(self, department_id: int, now: datetime, limit: int) -> Sequence[date]:
        return self._open_days(department_id, now)[:limit]

    def free_slots(self, department_id: int, day: date, now: datetime) -> Sequence[ports.SlotInfo]:
        return [ports.SlotInfo(s.id, s.starts_at, s.free)
                for s in self._available(department_id, day, day, now)]

    def soonest_slots(self, department_id: int, now: datetime, limit: int) -> Sequence[ports.SlotInfo]:
        today = now.astimezone(self.tz).date()
        slots = self._available(department_id, today, today + timedelta(days=DAYS_AHEAD), now, limit)
        return [ports.SlotInfo(s.id, s.starts_at, s.free) for s in slots]

    def opens_at(self, department_id: int, day: date, now: datetime) -> datetime | None:
        return service.release_of_day(self.ctx, department_id=department_id, day=day, now=now)

    # -- patients

    def linked_patients(self) -> Sequence[ports.PatientInfo]:
        return [ports.PatientInfo(p.patient_ref, p.name, p.id_last4, p.relation)
                for p in service.linked_patients(self.ctx, self.acting)]

    def last_booked(self) -> ports.RecentBooking | None:
        found = service.last_booked(self.ctx, self.acting)
        if found is None:
            return None
        patient, department = found
        return ports.RecentBooking(patient.patient_ref, patient.name, department.id, department.names)

    def check_id_number(self, text: str, today: date) -> ports.IdCheck:
        settings = self.ctx.settings.identity
        result = identity.validate_any_id_number(
            parse_id_number(text) or text, kinds=settings.kinds,
            generic_pattern=settings.generic_pattern, today=today)
        if isinstance(result, IdentityRefusal):
            return ports.IdCheck(False, reason=result.reason)
        return ports.IdCheck(True, result.kind, result.value, result.value[-4:], result.birth_date)

    def check_name(self, text: str) -> str | None:
        name = identity.validate_name(text)
        return None if isinstance(name, IdentityRefusal) else name

    def check_country(self, text: str, locale: str) -> str | None:
        return country_code(text, locale)

    def label_text(self, label, locale: str) -> str | None:
        return self.renderer.text(label, locale) if self.renderer is not None else None

    # -- changes

    def book(self, who: ports.NewPatient | int, slot_id: int, relation: str, now: datetime,
             key: str | None) -> ports.Outcome:
        throttled = self._throttled(now)
        if throttled is not None:
            return throttled
        self._available_cache.clear()  # places change
        kwargs = {"patient_ref": who} if isinstance(who, int) else {"identity_input": IdentityInput(
            who.id_kind, who.id_number, who.name, who.birth_date, who.document, who.country)}
        result = service.book_slot(self.ctx, slot_id=slot_id, channel=self.channel, now=now,
                                   booked_by=self.acting,
                                   relation="family" if relation == "family" else "self",
                                   idempotency_key=self._key(key, "book"), **kwargs)
        if isinstance(result, r.Booked):
            return _done(result.booking)
        return self._refused(result, now)

    def bookings(self, now: datetime) -> Sequence[ports.BookingInfo]:
        return [_booking_info(named)
                for named in service.address_bookings(self.ctx, self.acting, now=now)]

    def find_booking(self, code: str, id_last4: str, now: datetime) -> ports.BookingInfo | None:
        if self._throttled(now) is not None:
            return None  # guessing codes: no more tries this hour
        found = service.booking_for_holder(self.ctx, code=code, id_last4=id_last4, now=now)
        if found is None:
            service.note_refusal(self.ctx, self.acting, "booking_not_found", now=now)
            return None
        return _booking_info(found)

    def _requester(self, id_last4: str | None):
        return service.CodeHolder(id_last4, via=self.acting) if id_last4 else self.acting

    def cancel(self, code: str, now: datetime, key: str | None,
               id_last4: str | None = None) -> ports.Outcome:
        throttled = self._throttled(now)
        if throttled is not None:
            return throttled
        self._available_cache.clear()
        result = service.cancel_booking(self.ctx, code=code, requester=self._requester(id_last4),
                                        channel=self.channel, now=now,
                                        idempotency_key=self._key(key, "cancel"))
        return _done(result.booking) if isinstance(result, r.Cancelled) else self._refused(result, now)

    def reschedule(self, code: str, slot_id: int, now: datetime, key: str | None,
                   id_last4: str | None = None) -> ports.Outcome:
        throttled = self._throttled(now)
        if throttled is not None:
            return throttled
        self._available_cache.clear()
        result = service.reschedule_booking(self.ctx, code=code, new_slot_id=slot_id,
                                            requester=self._requester(id_last4),
                                            channel=self.channel, now=now,
                                            idempotency_key=self._key(key, "reschedule"))
        return _done(result.booking) if isinstance(result, r.Rescheduled) else self._refused(result, now)

    # -- a fair release: requests, offers and reminders

    def request_days(self, department_id: int, now: datetime, kind: str | None = None) -> Sequence[ports.RequestDay]:
        key = ("request_days", department_id, now, kind)
        if key not in self._available_cache:
            self._available_cache[key] = [
                ports.RequestDay(d.day, d.kind, d.parts, d.closes_at)
                for d in release.request_days(self.ctx, department_id=department_id, now=now, kind=kind)]
        return self._available_cache[key]

    def request(self, who: ports.NewPatient | int, department_id: int, day: date, part: str, relation: str,
                now: datetime, key: str | None) -> ports.Requested | ports.Refused:
        throttled = self._throttled(now)
        if throttled is not None:
            return throttled
        self._available_cache.clear()
        kwargs = {"patient_ref": who} if isinstance(who, int) else {"identity_input": IdentityInput(
            who.id_kind, who.id_number, who.name, who.birth_date, who.document, who.country)}
        result = release.request_place(self.ctx, department_id=department_id, visit_date=day, part=part,
                                       channel=self.channel, now=now, booked_by=self.acting,
                                       relation="family" if relation == "family" else "self",
                                       idempotency_key=self._key(key, "request"), **kwargs)
        if isinstance(result, r.Requested):
            return ports.Requested(result.kind, result.visit_date, result.part, result.department_names,
                                   result.draw_at, result.position,
                                   who if isinstance(who, int) else None)
        return self._refused(result, now)

    def pending_question(self, now: datetime) -> ports.Question | None:
        profile = self._address_profile() if self.address == self.acting else None
        if profile is not None and (profile.question_until is None or profile.question_until <= now):
            return None  # nothing asked of this address is still open: no query
        found = service.pending_question(self.ctx, self.acting, now)
        if found is None:
            return None
        return ports.Question(found.kind, found.department_names, found.starts_at, found.expires_at,
                              found.asked_at, found.code)

    def answer_question(self, accept: bool, now: datetime, key: str | None) -> ports.Answered | ports.Refused:
        throttled = self._throttled(now)
        if throttled is not None:
            return throttled
        question = self.pending_question(now)
        if question is None or question.kind == "missed_offer":
            return _refused(r.NothingToAnswer())
        answer = waitlist.answer_offer if question.kind == "offer" else reminders.answer_reminder
        result = answer(self.ctx, address=self.acting, channel=self.channel, now=now,
                        idempotency_key=self._key(key, "answer"),
                        **({"accept": accept} if question.kind == "offer" else {"keep": accept}))
        if isinstance(result, r.Answered):
            starts_at = result.booking.starts_at if result.booking is not None else question.starts_at
            return ports.Answered(result.question, result.accepted, result.code, starts_at)
        return self._refused(result, now)

    def remember_locale(self, locale: str, patient_ref: int | None, now: datetime) -> None:
        service.remember_locale(self.ctx, self.address, locale, patient_ref=patient_ref, now=now)
        self._profile = None

    def remembered_locale(self) -> str | None:
        return self._address_profile().locale

    def remember_slow_speech(self, now: datetime) -> None:
        service.remember_slow_speech(self.ctx, self.address, now=now)
        self._profile = None

    def speaks_slowly(self) -> bool:
        """For the channel, not the engine: the phone slows its voice for this address."""
        return self._address_profile().slow_speech

    def set_opted_out(self, opted_out: bool, now: datetime) -> None:
        service.set_opted_out(self.ctx, self.address, opted_out, now=now)
        self._profile = None

    @property
    def acting(self):
        """The address whose rights this conversation uses: its own, or the phone a
        Telegram chat speaks for. Language, STOP and pace stay with its own."""
        if self.address.kind != "telegram":
            return self.address
        return self._address_profile().speaks_for or self.address

    def speaks_for_a_phone(self) -> bool:
        return self.address.kind == "telegram" and self._address_profile().speaks_for is not None

    def is_opted_out(self) -> bool:
        return self._address_profile().opted_out

    def _address_profile(self) -> service.AddressProfile:
        if self._profile is None:
            self._profile = service.address_profile(self.ctx, self.address)
        return self._profile

    def _throttled(self, now: datetime) -> ports.Refused | None:
        """Refused too often this hour (service.note_refusal): a kind "please wait"
        instead of another try, until the hour ends."""
        profile = (self._address_profile() if self.acting == self.address
                   else service.address_profile(self.ctx, self.acting))
        if profile.throttled_until is not None and profile.throttled_until > now:
            return ports.Refused("throttled", {"until": profile.throttled_until})
        return None

    def _refused(self, result: r.Refusal, now: datetime) -> ports.Refused:
        """Counted against the acting address (staff see bursts), then told to the engine."""
        service.note_refusal(self.ctx, self.acting, result.rule, now=now)
        return _refused(result)

    def _key(self, event_id: str | None, action: str) -> str | None:
        """Side effects are keyed by the inbound event, so a replayed message (or a
        retry after a crash) cannot book twice."""
        return f"{self.channel}:{event_id}:{action}" if event_id else None


def country_code(text: str, locale: str) -> str | None:
    """A country by its two-letter code, or its name in the patient's language or
    English, through Babel's territory names (case and accents don't count)."""
    import unicodedata

    def fold(value: str) -> str:
        decomposed = unicodedata.normalize("NFKD", value.casefold())
        return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()

    wanted = fold(text or "")
    if not wanted:
        return None
    english = babel_locale("en").territories
    if len(wanted) == 2 and wanted.isascii() and wanted.upper() in english:
        return wanted.upper()
    for names in (babel_locale(locale).territories, english):
        for code, name in names.items():
            if len(code) == 2 and code.isalpha() and fold(name) == wanted:
                return code
    return None


@lru_cache(maxsize=256)  # Babel's data doesn't change while we run
def _name_in(code: str, reply: str) -> str:
    """A language's name in another language, from Babel's data ("zh_Hans" in en: Chinese)."""
    name = babel_locale(code).get_language_name(babel_locale(reply)) or code
    return name[:1].upper() + name[1:]


@lru_cache(maxsize=64)
def _own_name(code: str) -> str:
    """A language's name in itself, from Babel's data: a new catalog needs no code."""
    name = babel_locale(code).get_language_name(babel_locale(code)) or code
    return name[:1].upper() + name[1:]


def _booking_info(named: r.NamedBooking) -> ports.BookingInfo:
    b = named.booking
    return ports.BookingInfo(b.code, b.patient_ref, named.name, b.department_id,
                             b.department_names, b.starts_at, b.cancel_deadline)


def _done(booking: r.BookingView) -> ports.Done:
    return ports.Done(booking.code, booking.starts_at, booking.department_names, booking.patient_ref)


def _refused(result: r.Refusal) -> ports.Refused:
    params = {k: v for k, v in vars(result).items()}
    return ports.Refused(result.rule, params)
