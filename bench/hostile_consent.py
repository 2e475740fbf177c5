"""/healthz latency while hostile consent URLs arrive. Run: python bench/hostile_consent.py

A real `dcgw serve` process on 127.0.0.1 with twenty onboarded templates. The anchor is
/healthz latency on the idle server; the figure is the same while N clients (default 4)
send, back to back and before signing in, consent URLs an attacker would: the 15 KB URL
with 2000 hosts (refused at once), and the largest URL still accepted (20 hosts for each
of 20 templates: 400 renders, off the event loop, before the sign-in redirect).

    python bench/hostile_consent.py [--clients N] [--seconds S]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile import LARGEST_ACCEPTED, TOO_MANY_HOSTS, served_gateway  # noqa: E402


def healthz_latencies(url: str, seconds: float, pause: float = 0.02) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, timeout=60) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            latencies.append(time.perf_counter() - started)
            time.sleep(pause)
    return latencies


def attack(url: str, path: str, stop: threading.Event, served: list[float]) -> None:
    # http.client sends the path as given: httpx would spend more CPU quoting 15 KB URLs than
    # the server spends refusing them, on the same cores.
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=60)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            connection.request("GET", path)
            connection.getresponse().read()
            served.append(time.perf_counter() - started)
    finally:
        connection.close()


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   "
            f"max {ordered[-1] * 1000:7.1f} ms   ({len(ordered)} requests)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, served_gateway(Path(directory)) as (_, url, _):
        healthz_latencies(url, 0.5)  # warm up
        idle = healthz_latencies(url, args.seconds)
        stop = threading.Event()
        timings: dict[str, list[float]] = {TOO_MANY_HOSTS: [], LARGEST_ACCEPTED: []}
        paths = [TOO_MANY_HOSTS if i % 2 == 0 else LARGEST_ACCEPTED for i in range(args.clients)]
        threads = [threading.Thread(target=attack, args=(url, path, stop, timings[path])) for path in paths]
        for thread in threads:
            thread.start()
        try:
            loaded = healthz_latencies(url, args.seconds)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    print(f"/healthz, idle server (anchor):            {summary(idle)}")
    print(f"/healthz, {args.clients} clients sending hostile URLs: {summary(loaded)}")
    print(f"  2000-host URL ({len(TOO_MANY_HOSTS) // 1000} KB, refused):      {summary(timings[TOO_MANY_HOSTS])}")
    print(f"  20 hosts x 20 templates (accepted):    {summary(timings[LARGEST_ACCEPTED])}")


if __name__ == "__main__":
    main()
