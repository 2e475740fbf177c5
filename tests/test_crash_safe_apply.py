"""DNS and the state store agree after any single fault, against the real servers.

Each test breaks one thing between the gateway and a server: the backend's answer lost
after it committed (a loopback proxy that forwards the write and drops the answer), the
backend killed right after a write, the state database locked or stopped. After the
gateway settles, what each host serves equals its recorded instance, and a retry and a
revert do what they say.
"""

from __future__ import annotations

import os
import subprocess

import dns.name
import dns.rdatatype
import pytest
from sqlalchemy import create_engine, text

from backends.base import BackendError
from backends.powerdns import PowerDNSBackend
from backends.rfc2136 import RFC2136Backend
from backends.route53 import Route53Backend
from backends.zonefile import ZoneFileBackend
from gateway.apply.instances import apply_instance, instance_differences, revert_instance
from gateway.apply.intents import StateUnavailable, settle_zone
from gateway.engine.render import ApplyContext
from gateway.state import StateStore
from tests.engine_helpers import make_template
from tests.faults import LossyProxy, dns_update, http_method
from tests.servers.bind import BindServer, _wait_for_zones, start_bind
from tests.servers.common import stop, wait_for_port
from tests.servers.pdns import PdnsServer, pdns_server
from tests.servers.postgres import postgres_server

pytestmark = pytest.mark.servers

RECORDS = [{"type": "A", "host": "@", "pointsTo": "%ip%", "ttl": 300},
           {"type": "TXT", "host": "@", "data": "site=%ip%", "ttl": 300}]
TEMPLATE = make_template(RECORDS)


@pytest.fixture
def store(tmp_path):
    opened = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}", timeout=1)
    yield opened
    opened.close()


def apply(store, backend, zone, sub: str, ip: str = "192.0.2.10"):
    context = ApplyContext(zone.to_text(omit_final_dot=True), sub, {"ip": ip})
    return apply_instance(store, backend, TEMPLATE, context, instance_id=None, actor="client:provider.example")


def addresses(backend, zone, sub: str) -> set[str]:
    name = dns.name.from_text(sub, zone)
    return {rd.to_text() for rrset in backend.read(zone, {name}, ()) if rrset.rdtype == dns.rdatatype.A
            for rd in rrset}


def assert_dns_equals_state(store, backend, zone) -> None:
    domain = zone.to_text(omit_final_dot=True)
    assert store.intents(status=None) == [], "a write is still pending or flagged"
    for instance in store.instances(domain):
        assert instance_differences(instance, backend, zone) == [], instance.records


# --- the backend's answer lost after it committed --------------------------------------


@pytest.fixture(params=["powerdns", "rfc2136", "route53"])
def lossy(request, tmp_path):
    """(backend through a proxy that can lose answers, the same backend direct, zone, proxy)."""
    if request.param == "powerdns":
        pdns: PdnsServer = request.getfixturevalue("pdns")
        zone = pdns.new_zone("lossy")
        proxy = LossyProxy(int(pdns.api_url.rsplit(":", 1)[1]), http_method("PATCH"))
        through = PowerDNSBackend("pdns", pdns.backend_options(api_url=proxy.url, timeout=5))
        direct = PowerDNSBackend("pdns", pdns.backend_options())
    elif request.param == "rfc2136":
        bind: BindServer = request.getfixturevalue("bind_server")
        zone = bind.fresh_zone()
        proxy = LossyProxy(bind.port, dns_update)
        through = RFC2136Backend("bind", bind.backend_options(port=proxy.port, timeout=5))
        direct = RFC2136Backend("bind", bind.backend_options())
    else:
        moto = request.getfixturevalue("moto_server")
        request.getfixturevalue("aws_test_credentials")
        zone, _ = moto.create_zone()
        port = int(moto.endpoint_url.rsplit(":", 1)[1])
        proxy = LossyProxy(port, http_method("POST", "/rrset"))
        through = Route53Backend("r53", moto.backend_options(endpoint_url=proxy.url))
        direct = Route53Backend("r53", moto.backend_options())
    yield through, direct, zone, proxy
    proxy.close()
    through.close()
    direct.close()


def test_a_lost_answer_after_the_write_is_settled_as_applied(store, lossy):
    through, direct, zone, proxy = lossy
    proxy.lose_next_answers(1)
    result = apply(store, through, zone, "www")
    assert proxy.lost == 1
    assert result.instance is not None, "the write reached DNS, so the apply succeeded"
    assert addresses(direct, zone, "www") == {"192.0.2.10"}
    assert_dns_equals_state(store, direct, zone)
    # A retry is a re-apply of the recorded instance: no conflict with its own records.
    again = apply(store, through, zone, "www", ip="192.0.2.11")
    assert again.plan.conflicts == [] and addresses(direct, zone, "www") == {"192.0.2.11"}
    revert_instance(store, through, zone, again.instance, "alice")
    assert addresses(direct, zone, "www") == set()
    assert store.instances(zone.to_text(omit_final_dot=True)) == []


def test_every_lost_answer_in_a_burst_is_settled(store, lossy):
    through, direct, zone, proxy = lossy
    for index in range(8):
        proxy.lose_next_answers(1)
        apply(store, through, zone, f"h{index}")
    assert proxy.lost == 8
    assert len(store.instances(zone.to_text(omit_final_dot=True))) == 8
    assert_dns_equals_state(store, direct, zone)


# --- the backend killed right after a write --------------------------------------------


@pytest.fixture
def own_pdns():
    with pdns_server() as server:
        yield server


def test_powerdns_killed_after_a_write_is_settled_when_it_is_back(store, own_pdns):
    zone = own_pdns.new_zone("killed")
    proxy = LossyProxy(int(own_pdns.api_url.rsplit(":", 1)[1]), http_method("PATCH"))
    backend = PowerDNSBackend("pdns", own_pdns.backend_options(api_url=proxy.url, timeout=3))
    try:
        proxy.lose_next_answers(1, then=own_pdns.kill)
        with pytest.raises(BackendError, match="cannot be checked yet"):
            apply(store, backend, zone, "www")
        [intent] = store.intents()
        assert store.instances(zone.to_text(omit_final_dot=True)) == []
        # Before the server is back, another apply to the zone is refused: it cannot settle first.
        with pytest.raises(BackendError):
            apply(store, backend, zone, "other")
        own_pdns.restart()
        apply(store, backend, zone, "other")  # settles the first write, then applies
        hosts = sorted(i.host for i in store.instances(zone.to_text(omit_final_dot=True)))
        assert hosts == ["other", "www"]
        assert_dns_equals_state(store, backend, zone)
    finally:
        proxy.close()
        backend.close()


def test_named_killed_after_an_update_is_settled_when_it_is_back(store, tmp_path):
    work = tmp_path / "named"
    work.mkdir()
    bind, process = start_bind(work, zone_count=1)
    zone = bind.zones[0]
    processes = [process]
    proxy = LossyProxy(bind.port, dns_update)
    backend = RFC2136Backend("bind", bind.backend_options(port=proxy.port, timeout=3))
    try:
        proxy.lose_next_answers(1, then=lambda: (processes[-1].kill(), processes[-1].wait()))
        with pytest.raises(BackendError):
            apply(store, backend, zone, "www")
        assert len(store.intents()) == 1
        processes.append(subprocess.Popen(process.args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        wait_for_port(bind.port, processes[-1], timeout=60)
        _wait_for_zones(bind, processes[-1], work / "named.log")
        settle_zone(store, backend, zone)
        [instance] = store.instances(zone.to_text(omit_final_dot=True))
        assert instance.host == "www"
        assert addresses(backend, zone, "www") == {"192.0.2.10"}, "named lost its journal"
        assert_dns_equals_state(store, backend, zone)
    finally:
        proxy.close()
        for running in processes:
            stop(running)


# --- the state store locked or stopped -------------------------------------------------


def zone_file_backend(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "example.com.zone").write_text(
        "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\n"
        "ns1 IN A 192.0.2.53\n")
    return ZoneFileBackend("files", {"directory": str(zones)}), zones / "example.com.zone"


def test_a_locked_sqlite_database_writes_nothing_and_says_so(store, tmp_path):
    backend, zone_file = zone_file_backend(tmp_path)
    before = zone_file.read_bytes()
    blocker = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}", isolation_level=None)
    with blocker.connect() as connection:
        connection.execute(text("BEGIN IMMEDIATE"))  # another writer holds the database
        with pytest.raises(StateUnavailable, match="nothing was changed"):
            apply(store, backend, dns.name.from_text("example.com"), "www")
        connection.execute(text("ROLLBACK"))
    blocker.dispose()
    assert zone_file.read_bytes() == before
    assert store.intents(status=None) == [] and store.instances() == []
    apply(store, backend, dns.name.from_text("example.com"), "www")
    assert "192.0.2.10" in zone_file.read_text()


class StoppingBackend(ZoneFileBackend):
    """A zone-file backend that stops the state database right after it has written."""

    stop = None

    def apply(self, zone, changes):
        super().apply(zone, changes)
        if self.stop is not None:
            self.stop()


def test_postgresql_stopped_before_or_after_the_write(tmp_path):
    with postgres_server() as cluster:
        store = StateStore.open(cluster.url, timeout=2)
        backend, zone_file = zone_file_backend(tmp_path)
        backend = StoppingBackend("files", {"directory": str(zone_file.parent)})
        zone = dns.name.from_text("example.com")
        try:
            # Stopped before the apply: nothing is written to DNS.
            cluster.stop()
            before = zone_file.read_bytes()
            with pytest.raises(StateUnavailable):
                apply(store, backend, zone, "www")
            assert zone_file.read_bytes() == before
            cluster.start()
            # Stopped after the write, before the instance is recorded: the intent, committed
            # first, says what was written, and the next apply records it.
            backend.stop = cluster.stop
            with pytest.raises(StateUnavailable):
                apply(store, backend, zone, "www")
            backend.stop = None
            assert "192.0.2.10" in zone_file.read_text()
            cluster.start()
            assert len(store.intents()) == 1 and store.instances() == []
            apply(store, backend, zone, "shop")
            assert sorted(i.host for i in store.instances()) == ["shop", "www"]
            assert_dns_equals_state(store, backend, zone)
        finally:
            store.close()


# --- the zone-file backend on a read-only or full file system ---------------------------


def _mount_tmpfs(path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir(exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("problem", ["read-only", "full"])
def test_a_zone_directory_that_cannot_be_written_is_a_clean_failure(store, tmp_path, problem):
    zones = tmp_path / "zones"
    if not _mount_tmpfs(zones, "size=1m"):
        pytest.skip("needs root and tmpfs mounts to make a read-only or full file system")
    try:
        (zones / "example.com.zone").write_text(
            "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\n")
        if problem == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(zones)], check=True)
        else:
            subprocess.run(["dd", "if=/dev/zero", f"of={zones / 'filler'}", "bs=4k", "count=1000"],
                           capture_output=True)
        backend = ZoneFileBackend("files", {"directory": str(zones)})
        before = (zones / "example.com.zone").read_bytes()
        with pytest.raises(BackendError) as failure:
            apply(store, backend, dns.name.from_text("example.com"), "www")
        assert not isinstance(failure.value, StateUnavailable)
        assert (zones / "example.com.zone").read_bytes() == before
        assert store.intents(status=None) == [] and store.instances() == []
    finally:
        subprocess.run(["umount", "-l", str(zones)], capture_output=True)
