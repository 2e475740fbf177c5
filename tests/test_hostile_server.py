"""Hostile input against a real `dcgw serve` process, where the event loop and the socket matter."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.gateway_app import METRICS_AUTH, METRICS_TOKEN
from tests.hostile import LARGEST_ACCEPTED, TOO_MANY_HOSTS, served_gateway
from tests.servers.common import free_port, wait_for_port


@pytest.fixture
def served(tmp_path):
    metrics_port = free_port()
    with served_gateway(tmp_path, metrics=f'listen = "127.0.0.1:{metrics_port}"') as (gateway, url, log):
        yield gateway, url, log, metrics_port


def test_healthz_stays_responsive_while_hostile_consent_urls_arrive(served):
    _, url, _, _ = served
    stop = threading.Event()
    answers: list[tuple[str, int, str]] = []

    def attacker(path: str) -> None:
        with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
            while not stop.is_set():
                response = client.get(path)
                answers.append((path, response.status_code, response.headers.get("location", "")))

    threads = [threading.Thread(target=attacker, args=(path,)) for path in [TOO_MANY_HOSTS, LARGEST_ACCEPTED] * 2]
    for thread in threads:
        thread.start()
    latencies = []
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                started = time.perf_counter()
                assert client.get("/healthz").json() == {"status": "ok"}
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    # Loose on purpose (a shared machine stalls now and then): the review saw 11 s, and with the
    # rendering on the event loop half the answers took over 3 s here.
    assert sorted(latencies)[int(len(latencies) * 0.9)] < 1.0, latencies
    refused = [a for a in answers if a[0] == TOO_MANY_HOSTS]
    checked = [a for a in answers if a[0] == LARGEST_ACCEPTED]
    assert refused and all(status == 303 and "error=invalid_request" in location and "more+than+the+20+hosts"
                           in location for _, status, location in refused)
    # Every one of the 400 renders passed, and the request waits for a sign-in: nothing was granted.
    assert checked and all(status == 303 and location.startswith("/login?next=") for _, status, location in checked)


def test_a_huge_declared_body_is_refused_without_being_read(served):
    gateway, url, _, _ = served
    before = gateway.zone_text()
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"POST /v2/sync/consent HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Content-Type: application/x-www-form-urlencoded\r\n"
                           b"Content-Length: 1073741824\r\n\r\ncsrf_token=x&" + b"a" * 65536)
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert gateway.zone_text() == before


def test_metrics_are_served_on_metrics_listen_only(served):
    _, url, _, metrics_port = served
    assert httpx.get(f"{url}/metrics").status_code == 404
    assert httpx.get(f"{url}/metrics", headers=METRICS_AUTH).status_code == 404
    httpx.get(f"{url}/healthz")
    wait_for_port(metrics_port, timeout=10)
    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert scraped.status_code == 200 and 'route="/healthz"' in scraped.text
    assert httpx.get(f"http://127.0.0.1:{metrics_port}/healthz").status_code == 404  # metrics only there


def test_percent_encoded_secret_names_never_reach_the_access_log(served):
    _, url, log, _ = served
    secrets = ["S3CR3T-client", "C0DE-value", "R3FRESH-token"]
    httpx.post(f"{url}/v2/oauth/access_token?client%5Fsecret={secrets[0]}&c%6Fde={secrets[1]}"
               f"&refresh%5Ftoken={secrets[2]}&grant_type=refresh_token")
    deadline = time.monotonic() + 10
    while "access_token" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log.read_text()
    assert "client%5Fsecret=[redacted]" in text
    assert not any(secret in text for secret in secrets + [METRICS_TOKEN])
