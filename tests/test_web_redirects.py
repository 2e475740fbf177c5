"""REDIR301 and REDIR302: A records at the redirected host, a redirect the gateway's HTTP
listener answers, and a revert that removes both. On the zone-file backend, through
`dcgw apply` and `dcgw serve` as real processes, and through the sync flow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.gateway_app import build_gateway, consent_form, dcgw_serve, sign_in
from tests.servers.common import free_port

ROOT = Path(__file__).resolve().parents[1]
ADDRESSES = ["203.0.113.80", "2001:db8::80"]
REDIRECTS = f"[redirects]\naddresses = {json.dumps(ADDRESSES)}\n"
TARGET = "https://www.example.net/landing?from=dc"
FORWARD = {
    "providerId": "provider.example", "providerName": "Example Hosting", "serviceId": "forward",
    "serviceName": "Domain forwarding", "version": 2, "syncRedirectDomain": "provider.example",
    "records": [
        {"type": "REDIR301", "host": "@", "target": "%target%", "groupId": "redirect"},
        {"type": "CNAME", "host": "www", "pointsTo": "sites.provider.example", "ttl": 600, "groupId": "web"},
        {"type": "TXT", "host": "@", "data": "verify=%token%", "ttl": 600, "groupId": "web"},
    ],
}
TEMPORARY = {**FORWARD, "serviceId": "moved", "serviceName": "Temporary move",
             "records": [{"type": "REDIR302", "host": "shop", "target": "http://shop.example.net/", "ttl": 300}]}
SYNC_APPLY = "/v2/domainTemplates/providers/provider.example/services/{service}/apply"


@pytest.fixture
def gateway(tmp_path):
    return build_gateway(tmp_path, [FORWARD, TEMPORARY], sections=REDIRECTS)


def zone_records(gateway, name: str = "@") -> set[str]:
    """The zone file's lines at `name` (relative), type and data only."""
    lines = set()
    for line in gateway.zone_text().splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            lines.add(" ".join(parts[3:]))
    return lines


def revert_through_api(gateway, service: str, host: str = "") -> httpx.Response:
    """Revert as the service provider would: a token for the grant, POST .../revert."""
    store = gateway.app.state.runtime.store
    if store.client("provider.example") is None:
        store.add_client("provider.example", ["https://provider.example/cb"])
    code = store.create_grant("provider.example", "alice", "example.com", [host], [service],
                              "https://provider.example/cb")
    tokens = store.redeem_code(code, "provider.example", "https://provider.example/cb")
    with gateway.client() as client:
        return client.post(f"/v2/domainTemplates/providers/provider.example/services/{service}/revert",
                           data={"domain": "example.com", "host": host},
                           headers={"Authorization": f"Bearer {tokens.access_token}"})


def dcgw(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


@pytest.fixture
def served(gateway):
    """`dcgw serve` on the same config (and so the same state database) as `gateway`."""
    with dcgw_serve(gateway, free_port()) as (url, _log):
        yield url


def test_dcgw_apply_writes_the_addresses_and_dcgw_serve_redirects(gateway, served, tmp_path):
    template = tmp_path / "templates" / "provider.example.forward.json"
    applied = dcgw("apply", "--config", str(gateway.config.path), "--domain", "example.com", "--template",
                   str(template), "--param", f"target={TARGET}", "--param", "token=t1", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "REDIR301" in applied.stdout and TARGET in applied.stdout  # the plan shows the redirect
    apex = zone_records(gateway)
    assert {"A 203.0.113.80", "AAAA 2001:db8::80"} <= apex
    assert "A 192.0.2.1" not in apex  # the old apex address conflicted, like any A record would

    with httpx.Client(base_url=served, follow_redirects=False) as http:
        redirected = http.get("/", headers={"Host": "example.com"})
        deep = http.get("/any/path?x=1", headers={"Host": "EXAMPLE.com.:443"})
        other = http.get("/healthz", headers={"Host": "www.example.com"})
        own = http.get("/healthz")
        asked = http.get("/redirects/allowed", params={"domain": "example.com"})
        not_asked = http.get("/redirects/allowed", params={"domain": "www.example.com"})
    assert redirected.status_code == 301 and redirected.headers["location"] == TARGET
    assert deep.status_code == 301 and deep.headers["location"] == TARGET
    assert other.status_code == 200 and own.status_code == 200  # not redirected: the gateway answers
    assert asked.status_code == 200 and not_asked.status_code == 404

    unconfirmed = dcgw("revert", "--config", str(gateway.config.path), "--domain", "example.com",
                       "--provider", "provider.example", "--service", "forward")
    assert unconfirmed.returncode != 0 and f"example.com. REDIR301 {TARGET}" in unconfirmed.stderr
    reverted = dcgw("revert", "--config", str(gateway.config.path), "--domain", "example.com",
                    "--provider", "provider.example", "--service", "forward", "--yes")
    assert reverted.returncode == 0, reverted.stderr
    apex = zone_records(gateway)
    assert "A 203.0.113.80" not in apex and "AAAA 2001:db8::80" not in apex
    with httpx.Client(base_url=served, follow_redirects=False) as http:
        assert http.get("/", headers={"Host": "example.com"}).status_code != 301
        assert http.get("/redirects/allowed", params={"domain": "example.com"}).status_code == 404


def test_sync_flow_applies_a_redirect_and_revert_removes_it(gateway):
    with gateway.client() as client:
        assert sign_in(client).status_code == 303
        page = client.get(SYNC_APPLY.format(service="moved"), params={"domain": "example.com"})
        assert page.status_code == 200, page.text
        assert "REDIR302" in page.text and "http://shop.example.net/" in page.text
        done = client.post("/v2/sync/consent", data=consent_form(page.text))
        assert done.status_code == 200, done.text
        assert zone_records(gateway, "shop") == {"A 203.0.113.80", "AAAA 2001:db8::80"}
        redirected = client.get("/", headers={"Host": "shop.example.com"})
        assert redirected.status_code == 302 and redirected.headers["location"] == "http://shop.example.net/"
        assert client.get("/redirects/allowed", params={"domain": "shop.example.com"}).status_code == 200

    assert revert_through_api(gateway, "moved").status_code == 204
    assert zone_records(gateway, "shop") == set()
    with gateway.client() as client:
        assert client.get("/", headers={"Host": "shop.example.com"}).status_code == 200  # the gateway's home
        assert client.get("/redirects/allowed", params={"domain": "shop.example.com"}).status_code == 404


def test_a_second_replica_on_the_same_database_answers_alike(gateway, tmp_path):
    with gateway.client() as client:
        sign_in(client)
        page = client.get(SYNC_APPLY.format(service="moved"), params={"domain": "example.com"})
        client.post("/v2/sync/consent", data=consent_form(page.text))
    from gateway.web.app import create_app

    replica = create_app(gateway.config)
    from starlette.testclient import TestClient
    with TestClient(replica, base_url="https://dc.test", follow_redirects=False) as other:
        answer = other.get("/", headers={"Host": "shop.example.com"})
    assert answer.status_code == 302 and answer.headers["location"] == "http://shop.example.net/"


@pytest.mark.parametrize("target", [
    "javascript:alert(1)", "ftp://files.example.net/", "https://www.example.net/a b", "//evil.example/",
    "https://user@evil.example/", "https://www.example.net/\r\nSet-Cookie: x=1", "https:///no-host",
])
def test_a_bad_target_is_refused_when_rendered_and_nothing_is_written(gateway, target):
    before = gateway.zone_text()
    with gateway.client() as client:
        sign_in(client)
        response = client.get(SYNC_APPLY.format(service="forward"),
                              params={"domain": "example.com", "target": target, "token": "t",
                                      "redirect_uri": "https://provider.example/back"})
    assert response.status_code in (302, 303, 400), response.text
    text = response.headers.get("location", "") + response.text
    assert "target" in text
    assert gateway.zone_text() == before
    assert gateway.app.state.runtime.store.web_redirect("example.com") is None


def test_a_redirect_conflicts_like_the_address_records_it_writes(gateway):
    with gateway.client() as client:
        sign_in(client)
        page = client.get(SYNC_APPLY.format(service="forward"),
                          params={"domain": "example.com", "target": TARGET, "token": "t", "groupId": "redirect"})
    assert page.status_code == 200, page.text
    # example.com's apex holds A 192.0.2.1: the consent page shows it going.
    assert "192.0.2.1" in page.text and "203.0.113.80" in page.text


def test_redirect_addresses_are_checked_in_the_config(tmp_path):
    from gateway.infra.config import ConfigError, load_config

    config = tmp_path / "bad.toml"
    config.write_text('[redirects]\naddresses = ["not-an-address"]\n')
    with pytest.raises(ConfigError, match=r"redirects.addresses\[0\]: 'not-an-address' is not an IP address"):
        load_config(config)
    config.write_text("[redirects]\naddresses = []\n")
    with pytest.raises(ConfigError, match="redirects.addresses: must list at least one"):
        load_config(config)


def apply_through_sync(gateway, client, service: str, **params) -> None:
    page = client.get(SYNC_APPLY.format(service=service), params={"domain": "example.com", **params})
    assert page.status_code == 200, page.text
    done = client.post("/v2/sync/consent", data=consent_form(page.text))
    assert done.status_code == 200, done.text


def test_groups_add_up_and_a_new_target_replaces_the_old_one(gateway):
    with gateway.client() as client:
        sign_in(client)
        apply_through_sync(gateway, client, "forward", token="t1", groupId="web")
        apply_through_sync(gateway, client, "forward", target="https://first.example.net/", groupId="redirect")
        assert client.get("/", headers={"Host": "example.com"}).headers["location"] == "https://first.example.net/"
        apply_through_sync(gateway, client, "forward", target="https://second.example.net/", groupId="redirect")
        assert client.get("/", headers={"Host": "example.com"}).headers["location"] == "https://second.example.net/"
    (instance,) = gateway.app.state.runtime.store.instances("example.com")
    assert [row["redirect"] for row in instance.records if "redirect" in row] == ["https://second.example.net/"]
    assert "www 600 IN CNAME sites.provider.example." in gateway.zone_text()  # the web group stays

    assert revert_through_api(gateway, "forward").status_code == 204
    assert "203.0.113.80" not in gateway.zone_text() and "sites.provider.example" not in gateway.zone_text()
    with gateway.client() as client:
        assert client.get("/", headers={"Host": "example.com"}).status_code == 200
