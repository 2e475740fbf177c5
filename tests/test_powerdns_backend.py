"""The powerdns backend against a real pdns_server: the conformance kit, then what is
particular to PowerDNS (comments, disabled records, its error messages, exact reads)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from backends.base import BackendError, ConfigError, ExtensionRecord, RRsetChange, ZoneChanged
from backends.powerdns import PowerDNSBackend
from backends.records import same_rrset
from backends.testing import LONG_TXT, BackendConformance, conformance_template, rrset_from_text
from gateway.apply.pipeline import execute_apply, prepare_apply
from gateway.engine.render import ApplyContext
from gateway.infra.config import load_config
from gateway.infra.registry import load_backend
from gateway.state import StateStore
from tests.servers.common import free_port
from tests.servers.pdns import CountingTransport, PdnsServer, replace_entry
from tests.state_helpers import database_url  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.servers


class TestPowerDNSConformance(BackendConformance):
    @pytest.fixture
    def backend_under_test(self, pdns: PdnsServer):
        self.pdns = pdns
        self.transport = CountingTransport()
        backend = PowerDNSBackend("pdns", pdns.backend_options(), transport=self.transport)
        zone = pdns.new_zone("kit")
        yield backend, zone
        backend.close()
        pdns.delete_zone(zone)

    def served(self, backend, zone, name, rdtype):
        return self.pdns.query(name, rdtype)

    def mutate_behind_back(self, backend, zone, rrset):
        self.pdns.replace(rrset, zone)

    def break_next_apply(self, backend, zone):
        # Last in the PATCH, so PowerDNS has already replaced the valid RRsets inside its
        # transaction when it meets the record it refuses.
        broken = {"name": f"broken.{zone}", "type": "A", "ttl": 300, "changetype": "REPLACE",
                  "records": [{"content": "not-an-address", "disabled": False}]}
        self.transport.tamper_next_patch(lambda body: body["rrsets"].append(broken))

    def round_trips(self, backend):
        return len(self.transport.requests)

    def served_extension(self, backend, zone, name, rtype):
        # The ALIAS as the API lists the zone, read by another client of the server.
        for rrset in self.pdns.rrsets(zone):
            if rrset["type"] == "ALIAS" and rrset["name"] == name.to_text():
                (record,) = rrset["records"]
                return ExtensionRecord.of(rtype, name, {"pointsTo": record["content"], "ttl": rrset["ttl"]})
        return None

    def bulk_load(self, backend, zone, rrsets):
        self.pdns.patch(zone, [replace_entry(r, zone) for r in rrsets])


# -- PowerDNS specifics --------------------------------------------------------------------


@pytest.fixture
def zone(pdns: PdnsServer):
    zone = pdns.new_zone()
    yield zone
    pdns.delete_zone(zone)


@pytest.fixture
def transport() -> CountingTransport:
    return CountingTransport()


@pytest.fixture
def backend(pdns: PdnsServer, transport: CountingTransport):
    backend = PowerDNSBackend("pdns", pdns.backend_options(), transport=transport)
    yield backend
    backend.close()


def apply_template(backend: PowerDNSBackend, zone: dns.name.Name, records: list[dict]) -> bool:
    template = conformance_template(records, service_id="specifics")
    return execute_apply(prepare_apply(backend, template, ApplyContext(domain=zone.to_text(omit_final_dot=True))))


def listing(pdns: PdnsServer, zone: dns.name.Name) -> dict[tuple[str, str], dict]:
    """The zone as the API lists it, by (name, type), without the SOA (its serial moves)."""
    return {(r["name"], r["type"]): r for r in pdns.rrsets(zone) if r["type"] != "SOA"}


def test_comments_and_disabled_records_survive_an_apply(pdns, zone, backend):
    comment = {"content": "managed by hand", "account": "ops"}
    pdns.patch(zone, [
        {"name": f"www.{zone}", "type": "A", "ttl": 600, "changetype": "REPLACE", "comments": [comment],
         "records": [{"content": "192.0.2.1", "disabled": False}, {"content": "192.0.2.2", "disabled": True}]},
        {"name": f"www.{zone}", "type": "TXT", "ttl": 600, "changetype": "REPLACE", "comments": [comment],
         "records": [{"content": '"old"', "disabled": False}, {"content": '"parked"', "disabled": True}]},
        {"name": f"www.{zone}", "type": "MX", "ttl": 600, "changetype": "REPLACE", "comments": [comment],
         "records": [{"content": "10 mx.example.net.", "disabled": False}]},
    ])
    before = listing(pdns, zone)

    # Disabled records are not served, so the planner never sees them.
    read = {r.rdtype: r for r in backend.read(zone, [dns.name.from_text("www", zone)])}
    assert [r.to_text() for r in read[dns.rdatatype.A]] == ["192.0.2.1"]

    assert apply_template(backend, zone, [
        {"type": "A", "host": "www", "pointsTo": "192.0.2.50", "ttl": 600},
        {"type": "TXT", "host": "www", "data": "new", "ttl": 600, "txtConflictMatchingMode": "All"},
    ])
    after = listing(pdns, zone)
    a_rrset, txt_rrset = after[f"www.{zone}", "A"], after[f"www.{zone}", "TXT"]
    assert sorted((r["content"], r["disabled"]) for r in a_rrset["records"]) == [
        ("192.0.2.2", True), ("192.0.2.50", False)]
    assert sorted((r["content"], r["disabled"]) for r in txt_rrset["records"]) == [
        ('"new"', False), ('"parked"', True)]
    for rrset in (a_rrset, txt_rrset, after[f"www.{zone}", "MX"]):
        assert [(c["content"], c["account"]) for c in rrset["comments"]] == [("managed by hand", "ops")]
    # The RRset the plan did not touch is exactly as it was, comments included.
    assert after[f"www.{zone}", "MX"] == before[f"www.{zone}", "MX"]
    assert pdns.query(dns.name.from_text("www", zone), dns.rdatatype.A).to_text().split()[-1] == "192.0.2.50"


def test_an_rrset_the_plan_removes_keeps_its_disabled_records(pdns, zone, backend):
    pdns.patch(zone, [{"name": f"www.{zone}", "type": "A", "ttl": 600, "changetype": "REPLACE",
                       "comments": [{"content": "parked address", "account": ""}],
                       "records": [{"content": "192.0.2.1", "disabled": False},
                                   {"content": "192.0.2.2", "disabled": True}]},
                      {"name": f"www.{zone}", "type": "TXT", "ttl": 600, "changetype": "REPLACE",
                       "comments": [{"content": "goes with its records", "account": ""}],
                       "records": [{"content": '"old"', "disabled": False}]}])
    # A CNAME at www replaces every other record there.
    assert apply_template(backend, zone, [{"type": "CNAME", "host": "www", "pointsTo": "target.example.net",
                                           "ttl": 600}])
    after = listing(pdns, zone)
    assert [(r["content"], r["disabled"]) for r in after[f"www.{zone}", "A"]["records"]] == [("192.0.2.2", True)]
    assert [c["content"] for c in after[f"www.{zone}", "A"]["comments"]] == ["parked address"]
    assert after[f"www.{zone}", "CNAME"]["records"] == [{"content": "target.example.net.", "disabled": False}]
    assert (f"www.{zone}", "TXT") not in after  # nothing left in it: deleted, comments too
    assert backend.read(zone, [dns.name.from_text("www", zone)])[0].rdtype == dns.rdatatype.CNAME


def test_a_cname_and_other_records_replace_each_other(pdns, zone, backend):
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, "www", 600, "CNAME", ["old.example.net."]), zone)])
    assert apply_template(backend, zone, [{"type": "A", "host": "www", "pointsTo": "192.0.2.5", "ttl": 600}])
    assert set(listing(pdns, zone)) == {(f"{zone}", "NS"), (f"www.{zone}", "A")}
    assert apply_template(backend, zone, [{"type": "CNAME", "host": "www", "pointsTo": "new.example.net", "ttl": 600}])
    assert set(listing(pdns, zone)) == {(f"{zone}", "NS"), (f"www.{zone}", "CNAME")}


def test_a_disabled_record_equal_to_a_wanted_one_becomes_enabled(pdns, zone, backend):
    pdns.patch(zone, [{"name": f"www.{zone}", "type": "A", "ttl": 600, "changetype": "REPLACE",
                       "records": [{"content": "192.0.2.9", "disabled": True}]}])
    assert apply_template(backend, zone, [{"type": "A", "host": "www", "pointsTo": "192.0.2.9", "ttl": 600}])
    assert listing(pdns, zone)[f"www.{zone}", "A"]["records"] == [{"content": "192.0.2.9", "disabled": False}]


def test_an_apply_sends_only_the_changed_rrsets(pdns, zone, backend, transport):
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, f"host{i}", 300, "A", [f"192.0.2.{i}"]), zone)
                      for i in range(20)])
    before = listing(pdns, zone)
    seen: list[dict] = []
    transport.tamper_next_patch(seen.append)
    assert apply_template(backend, zone, [{"type": "A", "host": "host3", "pointsTo": "198.51.100.3", "ttl": 300}])
    assert [(r["name"], r["type"], r["changetype"]) for r in seen[0]["rrsets"]] == [(f"host3.{zone}", "A", "REPLACE")]
    after = listing(pdns, zone)
    changed = {key for key in before if before[key] != after.get(key)}
    assert changed == {(f"host3.{zone}", "A")}


def test_server_refusal_carries_its_message_and_writes_nothing(pdns, zone, backend, transport):
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, "keep", 300, "A", ["192.0.2.99"]), zone)])
    before = listing(pdns, zone)
    broken = {"name": f"broken.{zone}", "type": "A", "ttl": 300, "changetype": "REPLACE",
              "records": [{"content": "not-an-address", "disabled": False}]}
    transport.tamper_next_patch(lambda body: body["rrsets"].append(broken))
    with pytest.raises(BackendError) as failure:
        apply_template(backend, zone, [{"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 600},
                                       {"type": "TXT", "host": "new", "data": "hello", "ttl": 600}])
    message = str(failure.value)
    assert "backend 'pdns'" in message and zone.to_text(omit_final_dot=True) in message
    assert "HTTP 422" in message and "not-an-address" in message  # PowerDNS's own words
    assert listing(pdns, zone) == before


def test_zone_changed_between_prepare_and_apply_writes_nothing(pdns, zone, backend):
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, "www", 300, "A", ["192.0.2.1"]), zone)])
    template = conformance_template([{"type": "A", "host": "www", "pointsTo": "192.0.2.2", "ttl": 300},
                                     {"type": "TXT", "host": "other", "data": "x", "ttl": 300}])
    prepared = prepare_apply(backend, template, ApplyContext(domain=zone.to_text(omit_final_dot=True)))
    pdns.replace(rrset_from_text(zone, "www", 300, "A", ["192.0.2.77"]), zone)
    before = listing(pdns, zone)
    with pytest.raises(ZoneChanged, match=rf"www\.{zone}.* A changed since it was read"):
        execute_apply(prepared)
    assert listing(pdns, zone) == before


def test_a_record_disabled_by_someone_else_meanwhile_is_kept(pdns, zone, backend):
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, "www", 300, "A", ["192.0.2.1"]), zone)])
    template = conformance_template([{"type": "A", "host": "www", "pointsTo": "192.0.2.2", "ttl": 300}])
    prepared = prepare_apply(backend, template, ApplyContext(domain=zone.to_text(omit_final_dot=True)))
    # Not served, so not a change to what the plan read; but it must not be lost.
    pdns.patch(zone, [{"name": f"www.{zone}", "type": "A", "ttl": 300, "changetype": "REPLACE",
                       "records": [{"content": "192.0.2.1", "disabled": False},
                                   {"content": "203.0.113.5", "disabled": True}]}])
    assert execute_apply(prepared)
    assert sorted((r["content"], r["disabled"]) for r in listing(pdns, zone)[f"www.{zone}", "A"]["records"]) == [
        ("192.0.2.2", False), ("203.0.113.5", True)]


def test_txt_round_trips_exactly(pdns, zone, backend):
    tricky = 'quote " backslash \\ semicolon ; tab\tend'
    assert apply_template(backend, zone, [{"type": "TXT", "host": "long", "data": LONG_TXT, "ttl": 600},
                                          {"type": "TXT", "host": "tricky", "data": tricky, "ttl": 600}])
    for host, text in (("long", LONG_TXT), ("tricky", tricky)):
        name = dns.name.from_text(host, zone)
        (read,) = backend.read(zone, [name])
        served = pdns.query(name, dns.rdatatype.TXT)
        assert same_rrset(read, served)
        assert [b"".join(r.strings).decode() for r in read] == [text]
    # A long value is sent as several quoted strings of at most 255 bytes.
    content = listing(pdns, zone)[f"long.{zone}", "TXT"]["records"][0]["content"]
    assert content.startswith('"v=test1; note=\\"quoted') and content.count('" "') == 1
    # Re-applying reads back what was written: nothing to do.
    assert not apply_template(backend, zone, [{"type": "TXT", "host": "long", "data": LONG_TXT, "ttl": 600},
                                              {"type": "TXT", "host": "tricky", "data": tricky, "ttl": 600}])


def test_txt_with_one_long_string_written_by_another_client(pdns, zone, backend):
    text = "k=" + "x" * 400
    pdns.patch(zone, [{"name": f"big.{zone}", "type": "TXT", "ttl": 600, "changetype": "REPLACE",
                       "records": [{"content": f'"{text}"', "disabled": False}]}])
    (read,) = backend.read(zone, [dns.name.from_text("big", zone)])
    assert [len(s) for s in next(iter(read)).strings] == [255, 147]
    assert same_rrset(read, pdns.query(read.name, dns.rdatatype.TXT))
    # Equal by its text, however it is split: the template's identical value changes nothing.
    assert not apply_template(backend, zone, [{"type": "TXT", "host": "big", "data": text, "ttl": 600}])


def test_reads_fetch_only_the_asked_names(pdns, zone, backend, transport):
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, f"bulk-{i:05d}", 300, "A", ["192.0.2.1"]), zone)
                      for i in range(2000)])
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, "a.sub", 300, "A", ["192.0.2.1"]), zone),
                      replace_entry(rrset_from_text(zone, "sub", 300, "NS", ["ns.example.net."]), zone),
                      replace_entry(rrset_from_text(zone, "xsub", 300, "A", ["192.0.2.1"]), zone),
                      replace_entry(rrset_from_text(zone, "b.a.sub", 300, "TXT", ['"deep"']), zone),
                      replace_entry(rrset_from_text(zone, "pointer", 300, "CNAME", [f"a.sub.{zone}"]), zone)])
    www, sub = dns.name.from_text("www", zone), dns.name.from_text("sub", zone)
    found = backend.read(zone, [www, dns.name.from_text("bulk-00007", zone)], [sub])
    assert sorted((r.name.to_text(), dns.rdatatype.to_text(r.rdtype)) for r in found) == [
        (f"a.sub.{zone}", "A"), (f"b.a.sub.{zone}", "TXT"), (f"bulk-00007.{zone}", "A"), (f"sub.{zone}", "NS")]
    # One request per name and per subtree; none lists the zone.
    assert len(transport.requests) == 3
    for url in transport.requests:
        assert "rrset_name" in url.params or url.path.endswith("/search-data"), f"unscoped read: {url}"


def test_one_apply_in_a_large_zone_is_four_requests(pdns, zone, backend, transport):
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, f"bulk-{i:05d}", 300, "A", ["192.0.2.1"]), zone)
                      for i in range(10_000)])
    assert apply_template(backend, zone, [{"type": "A", "host": "probe", "pointsTo": "192.0.2.7", "ttl": 600},
                                          {"type": "TXT", "host": "probe", "data": "probe", "ttl": 600}])
    base = "/api/v1/servers/localhost"
    assert [(method, url.path, dict(url.params)) for method, url in zip(transport.methods, transport.requests)] == [
        ("GET", f"{base}/zones", {"zone": zone.to_text()}),                               # find_zone
        ("GET", f"{base}/zones/{zone}", {"rrset_name": f"probe.{zone}"}),                 # read for the plan
        ("GET", f"{base}/search-data", {"q": f"probe.{zone.to_text(omit_final_dot=True)}",  # re-read, locked
                                        "object_type": "record", "max": "10000"}),
        ("PATCH", f"{base}/zones/{zone}", {}),                                            # the write
    ]


def test_an_apply_holding_the_zone_is_two_requests_and_keeps_disabled_records(pdns, zone, backend, transport):
    pdns.patch(zone, [{"name": f"probe.{zone}", "type": "A", "ttl": 600, "changetype": "REPLACE",
                       "records": [{"content": "192.0.2.1", "disabled": False},
                                   {"content": "192.0.2.2", "disabled": True}]}])
    template = conformance_template([{"type": "A", "host": "probe", "pointsTo": "192.0.2.7", "ttl": 600},
                                     {"type": "TXT", "host": "probe", "data": "probe", "ttl": 600}])
    context = ApplyContext(domain=zone.to_text(omit_final_dot=True))
    assert backend.find_zone(zone) == zone  # looked up once, then remembered
    del transport.requests[:], transport.methods[:]

    with backend.holding(zone):
        prepared = prepare_apply(backend, template, context)
        assert [r.to_text() for r in prepared.current[0]] == ["192.0.2.1"]  # the planner sees what is served
        assert execute_apply(prepared)

    base = "/api/v1/servers/localhost"
    assert [(method, url.path) for method, url in zip(transport.methods, transport.requests)] == [
        ("GET", f"{base}/search-data"),  # the read, under the zone lock: the re-read too
        ("PATCH", f"{base}/zones/{zone}"),
    ]
    a_rrset = listing(pdns, zone)[f"probe.{zone}", "A"]
    assert sorted((r["content"], r["disabled"]) for r in a_rrset["records"]) == [
        ("192.0.2.2", True), ("192.0.2.7", False)]


def test_holding_the_zone_keeps_other_applies_out_until_the_write(pdns, zone, backend):
    other = PowerDNSBackend("pdns-2", pdns.backend_options(lock_timeout=0.3))
    try:
        with backend.holding(zone):
            assert apply_template(backend, zone, [{"type": "A", "host": "held", "pointsTo": "192.0.2.8",
                                                   "ttl": 600}])
            # Another thread (the lock is the holding thread's to take again) waits, then gives up.
            outcome: list[BaseException | None] = []

            def apply_elsewhere() -> None:
                try:
                    apply_template(other, zone, [{"type": "A", "host": "held", "pointsTo": "192.0.2.9", "ttl": 600}])
                    outcome.append(None)
                except BaseException as exc:  # noqa: BLE001  handed to the test thread
                    outcome.append(exc)

            elsewhere = threading.Thread(target=apply_elsewhere)
            elsewhere.start()
            elsewhere.join(timeout=30)
            assert isinstance(outcome[0], BackendError) and "held the zone for more than" in str(outcome[0])
        assert apply_template(other, zone, [{"type": "A", "host": "held", "pointsTo": "192.0.2.9", "ttl": 600}])
    finally:
        other.close()


def test_a_remembered_zone_is_forgotten_when_the_server_no_longer_has_it(pdns, backend, transport):
    zone = pdns.new_zone("forgotten")
    assert backend.find_zone(zone) == zone
    asked = len(transport.requests)
    assert backend.find_zone(dns.name.from_text("www", zone)) == zone
    assert len(transport.requests) == asked + 1  # www is not a zone: asked; the zone: remembered
    pdns.delete_zone(zone)
    with pytest.raises(BackendError, match="has no such zone"):
        backend.read(zone, [zone])  # HTTP 404
    assert backend.find_zone(zone) is None


def test_search_results_at_the_limit_are_refused_not_trusted(pdns, zone, transport):
    # search-data matches contents too: CNAMEs pointing at `sub` fill the results.
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, f"alias{i}", 300, "CNAME", [f"x.sub.{zone}"]), zone)
                      for i in range(3)])
    backend = PowerDNSBackend("pdns", pdns.backend_options(search_limit=3), transport=transport)
    with pytest.raises(BackendError, match="raise option 'search_limit'"):
        backend.read(zone, [], [dns.name.from_text("sub", zone)])
    backend = PowerDNSBackend("pdns", pdns.backend_options(search_limit=4), transport=transport)
    assert backend.read(zone, [], [dns.name.from_text("sub", zone)]) == []


def test_wildcard_owner_is_read_and_written_exactly(pdns, zone, backend):
    pdns.patch(zone, [replace_entry(rrset_from_text(zone, "a", 300, "A", ["192.0.2.1"]), zone)])
    assert apply_template(backend, zone, [{"type": "A", "host": "*", "pointsTo": "192.0.2.42", "ttl": 300}])
    assert not apply_template(backend, zone, [{"type": "A", "host": "*", "pointsTo": "192.0.2.42", "ttl": 300}])
    rrsets = listing(pdns, zone)
    assert rrsets[f"*.{zone}", "A"]["records"] == [{"content": "192.0.2.42", "disabled": False}]
    assert rrsets[f"a.{zone}", "A"]["records"] == [{"content": "192.0.2.1", "disabled": False}]


def test_zones_and_find_zone(pdns, backend):
    parent = pdns.new_zone("parent")
    child = dns.name.from_text("child", parent)
    pdns.create_zone(child)
    try:
        assert {parent, child} <= set(backend.zones())
        assert backend.find_zone(dns.name.from_text("www.child", parent)) == child
        assert backend.find_zone(dns.name.from_text("www", parent)) == parent
        assert backend.find_zone(dns.name.from_text("nothing-hosts-this.invalid")) is None
    finally:
        pdns.delete_zone(child)
        pdns.delete_zone(parent)


def test_missing_zone_is_a_clear_error(backend):
    missing = dns.name.from_text("never-created.test")
    with pytest.raises(BackendError, match=r"backend 'pdns': zone never-created\.test: .* has no such zone"):
        backend.read(missing, [missing])
    change = RRsetChange(missing, dns.rdatatype.A, None, rrset_from_text(missing, "@", 300, "A", ["192.0.2.1"]))
    with pytest.raises(BackendError, match="has no such zone"):
        backend.apply(missing, [change])


def test_bad_api_key_is_a_clear_error(pdns, zone):
    backend = PowerDNSBackend("pdns", pdns.backend_options(api_key="wrong-key"))
    with pytest.raises(BackendError) as failure:
        backend.read(zone, [zone])
    message = str(failure.value)
    assert "refused the API key (HTTP 401" in message and "'api_key'" in message and "backend 'pdns'" in message
    assert "wrong-key" not in message and pdns.api_key not in message


def test_unreachable_api_is_a_clear_error(zone):
    port = free_port()
    backend = PowerDNSBackend("pdns", {"api_url": f"http://127.0.0.1:{port}", "api_key": "k", "timeout": 5})
    with pytest.raises(BackendError, match=rf"PowerDNS API at http://127.0.0.1:{port} did not answer"):
        backend.zones()


def test_wrong_server_id_is_a_clear_error(pdns, zone):
    backend = PowerDNSBackend("pdns", pdns.backend_options(server_id="elsewhere"))
    with pytest.raises(BackendError, match="server 'elsewhere' .* has no such zone"):
        backend.read(zone, [zone])


def test_change_outside_the_zone_sends_nothing(zone, backend, transport):
    outside = rrset_from_text(dns.name.from_text("example.org"), "www", 300, "A", ["192.0.2.1"])
    with pytest.raises(BackendError, match="outside the zone"):
        backend.apply(zone, [RRsetChange(outside.name, outside.rdtype, None, outside)])
    assert transport.requests == []


@pytest.mark.parametrize("hostile", ["x?zone=victim.test", "a&rrset_name=b", "evil#frag", "..%2F..%2Fconfig",
                                     "a/../../servers"])
def test_hostile_names_stay_inside_their_query_parameter(pdns, zone, backend, transport, hostile):
    name = dns.name.Name((hostile.encode(),) + zone.labels)
    for attempt in (lambda: backend.find_zone(name), lambda: backend.read(zone, [name], [name])):
        try:
            attempt()
        except BackendError as refused:  # PowerDNS may refuse the name itself; nothing else may happen
            assert "HTTP 422" in str(refused) and "unsupported characters" in str(refused)
    assert transport.requests
    for url in transport.requests:
        assert url.path in ("/api/v1/servers/localhost/zones", f"/api/v1/servers/localhost/zones/{zone}",
                            "/api/v1/servers/localhost/search-data"), url
        assert not url.fragment
        assert set(url.params) <= {"zone", "rrset_name", "q", "object_type", "max"}, url
    label = dns.name.Name((hostile.encode(),)).to_text(omit_final_dot=True).lower()
    assert label in transport.requests[0].params["zone"].lower()


def test_concurrent_applies_of_one_process_never_lose_changes(pdns, zone):
    backends = [PowerDNSBackend(f"pdns{i}", pdns.backend_options()) for i in range(2)]

    def add_values(worker: int) -> None:
        for index in range(5):
            template = conformance_template([{"type": "TXT", "host": "shared", "data": f"w{worker}-{index}",
                                              "ttl": 300, "txtConflictMatchingMode": "None"}],
                                            service_id=f"w{worker}-{index}")
            # Retrying on ZoneChanged is the caller's job; the lock makes the race rare, not impossible.
            while True:
                try:
                    execute_apply(prepare_apply(backends[worker], template,
                                                ApplyContext(domain=zone.to_text(omit_final_dot=True))))
                    break
                except ZoneChanged:
                    continue

    threads = [threading.Thread(target=add_values, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    values = {r["content"] for r in listing(pdns, zone)[f"shared.{zone}", "TXT"]["records"]}
    assert values == {f'"w{w}-{i}"' for w in range(2) for i in range(5)}


def _hold_zone_lock(database_url: str, scope: str, zone_text: str, ready, release) -> None:
    """Another gateway process: it holds the zone lock of the shared state store."""
    store = StateStore.open(database_url)
    try:
        with store.zone_locks.hold(scope, dns.name.from_text(zone_text), timeout=30):
            ready.set()
            release.wait(30)
    finally:
        store.close()


def test_zone_lock_held_by_another_gateway_process_times_out_without_writing(pdns, zone, transport,
                                                                             database_url):  # noqa: F811
    store = StateStore.open(database_url)
    backend = PowerDNSBackend("pdns", pdns.backend_options(lock_timeout=0.5), transport=transport)
    backend.zone_locks = store.zone_locks  # as the gateway does at start-up
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_zone_lock,
                             args=(database_url, backend.lock_scope(), zone.to_text(), ready, release))
    holder.start()
    change = rrset_from_text(zone, "www", 300, "A", ["192.0.2.1"])
    try:
        assert ready.wait(30)
        with pytest.raises(BackendError, match="another gateway process held the zone for more than 0.5s; "
                                               "nothing was written"):
            backend.apply(zone, [RRsetChange(change.name, change.rdtype, None, change)])
        assert transport.requests == []
    finally:
        release.set()
        holder.join(30)
    backend.apply(zone, [RRsetChange(change.name, change.rdtype, None, change)])
    assert listing(pdns, zone)[f"www.{zone}", "A"]["records"] == [{"content": "192.0.2.1", "disabled": False}]
    store.close()


def test_backends_of_one_server_share_its_zone_locks(pdns):
    first = PowerDNSBackend("a", pdns.backend_options())
    second = PowerDNSBackend("b", pdns.backend_options())
    other_server = PowerDNSBackend("c", pdns.backend_options(api_url="http://127.0.0.2:8081"))
    assert first.lock_scope() == second.lock_scope() != other_server.lock_scope()


def test_lock_dir_of_earlier_versions_is_accepted_with_a_warning(pdns, caplog):
    PowerDNSBackend("pdns", pdns.backend_options(lock_dir="/nonexistent/dir"))
    assert "option 'lock_dir' is no longer used" in caplog.text


@pytest.mark.parametrize(("options", "message"), [
    ({"api_key": "k"}, "option 'api_url' is required"),
    ({"api_url": "http://127.0.0.1:8081"}, "option 'api_key' is required"),
    ({"api_url": "127.0.0.1:8081", "api_key": "k"}, "option 'api_url' must be an http:// or https:// URL"),
    ({"api_url": "ftp://127.0.0.1", "api_key": "k"}, "option 'api_url' must be an http:// or https:// URL"),
    ({"api_url": "http://127.0.0.1:8081", "api_key": ""}, "option 'api_key' is empty"),
    ({"api_url": "http://127.0.0.1:8081", "api_key": "k", "timeout": 0}, "option 'timeout' must be a positive"),
    ({"api_url": "http://127.0.0.1:8081", "api_key": "k", "timeout": "10"}, "option 'timeout' must be int or float"),
    ({"api_url": "http://127.0.0.1:8081", "api_key": "k", "search_limit": 0}, "option 'search_limit' must be"),
    ({"api_url": "http://127.0.0.1:8081", "api_key": "k", "apikey": "k"}, "unknown option 'apikey'"),
])
def test_option_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        PowerDNSBackend("pdns", options)


def test_commented_example_config_loads_a_powerdns_backend(monkeypatch):
    monkeypatch.setenv("DCGW_SESSION_SECRET", "s")
    monkeypatch.setenv("PDNS_API_KEY", "key-from-the-environment")
    [settings] = load_config(ROOT / "config" / "powerdns.toml").backends
    backend = load_backend(settings)
    assert isinstance(backend, PowerDNSBackend)
    assert (backend.api_url, backend.server_id) == ("http://127.0.0.1:8081", "localhost")
    assert backend.http.headers["X-API-Key"] == "key-from-the-environment"


def test_dcgw_apply_through_powerdns(pdns, zone, tmp_path):
    config = tmp_path / "dcgw.toml"
    config.write_text(f'[ttl]\nminimum = 300\n\n[[backends]]\nname = "pdns"\ndriver = "powerdns"\n'
                      f'api_url = "{pdns.api_url}"\napi_key = "env:PDNS_API_KEY"\n')
    domain = zone.to_text(omit_final_dot=True)
    argv = [sys.executable, "-m", "gateway.cli", "apply", "--config", str(config), "--domain", domain,
            "--template", str(ROOT / "gateway" / "examples" / "example.com.hosting.json"), "--yes",
            "--param", "var1=192.0.2.1", "--param", "var2=192.0.2.2", "--param", "var3=target.example.net",
            "--param", "var4=verified"]

    def dcgw(api_key: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                              env={**os.environ, "PDNS_API_KEY": api_key})

    refused = dcgw("wrong-key")
    assert refused.returncode == 4, refused.stderr
    assert "backend 'pdns'" in refused.stderr and "refused the API key" in refused.stderr
    applied = dcgw(pdns.api_key)
    assert applied.returncode == 0, applied.stderr
    assert f"to {domain} on backend 'pdns'" in applied.stderr
    assert pdns.query(dns.name.from_text("www", zone), dns.rdatatype.A).to_text().split()[-1] == "192.0.2.1"
    again = dcgw(pdns.api_key)
    assert again.returncode == 0 and "nothing to change (the template is already applied)" in again.stdout
