"""APEXCNAME that works: PowerDNS's native ALIAS on a real pdns_server (which expands it
through a loopback BIND as its resolver), and flattened to A/AAAA on BIND over RFC 2136,
followed by `dcgw aliases refresh` after the target's addresses change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from backends.powerdns import PowerDNSBackend
from gateway.apply.extensions import AddressResolver, GatewayExtensions
from gateway.apply.instances import apply_instance, revert_instance
from gateway.engine.render import ApplyContext
from gateway.engine.template import parse_template
from gateway.infra.config import DnsSettings
from gateway.state import StateStore
from tests.faults import LossyProxy, http_method
from tests.servers.bind import BindServer
from tests.servers.pdns import pdns_server

ROOT = Path(__file__).resolve().parents[1]
APEX = {
    "providerId": "provider.example", "providerName": "Example Hosting", "serviceId": "apex",
    "serviceName": "Website at the apex", "version": 1,
    "records": [
        {"type": "APEXCNAME", "host": "@", "pointsTo": "%target%", "ttl": 600},
        {"type": "CNAME", "host": "www", "pointsTo": "%target%", "ttl": 600},
    ],
}


def addresses(rrset) -> set[str]:
    return {rdata.to_text() for rdata in rrset} if rrset is not None else set()


@pytest.fixture
def target(bind_server: BindServer) -> dns.name.Name:
    """edge.<a BIND zone>: the name the alias points at, with one A and one AAAA record."""
    zone = bind_server.fresh_zone()
    bind_server.update(zone, "edge", 300, "A", "192.0.2.77")
    bind_server.update(zone, "edge", 300, "AAAA", "2001:db8::77")
    return dns.name.from_text("edge", zone)


# --- PowerDNS: ALIAS ----------------------------------------------------------------------------


@pytest.fixture
def alias_pdns(bind_server: BindServer):
    """A pdns_server of its own that expands ALIAS through the test's BIND (loopback)."""
    with pdns_server({"resolver": f"127.0.0.1:{bind_server.port}", "expand-alias": "yes"}) as server:
        yield server


def test_powerdns_writes_an_alias_and_serves_the_target_addresses(alias_pdns, target, tmp_path):
    zone = alias_pdns.new_zone("alias")
    alias_pdns.replace(dns.rrset.from_text(zone, 3600, "IN", "A", "198.51.100.1"), zone)
    backend = PowerDNSBackend("pdns", alias_pdns.backend_options())
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    template = parse_template(APEX)
    context = ApplyContext(zone.to_text(omit_final_dot=True), params={"target": target.to_text(omit_final_dot=True)})
    try:
        result = apply_instance(store, backend, template, context, instance_id=None, actor="user:alice", force=True)
        assert result.instance is not None
        assert [c.reason for c in result.plan.conflicts] == ["the new APEXCNAME at @ replaces the A records there"]

        rrsets = {(r["name"], r["type"]): r for r in alias_pdns.rrsets(zone)}
        alias = rrsets[(zone.to_text(), "ALIAS")]
        assert [r["content"] for r in alias["records"]] == [target.to_text()] and alias["ttl"] == 600
        assert (zone.to_text(), "A") not in rrsets  # the address the alias stands in for is gone
        # PowerDNS answers for the apex with the target's addresses, looked up through BIND.
        assert addresses(alias_pdns.query(zone, dns.rdatatype.A)) == {"192.0.2.77"}
        assert addresses(alias_pdns.query(zone, dns.rdatatype.AAAA)) == {"2001:db8::77"}
        (instance,) = store.instances(context.domain)
        assert {"name": zone.to_text(), "extension": "APEXCNAME",
                "fields": {"pointsTo": target.to_text(), "ttl": 600}} in instance.records

        again = apply_instance(store, backend, template, context, instance_id=None, actor="user:alice")
        assert again.changes == [] and again.plan.extension_changes == []

        revert_instance(store, backend, zone, store.instances(context.domain)[0].id, "user:alice")
        remaining = {(r["name"], r["type"]) for r in alias_pdns.rrsets(zone)}
        assert (zone.to_text(), "ALIAS") not in remaining and (f"www.{zone}", "CNAME") not in remaining
    finally:
        backend.close()
        store.close()


def test_powerdns_alias_changed_by_hand_is_left_by_revert(alias_pdns, target, tmp_path):
    zone = alias_pdns.new_zone("alias")
    backend = PowerDNSBackend("pdns", alias_pdns.backend_options())
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    context = ApplyContext(zone.to_text(omit_final_dot=True), params={"target": target.to_text(omit_final_dot=True)})
    try:
        apply_instance(store, backend, parse_template(APEX), context, instance_id=None, actor="user:alice")
        alias_pdns.patch(zone, [{"name": zone.to_text(), "type": "ALIAS", "ttl": 600, "changetype": "REPLACE",
                                 "records": [{"content": "elsewhere.example.net.", "disabled": False}]}])
        revert_instance(store, backend, zone, store.instances(context.domain)[0].id, "user:alice")
        alias = [r for r in alias_pdns.rrsets(zone) if r["type"] == "ALIAS"]
        assert [r["content"] for a in alias for r in a["records"]] == ["elsewhere.example.net."]
    finally:
        backend.close()
        store.close()


# --- BIND over RFC 2136: flattened --------------------------------------------------------------


def flattening_gateway(tmp_path: Path, bind_server: BindServer) -> Path:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "provider.example.apex.json").write_text(json.dumps(APEX))
    options = bind_server.backend_options(apex_alias="flatten")
    backend = "".join(f"{key} = {json.dumps(value)}\n" for key, value in options.items())
    config = tmp_path / "gateway.toml"
    config.write_text(f"""\
[gateway]
templates = "templates"
[dns]
nameservers = ["127.0.0.1"]
port = {bind_server.port}
timeout = 5
[database]
url = "sqlite:///state.sqlite"
[[backends]]
name = "bind"
driver = "rfc2136"
{backend}""")
    return config


def dcgw(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def test_bind_gets_the_flattened_addresses_and_refresh_follows_the_target(bind_server, bind_zone, target,
                                                                         tmp_path):
    config = flattening_gateway(tmp_path, bind_server)
    domain = bind_zone.to_text(omit_final_dot=True)
    bind_server.update(bind_zone, "@", 3600, "A", "198.51.100.1")
    applied = dcgw("apply", "--config", str(config), "--domain", domain,
                   "--template", str(tmp_path / "templates" / "provider.example.apex.json"),
                   "--param", f"target={target.to_text(omit_final_dot=True)}", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert addresses(bind_server.rrset(bind_zone, "A")) == {"192.0.2.77"}
    assert addresses(bind_server.rrset(bind_zone, "AAAA")) == {"2001:db8::77"}
    assert bind_server.rrset(bind_zone, "A").ttl == 600

    unchanged = dcgw("aliases", "refresh", "--config", str(config))
    assert unchanged.returncode == 0, unchanged.stderr
    assert unchanged.stdout.startswith(f"unchanged: {domain} provider.example/apex")

    # The target moves: a new IPv4 address, and no IPv6 any more.
    bind_server.update(target.parent(), "edge", 300, "A", "192.0.2.78", "192.0.2.79")
    bind_server.update(target.parent(), "edge", 300, "AAAA")
    refreshed = dcgw("aliases", "refresh", "--config", str(config), "--domain", domain)
    assert refreshed.returncode == 0, refreshed.stderr
    assert refreshed.stdout.startswith(f"refreshed: {domain} provider.example/apex"), refreshed.stdout
    assert addresses(bind_server.rrset(bind_zone, "A")) == {"192.0.2.78", "192.0.2.79"}
    assert bind_server.rrset(bind_zone, "AAAA") is None
    assert bind_server.rrset(f"www.{bind_zone}", "CNAME") is not None  # the rest of the instance stays

    again = dcgw("aliases", "refresh", "--config", str(config), "--domain", domain)
    assert again.returncode == 0 and again.stdout.startswith("unchanged:"), again.stdout


def test_refresh_leaves_an_address_changed_by_hand_and_says_so(bind_server, bind_zone, target, tmp_path):
    config = flattening_gateway(tmp_path, bind_server)
    domain = bind_zone.to_text(omit_final_dot=True)
    applied = dcgw("apply", "--config", str(config), "--domain", domain,
                   "--template", str(tmp_path / "templates" / "provider.example.apex.json"),
                   "--param", f"target={target.to_text(omit_final_dot=True)}", "--yes")
    assert applied.returncode == 0, applied.stderr
    bind_server.update(bind_zone, "@", 600, "A", "203.0.113.9")  # the customer took the apex back
    bind_server.update(target.parent(), "edge", 300, "A", "192.0.2.78")
    refreshed = dcgw("aliases", "refresh", "--config", str(config))
    assert refreshed.returncode == 1 and refreshed.stdout.startswith("failed:"), refreshed.stdout
    assert addresses(bind_server.rrset(bind_zone, "A")) == {"203.0.113.9"}


def test_an_alias_whose_target_does_not_resolve_is_refused_and_nothing_written(bind_server, bind_zone, tmp_path):
    config = flattening_gateway(tmp_path, bind_server)
    domain = bind_zone.to_text(omit_final_dot=True)
    missing = f"nothing-here.{bind_zone.to_text(omit_final_dot=True)}"
    applied = dcgw("apply", "--config", str(config), "--domain", domain,
                   "--template", str(tmp_path / "templates" / "provider.example.apex.json"),
                   "--param", f"target={missing}", "--yes")
    assert applied.returncode == 2, applied.stderr
    assert f"APEXCNAME target {missing}." in applied.stderr
    assert bind_server.rrset(f"www.{bind_zone}", "CNAME") is None


def test_resolver_reads_through_the_configured_server(bind_server, target):
    resolver = AddressResolver(DnsSettings(nameservers=("127.0.0.1",), port=bind_server.port, timeout=5))
    assert {r.to_text() for r in resolver.addresses(target)} == {"192.0.2.77", "2001:db8::77"}
    assert GatewayExtensions(resolver=resolver).why_unsupported(
        PowerDNSBackend("p", {"api_url": "http://127.0.0.1:1", "api_key": "k"}), "APEXCNAME") is None


def test_a_lost_answer_to_an_alias_write_is_settled_from_what_powerdns_holds(pdns, tmp_path):
    """The extension change travels in the write-ahead intent: the answer lost, the gateway
    reads the ALIAS back and records the instance; a revert whose answer is lost likewise."""
    zone = pdns.new_zone("lossy-alias")
    proxy = LossyProxy(int(pdns.api_url.rsplit(":", 1)[1]), http_method("PATCH"))
    through = PowerDNSBackend("pdns", pdns.backend_options(api_url=proxy.url, timeout=5))
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    context = ApplyContext(zone.to_text(omit_final_dot=True), params={"target": "edge.example.net"})
    try:
        proxy.lose_next_answers(1)
        result = apply_instance(store, through, parse_template(APEX), context, instance_id=None, actor="user:alice")
        assert proxy.lost == 1 and result.instance is not None
        assert store.intents(status=None) == []
        assert [r["records"][0]["content"] for r in pdns.rrsets(zone) if r["type"] == "ALIAS"] == ["edge.example.net."]

        proxy.lose_next_answers(1)
        revert_instance(store, through, zone, result.instance, "user:alice")
        assert proxy.lost == 2 and store.intents(status=None) == [] and store.instances(context.domain) == []
        assert [r for r in pdns.rrsets(zone) if r["type"] == "ALIAS"] == []
    finally:
        proxy.close()
        through.close()
        store.close()
