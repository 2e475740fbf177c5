"""Cost of the zone lock that orders applies across replicas: taking and releasing it once,
uncontended, per kind (within the process, a file lock beside a SQLite database, a
PostgreSQL advisory lock on a throwaway cluster), and 16 threads taking turns on one zone.

    python bench/zone_lock.py            # 2000 takes per kind
    python bench/zone_lock.py -n 5000

The anchor is one API apply to PowerDNS through the gateway, tens of milliseconds
(bench/oauth_apply.py prints its median); the lock should be a small part of it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import dns.name
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.locks import ZoneLocks
from gateway.state.locks import AdvisoryZoneLocks, FileZoneLocks  # noqa: E402
from tests.servers.postgres import postgres_cluster  # noqa: E402

ZONE = dns.name.from_text("example.com")


def uncontended(locks: ZoneLocks, takes: int) -> float:
    """Median seconds to take and release the lock of one zone."""
    times = []
    for _ in range(takes):
        start = time.perf_counter()
        with locks.hold("bench", ZONE, timeout=10):
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def contended(locks: ZoneLocks, threads: int, takes: int) -> float:
    """Takes per second when `threads` threads take turns on one zone."""
    def worker() -> None:
        for _ in range(takes // threads):
            with locks.hold("bench", ZONE, timeout=60):
                pass

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return (takes // threads * threads) / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--takes", type=int, default=2000, help="takes per kind (default 2000)")
    parser.add_argument("--quick", action="store_true", help="32 takes per kind: check that the benchmark runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.takes = 32
    with tempfile.TemporaryDirectory(prefix="dcgw-bench-") as directory, postgres_cluster() as url:
        engine = create_engine(url)
        kinds = [("in this process", ZoneLocks()), ("SQLite file lock", FileZoneLocks(Path(directory) / "locks")),
                 ("PostgreSQL advisory", AdvisoryZoneLocks(engine))]
        print(f"{'zone lock':<20}  {'take+release':>12}  {'16 threads, 1 zone':>18}")
        for name, locks in kinds:
            median = uncontended(locks, args.takes)
            rate = contended(locks, 16, args.takes)
            print(f"{name:<20}  {median * 1e6:>9.0f} us  {rate:>12.0f} takes/s")
            locks.close()
        engine.dispose()
    print("anchor: one API apply through the gateway to PowerDNS, tens of ms (median: bench/oauth_apply.py)")


if __name__ == "__main__":
    main()
