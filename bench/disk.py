"""What a durable commit costs on this disk, by the number of pages it writes.

A SQLite commit in WAL mode appends one frame per changed page to the WAL and then
calls fdatasync (synchronous=FULL). This measures that pattern without SQLite:
N page-sized writes, then one fdatasync, repeated. It explains the booking benchmark's
ratio (docs/benchmarks.md): a booking changes about twenty pages, the baseline insert
one or two.

    python bench/disk.py [--commits N] [--dir PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

PAGE = 4096
PAGE_COUNTS = (1, 2, 4, 8, 16, 24, 32, 64)
FILE_PAGES = 4096  # writes wrap around a 16 MiB file, as a WAL does after a checkpoint


def commit_cost(fd: int, pages: int, commits: int) -> float:
    """Median microseconds for `pages` writes plus one fdatasync."""
    block = os.urandom(PAGE)
    offset = 0
    costs = []
    for _ in range(commits):
        started = time.perf_counter()
        for _ in range(pages):
            os.pwrite(fd, block, (offset % FILE_PAGES) * PAGE)
            offset += 1
        os.fdatasync(fd)
        costs.append(time.perf_counter() - started)
    return statistics.median(costs) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=300, help="commits per page count (default 300)")
    parser.add_argument("--dir", help="where to write the test file (default: the temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="careline-disk-", dir=args.dir) as tmp:
        path = os.path.join(tmp, "commits.bin")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, b"\0" * PAGE * FILE_PAGES, 0)  # allocated up front: no size changes
            os.fsync(fd)
            print(f"median µs per commit ({args.commits} commits each; pages of {PAGE} bytes, one fdatasync):")
            for pages in PAGE_COUNTS:
                print(f"  {pages:3d} pages: {commit_cost(fd, pages, args.commits):7.0f} µs")
        finally:
            os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
