"""Backend apply cost: latency of one apply (prepare + execute, median of many) and the
number of round trips to the backend's server per apply, in a small and a large zone.

    python bench/backend_apply.py                 # every backend below
    python bench/backend_apply.py powerdns -n 100

Each backend is one function `bench_<driver>(sizes, applies) -> list[Figures]` that
starts its own server, fills a zone of each size, and calls `measure`; add it to
BENCHES. Servers run on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.name

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.base import Backend  # noqa: E402
from backends.testing import conformance_template, rrset_from_text  # noqa: E402
from gateway.apply import execute_apply, prepare_apply  # noqa: E402
from gateway.render import ApplyContext  # noqa: E402

SIZES = (10, 10_000)


@dataclass(frozen=True)
class Figures:
    backend: str
    zone_records: int
    applies: int
    median_seconds: float
    round_trips: float  # median per apply


def measure(backend: Backend, zone: dns.name.Name, applies: int, round_trips: Callable[[], int],
            zone_records: int) -> Figures:
    """Apply a two-record template `applies` times, each time really changing the zone."""
    context = ApplyContext(domain=zone.to_text(omit_final_dot=True))
    latencies, trips = [], []
    for index in range(applies):
        template = conformance_template([
            {"type": "A", "host": "www", "pointsTo": f"192.0.2.{index % 2 + 1}", "ttl": 600},
            {"type": "TXT", "host": "www", "data": f"bench {index % 2}", "ttl": 600,
             "txtConflictMatchingMode": "All"},
        ], service_id="bench")
        before = round_trips()
        start = time.perf_counter()
        assert execute_apply(prepare_apply(backend, template, context)), "the apply changed nothing"
        latencies.append(time.perf_counter() - start)
        trips.append(round_trips() - before)
    return Figures(backend.name, zone_records, applies, statistics.median(latencies), statistics.median(trips))


def filler(zone: dns.name.Name, count: int):
    """`count` A records, one RRset each, that no template in this bench touches."""
    for index in range(count):
        yield rrset_from_text(zone, f"host-{index:06d}", 300, "A",
                              [f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"])


# -- one function per backend ---------------------------------------------------------------


def bench_powerdns(sizes: Sequence[int], applies: int) -> list[Figures]:
    from backends.powerdns import PowerDNSBackend
    from tests.servers.pdns import CountingTransport, pdns_server, replace_entry

    figures = []
    with pdns_server() as server:
        for size in sizes:
            zone = dns.name.from_text(f"bench-{size}.test")
            server.create_zone(zone)
            server.patch(zone, [replace_entry(rrset, zone) for rrset in filler(zone, size)])
            transport = CountingTransport()
            backend = PowerDNSBackend("powerdns", server.backend_options(), transport=transport)
            figures.append(measure(backend, zone, applies, lambda: len(transport.requests), size))
            backend.close()
    return figures


BENCHES: dict[str, Callable[[Sequence[int], int], list[Figures]]] = {
    "powerdns": bench_powerdns,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backends", nargs="*", choices=[[], *BENCHES], metavar="BACKEND",
                        help=f"backends to measure (default: all of {', '.join(BENCHES)})")
    parser.add_argument("-n", "--applies", type=int, default=50, help="applies per zone size (default 50)")
    args = parser.parse_args(argv)
    print(f"{'backend':<10}  {'records':>8}  {'applies':>7}  {'median apply':>12}  {'round trips/apply':>17}")
    for name in args.backends or BENCHES:
        for figures in BENCHES[name](SIZES, args.applies):
            print(f"{name:<10}  {figures.zone_records:>8}  {figures.applies:>7}  "
                  f"{figures.median_seconds * 1000:>9.1f} ms  {figures.round_trips:>17.0f}", flush=True)


if __name__ == "__main__":
    main()
