"""zonefile backend: latency of one apply (prepare + execute, median of many) and zone file
reads per apply, for zones of 10, 10k and 100k records; then memory while 16 threads apply
to one 100k-record file at once. Run: python bench/zonefile.py [--quick]

An apply rewrites only the lines of the RRsets it changes (and the SOA serial in place), so
its cost follows the template, not the zone. Targets: a 100k-record apply <= 5x a
10-record apply, and memory flat under 16 concurrent applies (no copy of the zone per apply).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.name

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.testing import conformance_template  # noqa: E402
from backends.zonefile import ZoneFileBackend  # noqa: E402
from gateway.apply.pipeline import execute_apply, prepare_apply  # noqa: E402
from gateway.engine.render import ApplyContext  # noqa: E402

ZONE = dns.name.from_text("example.com")
CONTEXT = ApplyContext("example.com")


def write_zone(directory: Path, size: int) -> None:
    lines = ["; the example zone, kept by hand", "$ORIGIN example.com.", "$TTL 3600",
             "@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300", "@ 3600 IN NS ns1", ""]
    lines += [f"host-{i:06d} 300 IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(size)]
    (directory / "example.com.zone").write_text("\n".join(lines) + "\n")


def template_for(index: int, host: str = "www"):
    # Alternate two values so that every apply really changes the zone.
    return conformance_template([{"type": "A", "host": host, "pointsTo": f"192.0.2.{index % 2 + 1}", "ttl": 600}],
                                service_id="bench")


def measure(size: int, applies: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        write_zone(Path(directory), size)
        backend = ZoneFileBackend("bench", {"directory": directory})
        execute_apply(prepare_apply(backend, template_for(1), CONTEXT))  # parse and index once
        latencies, reads = [], []
        for index in range(applies):
            before = backend.file_reads
            start = time.perf_counter()
            assert execute_apply(prepare_apply(backend, template_for(index), CONTEXT))
            latencies.append(time.perf_counter() - start)
            reads.append(backend.file_reads - before)
        return statistics.median(latencies), statistics.median(reads)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def concurrent_memory(size: int, workers: int, rounds: int) -> tuple[float, float, float, int]:
    """RSS once the zone is loaded, the peak while `workers` threads apply at once, and after."""
    with tempfile.TemporaryDirectory() as directory:
        write_zone(Path(directory), size)
        backend = ZoneFileBackend("bench", {"directory": directory})
        execute_apply(prepare_apply(backend, template_for(0), CONTEXT))
        warm = rss_mb()
        peak = warm
        parses = backend.parses
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb())
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()

        def one(index: int) -> None:
            # Each worker its own host: every apply changes the file the others read.
            for round_ in range(rounds):
                execute_apply(prepare_apply(backend, template_for(round_, f"w{index}"), CONTEXT))

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(workers)))
        done.set()
        sampler.join()
        return warm, peak, rss_mb(), backend.parses - parses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few iterations (checks the benchmark runs)")
    quick = parser.parse_args().quick
    sizes = ((10, 5), (1_000, 3), (10_000, 2)) if quick else ((10, 200), (10_000, 50), (100_000, 30))
    print(f"{'records':>8}  {'applies':>7}  {'median apply':>12}  {'file reads/apply':>16}")
    medians = {}
    for size, applies in sizes:
        latency, reads = measure(size, applies)
        medians[size] = latency
        print(f"{size:>8}  {applies:>7}  {latency * 1000:>9.2f} ms  {reads:>16.0f}")
    largest = sizes[-1][0]
    print(f"apply at {largest} records / at 10 records: {medians[largest] / medians[10]:.2f}x (target <= 5x)")
    size, workers, rounds = (10_000, 4, 2) if quick else (100_000, 16, 4)
    warm, peak, after, parses = concurrent_memory(size, workers, rounds)
    print(f"RSS with a {size}-record zone loaded: {warm:.0f} MB; peak during {workers} concurrent applies "
          f"x {rounds}: {peak:.0f} MB (+{peak - warm:.0f} MB); after: {after:.0f} MB; "
          f"zone parses meanwhile: {parses}")


if __name__ == "__main__":
    main()
