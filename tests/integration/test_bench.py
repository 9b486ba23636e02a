"""The booking benchmark keeps measuring what it says: its floor writes the same pages
as a real booking, and a short run books every time and prints its ratios. SQLite only:
the benchmark makes its own temporary database."""

from __future__ import annotations

import re

from bench import bookings as bench

NOT_A_TREE = "sqlite_schema"  # page 1 carries the file size, so it is written as the file grows


def trees(by_tree: dict[str, float]) -> set[str]:
    return {tree for tree in by_tree if tree != NOT_A_TREE}


def test_the_floor_writes_the_pages_a_booking_writes():
    measured = bench.pages_per_commit(40)

    booking, floor, baseline = measured["booking"], measured["floor"], measured["baseline insert"]
    assert trees(floor) == trees(booking)
    assert abs(sum(floor.values()) - sum(booking.values())) < 2
    assert trees(baseline) == {"bench_baseline_insert"}
    assert sum(booking.values()) > 10 * sum(baseline.values())


def test_a_short_run_books_every_time_and_prints_its_ratios(capsys):
    # Target._book raises if any booking is refused.
    assert bench.main(["--only", "sqlite", "--bookings", "20", "--rounds", "2"]) == 0

    out = capsys.readouterr().out
    ratio = re.search(r"sqlite: baseline \d+ inserts/s, service \d+ bookings/s, ratio ([\d.]+)x", out)
    floor = re.search(r"floor/baseline ([\d.]+)x, service/floor ([\d.]+)x", out)
    assert ratio and floor, out
    assert 0 < float(ratio.group(1)) and 0 < float(floor.group(1))
