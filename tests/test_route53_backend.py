"""The route53 backend: the conformance kit against moto_server, Route 53's text forms,
and its failures answered with the error shapes real Route 53 returns (botocore Stubber)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import ANY, Stubber

from backends.base import BackendError, ConfigError, RRsetChange, ZoneChanged
from backends.route53 import Route53Backend, from_route53, route53_name, route53_text, route53_value
from backends.testing import LONG_TXT, BackendConformance, conformance_template, rrset_from_text
from gateway.apply.pipeline import execute_apply, prepare_apply
from gateway.engine.render import ApplyContext, split_txt
from gateway.infra.config import load_config
from gateway.infra.registry import load_backend

pytestmark = pytest.mark.servers
T = dns.rdatatype.RdataType
ROOT = Path(__file__).resolve().parents[1]


def fail_next(client, operation: str, code: str, message: str, status: int = 400) -> None:
    """Make the client's next `operation` come back as Route 53's error `code`, once;
    every other call goes to the server as usual."""
    event = f"before-call.route53.{operation}"

    def respond(**_kwargs):
        client.meta.events.unregister(event, respond)
        return (AWSResponse(None, status, {}, None), {"Error": {"Code": code, "Message": message, "Type": "Sender"},
                       "ResponseMetadata": {"HTTPStatusCode": status}})

    client.meta.events.register(event, respond)


class TestRoute53Conformance(BackendConformance):
    @pytest.fixture
    def backend_under_test(self, moto_server, route53_zone):
        self.moto = moto_server
        self.zone_id = route53_zone[1]
        yield Route53Backend("aws", moto_server.backend_options()), route53_zone[0]

    def served(self, backend, zone, name, rdtype):
        # Straight from the API, parsed without the backend's codec.
        listing = self.moto.client().list_resource_record_sets(
            HostedZoneId=self.zone_id, StartRecordName=name.to_text(), StartRecordType=dns.rdatatype.to_text(rdtype),
            MaxItems="1")["ResourceRecordSets"]
        if not listing or dns.name.from_text(listing[0]["Name"]) != name or listing[0]["Type"] != \
                dns.rdatatype.to_text(rdtype):
            return None
        values = [r["Value"] for r in listing[0]["ResourceRecords"]]
        host = name.relativize(zone).to_text() if name != zone else "@"
        return rrset_from_text(zone, host, listing[0]["TTL"], dns.rdatatype.to_text(rdtype), values)

    def mutate_behind_back(self, backend, zone, rrset):
        self.moto.client().change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {
                "Name": rrset.name.to_text(), "Type": dns.rdatatype.to_text(rrset.rdtype), "TTL": rrset.ttl,
                "ResourceRecords": [{"Value": r.to_text()} for r in rrset]}}]})

    def break_next_apply(self, backend, zone):
        # Route 53 fails a batch as a whole; the backend must report it and write nothing itself.
        fail_next(backend.client, "ChangeResourceRecordSets", "ServiceUnavailable",
                  "Service is currently unavailable", 503)

    def round_trips(self, backend):
        return backend.api_calls

    @pytest.mark.skip(reason="moto accepts a DELETE of stale values; the Stubber tests below use Route 53's answer")
    def test_change_to_a_read_rrset_is_refused(self, backend_under_test) -> None:
        pass

    @pytest.mark.skip(reason="moto lets a CREATE duplicate a record set; the Stubber tests below use Route 53's answer")
    def test_creation_of_a_planned_rrset_is_refused(self, backend_under_test) -> None:
        pass


# -- options and zones ----------------------------------------------------------------------

@pytest.mark.parametrize(("options", "message"), [
    ({"endpoint_url": "127.0.0.1:5000"}, "option 'endpoint_url' must be an http(s) URL, not '127.0.0.1:5000'"),
    ({"region": 1}, "option 'region' must be str, not 1"),
    ({"profile": ["a"]}, "option 'profile' must be str"),
])
def test_invalid_options_are_named(options, message):
    with pytest.raises(ConfigError, match="backend 'aws': " + message.replace("(", "\\(").replace(")", "\\)")):
        Route53Backend("aws", options)


def test_unknown_options_are_refused():
    with pytest.raises(ConfigError, match="backend 'aws': unknown option 'endpoint' \\(expected one of: endpoint_url, "):
        Route53Backend("aws", {"endpoint": "http://127.0.0.1:5000"})


def test_commented_example_config_loads_a_route53_backend(monkeypatch):
    monkeypatch.setenv("DCGW_SESSION_SECRET", "s")
    [settings] = load_config(ROOT / "config" / "route53.toml").backends
    backend = load_backend(settings)
    assert isinstance(backend, Route53Backend)
    assert (backend.region, backend.profile, backend.endpoint_url) == ("us-east-1", None, None)


def test_zones_are_found_by_name_public_only(moto_server, aws_test_credentials):
    zone, _ = moto_server.create_zone("found.r53.test")
    moto_server.create_zone("private.r53.test", private=True)
    backend = Route53Backend("aws", moto_server.backend_options())
    assert backend.find_zone(dns.name.from_text("a.b.found.r53.test")) == zone
    assert backend.find_zone(dns.name.from_text("private.r53.test")) is None
    assert backend.find_zone(dns.name.from_text("elsewhere.example")) is None
    assert zone in backend.zones() and dns.name.from_text("private.r53.test") not in backend.zones()


def test_two_public_zones_of_one_name_are_an_error_naming_both(moto_server, aws_test_credentials):
    _, first = moto_server.create_zone("twice.r53.test")
    _, second = moto_server.create_zone("twice.r53.test")
    backend = Route53Backend("aws", moto_server.backend_options())
    with pytest.raises(BackendError) as error:
        backend.find_zone(dns.name.from_text("www.twice.r53.test"))
    assert "2 public hosted zones" in str(error.value)
    assert first in str(error.value) and second in str(error.value)


def test_missing_credentials_are_a_backend_error(moto_server, aws_test_credentials, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    with pytest.raises(BackendError, match="backend 'aws': .*NoCredentialsError"):
        Route53Backend("aws", moto_server.backend_options()).zones()


def test_unknown_profile_is_a_backend_error(moto_server, aws_test_credentials):
    with pytest.raises(BackendError, match="backend 'aws': cannot set up the Route 53 client: .*nonexistent"):
        Route53Backend("aws", moto_server.backend_options(profile="nonexistent")).zones()


# -- reads ----------------------------------------------------------------------------------

def upsert(moto_server, zone_id, name, rdtype, ttl, *values, **extra):
    record_set = {"Name": name, "Type": rdtype, **extra}
    if values:
        record_set |= {"TTL": ttl, "ResourceRecords": [{"Value": v} for v in values]}
    moto_server.client().change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record_set}]})


def test_read_lists_from_each_name_only(moto_server, route53_zone):
    zone, zone_id = route53_zone
    for host in ("a", "www", "www-2", "zz"):
        upsert(moto_server, zone_id, f"{host}.{zone}", "A", 300, "192.0.2.1")
    upsert(moto_server, zone_id, f"www.{zone}", "TXT", 300, '"hello"')
    backend = Route53Backend("aws", moto_server.backend_options())
    www = dns.name.from_text("www", zone)
    found = backend.read(zone, [www, dns.name.from_text("absent", zone)])
    assert {(r.name, r.rdtype) for r in found} == {(www, T.A), (www, T.TXT)}
    assert backend.api_calls == 1 + 2  # the zone id, then one listing per name


def test_read_below_a_name_stays_inside_it(moto_server, route53_zone):
    zone, zone_id = route53_zone
    # "sub-a" and "subz" sort right around "sub"'s subtree, in Route 53's order and in moto's.
    for host in ("sub", "a.sub", "x.y.sub", "sub-a", "subz", "a.sub-a", "sua"):
        upsert(moto_server, zone_id, f"{host}.{zone}", "A", 300, "192.0.2.1")
    backend = Route53Backend("aws", moto_server.backend_options())
    found = {r.name.relativize(zone).to_text() for r in backend.read(zone, [], [dns.name.from_text("sub", zone)])}
    assert found == {"sub", "a.sub", "x.y.sub"}


def test_alias_and_routing_policy_records_are_left_out_and_never_clobbered(moto_server, route53_zone):
    zone, zone_id = route53_zone
    for identifier, address in (("blue", "192.0.2.1"), ("green", "192.0.2.2")):
        upsert(moto_server, zone_id, f"w.{zone}", "A", 60, address, SetIdentifier=identifier, Weight=50)
    upsert(moto_server, zone_id, f"alias.{zone}", "A", 0,
           AliasTarget={"HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": "d111111abcdef8.cloudfront.net.",
                        "EvaluateTargetHealth": False})
    backend = Route53Backend("aws", moto_server.backend_options())
    context = ApplyContext(domain=zone.to_text(omit_final_dot=True))
    before = moto_server.client().list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]

    assert backend.read(zone, [dns.name.from_text("w", zone), dns.name.from_text("alias", zone)]) == []
    for record in ({"type": "A", "host": "w", "pointsTo": "192.0.2.9", "ttl": 300},
                   {"type": "CNAME", "host": "alias", "pointsTo": "target.example.net", "ttl": 300}):
        prepared = prepare_apply(backend, conformance_template([record]), context)
        with pytest.raises(BackendError, match="the gateway does not change alias or routing-policy records") as error:
            execute_apply(prepared)
        assert not isinstance(error.value, ZoneChanged)
    assert moto_server.client().list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"] == before

    # Another type at the same name is fine, and the weighted records stay as they were.
    prepared = prepare_apply(backend, conformance_template([{"type": "TXT", "host": "w", "data": "hi", "ttl": 300}]),
                             context)
    assert execute_apply(prepared)
    after = moto_server.client().list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    assert [r for r in after if r["Type"] != "TXT"] == before


# -- Route 53's text forms --------------------------------------------------------------------

ORIGIN = dns.name.from_text("example.com")


@pytest.mark.parametrize(("rdtype", "presentation", "route53"), [
    ("A", "192.0.2.1", "192.0.2.1"),
    ("AAAA", "2001:db8::1", "2001:db8::1"),
    ("CNAME", "target.example.net.", "target.example.net."),
    ("MX", "10 mx.example.net.", "10 mx.example.net."),
    ("SRV", "1 2 3 target.example.net.", "1 2 3 target.example.net."),
    ("CAA", '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
    ("TXT", '"v=spf1 -all"', '"v=spf1 -all"'),
    ("TXT", '"say \\"hi\\" \\\\ there"', '"say \\"hi\\" \\\\ there"'),
    ("TXT", '"caf\\195\\169 \\009tab"', '"caf\\303\\251 \\011tab"'),       # octal where DNS text is decimal
    ("TXT", '"first" "second"', '"first" "second"'),
])
def test_values_round_trip_route53_text(rdtype, presentation, route53):
    rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, presentation)
    assert route53_value(rdata) == route53
    assert from_route53(T.make(rdtype), route53, ORIGIN) == rdata


def test_long_txt_is_several_quoted_strings_in_one_value():
    rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, T.TXT, split_txt(LONG_TXT))
    value = route53_value(rdata)
    assert len(rdata.strings) > 1 and value.count('" "') == len(rdata.strings) - 1
    chunks = [LONG_TXT[i:i + 255] for i in range(0, len(LONG_TXT), 255)]  # ASCII: bytes are characters
    assert value == " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
    assert from_route53(T.TXT, value, ORIGIN) == rdata


@pytest.mark.parametrize(("text", "route53"), [
    ("www.example.com.", "www.example.com."),
    ("WWW.Example.COM.", "www.example.com."),
    ("*.example.com.", "*.example.com."),
    ("_sip._tcp.example.com.", "_sip._tcp.example.com."),
    ("a\\032b.example.com.", "a\\040b.example.com."),
])
def test_names_round_trip_route53_text(text, route53):
    name = dns.name.from_text(text)
    assert route53_text(name) == route53
    assert route53_name(route53) == name


def test_route53_returns_wildcards_escaped():
    assert route53_name("\\052.example.com.") == dns.name.from_text("*.example.com")


def test_odd_values_reach_the_api_in_route53_text(moto_server, route53_zone):
    zone, zone_id = route53_zone
    backend = Route53Backend("aws", moto_server.backend_options())
    txt = rrset_from_text(zone, "*.odd", 300, "TXT", ['"caf\\195\\169 \\"q\\""'])
    backend.apply(zone, [RRsetChange(txt.name, T.TXT, None, txt)])
    listed = moto_server.client().list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    assert {"Name": f"*.odd.{zone}", "Type": "TXT", "TTL": 300,
            "ResourceRecords": [{"Value": '"caf\\303\\251 \\"q\\""'}]} in listed
    assert backend.read(zone, [txt.name]) == [txt]


# -- failures, with Route 53's own answers ------------------------------------------------------

ZONE = dns.name.from_text("example.com")
ZONE_ID = "Z0123456789ABCDEFGHIJ"
HOSTED_ZONES = {"HostedZones": [{"Id": f"/hostedzone/{ZONE_ID}", "Name": "example.com.", "CallerReference": "x",
                                 "Config": {"PrivateZone": False}, "ResourceRecordSetCount": 3}],
                "DNSName": "example.com.", "IsTruncated": False, "MaxItems": "10"}


@pytest.fixture
def stubbed(aws_test_credentials):
    """A backend whose client answers from a Stubber queue (nothing leaves the process);
    `sleeps` records the backoff waits instead of sleeping."""
    backend = Route53Backend("aws", {"endpoint_url": "http://127.0.0.1:9"})
    backend.sleeps = []
    backend.sleep = backend.sleeps.append
    with Stubber(backend.client) as stub:
        stub.add_response("list_hosted_zones_by_name", HOSTED_ZONES, {"DNSName": "example.com.", "MaxItems": "10"})
        yield backend, stub
        stub.assert_no_pending_responses()


OLD = rrset_from_text(ZONE, "www", 300, "A", ["192.0.2.1", "192.0.2.2"])
NEW = rrset_from_text(ZONE, "www", 600, "A", ["192.0.2.3"])
TXT = rrset_from_text(ZONE, "www", 300, "TXT", ['"v=1"'])
CHANGES = [RRsetChange(OLD.name, T.A, OLD, NEW), RRsetChange(TXT.name, T.TXT, None, TXT)]
BATCH = {"HostedZoneId": ZONE_ID, "ChangeBatch": {"Comment": ANY, "Changes": [
    {"Action": "DELETE", "ResourceRecordSet": {"Name": "www.example.com.", "Type": "A", "TTL": 300,
                                               "ResourceRecords": [{"Value": "192.0.2.1"}, {"Value": "192.0.2.2"}]}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.example.com.", "Type": "A", "TTL": 600,
                                               "ResourceRecords": [{"Value": "192.0.2.3"}]}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.example.com.", "Type": "TXT", "TTL": 300,
                                               "ResourceRecords": [{"Value": '"v=1"'}]}},
]}}
CHANGE_INFO = {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": "2026-01-01T00:00:00Z"}}


def test_one_batch_deletes_the_exact_values_read_and_creates(stubbed):
    backend, stub = stubbed
    stub.add_response("change_resource_record_sets", CHANGE_INFO, BATCH)
    backend.apply(ZONE, CHANGES)
    assert backend.api_calls == 2


@pytest.mark.parametrize("message", [
    "[Tried to delete resource record set [name='www.example.com.', type='A'] but it was not found]",
    "[Tried to create resource record set [name='www.example.com.', type='TXT'] but it already exists]",
])
def test_a_batch_refused_for_a_concurrent_change_is_zone_changed(stubbed, message):
    backend, stub = stubbed
    stub.add_client_error("change_resource_record_sets", "InvalidChangeBatch", message, 400, expected_params=BATCH)
    with pytest.raises(ZoneChanged, match="backend 'aws': zone example.com.: the records read for the plan changed"):
        backend.apply(ZONE, CHANGES)
    assert backend.api_calls == 2  # refused, not retried


def test_another_invalid_batch_is_a_backend_error(stubbed):
    backend, stub = stubbed
    message = ("[RRSet of type CNAME with DNS name www.example.com. is not permitted as it conflicts with other "
               "records with the same DNS name in zone example.com.]")
    stub.add_client_error("change_resource_record_sets", "InvalidChangeBatch", message, 400)
    with pytest.raises(BackendError) as error:
        backend.apply(ZONE, CHANGES)
    assert not isinstance(error.value, ZoneChanged)
    assert str(error.value) == f"backend 'aws': zone example.com.: Route 53 answered InvalidChangeBatch: {message}"


@pytest.mark.parametrize("code", ["PriorRequestNotComplete", "Throttling"])
def test_busy_answers_are_retried_with_backoff(stubbed, code):
    backend, stub = stubbed
    for _ in range(2):
        stub.add_client_error("change_resource_record_sets", code, "Rate exceeded", 400, expected_params=BATCH)
    stub.add_response("change_resource_record_sets", CHANGE_INFO, BATCH)
    backend.apply(ZONE, CHANGES)
    assert len(backend.sleeps) == 2 and 0.25 <= backend.sleeps[0] <= 0.5 and 0.5 <= backend.sleeps[1] <= 1.0


def test_retries_are_bounded(stubbed):
    backend, stub = stubbed
    for _ in range(backend.max_attempts):
        stub.add_client_error("change_resource_record_sets", "Throttling", "Rate exceeded", 400)
    with pytest.raises(BackendError) as error:
        backend.apply(ZONE, CHANGES)
    assert not isinstance(error.value, ZoneChanged)
    assert "Route 53 answered Throttling: Rate exceeded (still after 5 attempts)" in str(error.value)
    assert len(backend.sleeps) == backend.max_attempts - 1 and sum(backend.sleeps) < 10


def test_a_subtree_listing_stops_where_route53_order_leaves_it(stubbed):
    backend, stub = stubbed

    def record_set(host):
        return {"Name": f"{host}example.com.", "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.1"}]}

    # Route 53's order (labels reversed, trailing dot): "sub-a" sorts before "sub", "subz" after its subtree.
    page = {"ResourceRecordSets": [record_set(h) for h in ("sub.", "a.sub.", "\\052.b.sub.", "subz.", "t.")],
            "IsTruncated": True, "NextRecordName": "u.example.com.", "NextRecordType": "A", "MaxItems": "300"}
    stub.add_response("list_resource_record_sets", page, {"HostedZoneId": ZONE_ID,
                                                          "StartRecordName": "sub.example.com.", "MaxItems": "300"})
    found = backend.read(ZONE, [], [dns.name.from_text("sub.example.com")])
    assert sorted(r.name.to_text() for r in found) == ["*.b.sub.example.com.", "a.sub.example.com.", "sub.example.com."]
    assert backend.api_calls == 2  # the next page was not fetched


def test_a_deleted_hosted_zone_is_looked_up_again(stubbed):
    backend, stub = stubbed
    stub.add_client_error("change_resource_record_sets", "NoSuchHostedZone", f"No hosted zone found with ID: {ZONE_ID}",
                          404)
    with pytest.raises(BackendError, match="NoSuchHostedZone"):
        backend.apply(ZONE, CHANGES)
    stub.add_response("list_hosted_zones_by_name", HOSTED_ZONES, {"DNSName": "example.com.", "MaxItems": "10"})
    stub.add_response("change_resource_record_sets", CHANGE_INFO, BATCH)
    backend.apply(ZONE, CHANGES)


def test_types_route53_does_not_host_are_refused_before_any_call(aws_test_credentials):
    backend = Route53Backend("aws", {"endpoint_url": "http://127.0.0.1:9"})
    hinfo = rrset_from_text(ZONE, "www", 300, "HINFO", ['"PC" "Linux"'])
    with Stubber(backend.client):
        with pytest.raises(BackendError, match="Route 53 does not host HINFO records"):
            backend.apply(ZONE, [RRsetChange(hinfo.name, T.HINFO, None, hinfo)])
    assert backend.api_calls == 0


# -- end to end -----------------------------------------------------------------------------

def test_dcgw_apply_through_route53(moto_server, route53_zone, tmp_path):
    zone, zone_id = route53_zone
    config = tmp_path / "dcgw.toml"
    config.write_text(f'[ttl]\nminimum = 300\n\n[[backends]]\nname = "aws"\ndriver = "route53"\n'
                      f'endpoint_url = "{moto_server.endpoint_url}"\n')
    domain = zone.to_text(omit_final_dot=True)
    argv = [sys.executable, "-m", "gateway.cli", "apply", "--config", str(config), "--domain", domain,
            "--template", str(ROOT / "gateway" / "examples" / "example.com.hosting.json"), "--yes",
            "--param", "var1=192.0.2.1", "--param", "var2=192.0.2.2", "--param", "var3=target.example.net",
            "--param", "var4=verified"]

    def dcgw() -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                              env=dict(os.environ))

    applied = dcgw()
    assert applied.returncode == 0, applied.stderr
    assert f"to {domain} on backend 'aws'" in applied.stderr
    listed = moto_server.client().list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    assert {"Name": f"www.{zone}", "Type": "A", "TTL": 600, "ResourceRecords": [{"Value": "192.0.2.1"}]} in listed
    again = dcgw()
    assert again.returncode == 0 and "nothing to change (the template is already applied)" in again.stdout
