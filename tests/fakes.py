"""An in-memory Backend for engine tests: the engine's port, with no database.

Rule: a faithful small hospital (departments, slots, linked patients, bookings) that
keeps the same promises as the service layer where the engine can tell: released
slots only, capacity, refusals as typed values. Anything it can't decide it refuses.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from assistant.booking import identity  # the product's identity rules, not a copy
from assistant.conversation_backend import country_code
from assistant.engine import ports
from assistant.engine.parse import parse_id_number

TZ_NAME = "Asia/Shanghai"
TZ = ZoneInfo(TZ_NAME)
ID_KINDS = ("cn_resident_id", "generic")
GENERIC_PATTERN = "^(?=.*[0-9])[A-Z0-9]{6,20}$"


@functools.cache
def shared_renderer():
    """The real renderer and catalogs, so labels read as the patient would see them."""
    from assistant.channels.render import Renderer
    from assistant.config import LOCALES_DIR
    from assistant.i18n import Catalogs, compile_catalogs

    compile_catalogs(LOCALES_DIR)
    return Renderer(Catalogs(LOCALES_DIR, default="en"), TZ_NAME)


def check_char(first17: str) -> str:
    return identity.cn_resident_id_check_char(first17)


@dataclass
class FakeSlot:
    id: int
    department_id: int
    starts_at: datetime
    capacity: int
    booked: int = 0
    release_at: datetime | None = None


@dataclass
class FakeBooking:
    code: str
    patient_ref: int
    slot_id: int
    status: str = "booked"
    mine: bool = True  # made by this address (others' bookings are found by code only)


@dataclass
class FakeBackend:
    departments_: list[ports.DepartmentInfo] = field(default_factory=list)
    slots: list[FakeSlot] = field(default_factory=list)
    patients: dict[int, ports.PatientInfo] = field(default_factory=dict)
    bookings_: list[FakeBooking] = field(default_factory=list)
    locale: str | None = None
    opted_out: bool = False
    slow_speech: bool = False
    refuse_next: ports.Refused | None = None
    locales: tuple[str, ...] = ("en", "zh_Hans", "es")
    generic_documents: tuple[str, ...] = ("passport", "travel_permit")
    groups: tuple = ()
    calls: list[str] = field(default_factory=list)
    # A fair release: days open for requests by department, and a question we sent.
    request_days_: dict[int, list[ports.RequestDay]] = field(default_factory=dict)
    question: ports.Question | None = None
    _codes: itertools.count = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def demo(cls, today: date = date(2026, 12, 1), *, long_names: bool = False) -> "FakeBackend":
        names = [
            {"en": "Cardiology", "zh_Hans": "心内科", "es": "Cardiología"},
            {"en": "Endocrinology (Diabetes and Thyroid)", "zh_Hans": "内分泌科（糖尿病和甲状腺）",
             "es": "Endocrinología (diabetes y tiroides)"},
            {"en": "Ophthalmology (Eyes)", "zh_Hans": "眼科", "es": "Oftalmología (ojos)"},
            {"en": "Orthopedics (Bones and Joints)", "zh_Hans": "骨科", "es": "Traumatología (huesos y articulaciones)"},
            {"en": "General Medicine", "zh_Hans": "全科", "es": "Medicina general"},
            {"en": "Pediatrics (Children)", "zh_Hans": "儿科", "es": "Pediatría (niños)"},
        ]
        if long_names:
            names[0] = {"en": "Cardiology and Cardiovascular Surgery Outpatients",
                        "zh_Hans": "心血管内科与心脏外科联合门诊", "es": "Cardiología y cirugía cardiovascular (consultas)"}
        keywords = [{"en": ["heart"], "zh_Hans": ["心脏"], "es": ["corazón"]}, {"en": ["diabetes"]},
                    {"en": ["eyes"]}, {"en": ["knee"]}, {"en": ["fever"]}, {"en": ["child"]}]
        backend = cls(departments_=[ports.DepartmentInfo(i + 1, n, k)
                                    for i, (n, k) in enumerate(zip(names, keywords))])
        slot_ids = itertools.count(1)
        for dept in backend.departments_:
            for offset in range(1, 9):
                day = today + timedelta(days=offset)
                for hh, mm in ((8, 0), (8, 30), (9, 0), (9, 30), (10, 0), (10, 30), (14, 0), (14, 30)):
                    starts = datetime.combine(day, time(hh, mm), tzinfo=TZ)
                    release = datetime.combine(day - timedelta(days=7), time(15), tzinfo=TZ)
                    backend.slots.append(FakeSlot(next(slot_ids), dept.id, starts, 2, 0, release))
        return backend

    @classmethod
    def from_hospital_file(cls, path, today: date = date(2026, 12, 1)) -> "FakeBackend":
        """A hospital file's departments, areas and synonyms (config/large_hospital.toml),
        each with the demo's weekday slots."""
        import tomllib

        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        backend = cls.demo(today)
        backend.departments_ = [
            ports.DepartmentInfo(index + 1, d["names"], d.get("keywords", {}), d.get("group"))
            for index, d in enumerate(data["departments"])]
        backend.groups = tuple((g["code"], g["names"]) for g in data.get("groups", ()))
        template = [slot for slot in backend.slots if slot.department_id == 1]
        backend.slots = [FakeSlot(n * len(template) + k + 1, dept.id, slot.starts_at, slot.capacity,
                                  0, slot.release_at)
                         for n, dept in enumerate(backend.departments_)
                         for k, slot in enumerate(template)]
        return backend

    def link(self, ref: int, name: str, last4: str = "002X", relation: str = "self") -> None:
        self.patients[ref] = ports.PatientInfo(ref, name, last4, relation)

    # -- the port

    def hospital(self) -> ports.HospitalInfo:
        return ports.HospitalInfo(TZ_NAME, "en", self.locales, "+86 10 6512 0000",
                                  {"en": "Mon-Fri 8:00-17:00", "zh_Hans": "周一至周五 8:00-17:00",
                                   "es": "lun-vie 8:00-17:00"}, ("cn_resident_id", "generic"),
                                  generic_documents=self.generic_documents,
                                  department_groups=self.groups,
                                  language_names_in={"en": {"zh_Hans": "Chinese", "es": "Spanish"},
                                                     "es": {"zh_Hans": "Chino", "en": "Inglés"},
                                                     "zh_Hans": {"en": "英语", "es": "西班牙语"}})

    def departments(self):
        return list(self.departments_)

    def _bookable(self, now: datetime):
        for slot in self.slots:
            closes = datetime.combine(slot.starts_at.date() - timedelta(days=1), time(16), tzinfo=TZ)
            if slot.release_at <= now < closes and slot.booked < slot.capacity:
                yield slot

    def open_days(self, department_id, now, limit):
        days = sorted({s.starts_at.astimezone(TZ).date() for s in self._bookable(now)
                       if s.department_id == department_id})
        return days[:limit]

    def free_slots(self, department_id, day, now):
        return [ports.SlotInfo(s.id, s.starts_at, s.capacity - s.booked) for s in self._bookable(now)
                if s.department_id == department_id and s.starts_at.astimezone(TZ).date() == day]

    def soonest_slots(self, department_id, now, limit):
        slots = sorted((s for s in self._bookable(now) if s.department_id == department_id),
                       key=lambda s: s.starts_at)
        return [ports.SlotInfo(s.id, s.starts_at, s.capacity - s.booked) for s in slots[:limit]]

    def opens_at(self, department_id, day, now):
        pending = [s.release_at for s in self.slots if s.department_id == department_id
                   and s.starts_at.astimezone(TZ).date() == day and s.release_at > now]
        return min(pending) if pending else None

    def linked_patients(self):
        return list(self.patients.values())

    def last_booked(self):
        for booking in reversed(self.bookings_):
            slot = self._slot(booking.slot_id)
            dept = next(d for d in self.departments_ if d.id == slot.department_id)
            patient = self.patients[booking.patient_ref]
            return ports.RecentBooking(patient.ref, patient.name, dept.id, dept.names)
        return None

    def check_id_number(self, text, today):
        result = identity.validate_any_id_number(
            parse_id_number(text) or text, kinds=ID_KINDS, generic_pattern=GENERIC_PATTERN,
            today=today)
        if isinstance(result, identity.IdentityRefusal):
            return ports.IdCheck(False, reason=result.reason)
        return ports.IdCheck(True, result.kind, result.value, result.value[-4:], result.birth_date)

    def check_name(self, text):
        name = identity.validate_name(text)
        return None if isinstance(name, identity.IdentityRefusal) else name

    def check_country(self, text, locale):
        return country_code(text, locale)

    def label_text(self, label, locale):
        return shared_renderer().text(label, locale)

    def book(self, who, slot_id, relation, now, key):
        self.calls.append(f"book:{slot_id}")
        if self.refuse_next is not None:
            refused, self.refuse_next = self.refuse_next, None
            return refused
        slot = self._slot(slot_id)
        if slot is None or slot.booked >= slot.capacity:
            return ports.Refused("slot_full")
        ref = who if isinstance(who, int) else self._new_patient(who, relation)
        slot.booked += 1
        code = f"CODE{next(self._codes):04d}"
        self.bookings_.append(FakeBooking(code, ref, slot_id))
        dept = next(d for d in self.departments_ if d.id == slot.department_id)
        return ports.Done(code, slot.starts_at, dept.names, ref)

    def request_days(self, department_id, now, kind=None):
        return [d for d in self.request_days_.get(department_id, ()) if kind is None or d.kind == kind]

    def request(self, who, department_id, day, part, relation, now, key):
        self.calls.append(f"request:{department_id}:{day.isoformat()}:{part}")
        if self.refuse_next is not None:
            refused, self.refuse_next = self.refuse_next, None
            return refused
        offered = next((d for d in self.request_days_.get(department_id, ()) if d.day == day), None)
        if offered is None:
            return ports.Refused("requests_closed")
        ref = who if isinstance(who, int) else self._new_patient(who, relation)
        dept = next(d for d in self.departments_ if d.id == department_id)
        return ports.Requested(offered.kind, day, part, dept.names, offered.closes_at,
                               None if offered.kind == "draw" else 3, ref)

    def pending_question(self, now):
        if self.question is None:
            return None
        if self.question.kind == "missed_offer":  # recognised for 12 hours after it expired
            return self.question if now - self.question.expires_at < timedelta(hours=12) else None
        return self.question if self.question.expires_at > now else None

    def answer_question(self, accept, now, key):
        question = self.pending_question(now)
        self.calls.append(f"answer:{question.kind if question else None}:{accept}")
        if question is None or question.kind == "missed_offer":
            return ports.Refused("nothing_to_answer")
        self.question = None
        code = f"CODE{next(self._codes):04d}" if question.kind == "offer" and accept else question.code
        return ports.Answered(question.kind, accept, code, question.starts_at)

    def _new_patient(self, who, relation):
        ref = max(self.patients, default=0) + 1
        self.patients[ref] = ports.PatientInfo(ref, who.name, who.id_number[-4:],
                                               "family" if relation == "family" else "self")
        return ref

    def find_booking(self, code, id_last4, now):
        for booking in self.bookings_:
            patient = self.patients.get(booking.patient_ref)
            if booking.code == code and patient is not None and patient.id_last4 == id_last4:
                return self._info(booking, now)
        return None

    def _info(self, booking, now):
        slot = self._slot(booking.slot_id)
        if booking.status != "booked" or slot.starts_at <= now:
            return None
        dept = next(d for d in self.departments_ if d.id == slot.department_id)
        deadline = datetime.combine(slot.starts_at.date() - timedelta(days=1), time(16), tzinfo=TZ)
        return ports.BookingInfo(booking.code, booking.patient_ref,
                                 self.patients[booking.patient_ref].name, dept.id,
                                 dept.names, slot.starts_at, deadline)

    def bookings(self, now):
        """Only the bookings this address made, as the service layer promises."""
        infos = (self._info(booking, now) for booking in self.bookings_ if booking.mine)
        return [info for info in infos if info is not None]

    def cancel(self, code, now, key, id_last4=None):
        self.calls.append(f"cancel:{code}" + (f":by-code-holder:{id_last4}" if id_last4 else ""))
        if self.refuse_next is not None:
            refused, self.refuse_next = self.refuse_next, None
            return refused
        for booking in self.bookings_:
            if booking.code == code and booking.status == "booked":
                booking.status = "cancelled"
                self._slot(booking.slot_id).booked -= 1
                return ports.Done(code)
        return ports.Refused("booking_not_found")

    def reschedule(self, code, slot_id, now, key, id_last4=None):
        self.calls.append(f"reschedule:{code}:{slot_id}")
        for booking in self.bookings_:
            if booking.code == code and booking.status == "booked":
                new_slot = self._slot(slot_id)
                if new_slot.booked >= new_slot.capacity:
                    return ports.Refused("slot_full")
                new_slot.booked += 1
                self._slot(booking.slot_id).booked -= 1
                booking.status = "cancelled"
                new_code = f"CODE{next(self._codes):04d}"
                self.bookings_.append(FakeBooking(new_code, booking.patient_ref, slot_id))
                dept = next(d for d in self.departments_ if d.id == new_slot.department_id)
                return ports.Done(new_code, new_slot.starts_at, dept.names, booking.patient_ref)
        return ports.Refused("booking_not_found")

    def remember_locale(self, locale, patient_ref, now):
        self.locale = locale

    def remembered_locale(self):
        return self.locale

    def remember_slow_speech(self, now):
        self.slow_speech = True

    def set_opted_out(self, opted_out, now):
        self.opted_out = opted_out

    def is_opted_out(self):
        return self.opted_out

    def _slot(self, slot_id):
        return next((s for s in self.slots if s.id == slot_id), None)
