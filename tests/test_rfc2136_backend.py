"""The rfc2136 backend against a real BIND named: the conformance kit, then what is
particular to DNS UPDATE (prerequisites, TSIG, pipelined reads, zone transfers)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.update
import pytest

from backends.base import BackendError, ConfigError, RRsetChange, ZoneChanged
from backends.records import same_rrset
from backends.rfc2136 import READ_TYPES, RFC2136Backend
from backends.testing import BackendConformance, conformance_template, rrset_from_text
from gateway.apply.pipeline import execute_apply, prepare_apply
from gateway.engine.render import ApplyContext
from gateway.infra.config import load_config
from gateway.infra.registry import load_backend
from tests.servers.bind import FORBIDDEN_LABEL, BindServer

pytestmark = pytest.mark.servers
T = dns.rdatatype.RdataType
ROOT = Path(__file__).resolve().parents[1]


class TestRFC2136Conformance(BackendConformance):
    @pytest.fixture
    def backend_under_test(self, bind_server: BindServer, bind_zone):
        self.server = bind_server
        yield RFC2136Backend("bind", bind_server.backend_options()), bind_zone

    def served(self, backend, zone, name, rdtype):
        return self.server.rrset(name, rdtype)

    def mutate_behind_back(self, backend, zone, rrset):
        self.server.put(zone, rrset)

    def break_next_apply(self, backend, zone):
        # The last change of the next UPDATE is one named's update-policy denies, so the
        # server rejects the message after reading the changes before it.
        forbidden = rrset_from_text(zone, FORBIDDEN_LABEL, 300, "A", ["192.0.2.66"])
        apply = backend.apply

        def apply_with_a_denied_change(zone, changes):
            del backend.apply  # one-off: the instance's own method again
            return apply(zone, [*changes, RRsetChange(forbidden.name, forbidden.rdtype, None, forbidden)])

        backend.apply = apply_with_a_denied_change

    def round_trips(self, backend):
        return backend.round_trips


def backend_for(server: BindServer, **overrides) -> RFC2136Backend:
    return RFC2136Backend("bind", server.backend_options(**overrides))


def name_in(zone: dns.name.Name, host: str) -> dns.name.Name:
    return zone if host == "@" else dns.name.from_text(host, zone)


def create(rrset) -> RRsetChange:
    return RRsetChange(rrset.name, rrset.rdtype, None, rrset)


# -- options --------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "message"), [
    ({}, "option 'server' is required"),
    ({"server": "ns1.example.net"}, "option 'server' must be the primary's IP address, not 'ns1.example.net'"),
    ({"server": "127.0.0.1", "port": 0}, "option 'port' must be a port number (1-65535), not 0"),
    ({"server": "127.0.0.1", "port": "53"}, "option 'port' must be int, not '53'"),
    ({"server": "127.0.0.1", "timeout": 0}, "option 'timeout' must be a positive number of seconds, not 0"),
    ({"server": "127.0.0.1", "tsig_key_name": "k."}, "option 'tsig_secret' is required with tsig_key_name"),
    ({"server": "127.0.0.1", "tsig_secret": "c2VjcmV0"}, "option 'tsig_key_name' is required with tsig_secret"),
    ({"server": "127.0.0.1", "tsig_key_name": "k.", "tsig_secret": "not base64!"},
     "option 'tsig_secret' must be base64"),
    ({"server": "127.0.0.1", "tsig_key_name": "k.", "tsig_secret": "c2VjcmV0", "tsig_algorithm": "hmac-sha255"},
     "option 'tsig_algorithm' must be one of hmac-sha256"),
])
def test_invalid_options_are_named(options, message):
    with pytest.raises(ConfigError) as error:
        RFC2136Backend("bind", options)
    assert "backend 'bind'" in str(error.value) and message in str(error.value)


def test_unknown_options_are_refused():
    with pytest.raises(ConfigError, match="backend 'bind': unknown option 'tsig_secert' \\(expected one of: apex_alias, port, "):
        RFC2136Backend("bind", {"server": "127.0.0.1", "tsig_key_name": "k.", "tsig_secert": "c2VjcmV0"})


def test_commented_example_config_loads_an_rfc2136_backend(monkeypatch):
    monkeypatch.setenv("DCGW_SESSION_SECRET", "s")
    monkeypatch.setenv("DCGW_TSIG_SECRET", "c2VjcmV0LWZyb20tdGhlLWVudmlyb25tZW50")
    [settings] = load_config(ROOT / "config" / "rfc2136.toml").backends
    backend = load_backend(settings)
    assert isinstance(backend, RFC2136Backend)
    assert (backend.server, backend.port, backend.key_name, backend.key_algorithm) == (
        "127.0.0.1", 53, dns.name.from_text("dcgw-update."), "hmac-sha256")
    assert backend.keyring[backend.key_name].secret == b"secret-from-the-environment"


def test_ipv6_server_and_defaults():
    backend = RFC2136Backend("bind", {"server": "::1"})
    assert (backend.server, backend.port, backend.key_name, backend.key_algorithm) == ("::1", 53, None, "hmac-sha256")


# -- zones ----------------------------------------------------------------------------------

def test_find_zone_asks_the_server(bind_server, bind_zone):
    backend = backend_for(bind_server)
    bind_server.update(bind_zone, "sub", 300, "NS", "ns.elsewhere.example.")
    assert backend.find_zone(bind_zone) == bind_zone
    assert backend.find_zone(name_in(bind_zone, "www")) == bind_zone          # NXDOMAIN, SOA in authority
    assert backend.find_zone(name_in(bind_zone, "ns1")) == bind_zone          # NODATA
    assert backend.find_zone(name_in(bind_zone, "a.sub")) is None             # delegated elsewhere
    assert backend.find_zone(dns.name.from_text("example.org")) is None       # REFUSED: not served
    assert backend.zones() == []
    assert backend.round_trips == 5


# -- reads ----------------------------------------------------------------------------------

def test_read_returns_every_type_at_the_asked_names_only(bind_server, bind_zone):
    for host, rdtype, values in [("www", "A", ["192.0.2.1"]), ("www", "HINFO", ['"PC" "Linux"']),
                                 ("www", "LOC", ["52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"]),
                                 ("other", "A", ["192.0.2.2"]), ("@", "TXT", ['"apex"'])]:
        bind_server.update(bind_zone, host, 300, rdtype, *values)
    found = {(r.name, r.rdtype) for r in backend_for(bind_server).read(bind_zone, [name_in(bind_zone, "www"),
                                                                                  name_in(bind_zone, "nothing")])}
    www = name_in(bind_zone, "www")
    assert found == {(www, T.A), (www, T.HINFO), (www, T.LOC)}


def test_read_sees_a_delegation_and_reads_below_it_only_by_transfer(bind_server, bind_zone):
    sub, host = name_in(bind_zone, "sub"), name_in(bind_zone, "ns.sub")
    bind_server.update(bind_zone, "sub", 300, "NS", f"ns.sub.{bind_zone}")
    bind_server.update(bind_zone, "ns.sub", 300, "A", "192.0.2.9")
    bind_server.update(bind_zone, "www", 300, "A", "192.0.2.1")
    backend = backend_for(bind_server)

    at_names = backend.read(bind_zone, [sub, host])
    assert {(r.name, r.rdtype) for r in at_names} == {(sub, T.NS)}  # named answers below the cut with a referral
    assert backend.round_trips == 1

    below = backend.read(bind_zone, [], [sub])
    assert {(r.name, r.rdtype) for r in below} == {(sub, T.NS), (host, T.A)}
    assert backend.round_trips == 2


def test_subtree_reads_need_a_key_allowed_to_transfer(bind_server, bind_zone):
    unsigned = RFC2136Backend("bind", {"server": bind_server.host, "port": bind_server.port, "timeout": 10})
    with pytest.raises(BackendError, match="zone transfer \\(AXFR\\) was refused"):
        unsigned.read(bind_zone, [], [name_in(bind_zone, "sub")])


def test_read_cost_follows_the_names_not_a_10k_zone(bind_server, bind_zone):
    backend = backend_for(bind_server)
    for start in range(0, 10_000, 2000):
        message = bind_server.update_message(bind_zone)
        for index in range(start, start + 2000):
            message.add(f"bulk-{index:05d}", 300, "A", f"10.0.{index >> 8}.{index & 255}")
        bind_server.send(message)
    names = [name_in(bind_zone, host) for host in ("bulk-00042", "www", "_domainkey")]

    found = backend.read(bind_zone, names)

    assert [(r.name, r.rdtype) for r in found] == [(names[0], T.A)]
    assert (backend.round_trips, backend.messages) == (1, len(names) * len(READ_TYPES))


def test_a_plan_reads_only_the_types_it_can_act_on_in_one_exchange(bind_server, bind_zone):
    bind_server.update(bind_zone, "www", 300, "CAA", '0 issue "ca.example"')
    bind_server.update(bind_zone, "www", 300, "AAAA", "2001:db8::9")
    backend = backend_for(bind_server)
    template = conformance_template([{"type": "A", "host": "www", "pointsTo": "192.0.2.7", "ttl": 300}])

    prepared = prepare_apply(backend, template, ApplyContext(bind_zone.to_text(omit_final_dot=True)))

    # A, AAAA (an A replaces both), CNAME and NS (conflicts), pipelined; never CAA.
    assert (backend.round_trips, backend.messages) == (2, 1 + 4)  # the SOA lookup, then the read
    assert {r.rdtype for r in prepared.current} == {T.AAAA}
    assert [(r.rdtype, c.reason) for c in prepared.plan.conflicts for r in [c.record]] == [
        (T.AAAA, "the new A record replaces the A and AAAA records at www")]


def test_a_plan_writing_a_cname_still_reads_every_type(bind_server, bind_zone):
    bind_server.update(bind_zone, "www", 300, "CAA", '0 issue "ca.example"')
    backend = backend_for(bind_server)
    template = conformance_template([{"type": "CNAME", "host": "www", "pointsTo": "target.example.net",
                                      "ttl": 300}])

    prepared = prepare_apply(backend, template, ApplyContext(bind_zone.to_text(omit_final_dot=True)))

    assert backend.messages == 1 + len(READ_TYPES)
    assert [c.record.rdtype for c in prepared.plan.conflicts] == [T.CAA]


def test_a_zone_found_is_remembered_until_the_server_fails_a_query_for_it(bind_server, bind_zone):
    backend = backend_for(bind_server)
    template = conformance_template([{"type": "A", "host": "www", "pointsTo": "192.0.2.7", "ttl": 300}])
    context = ApplyContext(bind_zone.to_text(omit_final_dot=True))
    prepare_apply(backend, template, context)
    trips = backend.round_trips
    prepare_apply(backend, template, context)
    assert backend.round_trips == trips + 1  # the read only: no SOA lookup again

    gone = dns.name.from_text("not-served-here.test")
    backend.found_zones.remember(gone)  # as if it had been served when looked up
    with pytest.raises(BackendError, match="REFUSED"):
        backend.read(gone, [gone])
    assert gone not in backend.found_zones and backend.find_zone(gone) is None


def test_reads_work_without_a_key(bind_server, bind_zone):
    bind_server.update(bind_zone, "www", 300, "A", "192.0.2.1")
    unsigned = RFC2136Backend("bind", {"server": bind_server.host, "port": bind_server.port, "timeout": 10})
    www = name_in(bind_zone, "www")
    assert unsigned.find_zone(www) == bind_zone
    assert [(r.name, r.rdtype) for r in unsigned.read(bind_zone, [www])] == [(www, T.A)]


def test_read_queries_are_signed_when_a_key_is_configured(bind_server, bind_zone):
    wrong = backend_for(bind_server, tsig_secret="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    with pytest.raises(BackendError) as error:
        wrong.read(bind_zone, [name_in(bind_zone, "www")])
    assert "backend 'bind'" in str(error.value) and str(bind_zone) in str(error.value)


# -- the UPDATE message ---------------------------------------------------------------------

def test_one_update_pins_what_was_read(bind_server, bind_zone):
    zone = bind_zone
    old_mx = rrset_from_text(zone, "@", 3600, "MX", ["10 a.example.net.", "20 b.example.net."])
    new_mx = rrset_from_text(zone, "@", 600, "MX", ["5 c.example.net."])
    txt = rrset_from_text(zone, "www", 300, "TXT", ['"hello"'])
    message = backend_for(bind_server)._update_message(zone, [
        RRsetChange(zone, T.MX, old_mx, new_mx), create(txt)])

    prerequisites: dict[tuple, set] = {}
    for rrset in message.prerequisite:
        prerequisites.setdefault((rrset.name, rrset.rdtype, rrset.rdclass), set()).update(rrset)
    assert {r.ttl for r in message.prerequisite} == {0}
    assert prerequisites.pop((zone, T.MX, dns.rdataclass.IN)) == set(old_mx)  # exists, exactly these values
    assert prerequisites.pop((txt.name, T.TXT, dns.rdataclass.NONE)) == set()  # does not exist
    # Named would silently ignore the TXT beside a CNAME: its absence is pinned too.
    assert set(prerequisites) == {(txt.name, T.CNAME, dns.rdataclass.NONE)}
    assert [(r.name, r.rdtype, r.deleting or r.rdclass, len(r)) for r in message.update] == [
        (zone, T.MX, dns.rdataclass.ANY, 0),                                 # delete the RRset
        (zone, T.MX, dns.rdataclass.IN, 1), (txt.name, T.TXT, dns.rdataclass.IN, 1)]


def test_a_new_cname_pins_the_absence_of_every_other_type(bind_server, bind_zone):
    cname = rrset_from_text(bind_zone, "www", 300, "CNAME", ["target.example.net."])
    message = backend_for(bind_server)._update_message(bind_zone, [create(cname)])
    absent = {r.rdtype for r in message.prerequisite if r.rdclass == dns.rdataclass.NONE}
    assert absent == set(READ_TYPES)
    assert {T.A, T.TXT, T.HINFO, T.HTTPS, T.CNAME} <= absent


def test_changes_outside_the_zone_are_refused_before_sending(bind_server, bind_zone):
    backend = backend_for(bind_server)
    outside = rrset_from_text(dns.name.from_text("example.org"), "www", 300, "A", ["192.0.2.1"])
    with pytest.raises(BackendError, match="www.example.org. is outside the zone"):
        backend.apply(bind_zone, [create(outside)])
    assert backend.round_trips == 0


# -- applying against named -----------------------------------------------------------------

def test_a_cname_added_behind_our_back_refuses_the_apply(bind_server, bind_zone):
    backend = backend_for(bind_server)
    template = conformance_template([{"type": "A", "host": "www", "pointsTo": "192.0.2.1", "ttl": 300}])
    prepared = prepare_apply(backend, template, ApplyContext(domain=bind_zone.to_text(omit_final_dot=True)))
    bind_server.update(bind_zone, "www", 300, "CNAME", "elsewhere.example.net.")
    with pytest.raises(ZoneChanged, match="zone .*: the records read for the plan changed .*YXRRSET"):
        execute_apply(prepared)
    assert bind_server.rrset(name_in(bind_zone, "www"), "A") is None
    assert bind_server.rrset(name_in(bind_zone, "www"), "CNAME") is not None


def test_data_added_behind_our_back_refuses_a_new_cname(bind_server, bind_zone):
    backend = backend_for(bind_server)
    template = conformance_template([{"type": "CNAME", "host": "www", "pointsTo": "target.example.net", "ttl": 300}])
    prepared = prepare_apply(backend, template, ApplyContext(domain=bind_zone.to_text(omit_final_dot=True)))
    bind_server.update(bind_zone, "www", 300, "HINFO", '"PC" "Linux"')
    with pytest.raises(ZoneChanged):
        execute_apply(prepared)
    assert bind_server.rrset(name_in(bind_zone, "www"), "CNAME") is None


def test_a_cname_replaces_every_type_the_plan_saw(bind_server, bind_zone):
    bind_server.update(bind_zone, "www", 300, "A", "192.0.2.1")
    bind_server.update(bind_zone, "www", 300, "HINFO", '"PC" "Linux"')
    backend = backend_for(bind_server)
    template = conformance_template([{"type": "CNAME", "host": "www", "pointsTo": "target.example.net", "ttl": 300}])
    prepared = prepare_apply(backend, template, ApplyContext(domain=bind_zone.to_text(omit_final_dot=True)))
    assert {dns.rdatatype.to_text(r.rdtype) for r in prepared.plan.delete} == {"A", "HINFO"}
    assert execute_apply(prepared)
    www = name_in(bind_zone, "www")
    assert [r.to_text() for r in bind_server.rrset(www, "CNAME")] == ["target.example.net."]
    assert bind_server.rrset(www, "A") is None and bind_server.rrset(www, "HINFO") is None


def test_a_ttl_change_alone_is_written(bind_server, bind_zone):
    backend = backend_for(bind_server)
    old = rrset_from_text(bind_zone, "www", 300, "A", ["192.0.2.1", "192.0.2.2"])
    new = rrset_from_text(bind_zone, "www", 900, "A", ["192.0.2.1", "192.0.2.2"])
    backend.apply(bind_zone, [create(old)])
    backend.apply(bind_zone, [RRsetChange(old.name, T.A, old, new)])
    assert same_rrset(bind_server.rrset(old.name, "A"), new) and bind_server.rrset(old.name, "A").ttl == 900


def test_the_apex_ns_rrset_is_replaced_value_by_value(bind_server, bind_zone):
    backend = backend_for(bind_server)
    current = bind_server.rrset(bind_zone, "NS")
    wanted = rrset_from_text(bind_zone, "@", 3600, "NS", ["ns-a.example.net.", "ns-b.example.net."])
    backend.apply(bind_zone, [RRsetChange(bind_zone, T.NS, current, wanted)])
    assert same_rrset(bind_server.rrset(bind_zone, "NS"), wanted)


def test_a_refused_update_names_backend_zone_and_rcode_and_writes_nothing(bind_server, bind_zone):
    backend = backend_for(bind_server)
    allowed = rrset_from_text(bind_zone, "fine", 300, "A", ["192.0.2.1"])
    denied = rrset_from_text(bind_zone, FORBIDDEN_LABEL, 300, "A", ["192.0.2.2"])
    with pytest.raises(BackendError) as error:
        backend.apply(bind_zone, [create(allowed), create(denied)])
    assert not isinstance(error.value, ZoneChanged)
    assert f"backend 'bind' (127.0.0.1 port {bind_server.port}): zone {bind_zone}: " in str(error.value)
    assert "REFUSED" in str(error.value) and "update-policy" in str(error.value)
    assert bind_server.rrset(allowed.name, "A") is None


def test_an_unsigned_update_is_refused(bind_server, bind_zone):
    unsigned = RFC2136Backend("bind", {"server": bind_server.host, "port": bind_server.port, "timeout": 10})
    record = rrset_from_text(bind_zone, "www", 300, "A", ["192.0.2.1"])
    with pytest.raises(BackendError, match="REFUSED"):
        unsigned.apply(bind_zone, [create(record)])
    assert bind_server.rrset(record.name, "A") is None


def test_an_update_signed_with_the_wrong_secret_writes_nothing(bind_server, bind_zone):
    wrong = backend_for(bind_server, tsig_secret="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    record = rrset_from_text(bind_zone, "www", 300, "A", ["192.0.2.1"])
    with pytest.raises(BackendError) as error:
        wrong.apply(bind_zone, [create(record)])
    assert not isinstance(error.value, ZoneChanged) and "backend 'bind'" in str(error.value)
    assert bind_server.rrset(record.name, "A") is None


# -- an unreachable or silent server ---------------------------------------------------------

def test_a_closed_port_is_a_backend_error(bind_zone):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = RFC2136Backend("bind", {"server": "127.0.0.1", "port": port, "timeout": 2})
    with pytest.raises(BackendError, match=f"backend 'bind' \\(127.0.0.1 port {port}\\): zone {bind_zone}:"):
        backend.read(bind_zone, [bind_zone])


def test_a_server_that_never_answers_times_out(bind_zone):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True)
        thread.start()
        backend = RFC2136Backend("bind", {"server": "127.0.0.1", "port": silent.getsockname()[1], "timeout": 0.5})
        started = time.monotonic()
        with pytest.raises(BackendError, match="no answer in time"):
            backend.read(bind_zone, [bind_zone])
        assert time.monotonic() - started < 5
        thread.join(5)
        for connection in accepted:
            connection.close()


# -- end to end -----------------------------------------------------------------------------

def test_dcgw_apply_through_bind(bind_server, bind_zone, tmp_path):
    config = tmp_path / "dcgw.toml"
    config.write_text(f'[ttl]\nminimum = 300\n\n[[backends]]\nname = "bind"\ndriver = "rfc2136"\n'
                      f'server = "127.0.0.1"\nport = {bind_server.port}\ntsig_key_name = "{bind_server.key_name}"\n'
                      f'tsig_secret = "env:DCGW_TSIG_SECRET"\n')
    domain = bind_zone.to_text(omit_final_dot=True)
    argv = [sys.executable, "-m", "gateway.cli", "apply", "--config", str(config), "--domain", domain,
            "--template", str(ROOT / "gateway" / "examples" / "example.com.hosting.json"), "--yes",
            "--param", "var1=192.0.2.1", "--param", "var2=192.0.2.2", "--param", "var3=target.example.net",
            "--param", "var4=verified"]

    def dcgw(secret: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                              env={**os.environ, "DCGW_TSIG_SECRET": secret})

    refused = dcgw("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert refused.returncode == 4, refused.stderr
    assert "backend 'bind'" in refused.stderr
    applied = dcgw(bind_server.key_secret)
    assert applied.returncode == 0, applied.stderr
    assert f"to {domain} on backend 'bind'" in applied.stderr
    assert [r.to_text() for r in bind_server.rrset(name_in(bind_zone, "www"), "A")] == ["192.0.2.1"]
    again = dcgw(bind_server.key_secret)
    assert again.returncode == 0 and "nothing to change (the template is already applied)" in again.stdout


# -- answers that must not be believed --------------------------------------------------------

def forging_server(forge) -> tuple[socket.socket, threading.Thread]:
    """A loopback TCP DNS server that answers each query with `forge(query)`: an A record
    of 192.0.2.66 for whatever it was asked, signed or not as `forge` decides."""
    import dns.message

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        connection = listener.accept()[0]
        with connection, connection.makefile("rb") as stream:
            try:
                while (head := stream.read(2)) and len(head) == 2:
                    query = dns.message.from_wire(stream.read(int.from_bytes(head, "big")), keyring=False)
                    wire = forge(query)
                    connection.sendall(len(wire).to_bytes(2, "big") + wire)
            except OSError:
                return  # the client hung up on the first answer it refused, while we read or wrote

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def forged_answer(query):
    import dns.message
    import dns.rrset

    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    response.answer.append(dns.rrset.from_text(question.name, 300, "IN", "A", "192.0.2.66"))
    return response


@pytest.mark.parametrize("forgery", ["unsigned", "signed with another key", "another question"])
def test_a_read_believes_only_answers_signed_for_its_queries(forgery):
    import dns.flags
    import dns.tsig
    import dns.tsigkeyring

    key_name, secret = "dcgw-update.", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
    other_key = dns.tsigkeyring.from_text({key_name: "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItb3Q="})
    right_key = dns.tsigkeyring.from_text({key_name: secret})

    def forge(query):
        if forgery == "another question":
            query.question[0].name = dns.name.from_text("elsewhere.example.")
        response = forged_answer(query)
        if forgery == "signed with another key":
            response.use_tsig(other_key, dns.name.from_text(key_name))
        elif forgery == "another question":
            response.use_tsig(right_key, dns.name.from_text(key_name))
            response.request_mac = query.mac
        return response.to_wire()

    listener, thread = forging_server(forge)
    zone = dns.name.from_text("example.com.")
    backend = RFC2136Backend("bind", {"server": "127.0.0.1", "port": listener.getsockname()[1], "timeout": 5,
                                      "tsig_key_name": key_name, "tsig_secret": secret})
    with listener, pytest.raises(BackendError, match=f"backend 'bind' \\(127.0.0.1 port \\d+\\): zone {zone}:"):
        backend.read(zone, [dns.name.from_text("www", zone)])
    thread.join(5)
