"""Backend apply cost: latency of one apply (prepare + execute, median of many) and the
number of round trips to the backend's server per apply, in a small and a large zone, next
to one direct write of the same RRsets (a PowerDNS PATCH, a DNS UPDATE), interleaved.

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
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.base import Backend  # noqa: E402
from backends.testing import conformance_template, rrset_from_text  # noqa: E402
from gateway.apply.pipeline import execute_apply, prepare_apply  # noqa: E402
from gateway.engine.render import ApplyContext  # noqa: E402

SIZES = (10, 10_000)


@dataclass(frozen=True)
class Figures:
    backend: str
    zone_records: int
    applies: int
    median_seconds: float
    round_trips: float  # median per apply
    direct_seconds: float | None = None  # median of the direct writes of the same RRsets
    ratio: float | None = None  # median of apply / direct write, pair by pair


def measure(backend: Backend, zone: dns.name.Name, applies: int, round_trips: Callable[[], int],
            zone_records: int, direct: Callable[[int], None] | None = None) -> Figures:
    """Apply a two-record template `applies` times, each time really changing the zone; after
    each, `direct(index)` (when given) writes the same two RRsets at another name as one plain
    request to the server, the anchor."""
    context = ApplyContext(domain=zone.to_text(omit_final_dot=True))
    latencies, trips, directs = [], [], []
    for index in range(applies):
        template = conformance_template([
            # A new value each time: moto_server refuses a CREATE identical to an earlier one.
            {"type": "A", "host": "www", "pointsTo": address(index), "ttl": 600},
            {"type": "TXT", "host": "www", "data": f"bench {index}", "ttl": 600,
             "txtConflictMatchingMode": "All"},
        ], service_id="bench")
        before = round_trips()
        start = time.perf_counter()
        assert execute_apply(prepare_apply(backend, template, context)), "the apply changed nothing"
        latencies.append(time.perf_counter() - start)
        trips.append(round_trips() - before)
        if direct is not None:
            start = time.perf_counter()
            direct(index)
            directs.append(time.perf_counter() - start)
    if not directs:
        return Figures(backend.name, zone_records, applies, statistics.median(latencies), statistics.median(trips))
    return Figures(backend.name, zone_records, applies, statistics.median(latencies), statistics.median(trips),
                   statistics.median(directs), statistics.median(a / d for a, d in zip(latencies, directs)))


def address(index: int) -> str:
    return f"198.18.{index >> 8 & 255}.{index & 255}"


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
            direct_http = httpx.Client(base_url=f"{server.api_url}/api/v1/servers/{server.server_id}",
                                       headers={"X-API-Key": server.api_key}, timeout=60)

            def patch(index: int, zone=zone, http=direct_http) -> None:
                name = dns.name.from_text("direct", zone).to_text()
                http.patch(f"/zones/{zone}", json={"rrsets": [
                    {"name": name, "type": "A", "ttl": 600, "changetype": "REPLACE",
                     "records": [{"content": address(index), "disabled": False}]},
                    {"name": name, "type": "TXT", "ttl": 600, "changetype": "REPLACE",
                     "records": [{"content": f'"bench {index}"', "disabled": False}]}]}).raise_for_status()

            figures.append(measure(backend, zone, applies, lambda: len(transport.requests), size, patch))
            direct_http.close()
            backend.close()
    return figures


def bench_rfc2136(sizes: Sequence[int], applies: int) -> list[Figures]:
    from backends.base import RRsetChange
    from backends.rfc2136 import RFC2136Backend
    from tests.servers.bind import bind_running

    figures = []
    with bind_running(zone_count=len(sizes)) as server:
        for size in sizes:
            zone = server.fresh_zone()
            backend = RFC2136Backend("rfc2136", server.backend_options())
            rrsets = list(filler(zone, size))
            for start in range(0, size, 1000):  # what fits in one UPDATE message
                backend.apply(zone, [RRsetChange(r.name, r.rdtype, None, r) for r in rrsets[start:start + 1000]])

            def update(index: int, zone=zone) -> None:
                message = server.update_message(zone)
                message.replace("direct", 600, "A", address(index))
                message.replace("direct", 600, "TXT", f'"bench {index}"')
                server.send(message)

            figures.append(measure(backend, zone, applies, lambda: backend.round_trips, size, update))
    return figures


def bench_route53(sizes: Sequence[int], applies: int) -> list[Figures]:
    import os

    from backends.base import RRsetChange
    from backends.route53 import Route53Backend
    from tests.servers.moto import FAKE_CREDENTIALS, moto_running

    os.environ.update(FAKE_CREDENTIALS)  # moto_server on 127.0.0.1; nothing reaches AWS
    figures = []
    with moto_running() as server:
        for size in sizes:
            zone, _ = server.create_zone(f"bench-{size}.test")
            backend = Route53Backend("route53", server.backend_options())
            rrsets = list(filler(zone, size))
            for start in range(0, size, 1000):  # Route 53 takes at most 1000 changes per batch
                backend.apply(zone, [RRsetChange(r.name, r.rdtype, None, r) for r in rrsets[start:start + 1000]])
            figures.append(measure(backend, zone, applies, lambda: backend.api_calls, size))
    return figures


BENCHES: dict[str, Callable[[Sequence[int], int], list[Figures]]] = {
    "powerdns": bench_powerdns,
    "rfc2136": bench_rfc2136,
    "route53": bench_route53,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backends", nargs="*", choices=[[], *BENCHES], metavar="BACKEND",
                        help=f"backends to measure (default: all of {', '.join(BENCHES)})")
    parser.add_argument("-n", "--applies", type=int, default=50, help="applies per zone size (default 50)")
    parser.add_argument("--quick", action="store_true", help="tiny counts: check that the benchmark runs (figures mean nothing)")
    args = parser.parse_args(argv)
    sizes = (10,) if args.quick else SIZES
    if args.quick:
        args.applies = 2
    print(f"{'backend':<10}  {'records':>8}  {'applies':>7}  {'median apply':>12}  {'round trips/apply':>17}  "
          f"{'direct write':>12}  {'ratio':>6}")
    for name in args.backends or BENCHES:
        for figures in BENCHES[name](sizes, args.applies):
            direct = "-" if figures.direct_seconds is None else f"{figures.direct_seconds * 1000:.1f} ms"
            ratio = "-" if figures.ratio is None else f"{figures.ratio:.1f}x"
            print(f"{name:<10}  {figures.zone_records:>8}  {figures.applies:>7}  "
                  f"{figures.median_seconds * 1000:>9.1f} ms  {figures.round_trips:>17.0f}  {direct:>12}  {ratio:>6}",
                  flush=True)


if __name__ == "__main__":
    main()
