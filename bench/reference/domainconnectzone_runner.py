"""Times domainconnectzone 4.0.0's `process_records` for bench/engine.py; runs inside that
library's own venv (it pins dnspython 1.15), so it imports nothing from the gateway.

Reads one JSON request per line on stdin, answers one JSON line on stdout:
  {"op": "records", "records": [...], "zone_size": N, "domain", "host", "params", "groups", "repeat"}
      -> {"seconds": [per-call seconds, ...]}
  {"op": "corpus", "jobs": [[template file, host, params, groups], ...], "zone_size": N, "repeat"}
      -> {"seconds": [per-pass seconds, ...], "planned": n}
"""

import copy
import json
import sys
import time

from domainconnectzone.DomainConnectImpl import process_records


def zone_records(size):
    """The zone bench/engine.py builds, in the reference's record dicts (whole zone, as it takes)."""
    records = [{"type": "NS", "name": "@", "data": "ns1.example.net", "ttl": 3600},
               {"type": "TXT", "name": "@", "data": "v=spf1 a ~all", "ttl": 3600},
               {"type": "A", "name": "www", "data": "192.0.2.1", "ttl": 3600}]
    records += [{"type": "A", "name": "host%d" % i, "data": "198.51.%d.%d" % ((i >> 8) & 255, i & 255), "ttl": 3600}
                for i in range(max(0, size - 4))]
    return records


def one_apply(records, zone, domain, host, params, groups):
    new, deleted, _ = process_records(copy.deepcopy(records), zone, domain, host, params, groups)
    return deleted


def unmark(deleted):
    # process_records marks the zone's records; clear the marks so every call sees the same zone.
    for record in deleted:
        record.pop("_delete", None)
        record.pop("_replace", None)


def time_records(request):
    zone = zone_records(request["zone_size"])
    samples = []
    for _ in range(request["repeat"]):
        start = time.perf_counter()
        deleted = one_apply(request["records"], zone, request["domain"], request["host"], request["params"],
                            request["groups"])
        samples.append(time.perf_counter() - start)
        unmark(deleted)
    return {"seconds": samples}


def time_corpus(request):
    zone = zone_records(request["zone_size"])
    jobs = []
    for path, host, params, groups in request["jobs"]:
        with open(path, encoding="utf-8-sig") as stream:
            jobs.append((json.load(stream)["records"], host, params, groups))
    samples, planned = [], 0
    for _ in range(request["repeat"]):
        planned = 0
        start = time.perf_counter()
        marked = []
        for records, host, params, groups in jobs:
            try:
                marked += one_apply(records, zone, "example.com", host, params, groups)
                planned += 1
            except Exception:
                pass  # the reference refuses what it does not implement; the pass goes on
        samples.append(time.perf_counter() - start)
        unmark(marked)
    return {"seconds": samples, "planned": planned}


def main():
    for line in sys.stdin:
        request = json.loads(line)
        answer = time_records(request) if request["op"] == "records" else time_corpus(request)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
