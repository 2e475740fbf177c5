"""Render+plan time for a 5-record template against zones of 10, 10k and 100k records,
and for the whole public corpus. Run: python bench/engine.py

The engine reads only the names a template touches, so the figures for the three zone
sizes should be the same: cost follows the template, not the zone.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import dns.name
import dns.zone

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.plan import plan_changes, read_scope  # noqa: E402
from gateway.render import ApplyContext, render_template  # noqa: E402
from gateway.template import load_templates, parse_template  # noqa: E402
from gateway.zonedata import rrsets_in_scope  # noqa: E402

TEMPLATE = parse_template({
    "providerId": "bench.example", "providerName": "Bench", "serviceId": "five", "serviceName": "Five",
    "records": [
        {"type": "A", "host": "@", "pointsTo": "%ip%", "ttl": 600},
        {"type": "CNAME", "host": "www", "pointsTo": "@", "ttl": 600},
        {"type": "MX", "host": "@", "pointsTo": "mx.bench.example", "priority": 10, "ttl": 600},
        {"type": "TXT", "host": "_verify", "data": "token=%token%", "ttl": 600,
         "txtConflictMatchingMode": "Prefix", "txtConflictMatchingPrefix": "token="},
        {"type": "SPFM", "host": "@", "spfRules": "include:spf.bench.example"},
    ],
})
CONTEXT = ApplyContext("example.com", params={"ip": "192.0.2.80", "token": "abc"})


def build_zone(size: int) -> dns.zone.Zone:
    lines = ["$ORIGIN example.com.",
             "@ 3600 IN SOA ns1.example.net. hostmaster.example.com. 1 7200 1800 1209600 3600",
             "@ 3600 IN NS ns1.example.net.", '@ 3600 IN TXT "v=spf1 a ~all"', "www 3600 IN A 192.0.2.1"]
    lines += [f"host{i} 3600 IN A 198.51.{(i >> 8) & 255}.{i & 255}" for i in range(max(0, size - 4))]
    return dns.zone.from_text("\n".join(lines) + "\n", origin="example.com.", relativize=False)


def render_and_plan(zone: dns.zone.Zone, template=TEMPLATE, context=CONTEXT):
    rendered = render_template(template, context)
    scope = read_scope(rendered, zone.origin)
    return plan_changes(rendered, rrsets_in_scope(zone, scope.names, scope.subtrees), zone.origin)


def time_it(function, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    print("render+plan, 5-record template (median of 200)")
    for size in (10, 10_000, 100_000):
        zone = build_zone(size)
        render_and_plan(zone)  # warm up
        seconds = time_it(lambda: render_and_plan(zone), 200)
        print(f"  zone of {size:>7,} records: {seconds * 1e6:8.1f} µs")

    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "templates"
    if not corpus.is_dir():
        print("corpus: ../shared/corpus not present, skipped")
        return
    from tests.corpus import group_selections, sample_params
    templates, _ = load_templates([corpus])
    zone = build_zone(10_000)
    jobs = [(t, ApplyContext("example.com", host="shop" if t.host_required else "", params=sample_params(t),
                             group_ids=groups))
            for t in templates.values() for groups in group_selections(t)]

    def run_corpus() -> int:
        done = 0
        for template, context in jobs:
            try:
                render_and_plan(zone, template, context)
                done += 1
            except ValueError:
                pass  # extension types without a backend that supports them
        return done

    planned = run_corpus()
    seconds = time_it(run_corpus, 5)
    print(f"corpus: {planned} template/group renders+plans of {len(templates)} templates in "
          f"{seconds * 1e3:.1f} ms ({seconds / len(jobs) * 1e6:.1f} µs each), zone of 10,000 records")


if __name__ == "__main__":
    main()
