"""Fair release under attack: the same patients and scalper rings, released first come
and by draw, through the real service layer and the worker's real jobs.

What is measured, and the targets:

1. Who gets the places. A seeded population (`--seed`) wants places on several release
   days of one department (six slots, morning and afternoon). Each day is released
   once first come (on sale at 15:00 seven days ahead) and once by draw (requests from
   15:00, the draw at 20:00), each mode on a fresh database, so both see the very same
   people doing the very same things:
   - genuine patients: one identity and their own phone each, by SMS or voice, acting
     minutes after the release (exponential delays, mean 6 minutes), asking for the
     morning, the afternoon or any time; most join the waitlist when they miss out and
     answer an offer minutes later (mean 10 minutes), some never do; a few cancel;
   - scalper rings: bots acting within milliseconds, for real customers' identities
     but from few phones (3 identities a phone, `patients_per_address`), asking for
     any time and taking any offer within 50 ms. Once per day each ring sells a place
     on (a transfer): it cancels one of its bookings at a moment it chooses (the
     evening after the release, or 0.1 s before the next daily release time, when a
     held place nobody waits for goes back on sale), and its buyer, a customer whose
     own phone the bot drives, books that slot 20 ms later and again 1 ms after the
     next release time. The buyer has waited on the day's waitlist since the moment a
     conversation would offer it (the day released and full: within milliseconds of
     its last place going, or of the draw) and takes an offer within 50 ms.
   The clock is simulated: every call gets `now` and events run in time order. The
   worker runs `release.open_due_draws`, `release.run_draw` and `waitlist.run_due` at
   every moment one of them has work (a draw time, an offer's expiry, a held place's
   release time), as a worker polling often would. Reminders and no-show marking stay
   out: everyone here comes to their visit.
   Targets: under draw, the scalpers' share of places (rings' identities and buyers),
   at the draw and on the visit day, is no more than their share of requesters within
   a 95% interval (the hypergeometric normal approximation of a fair draw of the same
   requesters); genuine patients are placed at least 2x as often as first come; no
   transfer succeeds (the exact freed place goes to a buyer, from the waitlist or on
   sale). Each draw is also re-run by `release.assign` over the same stored requests
   with `--seeds` seeds: the spread its rules give the scalpers, parts of the day
   included, against the fair interval. The simulation's draws use the service's own
   secret seeds, so their outcome differs from run to run; all else follows `--seed`.

2. The draw's order is uniform. `release.draw_order` (pure) orders 100 fixed request
   ids under `--seeds` seeds. Chi-square tests: how often each request is among the
   first 30 (a draw's winners), and in which tenth of the order it lands. A permutation
   ties the counts together (each seed places exactly 30), so the statistic is scaled
   by (N-1)/N to follow chi-square with N-1 and (N-1)(B-1) degrees of freedom; p-values
   come from the regularized incomplete gamma function (no scipy). Target p > 0.01.

3. Speed. A draw of 20,000 requests over 2,000 places: the requests are written in
   bulk with SQL (patients, addresses, links, requests; blind indexes and ciphertexts
   from the keyring), which is not measured; only `release.run_draw` is timed.
   Requests and places per second are set against `service.book_slot` bookings per
   second in the same database and run (bench/bookings.py's `Target`: the median of
   three rounds after its warm-up). Target: the draw handles requests at least as fast
   as first come books them (>= 1x).

PostgreSQL runs in schemas private to the run, created and dropped here; it is skipped
with a message when unreachable.

    python bench/fairness.py [--seed S] [--seeds N] [--only sqlite|postgres] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock_time, timedelta
from pathlib import Path
from typing import Callable, Iterator, Sequence
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from assistant.booking import identity, migrate, release, results as r, service, waitlist  # noqa: E402
from assistant.booking.models import (  # noqa: E402
    HELD,
    OFFER_OPEN,
    Booking,
    ChannelAddress,
    Department,
    Draw,
    DrawRequest,
    FreedPlace,
    Hospital,
    Patient,
    PatientLink,
    Slot,
    WaitlistEntry,
)
from assistant.booking.service import AddressInput, IdentityInput  # noqa: E402
from assistant.bootstrap import App  # noqa: E402
from bench.bookings import POSTGRES_URL, WARMUP, Target, build_app  # noqa: E402
from bench.common import resident_id  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
FIRST_VISIT = date(2026, 12, 14)  # a Monday; each further release is a week later
RELEASE_TIME = clock_time(15, 0)  # the default policy's release_time
DRAW_TIME = clock_time(20, 0)  # the default policy's draw_time
MODES = ("first_come", "draw")
GENUINE, RING, BUYER = "genuine", "ring", "buyer"
SCALPERS = (RING, BUYER)  # a buyer's place is a scalped place too
BOT_REACTION = timedelta(milliseconds=50)
WORKER = "bench-fairness"
Z95 = 1.959964


# ---- statistics (pure) ------------------------------------------------------------------


def upper_gamma_q(a: float, x: float) -> float:
    """Q(a, x), the regularized upper incomplete gamma function: the series for P below
    a + 1, Lentz's continued fraction for Q above (Numerical Recipes, 6.2)."""
    if x <= 0:
        return 1.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= x / n
            total += term
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(log_prefix) * h


def chi_square_p(statistic: float, df: int) -> float:
    """P(chi-square with `df` degrees of freedom >= statistic)."""
    return upper_gamma_q(df / 2, statistic / 2)


@dataclass(frozen=True)
class Uniformity:
    seeds: int
    requests: int
    winners: int
    buckets: int
    wins_statistic: float
    wins_p: float
    buckets_statistic: float
    buckets_p: float


def draw_uniformity(seeds: Sequence[str], requests: int = 100, winners: int = 30,
                    buckets: int = 10, order: Callable[[str, list[int]], list[int]] = release.draw_order
                    ) -> Uniformity:
    """Chi-square tests that `order` puts every request anywhere with equal chance: among
    the first `winners`, and in each of `buckets` equal parts of the order."""
    ids = list(range(1001, 1001 + requests))  # ids as a busy table has them, not 1..N
    wins, cells = Counter(), Counter()
    for seed in seeds:
        for position, request_id in enumerate(order(seed, ids)):
            wins[request_id] += position < winners
            cells[request_id, position * buckets // requests] += 1
    s, n, p = len(seeds), requests, winners / requests
    # A permutation's counts are tied (each seed places exactly `winners`): scaled by
    # (n-1)/n the statistics follow chi-square with n-1 and (n-1)(b-1) degrees of freedom.
    tie = (n - 1) / n
    wins_statistic = tie * sum((wins[i] - s * p) ** 2 for i in ids) / (s * p * (1 - p))
    expected = s / buckets
    buckets_statistic = tie * sum((cells[i, b] - expected) ** 2 / expected
                                  for i in ids for b in range(buckets))
    return Uniformity(s, n, winners, buckets,
                      wins_statistic, chi_square_p(wins_statistic, n - 1),
                      buckets_statistic, chi_square_p(buckets_statistic, (n - 1) * (buckets - 1)))


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def hypergeometric_interval(days: Sequence[tuple[int, int, int]]) -> Interval:
    """95% interval of a group's share of places when each day gives its places to
    requesters at random: days of (requesters, of them the group's, places given).
    Normal approximation of the sum of the days' hypergeometric counts."""
    mean = variance = 0.0
    given = sum(places for _, _, places in days)
    for requesters, group, places in days:
        if requesters < 2 or places == 0:
            mean += places * group / max(requesters, 1)
            continue
        share = group / requesters
        mean += places * share
        variance += places * share * (1 - share) * (requesters - places) / (requesters - 1)
    spread = Z95 * math.sqrt(variance)
    return Interval(max(0.0, (mean - spread) / given), min(1.0, (mean + spread) / given))


def quantile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# ---- the population ------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    key: str
    kind: str  # genuine | ring | buyer
    identity: IdentityInput
    address: AddressInput
    channel: str
    ring: int | None = None


@dataclass(frozen=True)
class Asker:
    """Someone who wants a place on one release's day, and how they behave."""

    person: Person
    part: str
    delay: timedelta  # after the release opens
    answers_offers: bool  # joins the waitlist (first come) and answers offers
    answer_delay: timedelta
    cancels_after: timedelta | None  # after getting a place


@dataclass(frozen=True)
class Release:
    index: int
    visit_date: date
    opens_at: datetime  # first come: on sale; draw: requests open
    draw_at: datetime
    ends_at: datetime  # the visit day begins: outcomes are counted

    @property
    def closes_at(self) -> datetime:
        """Booking and cancelling close at 16:00 the day before (the default policy)."""
        return datetime.combine(self.visit_date - timedelta(days=1), clock_time(16), tzinfo=TZ)


@dataclass(frozen=True)
class Transfer:
    ring: int
    release: int
    at: datetime
    buyer: Person


@dataclass(frozen=True)
class Size:
    releases: int
    genuine_per_release: int
    ring_phones: tuple[int, ...]  # phones per ring, 3 identities each
    slots_per_half_day: int
    capacity: int

    @property
    def places(self) -> int:
        return 2 * self.slots_per_half_day * self.capacity


FULL = Size(releases=4, genuine_per_release=75, ring_phones=(4, 3, 2), slots_per_half_day=3, capacity=5)
QUICK = Size(releases=2, genuine_per_release=30, ring_phones=(2, 1), slots_per_half_day=2, capacity=3)
IDENTITIES_PER_PHONE = 3  # the default patients_per_address
SAFE_CANCELS = 2  # the default cancel_limit is 3 within 30 days: the whole simulation


@dataclass(frozen=True)
class Population:
    size: Size
    releases: list[Release]
    askers: dict[int, list[Asker]]  # by release index
    transfers: list[Transfer]

    @property
    def people(self) -> list[Person]:
        seen = {a.person.key: a.person for askers in self.askers.values() for a in askers}
        seen.update((t.buyer.key, t.buyer) for t in self.transfers)
        return list(seen.values())


def letters(n: int) -> str:
    """A name part from a number: names may hold letters and spaces only."""
    out = ""
    n += 1
    while n:
        n, digit = divmod(n - 1, 26)
        out = "abcdefghijklmnopqrstuvwxyz"[digit] + out
    return out.title()


class People:
    """Distinct valid identities and phone numbers, in order of creation."""

    def __init__(self) -> None:
        self.count = itertools.count()

    def new(self, kind: str, key: str, channel: str, ring: int | None = None,
            address: AddressInput | None = None) -> Person:
        n = next(self.count)
        number, birth = resident_id(n)
        who = IdentityInput("cn_resident_id", number, f"{kind.title()} {letters(n)}", birth_date=birth)
        return Person(key, kind, who, address or phone_number(n), channel, ring)


def phone_number(n: int) -> AddressInput:
    return AddressInput("phone", f"+86 137 {n // 10000:04d} {n % 10000:04d}")


def build_population(size: Size, seed: int) -> Population:
    rng = random.Random(seed)
    people = People()
    releases = [release_of(i) for i in range(size.releases)]
    rings = [ring_identities(people, ring, phones) for ring, phones in enumerate(size.ring_phones)]
    askers: dict[int, list[Asker]] = {}
    transfers = []
    for day in releases:
        genuine = [genuine_asker(rng, people.new(GENUINE, f"g{day.index}.{k}", rng.choice(("sms", "sms", "voice"))))
                   for k in range(size.genuine_per_release)]
        bots = [bot_asker(rng, person) for ring in rings for person in ring]
        askers[day.index] = genuine + bots
        for ring in range(len(rings)):
            buyer = people.new(BUYER, f"b{day.index}.{ring}", "sms", ring)
            transfers.append(Transfer(ring, day.index, transfer_moment(day, ring), buyer))
    return Population(size, releases, askers, transfers)


def release_of(index: int) -> Release:
    visit = FIRST_VISIT + timedelta(weeks=index)
    opens_at = datetime.combine(visit - timedelta(days=7), RELEASE_TIME, tzinfo=TZ)
    return Release(index, visit, opens_at, datetime.combine(opens_at.date(), DRAW_TIME, tzinfo=TZ),
                   datetime.combine(visit, clock_time(7, 59), tzinfo=TZ))


def ring_identities(people: People, ring: int, phones: int) -> list[Person]:
    """A ring's customers: three identities on each of its few phones."""
    out = []
    for p in range(phones):
        phone = phone_number(900_000 + 100 * ring + p)
        out += [people.new(RING, f"r{ring}.{p}.{k}", "sms", ring, address=phone) for k in range(IDENTITIES_PER_PHONE)]
    return out


def genuine_asker(rng: random.Random, person: Person) -> Asker:
    part = rng.choices(("any", "morning", "afternoon"), weights=(6, 3, 1))[0]
    return Asker(person, part, delay=timedelta(minutes=rng.expovariate(1 / 6)),
                 answers_offers=rng.random() < 0.75,
                 answer_delay=timedelta(minutes=rng.expovariate(1 / 10)),
                 cancels_after=timedelta(hours=rng.uniform(2, 96)) if rng.random() < 0.1 else None)


def bot_asker(rng: random.Random, person: Person) -> Asker:
    return Asker(person, "any", delay=timedelta(milliseconds=rng.uniform(2, 300)), answers_offers=True,
                 answer_delay=BOT_REACTION, cancels_after=None)


def transfer_moment(day: Release, ring: int) -> datetime:
    """The evening after the release, or 0.1 s before the next day's release time: a
    freed place nobody waits for would go on sale at that release time."""
    if (day.index + ring) % 2 == 0:
        return day.opens_at + timedelta(hours=6, minutes=30)
    return day.opens_at + timedelta(days=1) - timedelta(milliseconds=100)


# ---- one simulated run ------------------------------------------------------------------------


@dataclass
class Holding:
    code: str
    slot_id: int
    release: int
    address: AddressInput


@dataclass
class TransferResult:
    ring: int
    release: int
    at: datetime
    slot_id: int | None = None  # None: the ring held no place to sell
    freed_id: int | None = None  # the freed_place row of the ring's cancellation
    steps: list[str] = field(default_factory=list)  # what the buyer's calls got
    caught_by_booking: bool = False  # a buyer booked the freed slot first come
    went_to: str = ""  # where the freed place was when the visit day began

    @property
    def succeeded(self) -> bool:
        return self.caught_by_booking or self.went_to == BUYER


@dataclass
class DayOutcome:
    """One release's day at the start of the visit day."""

    requesters: Counter  # by kind: who asked (first come: everyone who tried)
    placed: Counter  # by kind: active bookings
    genuine_askers: int
    genuine_placed: int
    drawn: Counter = field(default_factory=Counter)  # by kind, at the draw
    draw: "DrawInputs | None" = None


@dataclass(frozen=True)
class DrawInputs:
    """A draw's stored requests and places, to re-run its rules with other seeds."""

    requests: tuple[tuple[int, str], ...]  # (id, part)
    ring_requests: frozenset[int]
    places: tuple[release.DrawPlace, ...]
    refused: frozenset[int]


@dataclass
class RunOutcome:
    mode: str
    days: list[DayOutcome]
    transfers: list[TransferResult]
    offers: int = 0
    offers_taken: int = 0
    calls: Counter = field(default_factory=Counter)  # service calls by use case
    refusals: Counter = field(default_factory=Counter)  # by use case and rule
    seconds: float = 0.0


class Simulation:
    """The population against one release mode, on one fresh database, event by event
    in simulated time."""

    def __init__(self, app: App, population: Population, mode: str) -> None:
        self.ctx = app.services
        self.population = population
        self.mode = mode
        self.events: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self.sequence = itertools.count()
        self.worker_at: set[datetime] = set()
        self.holdings: dict[str, Holding] = {}  # person key -> the place they hold
        self.answered: set[tuple[int, datetime]] = set()  # (freed place, offered at)
        self.asked: dict[int, set[str]] = {day.index: set() for day in population.releases}
        self.unqueued: dict[int, list[Transfer]] = {day.index: [] for day in population.releases}
        self.by_index = {self.ctx.keyring.blind_index(identity.id_purpose("cn_resident_id"),
                                                      p.identity.number): p for p in population.people}
        self.by_patient: dict[int, Person] = {}
        self.by_key = {p.key: p for p in population.people}
        self.cancels_by_phone: Counter = Counter()
        self.askers = {(day, a.person.key): a for day, askers in population.askers.items() for a in askers}
        self.outcome = RunOutcome(mode, [], [])
        self.department_id = self._add_hospital()

    # -- setup

    def _add_hospital(self) -> int:
        size = self.population.size
        with self.ctx.uow() as uow:
            session = uow.session
            hospital = Hospital(code="fair", names={"en": "Fair Hospital"}, timezone="Asia/Shanghai",
                                desk_phone="+861065120000", desk_hours={"en": "Mon-Fri"}, policy_overrides={})
            session.add(hospital)
            session.flush()
            department = Department(hospital_id=hospital.id, code="outpatients", names={"en": "Outpatients"},
                                    keywords={}, policy_overrides={"release_mode": self.mode}, sort_order=0,
                                    active=True)
            session.add(department)
            session.flush()
            for day in self.population.releases:
                for hour in day_hours(size.slots_per_half_day):
                    starts = datetime.combine(day.visit_date, clock_time(hour), tzinfo=TZ)
                    session.add(Slot(
                        department_id=department.id, starts_at=starts, ends_at=starts + timedelta(minutes=30),
                        visit_date=day.visit_date, capacity=size.capacity, booked=0,
                        release_at=day.draw_at if self.mode == "draw" else day.opens_at,
                        release_mode=self.mode, requests_open_at=day.opens_at if self.mode == "draw" else None))
            uow.commit()
            return department.id

    # -- the event loop

    def at(self, moment: datetime, action: Callable[[datetime], None]) -> None:
        heapq.heappush(self.events, (moment, next(self.sequence), action))

    def run(self) -> RunOutcome:
        started = time.perf_counter()
        for day in self.population.releases:
            self.worker(day.opens_at)
            self.worker(day.draw_at)
            for asker in self.population.askers[day.index]:
                self.at(day.opens_at + asker.delay, lambda now, a=asker, d=day: self.ask(d, a, now))
            self.at(day.ends_at, lambda now, d=day: self.count(d))
        for transfer in self.population.transfers:
            day = self.population.releases[transfer.release]
            queues_at = (day.draw_at if self.mode == "draw" else day.opens_at) + timedelta(milliseconds=5)
            self.at(queues_at, lambda now, t=transfer: self.buyer_queues(t, now))
            self.at(transfer.at, lambda now, t=transfer: self.sell_on(t, now))
        while self.events:
            moment, _, action = heapq.heappop(self.events)
            action(moment)
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome

    def worker(self, moment: datetime) -> None:
        """The worker's round at `moment` (once per moment)."""
        if moment not in self.worker_at:
            self.worker_at.add(moment)
            self.at(moment, self.run_jobs)

    def run_jobs(self, now: datetime) -> None:
        release.open_due_draws(self.ctx, now)
        for draw_id in release.due_draws(self.ctx, now):
            if release.run_draw(self.ctx, draw_id, now=now, worker=WORKER) is not None:
                self.after_draw(draw_id, now)
        waitlist.run_due(self.ctx, now)
        self.follow_offers(now)

    # -- what people do

    def call(self, use_case: str, function: Callable, **kwargs):
        self.outcome.calls[use_case] += 1
        result = function(self.ctx, **kwargs)
        if isinstance(result, r.Refusal):
            self.outcome.refusals[f"{use_case} {result.rule}"] += 1
        return result

    def ask(self, day: Release, asker: Asker, now: datetime) -> None:
        person = asker.person
        self.asked[day.index].add(person.key)
        if self.mode == "draw":
            self.call("request_place", release.request_place, department_id=self.department_id,
                      visit_date=day.visit_date, part=asker.part, channel=person.channel, now=now,
                      booked_by=person.address, identity_input=person.identity)
            return
        if not self.book_any(day, asker, now) and asker.answers_offers:
            self.join_waitlist(day, person, asker.part, now)

    def book_any(self, day: Release, asker: Asker, now: datetime) -> bool:
        """Book the soonest free place that fits, as the conversation offers them."""
        free = service.availability(self.ctx, department_id=self.department_id, date_from=day.visit_date,
                                    date_to=day.visit_date, now=now)
        for slot in free:
            if release.fits(asker.part, release.part_of_day(slot.starts_at.astimezone(TZ))):
                if self.book(day, asker.person, slot.id, now) is None:
                    return True
        return False

    def book(self, day: Release, person: Person, slot_id: int, now: datetime) -> str | None:
        """None when booked, else the refusal's rule."""
        result = self.call("book_slot", service.book_slot, slot_id=slot_id, channel=person.channel, now=now,
                           identity_input=person.identity, booked_by=person.address)
        if isinstance(result, r.Booked):
            self.placed(day.index, person, result.booking.code, result.booking.slot_id, now)
            return None
        return result.rule

    def join_waitlist(self, day: Release, person: Person, part: str, now: datetime) -> str | None:
        result = self.call("request_place", release.request_place, department_id=self.department_id,
                           visit_date=day.visit_date, part=part, channel=person.channel, now=now,
                           booked_by=person.address, identity_input=person.identity)
        return None if isinstance(result, r.Requested) else result.rule

    def placed(self, release_index: int, person: Person, code: str, slot_id: int, now: datetime) -> None:
        self.holdings[person.key] = Holding(code, slot_id, release_index, person.address)
        waiting, self.unqueued[release_index] = self.unqueued[release_index], []
        for transfer in waiting:  # the bot polls: it notices the last place go within 5 ms
            self.at(now + timedelta(milliseconds=5), lambda t, x=transfer: self.buyer_queues(x, t))
        asker = self.askers.get((release_index, person.key))
        if asker is not None and asker.cancels_after is not None:
            moment = now + asker.cancels_after
            if moment < self.population.releases[release_index].closes_at:
                self.at(moment, lambda t, p=person: self.cancel(p, t))

    def cancel(self, person: Person, now: datetime) -> r.Cancelled | r.Refusal | None:
        held = self.holdings.pop(person.key, None)
        if held is None:
            return None
        result = self.call("cancel_booking", service.cancel_booking, code=held.code, requester=held.address,
                           channel=person.channel, now=now)
        self.follow_offers(now)
        return result

    def answer(self, person: Person, release_index: int, now: datetime) -> None:
        result = self.call("answer_offer", waitlist.answer_offer, address=person.address, accept=True,
                           channel=person.channel, now=now)
        if isinstance(result, r.Answered) and result.accepted and result.booking is not None:
            self.outcome.offers_taken += 1
            self.placed(release_index, person, result.code, result.booking.slot_id, now)
        self.follow_offers(now)

    # -- the rings' transfers

    def sell_on(self, transfer: Transfer, now: datetime) -> None:
        """Cancel one of the ring's places and have its buyer catch it: booking it 20 ms
        later, and again 1 ms after the next release time; the buyer already waits on
        the day's waitlist, and takes an offer within 50 ms."""
        day = self.population.releases[transfer.release]
        outcome = TransferResult(transfer.ring, transfer.release, now)
        self.outcome.transfers.append(outcome)
        held = self.ring_holding(transfer.ring, transfer.release)
        if held is None:
            return
        seller, holding = held
        cancelled = self.cancel(seller, now)
        if not isinstance(cancelled, r.Cancelled):
            outcome.steps.append(f"cancel: {getattr(cancelled, 'rule', cancelled)}")
            return
        outcome.slot_id, outcome.freed_id = holding.slot_id, self.freed_place(holding.slot_id, now)
        buyer = transfer.buyer
        self.at(now + timedelta(milliseconds=20), lambda t: self.buyer_books(day, buyer, outcome, t))
        next_sale = next_release_time(now) + timedelta(milliseconds=1)
        if next_sale < day.closes_at:
            self.at(next_sale, lambda t: self.buyer_books(day, buyer, outcome, t))

    def freed_place(self, slot_id: int, now: datetime) -> int | None:
        with self.ctx.uow.read_only() as uow:
            return uow.session.execute(select(FreedPlace.id).where(
                FreedPlace.slot_id == slot_id, FreedPlace.freed_at == now, FreedPlace.reason == "cancelled")
                .order_by(FreedPlace.id.desc()).limit(1)).scalar()

    def ring_holding(self, ring: int, release_index: int) -> tuple[Person, Holding] | None:
        """The ring's place to sell, on the phone that has cancelled least: a ring keeps
        each phone under the cancellation limit (3 in 30 days), which would suspend it."""
        mine = [(self.by_key[key], held) for key, held in self.holdings.items()
                if held.release == release_index and self.by_key[key].kind == RING
                and self.by_key[key].ring == ring and self.cancels_by_phone[held.address] < SAFE_CANCELS]
        if not mine:
            return None
        seller, held = min(mine, key=lambda item: (self.cancels_by_phone[item[1].address], item[0].key))
        self.cancels_by_phone[held.address] += 1
        return seller, held

    def buyer_books(self, day: Release, buyer: Person, outcome: TransferResult, now: datetime) -> None:
        if buyer.key in self.holdings:
            outcome.steps.append("book: buyer already placed")
            return
        refused = self.book(day, buyer, outcome.slot_id, now)
        outcome.steps.append(f"book: {refused or 'booked'}")
        outcome.caught_by_booking = outcome.caught_by_booking or refused is None

    def buyer_queues(self, transfer: Transfer, now: datetime) -> None:
        """The buyer joins the day's waitlist the moment a conversation offers it: once
        the day is released and has no free place (`release.request_days`)."""
        day = self.population.releases[transfer.release]
        if self.waitlist_offered(day, now):
            self.join_waitlist(day, transfer.buyer, "any", now)
        else:
            self.unqueued[day.index].append(transfer)  # tried again after each booking

    def waitlist_offered(self, day: Release, now: datetime) -> bool:
        return any(d.day == day.visit_date and d.kind == "waitlist"
                   for d in release.request_days(self.ctx, department_id=self.department_id, now=now))

    # -- what the worker and the service tell people

    def after_draw(self, draw_id: int, now: datetime) -> None:
        """Tell the placed their booking (the draw's notice carries the code)."""
        with self.ctx.uow.read_only() as uow:
            rows = uow.session.execute(
                select(Draw.visit_date, DrawRequest.patient_id, Booking.code, Booking.slot_id)
                .join(Draw, DrawRequest.draw_id == Draw.id).join(Booking, DrawRequest.booking_id == Booking.id)
                .where(DrawRequest.draw_id == draw_id)).all()
        for visit_date, patient_id, code, slot_id in rows:
            self.placed(self.release_index(visit_date), self.person_of(patient_id), code, slot_id, now)

    def follow_offers(self, now: datetime) -> None:
        """Schedule the answers to new offers, and the worker's next rounds: when an
        offer expires and when a held place goes back on sale."""
        with self.ctx.uow.read_only() as uow:
            session = uow.session
            offers = session.execute(
                select(FreedPlace.id, FreedPlace.offered_at, FreedPlace.visit_date, WaitlistEntry.patient_id)
                .join(WaitlistEntry, FreedPlace.entry_id == WaitlistEntry.id)
                .where(FreedPlace.status == OFFER_OPEN)).all()
            next_expiry = session.execute(select(func.min(FreedPlace.expires_at)).where(
                FreedPlace.status == OFFER_OPEN)).scalar()
            next_sale = session.execute(select(func.min(FreedPlace.release_at)).where(
                FreedPlace.status == HELD)).scalar()
        for freed_id, offered_at, visit_date, patient_id in offers:
            if (freed_id, offered_at) in self.answered:
                continue
            self.answered.add((freed_id, offered_at))
            self.outcome.offers += 1
            person = self.person_of(patient_id)
            index = self.release_index(visit_date)
            asker = self.askers.get((index, person.key))
            if person.kind == BUYER or (asker is not None and asker.answers_offers):
                delay = BOT_REACTION if person.kind != GENUINE else asker.answer_delay
                self.at(offered_at + delay, lambda t, p=person, i=index: self.answer(p, i, t))
        for moment in (next_expiry, next_sale):
            if moment is not None and moment >= now:
                self.worker(moment)

    # -- counting

    def count(self, day: Release) -> None:
        with self.ctx.uow.read_only() as uow:
            session = uow.session
            booked = session.execute(select(Booking.patient_id).where(
                Booking.visit_date == day.visit_date, Booking.status == "booked")).scalars().all()
            draw = self.draw_inputs(session, day) if self.mode == "draw" else None
        placed_people = [self.person_of(pid) for pid in booked]
        askers = self.population.askers[day.index]
        if draw is not None:
            requesters = Counter(self.person_of(pid).kind for pid in self.draw_patients(day))
        else:
            requesters = Counter(a.person.kind for a in askers if a.person.key in self.asked[day.index])
        placed = Counter(p.kind for p in placed_people)
        genuine_placed = sum(1 for p in placed_people if p.kind == GENUINE)
        outcome = DayOutcome(requesters, placed, sum(1 for a in askers if a.person.kind == GENUINE),
                             genuine_placed, draw=draw)
        if draw is not None:
            outcome.drawn = self.drawn_by_kind(day)
        self.outcome.days.append(outcome)
        for transfer in self.outcome.transfers:
            if transfer.release == day.index and transfer.freed_id is not None:
                transfer.went_to = self.whereabouts(transfer.freed_id)

    def whereabouts(self, freed_id: int) -> str:
        """Who took a freed place (their kind), or what became of it."""
        with self.ctx.uow.read_only() as uow:
            status, patient_id = uow.session.execute(
                select(FreedPlace.status, Booking.patient_id).outerjoin(Booking, FreedPlace.booking_id == Booking.id)
                .where(FreedPlace.id == freed_id)).one()
        return self.person_of(patient_id).kind if patient_id is not None else status

    def draw_patients(self, day: Release) -> list[int]:
        with self.ctx.uow.read_only() as uow:
            return uow.session.execute(
                select(DrawRequest.patient_id).join(Draw, DrawRequest.draw_id == Draw.id)
                .where(Draw.visit_date == day.visit_date)).scalars().all()

    def drawn_by_kind(self, day: Release) -> Counter:
        with self.ctx.uow.read_only() as uow:
            placed = uow.session.execute(
                select(DrawRequest.patient_id).join(Draw, DrawRequest.draw_id == Draw.id)
                .where(Draw.visit_date == day.visit_date, DrawRequest.status == "placed")).scalars().all()
        return Counter(self.person_of(pid).kind for pid in placed)

    def draw_inputs(self, session, day: Release) -> DrawInputs:
        rows = session.execute(
            select(DrawRequest.id, DrawRequest.part, DrawRequest.patient_id, DrawRequest.status)
            .join(Draw, DrawRequest.draw_id == Draw.id).where(Draw.visit_date == day.visit_date)
            .order_by(DrawRequest.id)).all()
        slots = session.execute(select(Slot).where(Slot.department_id == self.department_id,
                                                   Slot.visit_date == day.visit_date)
                                .order_by(Slot.starts_at, Slot.id)).scalars().all()
        places = tuple(release.DrawPlace(s.id, release.part_of_day(s.starts_at.astimezone(TZ)), s.capacity)
                       for s in slots)  # nothing is booked or held before a draw
        return DrawInputs(tuple((rid, part) for rid, part, _, _ in rows),
                          frozenset(rid for rid, _, pid, _ in rows if self.person_of(pid).kind == RING),
                          places, frozenset(rid for rid, _, _, status in rows if status == "refused"))

    # -- who is who

    def person_of(self, patient_id: int) -> Person:
        if patient_id not in self.by_patient:
            with self.ctx.uow.read_only() as uow:
                id_index = uow.session.execute(select(Patient.id_index).where(Patient.id == patient_id)).scalar_one()
            self.by_patient[patient_id] = self.by_index[id_index]
        return self.by_patient[patient_id]

    def release_index(self, visit_date: date) -> int:
        return (visit_date - FIRST_VISIT).days // 7


def day_hours(per_half_day: int) -> list[int]:
    return [8 + h for h in range(per_half_day)] + [13 + h for h in range(per_half_day)]


def next_release_time(now: datetime) -> datetime:
    """The department's next daily release time after `now`, which a bot knows."""
    local = now.astimezone(TZ)
    moment = datetime.combine(local.date(), RELEASE_TIME, tzinfo=TZ)
    return moment if moment > now else moment + timedelta(days=1)


# ---- the fairness figures ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rerun:
    """The scalpers' share at the draw over other seeds, for the same stored requests."""

    mean: float
    interval: Interval
    above: float  # the fraction of seeds that give them more than a fair draw's 95% bound


@dataclass(frozen=True)
class Fairness:
    first_come: RunOutcome
    draw: RunOutcome
    fair_at_draw: Interval  # the scalpers' share of places a fair draw gives, 95%
    fair_at_visit: Interval  # the same for the places held on the visit day
    rerun: Rerun


def scalper_share(counters: Sequence[Counter]) -> float:
    total = sum(sum(c.values()) for c in counters)
    return sum(c[kind] for c in counters for kind in SCALPERS) / total if total else 0.0


def genuine_rate(run: RunOutcome) -> float:
    askers = sum(d.genuine_askers for d in run.days)
    return sum(d.genuine_placed for d in run.days) / askers if askers else 0.0


def successful_transfers(run: RunOutcome) -> int:
    return sum(t.succeeded for t in run.transfers)


def attempted_transfers(run: RunOutcome) -> int:
    return sum(t.slot_id is not None for t in run.transfers)


def rerun_draws(days: Sequence[DrawInputs], seeds: Sequence[str], fair_high: float) -> Rerun:
    """The draws' rules (`release.assign`) re-run over `seeds` on the same requests and
    places: the exact spread of the scalpers' share that those rules give them."""
    shares = []
    for seed in seeds:
        ring = given = 0
        for day in days:
            parts = dict(day.requests)
            order = release.draw_order(seed, parts)
            assigned = release.assign([(rid, parts[rid]) for rid in order], day.places, day.refused)
            won = [rid for rid, slot in assigned.items() if slot is not None]
            given += len(won)
            ring += sum(rid in day.ring_requests for rid in won)
        shares.append(ring / given if given else 0.0)
    shares.sort()
    return Rerun(statistics.fmean(shares), Interval(quantile(shares, 0.025), quantile(shares, 0.975)),
                 sum(x > fair_high for x in shares) / len(shares))


def fairness_of(first_come: RunOutcome, draw: RunOutcome, seeds: Sequence[str]) -> Fairness:
    def fair(places_of: Callable[[DayOutcome], Counter]) -> Interval:
        return hypergeometric_interval([(sum(d.requesters.values()), d.requesters[RING], sum(places_of(d).values()))
                                        for d in draw.days])

    at_draw = fair(lambda d: d.drawn)
    return Fairness(first_come, draw, at_draw, fair(lambda d: d.placed),
                    rerun_draws([d.draw for d in draw.days if d.draw is not None], seeds, at_draw.high))


def simulate(kind: str, population: Population, seeds: Sequence[str]) -> Fairness | None:
    runs = {}
    for mode in MODES:
        with database(kind) as app:
            if app is None:
                return None
            runs[mode] = Simulation(app, population, mode).run()
    return fairness_of(runs["first_come"], runs["draw"], seeds)


# ---- speed: a large draw against first-come booking ------------------------------------------------

SPEED_VISIT = date(2027, 1, 11)
SPEED_CAPACITY = 20
SPEED_IDS = 1_000_000  # resident_id numbers clear of the booking bench's


@dataclass(frozen=True)
class Speed:
    requests: int
    places: int
    placed: int
    waitlisted: int
    seconds: float
    bookings_per_second: list[float]
    verified: bool

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def places_per_second(self) -> float:
        return self.placed / self.seconds

    @property
    def booking_rate(self) -> float:
        return statistics.median(self.bookings_per_second)


def measure_speed(kind: str, requests: int, places: int, bookings: int, seed: int) -> Speed | None:
    with database(kind) as app:
        if app is None:
            return None
        draw_id, draw_at = bulk_draw(app, requests, places, random.Random(seed))
        target = Target(app, WARMUP + 3 * bookings)
        target.service(WARMUP)
        rates = [target.service(bookings) for _ in range(2)]
        started = time.perf_counter()
        report = release.run_draw(app.services, draw_id, now=draw_at, worker=WORKER)
        seconds = time.perf_counter() - started
        rates.append(target.service(bookings))  # after the draw too: a drift shows
        verified = release.verify_draw(app.services, draw_id).ok
    return Speed(report.requests, places, report.placed, report.waitlisted, seconds, rates, verified)


def bulk_draw(app: App, requests: int, places: int, rng: random.Random) -> tuple[int, datetime]:
    """An open draw with `requests` requests over `places` places, written in bulk:
    one patient, phone and link per request, as request_place would leave them."""
    ctx = app.services
    opens_at = datetime.combine(SPEED_VISIT - timedelta(days=7), RELEASE_TIME, tzinfo=TZ)
    draw_at = datetime.combine(opens_at.date(), DRAW_TIME, tzinfo=TZ)
    with ctx.uow() as uow:
        session = uow.session
        hospital = Hospital(code="speed", names={"en": "Speed Hospital"}, timezone="Asia/Shanghai",
                            desk_phone="+861065120000", desk_hours={"en": "Mon-Fri"}, policy_overrides={})
        session.add(hospital)
        session.flush()
        department = Department(hospital_id=hospital.id, code="eyes", names={"en": "Eyes"}, keywords={},
                                policy_overrides={"release_mode": "draw"}, sort_order=0, active=True)
        session.add(department)
        session.flush()
        slots = -(-places // SPEED_CAPACITY)
        for i in range(slots):  # half in the morning, half in the afternoon
            first = clock_time(8) if i < slots // 2 else clock_time(13)
            starts = datetime.combine(SPEED_VISIT, first, tzinfo=TZ) + timedelta(minutes=3 * (i % (slots // 2 or 1)))
            session.add(Slot(department_id=department.id, starts_at=starts, ends_at=starts + timedelta(minutes=30),
                             visit_date=SPEED_VISIT, capacity=min(SPEED_CAPACITY, places - i * SPEED_CAPACITY),
                             booked=0, release_at=draw_at, release_mode="draw", requests_open_at=opens_at))
        session.flush()
        draw_id = release.open_draw(ctx, session, department.id, SPEED_VISIT, opens_at).id
        uow.commit()
    people = [speed_requester(ctx, n, rng) for n in range(requests)]
    now = opens_at + timedelta(minutes=30)
    with app.engine.begin() as connection:
        connection.execute(insert(Patient.__table__), [p["patient"] | {"created_at": now} for p in people])
        connection.execute(insert(ChannelAddress.__table__), [p["address"] | {"created_at": now} for p in people])
        patient_ids = dict(connection.execute(select(Patient.id_index, Patient.id)).all())
        address_ids = dict(connection.execute(select(ChannelAddress.address_index, ChannelAddress.id)).all())
        for p in people:
            p["ids"] = {"patient_id": patient_ids[p["patient"]["id_index"]],
                        "address_id": address_ids[p["address"]["address_index"]]}
        connection.execute(insert(PatientLink.__table__), [
            p["ids"] | p["name"] | {"relation": "self", "created_at": now, "created_via": p["channel"]}
            for p in people])
        connection.execute(insert(DrawRequest.__table__), [
            p["ids"] | p["name"] | {"draw_id": draw_id, "channel": p["channel"], "part": p["part"],
                                    "relation": "self", "status": "requested", "created_at": now}
            for p in people])
    return draw_id, draw_at


def speed_requester(ctx, n: int, rng: random.Random) -> dict:
    """The rows of one request, blinded and encrypted as the service would write them."""
    keyring = ctx.keyring
    number, birth = resident_id(SPEED_IDS + n)
    name = f"Requester {letters(n)}"
    phone = identity.normalise_phone_address(f"+86 136 {n // 10000:04d} {n % 10000:04d}", "CN")
    return {
        "patient": {"id_kind": "cn_resident_id", "checksum_verified": True, "version": 0,
                    "id_index": keyring.blind_index(identity.id_purpose("cn_resident_id"), number),
                    "id_encrypted": keyring.encrypt(number),
                    "birth_date_encrypted": keyring.encrypt(birth.isoformat())},
        "address": {"kind": "phone", "address_index": keyring.blind_index(identity.address_purpose("phone"), phone),
                    "address_encrypted": keyring.encrypt(phone), "version": 0, "slow_speech": False},
        "name": {"name_encrypted": keyring.encrypt(name),
                 "name_index": keyring.blind_index(identity.name_purpose(), identity.name_for_index(name))},
        "channel": rng.choice(("sms", "sms", "voice")),
        "part": rng.choices(release.PARTS, weights=(3, 1, 6))[0],
    }


# ---- databases ------------------------------------------------------------------------------


def postgres_unreachable() -> str | None:
    """Why PostgreSQL can't be used, or None."""
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    finally:
        admin.dispose()


@contextlib.contextmanager
def database(kind: str) -> Iterator[App | None]:
    """A fresh migrated database: an SQLite file, or a PostgreSQL schema of its own."""
    with tempfile.TemporaryDirectory(prefix="careline-fairness-") as tmp:
        if kind == "sqlite":
            app = build_app(f"sqlite:///{Path(tmp) / 'careline.db'}", Path(tmp) / "instance")
            try:
                migrate.upgrade(app.engine)
                yield app
            finally:
                app.close()
            return
        with postgres_schema() as url:
            if url is None:
                yield None
                return
            app = build_app(url, Path(tmp) / "instance")
            try:
                migrate.upgrade(app.engine)
                yield app
            finally:
                app.close()


@contextlib.contextmanager
def postgres_schema() -> Iterator[str | None]:
    schema = f"careline_fair_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception:
        admin.dispose()
        yield None
        return
    try:
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# ---- the report ------------------------------------------------------------------------------


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fairness_lines(name: str, population: Population, result: Fairness, seeds: int) -> list[str]:
    size = population.size
    fc, dr, rerun = result.first_come, result.draw, result.rerun
    ring_people = sum(size.ring_phones) * IDENTITIES_PER_PHONE
    row = "  {:<44}{:>16}{:>16}"
    lines = [
        f"{name}: {size.releases} release days of {size.places} places ({2 * size.slots_per_half_day} slots); "
        f"each day {size.genuine_per_release} genuine patients and {ring_people} ring identities on "
        f"{sum(size.ring_phones)} phones ({len(size.ring_phones)} rings)",
        row.format("", "first come", "draw"),
        row.format("scalpers' share of requesters", percent(scalper_share([d.requesters for d in fc.days])),
                   percent(scalper_share([d.requesters for d in dr.days]))),
        row.format("scalpers' share of places at the draw", "-", percent(scalper_share([d.drawn for d in dr.days])))
        + f"   a fair draw: {interval_text(result.fair_at_draw)}",
        row.format("scalpers' share of places, visit day", percent(scalper_share([d.placed for d in fc.days])),
                   percent(scalper_share([d.placed for d in dr.days])))
        + f"   a fair draw: {interval_text(result.fair_at_visit)}",
        f"    the draw's rules re-run over {seeds} seeds on the same requests give scalpers {percent(rerun.mean)} "
        f"on average, {interval_text(rerun.interval)}, more than a fair draw's bound in {percent(rerun.above)} "
        f"of seeds (a fair draw: 2.5%)",
        row.format("genuine patients placed", placed_text(fc), placed_text(dr))
        + f"   draw/first come {ratio_text(genuine_rate(dr), genuine_rate(fc))}",
        row.format("transfers attempted / succeeded", f"{attempted_transfers(fc)} / {successful_transfers(fc)}",
                   f"{attempted_transfers(dr)} / {successful_transfers(dr)}"),
    ]
    for run in (fc, dr):
        went = Counter(t.went_to for t in run.transfers if t.freed_id is not None)
        steps = Counter(step for t in run.transfers for step in t.steps)
        nothing = sum(t.slot_id is None for t in run.transfers)
        lines.append(f"    {run.mode}: freed places went to {counted(went)}; buyers' bookings {counted(steps)}; "
                     f"rings with no place they could sell {nothing}")
    lines.append(row.format("waitlist offers made / taken", f"{fc.offers} / {fc.offers_taken}",
                            f"{dr.offers} / {dr.offers_taken}"))
    for run in (fc, dr):
        calls = ", ".join(f"{k} {v}" for k, v in sorted(run.calls.items()))
        lines.append(f"    {run.mode}: service calls {calls}; refused {counted(run.refusals)}; {run.seconds:.1f} s")
    return lines


def interval_text(interval: Interval) -> str:
    return f"95% {percent(interval.low)}..{percent(interval.high)}"


def counted(counter: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


def placed_text(run: RunOutcome) -> str:
    askers = sum(d.genuine_askers for d in run.days)
    placed = sum(d.genuine_placed for d in run.days)
    return f"{placed}/{askers} {percent(genuine_rate(run))}"


def ratio_text(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "inf"


def fairness_targets(result: Fairness) -> list[tuple[bool, str]]:
    dr, fc = result.draw, result.first_come
    at_draw = scalper_share([d.drawn for d in dr.days])
    at_visit = scalper_share([d.placed for d in dr.days])
    gain = genuine_rate(dr) / genuine_rate(fc) if genuine_rate(fc) else math.inf
    return [
        (at_draw <= result.fair_at_draw.high and at_visit <= result.fair_at_visit.high,
         f"under draw, scalpers hold {percent(at_draw)} of places at the draw and {percent(at_visit)} on the "
         f"visit day, for {percent(scalper_share([d.requesters for d in dr.days]))} of requesters: within a fair "
         f"draw's 95% bound ({percent(result.fair_at_draw.high)}, {percent(result.fair_at_visit.high)})"),
        (gain >= 2, f"genuine patients placed {gain:.2f}x as often under draw as first come (target >= 2x)"),
        (successful_transfers(dr) == 0,
         f"under draw, transfers succeeded {successful_transfers(dr)} times of {attempted_transfers(dr)} "
         f"(target 0; first come: {successful_transfers(fc)} of {attempted_transfers(fc)})"),
    ]


def speed_lines(name: str, speed: Speed) -> list[str]:
    rates = ", ".join(f"{x:.0f}" for x in speed.bookings_per_second)
    return [
        f"{name}: run_draw of {speed.requests} requests over {speed.places} places in {speed.seconds:.2f} s: "
        f"{speed.requests_per_second:.0f} requests/s, {speed.places_per_second:.0f} places/s "
        f"({speed.placed} placed, {speed.waitlisted} waitlisted; verify_draw {'ok' if speed.verified else 'FAILED'})",
        f"  service.book_slot {speed.booking_rate:.0f} bookings/s (median of rounds {rates}); "
        f"ratio {speed.requests_per_second / speed.booking_rate:.1f}x in requests, "
        f"{speed.places_per_second / speed.booking_rate:.1f}x in places",
    ]


def speed_target(speed: Speed) -> tuple[bool, str]:
    ratio = speed.requests_per_second / speed.booking_rate
    return (ratio >= 1 and speed.verified,
            f"the draw assigns {ratio:.1f}x as many requests per second as book_slot books (target >= 1x)")


def uniformity_lines(u: Uniformity) -> tuple[list[str], tuple[bool, str]]:
    lines = [f"draw_order uniformity over {u.seeds} seeds, {u.requests} requests: "
             f"among the first {u.winners}: chi-square {u.wins_statistic:.1f}, df {u.requests - 1}, "
             f"p = {u.wins_p:.3f}; in tenths of the order: chi-square {u.buckets_statistic:.1f}, "
             f"df {(u.requests - 1) * (u.buckets - 1)}, p = {u.buckets_p:.3f}"]
    ok = min(u.wins_p, u.buckets_p) > 0.01
    return lines, (ok, f"draw order uniform: p = {u.wins_p:.3f} and {u.buckets_p:.3f} (target > 0.01)")


# ---- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=12, help="the population's and the tests' seed (default 12)")
    parser.add_argument("--seeds", type=int, default=1000,
                        help="seeds for the chi-square test and the draw's re-runs (default 1000)")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one database only")
    parser.add_argument("--quick", action="store_true", help="a small population and draw (for a test)")
    args = parser.parse_args(argv)
    if args.seeds < 10:
        parser.error("--seeds must be at least 10")
    started = time.perf_counter()
    size = QUICK if args.quick else FULL
    requests, places, bookings = (2000, 200, 50) if args.quick else (20_000, 2_000, 200)
    population = build_population(size, args.seed)
    rng = random.Random(args.seed)
    seeds = [f"{rng.getrandbits(256):064x}" for _ in range(args.seeds)]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"fairness bench: seed {args.seed}, {args.seeds} seeds, {'quick' if args.quick else 'full'} size; "
          f"load average at start {load}")
    lines, uniform = uniformity_lines(draw_uniformity(seeds))
    print("\n".join(lines))
    targets = [uniform]
    for name in ("sqlite", "postgres"):
        if args.only not in (None, name):
            continue
        if name == "postgres" and (why := postgres_unreachable()) is not None:
            print(f"postgres: skipped, {POSTGRES_URL} is unreachable ({why}); "
                  "set ASSISTANT_TEST_POSTGRES_URL or start PostgreSQL")
            continue
        result = simulate(name, population, seeds)
        print("\n".join(fairness_lines(name, population, result, len(seeds))))
        speed = measure_speed(name, requests, places, bookings, args.seed)
        print("\n".join(speed_lines(name, speed)))
        targets += [(ok, f"{name}: {what}") for ok, what in fairness_targets(result) + [speed_target(speed)]]
    print("targets:")
    for ok, what in targets:
        print(f"  {verdict(ok)}  {what}")
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
