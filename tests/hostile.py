"""A `dcgw serve` process with many templates, and the consent URLs an attacker sends it
before signing in: shared by tests/test_hostile_server.py and bench/hostile_consent.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

from tests.gateway_app import Gateway, build_gateway, dcgw_serve
from tests.servers.common import free_port

PROVIDER, REDIRECT = "provider.example", "https://provider.example/cb"
SCOPE = [f"s{i}" for i in range(20)]  # as many templates as one consent request may name
TEMPLATES = [{"providerId": PROVIDER, "providerName": "Example Hosting", "serviceId": service,
              "serviceName": service, "version": 1, "records": [
                  {"type": "A", "host": "www", "pointsTo": "%ip%", "ttl": 600},
                  {"type": "TXT", "host": "@", "data": "verify=%token%", "ttl": 600},
                  {"type": "CNAME", "host": "mail", "pointsTo": "mx.provider.example", "ttl": 600},
                  {"type": "SPFM", "host": "@", "spfRules": "include:spf.provider.example"}]}
             for service in SCOPE]
CONSENT_PATH = f"/v2/domainTemplates/providers/{PROVIDER}"


def consent_url(hosts: list[str], scope: list[str]) -> str:
    query = {"client_id": PROVIDER, "redirect_uri": REDIRECT, "response_type": "code", "scope": " ".join(scope),
             "domain": "example.com", "host": ",".join(hosts), "state": "st", "ip": "192.0.2.1", "token": "t"}
    return f"{CONSENT_PATH}?{urlencode(query)}"


# The 15 KB URL of the review: 2000 hosts (refused at once now), and the largest URL still
# accepted: 20 hosts for each of 20 templates, 400 renders before the sign-in redirect.
TOO_MANY_HOSTS = consent_url([f"h{i}" for i in range(2000)], SCOPE[:1])
LARGEST_ACCEPTED = consent_url([f"host{i}" for i in range(20)], SCOPE)


@contextlib.contextmanager
def served_gateway(directory: Path, metrics: str = "") -> Iterator[tuple[Gateway, str, Path]]:
    """`dcgw serve` on a free loopback port, for the templates above; the client is registered."""
    port = free_port()
    gateway = build_gateway(directory, TEMPLATES, base_url=f"http://127.0.0.1:{port}", metrics=metrics)
    gateway.app.state.runtime.store.add_client(PROVIDER, [REDIRECT])
    gateway.app.state.runtime.close()  # the server process opens its own
    with dcgw_serve(gateway, port) as (url, log):
        yield gateway, url, log
