"""zonefile backend: latency of one apply (prepare + execute, median of many) and zone file
reads per apply, for zones of 10, 10k and 100k records. Run: python bench/zonefile.py

A master file is read and rewritten whole, so unlike the API backends its latency grows
with the zone; the number of reads per apply does not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dns.name

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.testing import conformance_template  # noqa: E402
from backends.zonefile import ZoneFileBackend  # noqa: E402
from gateway.apply import execute_apply, prepare_apply  # noqa: E402
from gateway.render import ApplyContext  # noqa: E402

ZONE = dns.name.from_text("example.com")
CONTEXT = ApplyContext("example.com")


def write_zone(directory: Path, size: int) -> None:
    lines = ["$ORIGIN example.com.", "@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300", "@ 3600 IN NS ns1"]
    lines += [f"host-{i:06d} 300 IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(size)]
    (directory / "example.com.zone").write_text("\n".join(lines) + "\n")


def measure(size: int, applies: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        write_zone(Path(directory), size)
        backend = ZoneFileBackend("bench", {"directory": directory})
        latencies, reads = [], []
        for index in range(applies):
            # Alternate two values so that every apply really changes the zone.
            template = conformance_template([{"type": "A", "host": "www", "pointsTo": f"192.0.2.{index % 2 + 1}",
                                              "ttl": 600}], service_id="bench")
            before = backend.file_reads
            start = time.perf_counter()
            assert execute_apply(prepare_apply(backend, template, CONTEXT))
            latencies.append(time.perf_counter() - start)
            reads.append(backend.file_reads - before)
        return statistics.median(latencies), statistics.median(reads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: check that the benchmark runs (figures mean nothing)")
    rounds = ((10, 2), (1000, 2)) if parser.parse_args().quick else ((10, 200), (10_000, 20), (100_000, 5))
    print(f"{'records':>8}  {'applies':>7}  {'median apply':>12}  {'file reads/apply':>16}")
    for size, applies in rounds:
        latency, reads = measure(size, applies)
        print(f"{size:>8}  {applies:>7}  {latency * 1000:>9.1f} ms  {reads:>16.0f}")


if __name__ == "__main__":
    main()
