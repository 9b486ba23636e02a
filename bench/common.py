"""What the benchmarks share: valid identities and a profile summary by area.

Rule: measurement helpers only; each benchmark keeps its own workload and baseline.
"""

from __future__ import annotations

import cProfile
import pstats
from datetime import date, timedelta
from typing import Sequence

from sqlalchemy import event

from assistant.booking import driver
from assistant.booking.identity import cn_resident_id_check_char


def resident_id(n: int) -> tuple[str, date]:
    """The n-th distinct valid resident ID (Beijing Chaoyang), and its birth date."""
    birth = date(1940, 1, 1) + timedelta(days=n // 1000)
    first17 = f"110105{birth:%Y%m%d}{n % 1000:03d}"
    return first17 + cn_resident_id_check_char(first17), birth


# Where time goes outside CareLine, in the order to match file names.
LIBRARY_AREAS = (
    ("/sqlalchemy/orm/", "SQLAlchemy ORM (session, flush, loading)"),
    ("/sqlalchemy/sql/", "SQLAlchemy SQL (statement building, cache keys, compiling)"),
    ("/sqlalchemy/engine/", "SQLAlchemy engine (execute, results)"),
    ("/sqlalchemy/", "SQLAlchemy other (pool, events, util)"),
    ("/psycopg", "psycopg (driver, waiting for the server)"),
    ("sqlite3.", "sqlite3 (C: statements, commit + fsync)"),
    ("/cryptography/", "cryptography (Fernet)"),
    ("/phonenumbers/", "phonenumbers"),
)


def count_statements(engine, run) -> int:
    """How many statements `run` sends, through SQLAlchemy or straight to the driver
    (assistant/booking/driver.py). BEGIN, COMMIT and the pre-ping don't count."""
    seen = []

    def tally(*_args):
        seen.append(1)

    event.listen(engine, "before_cursor_execute", tally)
    driver.observers.append(tally)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", tally)
        driver.observers.remove(tally)
    return len(seen)


def count_transactions(engine, run) -> int:
    """How many transactions `run` begins on `engine` (reads and writes alike)."""
    begun = []

    def tally(*_args):
        begun.append(1)

    event.listen(engine, "begin", tally)
    try:
        run()
    finally:
        event.remove(engine, "begin", tally)
    return len(begun)


def self_time_by_area(profiler: cProfile.Profile, areas: Sequence[tuple[str, str]]) -> tuple[float, dict[str, float]]:
    """Total profiled seconds, and self time grouped by the first area whose needle is
    in the function's file name."""
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())
    by_area: dict[str, float] = {}
    for (filename, _line, function), row in stats.stats.items():
        where = filename if filename != "~" else function
        area = next((label for needle, label in areas if needle in where), "Python stdlib and builtins")
        by_area[area] = by_area.get(area, 0.0) + row[2]
    return total, by_area


def print_areas(total: float, by_area: dict[str, float], per: int, unit: str) -> None:
    print("self time by area:")
    for area, seconds in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / total:6.1%}  {seconds / per * 1000:6.3f} ms/{unit}  {area}")
