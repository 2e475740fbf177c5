"""Rendering: names, variables, types, numbers and every injection the spec's flexibility invites."""

import dns.name
import dns.rdatatype
import pytest

from gateway.engine.render import ApplyContext, RenderError, TtlPolicy, VariableError, render_template
from tests.engine_helpers import lines, make_template, render

A = {"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 1800}


def rendered_lines(records, **kwargs) -> set[str]:
    return lines(render(records, **kwargs).records)


# --- spec "Variable Examples" ----------------------------------------------------------------

SPEC_VARIABLE_EXAMPLE = [
    {"type": "CNAME", "host": "www", "pointsTo": "@", "ttl": 1800},
    {"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 1800},
]


def test_spec_variable_example_without_host():
    assert rendered_lines(SPEC_VARIABLE_EXAMPLE) == {"www 1800 CNAME example.com.", "@ 1800 A 192.0.2.1"}


def test_spec_variable_example_with_host_bar():
    assert rendered_lines(SPEC_VARIABLE_EXAMPLE, host="bar") == {
        "www.bar 1800 CNAME bar.example.com.", "bar 1800 A 192.0.2.1"}


def test_spec_single_variable_host_record_part_of_a_value():
    records = [{"type": "A", "host": "@", "pointsTo": "198.51.100.%srv%", "ttl": 600}]
    assert rendered_lines(records, params={"srv": "2"}) == {"@ 600 A 198.51.100.2"}


def test_spec_unspecified_type_caa():
    records = [{"type": "CAA", "host": "@", "data": '0 issue "ca1.example.net"', "ttl": 1800},
               {"type": "CAA", "host": "@", "data": '0 issuewild "ca2.example."', "ttl": 1800}]
    assert rendered_lines(records) == {'@ 1800 CAA 0 issue "ca1.example.net"',
                                       '@ 1800 CAA 0 issuewild "ca2.example."'}


# --- names --------------------------------------------------------------------------------

@pytest.mark.parametrize("host, expected", [
    ("@", "@"), ("", "@"), ("www", "www"), ("%domain%.", "@"), ("www.%domain%.", "www"),
    ("_acme-challenge.%fqdn%.", "_acme-challenge"), ("*", "*"), ("*.app", "*.app"),
    ("_%v%", "_x1"), ("ns%v%", "nsx1"), ("%v%.sub", "x1.sub"),
])
def test_host_forms(host, expected):
    assert rendered_lines([{**A, "host": host}], params={"v": "x1"}) == {f"{expected} 1800 A 192.0.2.1"}


def test_host_is_relative_to_the_applied_host():
    assert rendered_lines([{**A, "host": "www"}], host="shop") == {"www.shop 1800 A 192.0.2.1"}
    assert rendered_lines([{**A, "host": "%fqdn%."}], host="shop") == {"shop 1800 A 192.0.2.1"}


def test_builtins_in_values():
    records = [{"type": "TXT", "host": "@", "data": "%domain%|%host%|%fqdn%", "ttl": 60},
               {"type": "CNAME", "host": "x", "pointsTo": "%fqdn%", "ttl": 60}]
    assert rendered_lines(records, host="a") == {'a 60 TXT "example.com|a|a.example.com"',
                                                 "x.a 60 CNAME a.example.com."}


@pytest.mark.parametrize("host", ["www.other.example.", "%domain%.evil.example.", "example.com.evil.", "."])
def test_absolute_host_outside_the_domain_is_refused(host):
    with pytest.raises(RenderError, match="outside the domain|not a valid"):
        render([{**A, "host": host}])


def test_srv_owner_and_fields():
    records = [{"type": "SRV", "name": "@", "service": "sip", "protocol": "TCP", "priority": "10",
                "weight": "%w%", "port": 5060, "target": "sip.example.net", "ttl": 300}]
    assert rendered_lines(records, params={"w": "20"}) == {"_sip._tcp 300 SRV 10 20 5060 sip.example.net."}


def test_mx_numbers_as_strings_and_null_mx():
    records = [{"type": "MX", "host": "@", "pointsTo": ".", "priority": "0", "ttl": "300"}]
    assert rendered_lines(records) == {"@ 300 MX 0 ."}


def test_generic_and_rfc3597_types():
    records = [{"type": "TLSA", "host": "_443._tcp", "data": "3 1 1 %hash%", "ttl": 300},
               {"type": "TYPE65534", "host": "@", "data": r"\# 2 0102", "ttl": 300}]
    result = rendered_lines(records, params={"hash": "ab" * 32})
    assert f"_443._tcp 300 TLSA 3 1 1 {'ab' * 32}" in result
    assert r"@ 300 TYPE65534 \# 2 0102" in result


def test_txt_is_split_into_255_byte_strings_and_escaped():
    value = 'k="' + "x" * 300 + '\\'
    (record,) = render([{"type": "TXT", "host": "@", "data": "%v%", "ttl": 60}], params={"v": value}).records
    assert [len(s) for s in record.rdata.strings] == [255, len(value) - 255]
    assert b"".join(record.rdata.strings).decode() == value
    assert record.rdata.to_text().startswith('"k=\\"xxx')


# --- variables ------------------------------------------------------------------------------

def test_missing_variable_names_the_other_case():
    with pytest.raises(VariableError, match=r"%IP% is missing \(a parameter 'ip' was given"):
        render([{**A, "pointsTo": "%IP%"}], params={"ip": "192.0.2.1"})


def test_missing_variable_names_field_and_record():
    with pytest.raises(VariableError, match=r"records\[0\] \(A\) pointsTo: variable %ip% is missing"):
        render([{**A, "pointsTo": "%ip%"}])


@pytest.mark.parametrize("record, value", [
    ({**A, "pointsTo": "%v%"}, "192.0.2.1 ; comment"),
    ({**A, "pointsTo": "%v%"}, "2001:db8::1"),
    ({"type": "AAAA", "host": "@", "pointsTo": "%v%", "ttl": 60}, "192.0.2.1"),
    ({"type": "CNAME", "host": "x", "pointsTo": "%v%", "ttl": 60}, "a.example.net.\nevil 60 IN A 192.0.2.6"),
    ({"type": "CNAME", "host": "x", "pointsTo": "%v%", "ttl": 60}, "a b"),
    ({"type": "CNAME", "host": "x", "pointsTo": "%v%", "ttl": 60}, 'a"b'),
    ({"type": "MX", "host": "@", "pointsTo": "mx.%v%", "priority": "%v%", "ttl": 60}, "10 evil."),
    ({"type": "TXT", "host": "%v%", "data": "x", "ttl": 60}, "evil.example."),
    ({"type": "TXT", "host": "%v%", "data": "x", "ttl": 60}, "a\nb"),
    ({"type": "TXT", "host": "%v%", "data": "x", "ttl": 60}, "a..b"),
    ({"type": "TXT", "host": "@", "data": "%v%", "ttl": 60}, "line1\nline2"),
    ({"type": "TXT", "host": "@", "data": "%v%", "ttl": 60}, "nul\x00"),
    ({"type": "CAA", "host": "@", "data": '0 issue "%v%"', "ttl": 60}, 'ca" 0 issue "evil'),
    ({"type": "CAA", "host": "@", "data": '0 issue "%v%"', "ttl": 60}, "ca\\"),
    ({"type": "SRV", "name": "@", "service": "%v%", "protocol": "_tcp", "priority": 1, "weight": 1, "port": 1,
      "target": "t.example.net", "ttl": 60}, "_sip._udp"),
    ({"type": "TXT", "host": "*.%v%", "data": "x", "ttl": 60}, "a*"),
])
def test_variable_injections_are_errors(record, value):
    with pytest.raises(RenderError):
        render([record], params={"v": value})


def test_variable_with_dots_in_a_host_stays_inside_the_domain():
    (record,) = render([{"type": "TXT", "host": "%v%", "data": "x", "ttl": 60}], params={"v": "a.b"}).records
    assert record.name == dns.name.from_text("a.b.example.com.")


# --- numbers, TTL policy, groups, host rules ------------------------------------------------------

def test_ttl_is_clamped_never_rejected():
    policy = TtlPolicy(minimum=300, maximum=3600, default=1800)
    template = make_template([{**A, "ttl": 5}, {**A, "host": "b", "ttl": 999999}, {**A, "host": "c", "ttl": "%t%"}])
    rendered = render_template(template, ApplyContext("example.com", params={"t": "soon"}, ttl_policy=policy))
    assert [r.ttl for r in rendered.records] == [300, 3600, 1800]
    assert any("'soon' is not a number" in w for w in rendered.warnings)


@pytest.mark.parametrize("value", ["70000", "-1", "ten", "1e3"])
def test_priority_variable_must_be_a_port_sized_integer(value):
    with pytest.raises(VariableError, match="priority"):
        render([{"type": "MX", "host": "@", "pointsTo": "mx.example.net", "priority": "%p%", "ttl": 60}],
               params={"p": value})


def test_group_filtering_and_unknown_groups():
    records = [{**A, "groupId": "a"}, {**A, "host": "b", "groupId": "b"}, {**A, "host": "c"}]
    assert rendered_lines(records, groups=["b"]) == {"b 1800 A 192.0.2.1"}
    assert len(render(records).records) == 3
    with pytest.raises(RenderError, match="groupId zz is not in the template"):
        render(records, groups=["zz"])


def test_host_required():
    with pytest.raises(RenderError, match="requires a host"):
        render([A], hostRequired=True)
    assert render([A], host="sub", hostRequired=True).records


@pytest.mark.parametrize("rtype", ["CNAME", "NS"])
def test_cname_and_ns_never_at_the_apex(rtype):
    with pytest.raises(RenderError, match="cannot be at the zone apex"):
        render([{"type": rtype, "host": "@", "pointsTo": "x.example.net", "ttl": 60}])
    # ...but at the apex of an applied host they are fine.
    assert render([{"type": rtype, "host": "@", "pointsTo": "x.example.net", "ttl": 60}], host="shop").records


@pytest.mark.parametrize("domain, host", [("com", ""), ("exa mple.com", ""), ("example.com", "a b"),
                                          ("example.com", "evil.com."), ("example.com", "-"*70)])
def test_invalid_domain_or_host(domain, host):
    with pytest.raises(RenderError):
        render([A], domain=domain, host=host)


def test_spfm_and_extensions_render_separately():
    rendered = render([{"type": "SPFM", "host": "@", "spfRules": "include:%s%"},
                       {"type": "APEXCNAME", "host": "@", "pointsTo": "app.example.net", "ttl": 60}],
                      params={"s": "spf.example.net"})
    assert rendered.records == []
    assert rendered.spf[0].rules == "include:spf.example.net"
    assert rendered.extensions[0].type == "APEXCNAME"
    assert dict(rendered.extensions[0].fields)["pointsTo"] == "app.example.net."  # absolute, as backends store it
    assert dns.rdatatype.RdataType.TXT  # SPFM becomes TXT only when planned against the zone
