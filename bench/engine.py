"""Render+plan time of the engine next to the reference implementation, domainconnectzone 4.0.0
(`process_records`): a 5-record template (A, CNAME, MX, TXT with a prefix, SPFM) against zones
of 10 and 100k records, and the whole public corpus. Run: python bench/engine.py

The engine reads only the names a template touches, so its figure should not move with the
zone: cost follows the template. The reference takes the whole zone as a list of records.

The reference pins dnspython 1.15, so it runs in a venv of its own, made on demand under
$XDG_CACHE_HOME/dcgw-bench (~/.cache by default); when that cannot be made, its column is
skipped and the reason printed. Each round times the engine, then the reference; the
ratio printed is the median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

import dns.zone

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backends.zonedata import rrsets_in_scope  # noqa: E402
from gateway.engine.plan import plan_changes, read_scope  # noqa: E402
from gateway.engine.render import ApplyContext, render_template  # noqa: E402
from gateway.engine.template import load_templates, parse_template  # noqa: E402

RECORDS = [
    {"type": "A", "host": "@", "pointsTo": "%ip%", "ttl": 600},
    {"type": "CNAME", "host": "www", "pointsTo": "@", "ttl": 600},
    {"type": "MX", "host": "@", "pointsTo": "mx.bench.example", "priority": 10, "ttl": 600},
    {"type": "TXT", "host": "_verify", "data": "token=%token%", "ttl": 600,
     "txtConflictMatchingMode": "Prefix", "txtConflictMatchingPrefix": "token="},
    {"type": "SPFM", "host": "@", "spfRules": "include:spf.bench.example"},
]
TEMPLATE = parse_template({"providerId": "bench.example", "providerName": "Bench", "serviceId": "five",
                           "serviceName": "Five", "records": RECORDS})
PARAMS = {"ip": "192.0.2.80", "token": "abc"}
CONTEXT = ApplyContext("example.com", params=PARAMS)
REFERENCE = "domainconnectzone==4.0.0"
RUNNER = ROOT / "bench" / "reference" / "domainconnectzone_runner.py"


def build_zone(size: int) -> dns.zone.Zone:
    """The zone of `size` records (the runner builds the same one in the reference's shape)."""
    lines = ["$ORIGIN example.com.",
             "@ 3600 IN SOA ns1.example.net. hostmaster.example.com. 1 7200 1800 1209600 3600",
             "@ 3600 IN NS ns1.example.net.", '@ 3600 IN TXT "v=spf1 a ~all"', "www 3600 IN A 192.0.2.1"]
    lines += [f"host{i} 3600 IN A 198.51.{(i >> 8) & 255}.{i & 255}" for i in range(max(0, size - 4))]
    return dns.zone.from_text("\n".join(lines) + "\n", origin="example.com.", relativize=False)


def render_and_plan(zone: dns.zone.Zone, template=TEMPLATE, context=CONTEXT):
    rendered = render_template(template, context)
    scope = read_scope(rendered, zone.origin)
    return plan_changes(rendered, rrsets_in_scope(zone, scope.names, scope.subtrees), zone.origin)


# -- the reference, in its own venv ----------------------------------------------------------------------


def reference_python(create: bool) -> tuple[Path | None, str]:
    """The venv's python with the reference installed, or None and why not."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dcgw-bench"
    directory = cache / REFERENCE.replace("==", "-")
    python = directory / "bin" / "python"
    marker = directory / "installed"
    if marker.exists():
        return python, ""
    if not create:
        return None, f"no venv at {directory} (a run without --quick makes it)"
    try:
        venv.create(directory, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", REFERENCE], check=True, timeout=600,
                       capture_output=True, text=True)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return None, f"cannot install {REFERENCE} into {directory}: {detail.strip()[-300:]}"
    marker.write_text(REFERENCE + "\n")
    return python, ""


class Reference:
    """The runner process: one JSON request per line, one answer per line."""

    def __init__(self, python: Path) -> None:
        self.process = subprocess.Popen([str(python), str(RUNNER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)

    def ask(self, **request) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the reference runner stopped")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


# -- rounds --------------------------------------------------------------------------------------------


def median_seconds(function, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def report(label: str, ours: list[float], theirs: list[float], unit: float, unit_name: str) -> None:
    line = f"  {label:<34} {statistics.median(ours) / unit:10.1f} {unit_name}"
    if theirs:
        ratio = statistics.median(o / t for o, t in zip(ours, theirs))
        line += f" {statistics.median(theirs) / unit:12.1f} {unit_name} {ratio:9.3f}x"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds, each timing the engine then the reference")
    parser.add_argument("--repeat", type=int, default=200, help="calls per round (median taken)")
    parser.add_argument("--quick", action="store_true", help="tiny counts: check that the benchmark runs "
                                                             "(figures mean nothing)")
    args = parser.parse_args()
    sizes = (10, 1000) if args.quick else (10, 100_000)
    if args.quick:
        args.rounds, args.repeat = 1, 3

    python, why_not = reference_python(create=not args.quick)
    reference = Reference(python) if python is not None else None
    print(f"{'':<36} {'engine':>13} {'domainconnectzone':>17} {'ratio':>9}")
    if reference is None:
        print(f"  (domainconnectzone column skipped: {why_not})")
    try:
        for size in sizes:
            zone = build_zone(size)
            render_and_plan(zone)  # warm up
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(median_seconds(lambda: render_and_plan(zone), args.repeat))
                if reference is not None:
                    theirs.append(statistics.median(reference.ask(
                        op="records", records=RECORDS, zone_size=size, domain="example.com", host="",
                        params=PARAMS, groups=None, repeat=max(3, args.repeat // (1 + size // 10_000)))["seconds"]))
            report(f"5-record template, {size:,}-record zone", ours, theirs, 1e-6, "µs")
        corpus_round(args, reference)
    finally:
        if reference is not None:
            reference.close()


def corpus_round(args, reference: Reference | None) -> None:
    corpus = ROOT.parent / "shared" / "corpus" / "templates"
    corpus = Path(os.environ.get("DCGW_CORPUS") or corpus)
    if not corpus.is_dir():
        print("  corpus: ../shared/corpus not present, skipped")
        return
    from tests.corpus import group_selections, sample_params
    templates, _ = load_templates([corpus])
    chosen = list(templates.values())[:20] if args.quick else list(templates.values())
    zone = build_zone(10)
    jobs = [(t, ApplyContext("example.com", host="shop" if t.host_required else "", params=sample_params(t),
                             group_ids=groups))
            for t in chosen for groups in group_selections(t)]
    reference_jobs = [[t.source, c.host, dict(c.params), sorted(c.group_ids) if c.group_ids else None]
                      for t, c in jobs]

    def run_corpus() -> int:
        done = 0
        for template, context in jobs:
            try:
                render_and_plan(zone, template, context)
                done += 1
            except ValueError:
                pass  # extension types without a backend that supports them, or refusals
        return done

    planned = run_corpus()
    ours, theirs, their_planned = [], [], 0
    for _ in range(args.rounds):
        ours.append(median_seconds(run_corpus, 1))
        if reference is not None:
            answer = reference.ask(op="corpus", jobs=reference_jobs, zone_size=10, repeat=1)
            theirs.append(answer["seconds"][0])
            their_planned = answer["planned"]
    report(f"corpus, {len(jobs)} renders+plans", ours, theirs, 1e-3, "ms")
    print(f"  ({len(chosen)} templates, 10-record zone; planned: engine {planned}"
          + (f", domainconnectzone {their_planned})" if reference is not None else ")"))


if __name__ == "__main__":
    main()
