"""Conversation turns per second: the engine on the in-memory fake, the real path on SQLite, and its floor.

What is measured: one whole booking conversation, as a new patient writing English by
SMS sends it (7 turns):

    hello → 1 (for me) → ID number → name → heart → tomorrow 9:30 → yes
    ⇒ "Booked: … Your booking code is …"

  * fake:   `engine.handle` against `tests.fakes.FakeBackend.demo()`, the engine alone
            (parsing, steps, menus) over an in-memory hospital. Every conversation gets
            its own fresh backend (a fake backend is one address), built before the clock
            starts.
  * sqlite: `conversations.run_turn` as every channel calls it: the stored state
            loaded and decrypted, `handle` over `ServiceBackend` and the service layer,
            the booking transaction, then the event claimed and the new state encrypted
            and saved, on a fresh migrated SQLite file with the demo hospital seeded
            (`jobs.seed_file`, config/demo_hospital.toml).
  * floor:  the fake path's engine work plus the least persistence any turn needs, on
            the plain `sqlite3` module against a file migrated and seeded the same way
            (bench/engine_floor.py): one read and one write transaction per turn, with
            the booking's rows in the booking turn's write. floor/fake bounds what
            sqlite/fake can reach; sqlite/floor is what CareLine's layers cost on top.

The figure is turns per second (every conversation must end in a booking code, each
turn must land on the expected step, and on SQLite the booking rows are counted), and
the ratio sqlite/fake says what the real path costs on top of the engine itself.

Every SQLite conversation comes from its own phone number, for its own valid resident ID,
with its own provider event ids. Conversations go to Cardiology on Mondays, Wednesdays
and Fridays (the only demo days with both a morning and an afternoon, so the morning or
afternoon question is really asked) and are spread over the slots so that every slot
keeps at least one free place. Each conversation happens the day before its visit at
09:00, so "tomorrow" is its visit day; later rounds book later weeks.

After a warm-up, each round measures all three, five conversations of each in turn (the
order rotating), so that a shared machine whose speed drifts slows every path alike; the
median of the rounds is reported.

    python bench/engine.py [--conversations N] [--rounds R] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from assistant import conversations, engine, jobs  # noqa: E402
from assistant.booking import migrate  # noqa: E402
from assistant.booking.identity import Keyring  # noqa: E402
from assistant.booking.models import Booking, Department, Slot  # noqa: E402
from assistant.bootstrap import App, build, fixed_clock, install_words  # noqa: E402
from assistant.config import PROJECT_ROOT, load_settings  # noqa: E402
from assistant.engine.messages import Inbound, Say  # noqa: E402
from bench.common import LIBRARY_AREAS, count_statements, count_transactions, print_areas, resident_id, self_time_by_area  # noqa: E402
from bench.engine_floor import TurnFloor  # noqa: E402
from tests.fakes import FakeBackend  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
DEMO_FILE = PROJECT_ROOT / "config" / "demo_hospital.toml"
SEED_DAY = date(2026, 12, 1)  # a Tuesday; the seed's "today"
CHANNEL = "sms"
# The fake path idles out like SMS does by default.
EXPIRY = load_settings(environ={}).conversation.expiry(CHANNEL)
WARMUP = 20  # conversations per path before measuring
NAMES = ("Wang Fang", "Li Wei", "Zhang Min", "Liu Yang", "Chen Jing", "Zhao Lei")
# The step each of the 7 turns of a new patient must land on.
STEPS = ("who", "id_number", "name", "department", "soonest", "confirm", "menu")

# ---- identities, addresses and scripts -----------------------------------------------

def typed_resident_id(n: int) -> str:
    """The n-th distinct valid resident ID, written as people type it."""
    number, _ = resident_id(n)
    return f"{number[:6]} {number[6:14]} {number[14:17]}{number[17].lower()}"


def phone(n: int) -> str:
    return f"+86139{n // 10000:04d}{n % 10000:04d}"


@dataclass(frozen=True)
class Script:
    n: int  # the conversation's number: its identity, phone and event ids
    now: datetime
    texts: tuple[str, ...]

    @property
    def address(self) -> str:
        return phone(self.n)


def script(n: int, now: datetime, starts_local: datetime) -> Script:
    at = f"{starts_local.hour}:{starts_local.minute:02d}"
    return Script(n, now, ("hello", "1", typed_resident_id(n), NAMES[n % len(NAMES)], "heart",
                           f"tomorrow {at}", "yes"))


def booking_code(turn: engine.Turn) -> str | None:
    for reply in turn.replies:
        if isinstance(reply, Say) and reply.msg.text.startswith("Booked:"):
            return reply.msg.params.get("code")
    return None


def check_turn(path: str, conversation: Script, index: int, turn: engine.Turn) -> None:
    if turn.error or turn.state.step != STEPS[index]:
        said = "; ".join(getattr(reply, "msg", reply).__repr__()[:160] for reply in turn.replies)
        raise AssertionError(
            f"{path}: conversation {conversation.n}, turn {index + 1} ({conversation.texts[index]!r}) "
            f"landed on {turn.state.step!r}, expected {STEPS[index]!r}; error={turn.error}; said: {said}")
    if index == len(STEPS) - 1 and booking_code(turn) is None:
        raise AssertionError(f"{path}: conversation {conversation.n} ended without a booking code")


# ---- (a) the engine over the in-memory fake ------------------------------------------------

FAKE_NOW = datetime.combine(date(2026, 12, 1), clock_time(9), tzinfo=TZ).astimezone(timezone.utc)
FAKE_TIMES = tuple(datetime.combine(date(2026, 12, 2), clock_time(hh, mm), tzinfo=TZ)
                   for hh, mm in ((8, 0), (8, 30), (9, 0), (9, 30), (10, 0), (10, 30), (14, 0), (14, 30)))


class FakeTarget:
    def __init__(self) -> None:
        self.started = 0
        self.turns = 0

    def scripts(self, n: int) -> list[tuple[Script, FakeBackend]]:
        first, self.started = self.started, self.started + n
        return [(script(k, FAKE_NOW, FAKE_TIMES[k % len(FAKE_TIMES)]), FakeBackend.demo())
                for k in range(first, first + n)]

    def run(self, n: int) -> float:
        """Turns per second through engine.handle; backends are built before timing."""
        prepared = self.scripts(n)
        handle = engine.handle
        turns = 0
        started = time.perf_counter()
        for conversation, backend in prepared:
            state = None
            for index, text in enumerate(conversation.texts):
                turn = handle(state, Inbound(text), backend, conversation.now, expiry=EXPIRY)
                check_turn("fake", conversation, index, turn)
                state = turn.state
                turns += 1
        elapsed = time.perf_counter() - started
        self.turns += turns
        return turns / elapsed


# ---- (b) the real path: run_turn over SQLite --------------------------------------------------


def build_app(url: str, instance: Path) -> App:
    keys = Keyring.generate()
    environ = {
        "ASSISTANT_DATABASE_URL": url,
        "ASSISTANT_INSTANCE_PATH": str(instance),
        "ASSISTANT_GENERATE_SECRETS": "false",
        "ASSISTANT_BLIND_INDEX_KEY": keys.blind_index_key.decode(),
        "ASSISTANT_ENCRYPTION_KEY": keys.encryption_key.decode(),
    }
    seeded_at = datetime.combine(SEED_DAY, clock_time(9), tzinfo=TZ).astimezone(timezone.utc)
    return build(load_settings(environ=environ), clock=fixed_clock(seeded_at), environ=environ)


def seed_database(app: App, total: int) -> None:
    """Migrated, and the demo hospital seeded far enough ahead for `total` conversations."""
    migrate.upgrade(app.engine)
    # About 22 places a Monday/Wednesday/Friday when each slot keeps one free: ~9 a week.
    days = 14 + 7 * (-(-total // 60))
    jobs.seed_file(app, DEMO_FILE, days=days)


class SqliteTarget:
    """The demo hospital seeded far enough ahead for `total` conversations."""

    def __init__(self, app: App, total: int) -> None:
        self.app = app
        self.ctx = app.services
        seed_database(app, total)
        self.plan = self._plan()
        if len(self.plan) < total:
            raise SystemExit(f"only {len(self.plan)} places for {total} conversations")
        self.started = 0
        self.turns = 0

    def _plan(self) -> list[tuple[date, datetime]]:
        """(visit day, start) per conversation: Cardiology days with a morning and an
        afternoon, each slot used up to one place short of full, earlier days first."""
        with self.ctx.uow.read_only() as uow:
            rows = uow.session.execute(
                select(Slot.visit_date, Slot.starts_at, Slot.capacity - Slot.booked)
                .join(Department, Slot.department_id == Department.id)
                .where(Department.code == "cardiology", Slot.visit_date > SEED_DAY)
                .order_by(Slot.visit_date, Slot.starts_at)
            ).all()
        by_day: dict[date, list[tuple[datetime, int]]] = {}
        for day, starts, free in rows:
            by_day.setdefault(day, []).append((starts.astimezone(TZ), free))
        plan = []
        for day, slots in by_day.items():
            if len({s.hour < 12 for s, _ in slots}) < 2:
                continue
            for use in range(max(free for _, free in slots) - 1):
                plan.extend((day, s) for s, free in slots if use < free - 1)
        return plan

    def scripts(self, n: int) -> list[Script]:
        first, self.started = self.started, self.started + n
        result = []
        for k in range(first, first + n):
            day, starts = self.plan[k]
            now = datetime.combine(day - timedelta(days=1), clock_time(9), tzinfo=TZ)
            result.append(script(k, now.astimezone(timezone.utc), starts))
        return result

    def run(self, n: int) -> float:
        """Turns per second through conversations.run_turn."""
        prepared = self.scripts(n)
        ctx, run_turn = self.ctx, conversations.run_turn
        turns = 0
        started = time.perf_counter()
        for conversation in prepared:
            for index, text in enumerate(conversation.texts):
                inbound = Inbound(text, event_id=f"SMbench{conversation.n:07d}t{index:02d}")
                result = run_turn(ctx, CHANNEL, conversation.address, inbound, conversation.now)
                check_turn("sqlite", conversation, index, result.turn)
                turns += 1
        elapsed = time.perf_counter() - started
        self.turns += turns
        return turns / elapsed

    def bookings(self) -> int:
        with self.ctx.uow.read_only() as uow:
            return uow.session.execute(select(func.count()).select_from(Booking)).scalar_one()


# ---- (c) the floor: the engine over the fake plus a turn's least persistence ----------------


class FloorTarget:
    """bench/engine_floor.py on its own file, built as the sqlite path's (same migrations,
    same seed, a keyring made the same way), fed the fake path's conversations."""

    def __init__(self, tmp: Path, total: int) -> None:
        path = tmp / "careline.db"
        app = build_app(f"sqlite:///{path}", tmp / "instance")
        try:
            seed_database(app, total)
            keyring = app.services.keyring
        finally:
            app.close()  # nothing but the floor's own connection touches the file while timed
        self.floor = TurnFloor(path, keyring, CHANNEL, EXPIRY)
        self.source = FakeTarget()  # scripts and fresh fake backends, numbered from 0 here

    @property
    def started(self) -> int:
        return self.source.started

    def run(self, n: int) -> float:
        return self.floor.run(self.source.scripts(n), check_turn)


# ---- measuring and reporting ------------------------------------------------------------------

SLICE = 20  # conversations per path in turn: the paths share the machine's slow moments


def interleaved(targets: list, n: int) -> list[float]:
    """One round: `n` conversations per target, run SLICE at a time in turn (the order
    rotating each slice), so that a machine whose speed drifts (a shared VM) slows every
    path alike; turns per second per target over the round."""
    elapsed = [0.0] * len(targets)
    done = [0] * len(targets)
    step = 0
    while done[0] < n:
        k = min(SLICE, n - done[0])
        order = list(range(len(targets)))
        order = order[step % len(order):] + order[:step % len(order)]
        for i in order:
            rate = targets[i].run(k)
            elapsed[i] += k * len(STEPS) / rate
            done[i] += k
        step += 1
    return [d * len(STEPS) / e for d, e in zip(done, elapsed)]



@dataclass
class Figures:
    fake: list[float] = field(default_factory=list)
    sqlite: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    statements_per_turn: float = 0.0
    transactions_per_turn: float = 0.0
    floor_statements_per_turn: float = 0.0
    floor_transactions_per_turn: float = 0.0

    @property
    def ratio(self) -> float:
        return statistics.median(self.sqlite) / statistics.median(self.fake)

    def line(self) -> str:
        return (f"engine turns/s: fake {statistics.median(self.fake):.0f}, "
                f"sqlite {statistics.median(self.sqlite):.0f}, ratio sqlite/fake {self.ratio:.3f}x")

    def detail(self) -> str:
        rounds = ", ".join(f"{f:.0f}/{s:.0f}" for f, s in zip(self.fake, self.sqlite))
        ratios = sorted(s / f for f, s in zip(self.fake, self.sqlite))
        return (f"  rounds (fake/sqlite turns/s): {rounds}; per-round ratio "
                f"{ratios[0]:.3f}x..{ratios[-1]:.3f}x; SQL statements per sqlite turn "
                f"{self.statements_per_turn:.1f}, transactions {self.transactions_per_turn:.1f}; ms per turn: fake "
                f"{1000 / statistics.median(self.fake):.2f}, sqlite "
                f"{1000 / statistics.median(self.sqlite):.2f}")

    def floor_line(self) -> str:
        fake, sqlite, floor = (statistics.median(x) for x in (self.fake, self.sqlite, self.floor))
        rounds = ", ".join(f"{f:.0f}" for f in self.floor)
        return (f"  floor (engine over the fake + a turn's least persistence, plain sqlite3): "
                f"{floor:.0f} turns/s, ratio floor/fake {floor / fake:.3f}x, sqlite/floor "
                f"{sqlite / floor:.3f}x; rounds {rounds}; SQL statements per floor turn "
                f"{self.floor_statements_per_turn:.1f}, transactions "
                f"{self.floor_transactions_per_turn:.1f}; ms per turn {1000 / floor:.2f}")


_AREAS = (
    ("/assistant/engine/", "engine (assistant/engine: parse, steps, state)"),
    ("/assistant/conversation", "run_turn + ServiceBackend (assistant/conversation*.py)"),
    ("/assistant/", "service layer and the rest of assistant/"),
) + LIBRARY_AREAS


def print_profile(conversation_count: int, turns: int, profiler: cProfile.Profile) -> None:
    total, by_area = self_time_by_area(profiler, _AREAS)
    print(f"--- sqlite: cProfile of {conversation_count} conversations ({turns} turns), "
          f"{total / turns * 1000:.2f} ms/turn under the profiler ---")
    print_areas(total, by_area, turns, "turn")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"assistant/", 30)
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100,
                        help="conversations per round and path, 7 turns each (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--profile", action="store_true",
                        help="after measuring, cProfile one more round on the SQLite path")
    args = parser.parse_args(argv)
    install_words()  # the engine's words, as an app gets them at start-up
    if args.conversations < 1 or args.rounds < 1:
        parser.error("--conversations and --rounds must be at least 1")
    n, rounds = args.conversations, args.rounds
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{n} conversations ({n * len(STEPS)} turns) per round and path, {rounds} rounds, "
          f"median reported (warm-up {WARMUP} conversations each); load average at start {load}")
    total = WARMUP + n * (rounds + (1 if args.profile else 0))
    fake = FakeTarget()
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="careline-bench-") as tmp, \
            tempfile.TemporaryDirectory(prefix="careline-bench-floor-") as floor_tmp:
        app = build_app(f"sqlite:///{Path(tmp) / 'careline.db'}", Path(tmp) / "instance")
        floor = None
        try:
            sqlite = SqliteTarget(app, total)
            floor = FloorTarget(Path(floor_tmp), total)
            fake.run(WARMUP)
            statements: list[int] = []
            transactions = count_transactions(app.engine, lambda: statements.append(
                count_statements(app.engine, lambda: sqlite.run(WARMUP))))
            figures.statements_per_turn = statements[0] / (WARMUP * len(STEPS))
            figures.transactions_per_turn = transactions / (WARMUP * len(STEPS))
            floor_statements, floor_transactions = floor.floor.traced(lambda: floor.run(WARMUP))
            figures.floor_statements_per_turn = floor_statements / (WARMUP * len(STEPS))
            figures.floor_transactions_per_turn = floor_transactions / (WARMUP * len(STEPS))
            paths = ((figures.fake, fake), (figures.sqlite, sqlite), (figures.floor, floor))
            for _ in range(rounds):
                for measured, rate in zip((m for m, _ in paths), interleaved([t for _, t in paths], n)):
                    measured.append(rate)
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                sqlite.run(n)
                profiler.disable()
            booked = sqlite.bookings()
            if booked != sqlite.started:
                raise AssertionError(f"sqlite: {booked} bookings stored for {sqlite.started} conversations")
            # The floor really inserted: a conversation and a booking per conversation, a claim per turn.
            stored = floor.floor.counts()
            expected = (floor.started, floor.started, floor.floor.turns)
            if stored != expected:
                raise AssertionError(f"floor: stored (conversations, bookings, events) {stored}, "
                                     f"expected {expected}")
        finally:
            app.close()
            if floor is not None:
                floor.floor.close()
    print(figures.line())
    print(figures.detail())
    print(figures.floor_line())
    print(f"  every conversation booked: fake {fake.started}, sqlite {booked} "
          f"(warm-up included)")
    print(f"  floor stored: {stored[0]} conversations, {stored[1]} bookings, {stored[2]} claimed "
          f"events (warm-up included)")
    if args.profile:
        print_profile(n, n * len(STEPS), profiler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
