"""kill -9 of `dcgw serve` during a burst of API applies, then a restart: the writes it left
half done are settled at start-up, and every host serves what its recorded instance says.

The zone-file backend's reload command sleeps, so a write sits between "in the file" and
"recorded" long enough for the kill to land there, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import dns.name
import dns.rdatatype
import httpx
import pytest

from backends.zonefile import ZoneFileBackend
from gateway.apply.instances import instance_differences
from gateway.state import StateStore
from tests.gateway_app import build_gateway
from tests.servers.common import free_port, stop, wait_for_port
from tests.state_helpers import database_url  # noqa: F401  (fixture)

TEMPLATE = {"providerId": "provider.example", "providerName": "Provider", "serviceId": "site",
            "serviceName": "Site", "records": [{"type": "A", "host": "@", "pointsTo": "%ip%", "ttl": 300},
                                               {"type": "TXT", "host": "@", "data": "site=%ip%", "ttl": 300}]}
HOSTS = [f"h{index}" for index in range(12)]
REDIRECT = "https://provider.example/cb"
APPLY = "/v2/domainTemplates/providers/provider.example/services/site/apply"
ZONE = dns.name.from_text("example.com")


def serve(config, port: int, log) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                                "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process, timeout=30)
    return process


def burst(url: str, token: str, round_number: int) -> tuple[list[int], list[threading.Thread]]:
    """Apply to every host at once; returns the statuses (0: cut off) and the threads."""
    statuses: list[int] = []

    def one(host: str) -> None:
        try:
            answer = httpx.post(f"{url}{APPLY}", params={"domain": "example.com", "host": host,
                                                         "ip": f"192.0.2.{round_number * 20 + HOSTS.index(host)}"},
                                headers={"Authorization": f"Bearer {token}"}, timeout=30)
            statuses.append(answer.status_code)
        except httpx.HTTPError:
            statuses.append(0)  # cut off by the kill

    threads = [threading.Thread(target=one, args=(host,)) for host in HOSTS]
    for thread in threads:
        thread.start()
    return statuses, threads


@pytest.mark.servers
def test_kill_9_during_a_burst_then_restart(tmp_path, database_url):  # noqa: F811
    port = free_port()
    gateway = build_gateway(tmp_path, templates=[TEMPLATE], base_url=f"http://127.0.0.1:{port}",
                            sections='reload_command = "sleep 0.15"\n')
    config = gateway.config.path
    text = config.read_text().replace('url = "sqlite:///state.sqlite"', f'url = "{database_url}"')
    config.write_text(text)
    store = StateStore.open(database_url)
    store.add_client("provider.example", [REDIRECT])
    code = store.create_grant("provider.example", "alice", "example.com", HOSTS, ["site"], REDIRECT)
    token = store.redeem_code(code, "provider.example", REDIRECT).access_token
    backend = ZoneFileBackend("files", {"directory": str(gateway.zones)})
    log = (tmp_path / "serve.log").open("ab")
    url = f"http://127.0.0.1:{port}"
    settled_after_kill = 0
    try:
        for round_number in range(3):
            process = serve(config, port, log)
            statuses, threads = burst(url, token, round_number)
            # Kill while a write is in flight: its intent is committed, the record not yet.
            deadline = time.monotonic() + 20
            while not store.intents() and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.05 * round_number)
            process.kill()  # kill -9
            process.wait()
            for thread in threads:
                thread.join(timeout=30)
            if store.intents():
                settled_after_kill += 1
            # Restarted, it settles what the killed process left before anything else.
            process = serve(config, port, log)
            deadline = time.monotonic() + 20
            while store.intents() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert store.intents(status=None) == [], "a write the kill interrupted was not settled at start-up"
            instances = {i.host: i for i in store.instances("example.com")}
            for host in HOSTS:
                served = backend.read(ZONE, {dns.name.from_text(host, ZONE)}, ())
                if host in instances:
                    assert instance_differences(instances[host], backend, ZONE) == [], host
                else:
                    assert served == [], f"{host} has records in DNS and no recorded instance"
            # A retry after the restart does what it says.
            retry = httpx.post(f"{url}{APPLY}", params={"domain": "example.com", "host": "h0", "ip": "198.51.100.7"},
                               headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert retry.status_code == 200, retry.text
            assert "198.51.100.7" in gateway.zone_text()
            stop(process)
        assert settled_after_kill >= 1, "no kill landed between a write and its record"
    finally:
        log.close()
        store.close()
