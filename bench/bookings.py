"""Bookings per second through the service layer, against a plain INSERT + COMMIT loop.

What is measured: `service.book_slot` as a channel calls it (the call in
`assistant/conversation_backend.py`: an SMS from a phone number, a typed identity, an
idempotency key from the inbound message): identity validation, blind indexes, Fernet
encryption, the idempotency claim, the address, patient and slot locks, the link, the
quota and capacity rules, the audit chain and one commit. Every booking is for a
distinct, valid Chinese resident ID and a distinct phone, into released slots with
room, so every result must be `Booked`. By default each is the patient's first booking,
which creates the patient, the address and their link; with `--returning`, each patient
booked once the day before from the same phone, so the booking finds them and counts.

The baseline: a loop of one-row INSERT plus COMMIT into a simple table in the same
database, through the same engine (`create_db_engine`, via `bootstrap.build`). It costs
what any durable write costs on that database (on SQLite: WAL, synchronous=FULL, the
busy timeout and BEGIN IMMEDIATE; on PostgreSQL: the server's synchronous_commit, the
round trips and the pool's pre-ping), so the ratio says how much the booking rules add
on top of the one commit a booking cannot avoid.

With new patients, each round also times the floor (bench/floor.py): the rows a
booking writes, written the baseline's way with no rules at all. floor/baseline is the
most any booking service could reach on this schema and durability; service/floor is
what the rules, checks and cryptography cost on top of the writes.

After a warm-up, each round measures each, alternating which goes first, and the
median of the rounds is reported. PostgreSQL runs in a schema private to the run,
created and dropped here; it is skipped with a message when unreachable.

    python bench/bookings.py [--bookings N] [--rounds R] [--only sqlite|postgres]
                             [--returning] [--profile] [--wal-pages]

`--wal-pages` measures instead which pages one booking, one baseline insert and one
floor booking write on SQLite: the WAL frames each commit appends, by table or index.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, insert, text  # noqa: E402

from assistant.booking import migrate, results as r, service  # noqa: E402
from assistant.booking.identity import Keyring  # noqa: E402
from assistant.booking.models import Department, Hospital, Slot  # noqa: E402
from assistant.booking.service import AddressInput, IdentityInput  # noqa: E402
from assistant.bootstrap import App, build  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from bench.common import LIBRARY_AREAS, count_statements, print_areas, resident_id, self_time_by_area  # noqa: E402
from bench.floor import BookingRows  # noqa: E402

POSTGRES_URL = os.environ.get(
    "ASSISTANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TZ = ZoneInfo("Asia/Shanghai")
VISIT = date(2026, 12, 8)  # released 1 Dec 15:00, booking closes 7 Dec 16:00 (local)
EARLIER_VISIT = VISIT - timedelta(days=1)  # --returning: each patient's first booking
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=TZ).astimezone(timezone.utc)
SLOT_CAPACITY = 10
WARMUP = 100
NAMES = ("Wang Fang", "Li Wei", "Zhang Min", "刘洋", "陈静", "Chen Jie")

# ---- identities --------------------------------------------------------------------

def patient(n: int) -> IdentityInput:
    number, birth = resident_id(n)
    return IdentityInput("cn_resident_id", number, NAMES[n % len(NAMES)], birth_date=birth)


def caller(n: int) -> AddressInput:
    """A distinct mobile number per booking (an address may book for 3 patients)."""
    return AddressInput("phone", f"+86 139 {n // 10000:04d} {n % 10000:04d}")


# ---- one database under test ---------------------------------------------------------

_baseline_metadata = MetaData()
BASELINE = Table(
    "bench_baseline_insert", _baseline_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payload", String(200), nullable=False),
)
PAYLOAD = "x" * 100


class Target:
    """A migrated database with one hospital and enough released slots."""

    def __init__(self, app: App, total_bookings: int, returning: bool = False) -> None:
        self.app = app
        self.returning = returning
        self.engine = app.engine
        self.ctx = app.services
        self.booked = 0
        _baseline_metadata.create_all(self.engine)
        with self.ctx.uow() as uow:
            session = uow.session
            hospital = Hospital(code="bench", names={"en": "Bench Hospital"},
                                timezone="Asia/Shanghai", desk_phone="+861065120000",
                                desk_hours={"en": "Mon-Fri"}, policy_overrides={})
            session.add(hospital)
            session.flush()
            department = Department(hospital_id=hospital.id, code="cardiology",
                                    names={"en": "Cardiology"}, keywords={},
                                    policy_overrides={}, sort_order=0, active=True)
            session.add(department)
            session.flush()
            self.slot_ids = self._add_slots(session, department.id, VISIT, total_bookings)
            if returning:
                self.earlier_slot_ids = self._add_slots(session, department.id, EARLIER_VISIT,
                                                        total_bookings)
            else:  # the floor writes a new patient's rows, into slots of its own
                floor_slot_ids = self._add_slots(session, department.id, VISIT, total_bookings)
            uow.commit()
        self.floor = (None if returning
                      else BookingRows(self.engine, app.services.keyring.audit_key,
                                       floor_slot_ids, SLOT_CAPACITY, NOW))

    @staticmethod
    def _add_slots(session, department_id: int, day: date, places: int) -> list[int]:
        release = datetime.combine(day - timedelta(days=7), clock_time(15), tzinfo=TZ)
        first = datetime.combine(day, clock_time(8), tzinfo=TZ)
        slots = []
        for i in range(-(-places // SLOT_CAPACITY)):
            starts = first + timedelta(seconds=20 * i)  # distinct times, same day
            slots.append(Slot(department_id=department_id, starts_at=starts,
                              ends_at=starts + timedelta(minutes=30), visit_date=day,
                              capacity=SLOT_CAPACITY, booked=0, release_at=release))
        session.add_all(slots)
        session.flush()
        return [s.id for s in slots]

    def baseline(self, n: int) -> float:
        """Inserts per second: one row, one transaction, one commit each."""
        statement = insert(BASELINE)
        engine = self.engine
        started = time.perf_counter()
        for _ in range(n):
            with engine.begin() as connection:
                connection.execute(statement, {"payload": PAYLOAD})
        return n / (time.perf_counter() - started)

    def prepare(self, n: int) -> None:
        """With `returning`, the next n patients book once the day before, from the same
        phone (untimed): their timed booking then finds the patient, the link and a
        booking to count."""
        if self.returning:
            for k in range(self.booked, self.booked + n):
                self._book(k, self.earlier_slot_ids, "first")

    def service(self, n: int) -> float:
        """Bookings per second through service.book_slot."""
        first = self.booked
        started = time.perf_counter()
        for k in range(first, first + n):
            self._book(k, self.slot_ids, "book")
        elapsed = time.perf_counter() - started
        self.booked += n
        return n / elapsed

    def _book(self, k: int, slot_ids: list[int], event: str) -> None:
        result = service.book_slot(
            self.ctx, identity_input=patient(k), slot_id=slot_ids[k // SLOT_CAPACITY],
            channel="sms", now=NOW, booked_by=caller(k), relation="self",
            idempotency_key=f"sms:bench-{k}-{event}:book",  # as conversation_backend keys it
        )
        if not isinstance(result, r.Booked):
            raise AssertionError(f"booking {k} was refused: {result!r}")


@dataclass
class Figures:
    name: str
    baseline: list[float]
    service: list[float]
    floor: list[float] = field(default_factory=list)
    baseline_statements: float = 0.0
    service_statements: float = 0.0
    floor_statements: float = 0.0

    @property
    def ratio(self) -> float:
        return statistics.median(self.service) / statistics.median(self.baseline)

    def line(self) -> str:
        return (f"{self.name}: baseline {statistics.median(self.baseline):.0f} inserts/s, "
                f"service {statistics.median(self.service):.0f} bookings/s, "
                f"ratio {self.ratio:.2f}x")

    def detail(self) -> str:
        rounds = ", ".join(f"{b:.0f}/{s:.0f}" for b, s in zip(self.baseline, self.service))
        ratios = sorted(s / b for b, s in zip(self.baseline, self.service))
        return (f"  rounds (baseline/service): {rounds}; "
                f"per-round ratio {ratios[0]:.2f}x..{ratios[-1]:.2f}x; "
                f"SQL statements per operation: baseline {self.baseline_statements:.0f}, "
                f"service {self.service_statements:.0f}")

    def floor_line(self) -> str:
        floor = statistics.median(self.floor)
        return (f"  floor (a new patient's booking rows, written the baseline's way, no rules): "
                f"{floor:.0f} bookings/s in {self.floor_statements:.0f} statements; "
                f"floor/baseline {floor / statistics.median(self.baseline):.2f}x, "
                f"service/floor {statistics.median(self.service) / floor:.2f}x; "
                f"rounds {', '.join(f'{f:.0f}' for f in self.floor)}")


def measure(name: str, target: Target, bookings: int, rounds: int, profile: bool) -> Figures:
    figures = Figures(name, [], [])
    # Warm-up (pool, statement caches, prepared statements), counting statements too.
    figures.baseline_statements = count_statements(
        target.engine, lambda: target.baseline(WARMUP)) / WARMUP
    target.prepare(WARMUP)
    figures.service_statements = count_statements(
        target.engine, lambda: target.service(WARMUP)) / WARMUP
    floor = target.floor
    if floor is not None:  # after the service: it copies the shape of the service's rows
        figures.floor_statements = count_statements(
            target.engine, lambda: floor.write(WARMUP)) / WARMUP
    for i in range(rounds):
        target.prepare(bookings)
        runs = [(figures.baseline, target.baseline), (figures.service, target.service)]
        if floor is not None:
            runs.append((figures.floor, floor.write))
        if i % 2:  # alternate which goes first
            runs.reverse()
        for results, run in runs:
            results.append(run(bookings))
    if profile:
        target.prepare(bookings)
        profiler = cProfile.Profile()
        profiler.enable()
        target.service(bookings)
        profiler.disable()
        print_profile(name, bookings, profiler)
    return figures


_AREAS = (("/assistant/", "CareLine code (assistant/)"),) + LIBRARY_AREAS


def print_profile(name: str, bookings: int, profiler: cProfile.Profile) -> None:
    total, by_area = self_time_by_area(profiler, _AREAS)
    print(f"--- {name}: cProfile of {bookings} service bookings, "
          f"{total / bookings * 1000:.2f} ms/booking under the profiler ---")
    print_areas(total, by_area, bookings, "booking")
    out = io.StringIO()
    own = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    own.print_stats(r"assistant/", 25)
    own.print_stats(r"sqlalchemy/orm/session.py:.*\((execute|flush|get|commit)\)", 6)
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print(out.getvalue())


def build_app(url: str, instance: Path) -> App:
    keys = Keyring.generate()
    environ = {
        "ASSISTANT_DATABASE_URL": url,
        "ASSISTANT_INSTANCE_PATH": str(instance),
        "ASSISTANT_GENERATE_SECRETS": "false",
        "ASSISTANT_BLIND_INDEX_KEY": keys.blind_index_key.decode(),
        "ASSISTANT_ENCRYPTION_KEY": keys.encryption_key.decode(),
    }
    return build(load_settings(environ=environ), environ=environ)


def total_bookings(args) -> int:
    return WARMUP + args.bookings * (args.rounds + (1 if args.profile else 0))


def run_sqlite(args) -> Figures:
    with tempfile.TemporaryDirectory(prefix="careline-bench-") as tmp:
        app = build_app(f"sqlite:///{Path(tmp) / 'careline.db'}", Path(tmp) / "instance")
        try:
            migrate.upgrade(app.engine)
            return measure("sqlite", Target(app, total_bookings(args), args.returning), args.bookings,
                           args.rounds, args.profile)
        finally:
            app.close()


def wal_pages(args) -> None:
    """Print the frames appended to the WAL per operation, by table or index."""
    for name, by_tree in pages_per_commit(args.bookings, args.returning).items():
        print(f"sqlite, {name}: {sum(by_tree.values()):.1f} WAL frames per commit "
              f"(mean of {args.bookings})")
        for tree, pages in sorted(by_tree.items(), key=lambda item: -item[1]):
            print(f"  {pages:5.2f}  {tree}")


def pages_per_commit(bookings: int, returning: bool = False) -> dict[str, dict[str, float]]:
    """For each of booking, baseline insert and (new patients only) floor: the mean
    number of WAL frames one commit appends, by table or index (SQLite's dbstat)."""
    measured = {}
    with tempfile.TemporaryDirectory(prefix="careline-bench-") as tmp:
        path = Path(tmp) / "careline.db"
        app = build_app(f"sqlite:///{path}", Path(tmp) / "instance")
        try:
            migrate.upgrade(app.engine)
            app.engine.dispose()

            @event.listens_for(app.engine, "connect")
            def _keep_wal(dbapi_connection, _record):  # frames stay in the WAL to be read
                dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

            target = Target(app, WARMUP + 2 * bookings, returning)
            target.prepare(WARMUP)
            target.service(WARMUP)
            target.baseline(WARMUP)
            target.prepare(bookings)
            runs = [("booking", target.service), ("baseline insert", target.baseline)]
            if target.floor is not None:
                runs.append(("floor", target.floor.write))
            for name, run in runs:
                app.engine.dispose()
                with sqlite3.connect(path) as raw:
                    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                run(bookings)
                app.engine.dispose()
                pages = _wal_frame_pages(Path(f"{path}-wal"))
                with sqlite3.connect(path) as raw:
                    names = dict(raw.execute("SELECT pageno, name FROM dbstat").fetchall())
                by_tree = collections.Counter(names.get(page, f"page {page}") for page in pages)
                measured[name] = {tree: count / bookings for tree, count in by_tree.items()}
        finally:
            app.close()
    return measured


def _wal_frame_pages(wal: Path) -> list[int]:
    """The page number of every frame in a WAL file (see sqlite.org/fileformat.html)."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    pages, offset = [], 32
    while offset + 24 + page_size <= len(data):
        pages.append(struct.unpack(">I", data[offset:offset + 4])[0])
        offset += 24 + page_size
    return pages


def run_postgres(args) -> Figures | None:
    schema = f"careline_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        admin.dispose()
        print(f"postgres: skipped, {POSTGRES_URL} is unreachable "
              f"({type(exc).__name__}: {str(exc).strip().splitlines()[0]}); "
              "set ASSISTANT_TEST_POSTGRES_URL or start PostgreSQL")
        return None
    try:
        separator = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
        with tempfile.TemporaryDirectory(prefix="careline-bench-") as tmp:
            app = build_app(url, Path(tmp) / "instance")
            try:
                migrate.upgrade(app.engine)
                return measure("postgres", Target(app, total_bookings(args), args.returning), args.bookings,
                               args.rounds, args.profile)
            finally:
                app.close()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=400,
                        help="bookings (and baseline inserts) per round (default 400)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one database only")
    parser.add_argument("--profile", action="store_true",
                        help="after measuring, cProfile one more round of service bookings")
    parser.add_argument("--returning", action="store_true",
                        help="book for patients who already booked once from the same phone")
    parser.add_argument("--wal-pages", action="store_true",
                        help="instead, count the pages each commit writes on SQLite, by table")
    args = parser.parse_args(argv)
    if args.bookings < 1 or args.rounds < 1:
        parser.error("--bookings and --rounds must be at least 1")
    if args.wal_pages:
        wal_pages(args)
        return 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    who = "returning patients" if args.returning else "new patients"
    print(f"{args.bookings} operations per round, {args.rounds} rounds, median reported "
          f"(warm-up {WARMUP} each); bookings by {who}; load average at start {load}")
    for name, run in (("sqlite", run_sqlite), ("postgres", run_postgres)):
        if args.only in (None, name):
            figures = run(args)
            if figures is not None:
                print(figures.line())
                print(figures.detail())
                if figures.floor:
                    print(figures.floor_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
