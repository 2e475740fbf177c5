"""Planning: the spec's merge examples, each conflict rule on its own, SPF merging, re-apply."""

import dns.rdatatype
import pytest

from backends.zonedata import zone_rrsets
from gateway.engine.plan import PlanError, UnsupportedRecordType, apply_changes_to_rrsets, plan_changes, read_scope
from tests.engine_helpers import after, lines, make_zone, plan, render


def reasons(p) -> list[str]:
    return [c.reason for c in p.conflicts]


# --- spec "Example: DNS Zone merging" ------------------------------------------------------------

MERGE_ZONE = """\
@ 3600 IN A 192.0.2.1
@ 3600 IN A 192.0.2.2
@ 3600 IN AAAA 2001:db8:1234:0000:0000:0000:0000:0000
@ 3600 IN AAAA 2001:db8:1234:0000:0000:0000:0000:0001
@ 3600 IN MX 10 mx1.example.net.
@ 3600 IN MX 10 mx2.example.net.
@ 3600 IN TXT "v=spf1 a include:spf.example.org ~all"
www 3600 IN CNAME other.host.example.
"""
MERGE_TEMPLATE = [
    {"type": "A", "host": "@", "pointsTo": "203.0.113.2", "ttl": "1800"},
    {"type": "A", "host": "www", "pointsTo": "203.0.113.2", "ttl": "1800"},
    {"type": "SPFM", "host": "@", "spfRules": "a include:spf.hoster.example"},
]


def test_spec_dns_zone_merging_example():
    # The spec shows the merged SPF TXT at TTL 1800 but its own SPF example keeps 3600 for the same
    # situation; TTL is best effort, so the merged record keeps the existing TXT record's TTL.
    assert after(MERGE_TEMPLATE, MERGE_ZONE) == {
        "@ 1800 A 203.0.113.2",
        "@ 3600 MX 10 mx1.example.net.",
        "@ 3600 MX 10 mx2.example.net.",
        '@ 3600 TXT "v=spf1 a include:spf.example.org include:spf.hoster.example ~all"',
        "www 1800 A 203.0.113.2",
    }


def test_spec_dns_zone_merging_conflicts_are_reported():
    p = plan(MERGE_TEMPLATE, MERGE_ZONE)
    removed = lines(c.record for c in p.conflicts)
    assert removed == {"@ 3600 A 192.0.2.1", "@ 3600 A 192.0.2.2", "@ 3600 AAAA 2001:db8:1234::",
                       "@ 3600 AAAA 2001:db8:1234::1", "www 3600 CNAME other.host.example."}
    # The SPF record is merged, not a conflict, though its old text is deleted.
    assert '@ 3600 TXT "v=spf1 a include:spf.example.org ~all"' in lines(p.delete)


# --- spec "Example: SPF Record Merging" -----------------------------------------------------------

def test_spec_spf_merging_example_two_services():
    mail = [{"type": "MX", "host": "@", "priority": "10", "pointsTo": "mx1.example.net", "ttl": "3600"},
            {"type": "SPFM", "host": "@", "spfRules": "a include:spf.example.net"}]
    first = after(mail)
    assert '@ 3600 TXT "v=spf1 a include:spf.example.net ~all"' in first
    zone_text = "\n".join(first) + "\n"
    newsletter = [{"type": "SPFM", "host": "@", "spfRules": "include:_spf.newsletter.example"}]
    assert '@ 3600 TXT "v=spf1 a include:spf.example.net include:_spf.newsletter.example ~all"' in \
        after(newsletter, zone_text)


# --- conflict rules, one each ------------------------------------------------------------------------

def test_cname_conflicts_with_every_record_at_its_name():
    zone = 'x 300 IN A 192.0.2.1\nx 300 IN TXT "hello"\nx 300 IN MX 1 m.example.net.\ny 300 IN A 192.0.2.9\n'
    p = plan([{"type": "CNAME", "host": "x", "pointsTo": "t.example.net", "ttl": 60}], zone)
    assert lines(c.record for c in p.conflicts) == {"x 300 A 192.0.2.1", 'x 300 TXT "hello"',
                                                     "x 300 MX 1 m.example.net."}


@pytest.mark.parametrize("record", [
    {"type": "A", "host": "x", "pointsTo": "192.0.2.1", "ttl": 60},
    {"type": "TXT", "host": "x", "data": "hello", "ttl": 60},
    {"type": "MX", "host": "x", "pointsTo": "m.example.net", "priority": 1, "ttl": 60},
    {"type": "CAA", "host": "x", "data": '0 issue "ca.example.net"', "ttl": 60},
])
def test_every_record_conflicts_with_an_existing_cname(record):
    p = plan([record], "x 300 IN CNAME old.example.net.\n")
    assert lines(c.record for c in p.conflicts) == {"x 300 CNAME old.example.net."}


def test_ns_conflicts_with_everything_at_and_below_it():
    zone = "sub 300 IN A 192.0.2.1\nwww.sub 300 IN A 192.0.2.2\na.b.sub 300 IN TXT \"t\"\nother 300 IN A 192.0.2.3\n"
    p = plan([{"type": "NS", "host": "sub", "pointsTo": "ns1.provider.example", "ttl": 60}], zone)
    assert lines(c.record for c in p.conflicts) == {"sub 300 A 192.0.2.1", "www.sub 300 A 192.0.2.2",
                                                     'a.b.sub 300 TXT "t"'}


def test_records_below_an_existing_delegation_conflict_with_it():
    p = plan([{"type": "A", "host": "www.sub", "pointsTo": "192.0.2.1", "ttl": 60}],
             "sub 300 IN NS ns.elsewhere.example.\n")
    assert lines(c.record for c in p.conflicts) == {"sub 300 NS ns.elsewhere.example."}


def test_apex_ns_never_conflicts():
    p = plan([{"type": "A", "host": "www", "pointsTo": "192.0.2.1", "ttl": 60},
              {"type": "TXT", "host": "@", "data": "x", "ttl": 60}])
    assert p.conflicts == []


@pytest.mark.parametrize("rtype, new, old", [
    ("MX", {"pointsTo": "new.example.net", "priority": 5}, "MX 10 old.example.net."),
    ("SRV", {"priority": 1, "weight": 1, "port": 1, "target": "new.example.net"}, "SRV 0 0 5 old.example.net."),
])
def test_mx_and_srv_replace_their_own_type(rtype, new, old):
    owner = "_s._tcp" if rtype == "SRV" else "@"
    record = {"type": rtype, "ttl": 60, **new}
    record.update({"name": "@", "service": "_s", "protocol": "_tcp"} if rtype == "SRV" else {"host": "@"})
    p = plan([record], f"{owner} 300 IN {old}\n{owner} 300 IN TXT \"keep\"\n")
    assert lines(c.record for c in p.conflicts) == {f"{owner} 300 {old}"}


@pytest.mark.parametrize("new_type, address", [("A", "192.0.2.9"), ("AAAA", "2001:db8::9")])
def test_a_and_aaaa_replace_each_other(new_type, address):
    p = plan([{"type": new_type, "host": "@", "pointsTo": address, "ttl": 60}],
             "@ 300 IN A 192.0.2.1\n@ 300 IN AAAA 2001:db8::1\n@ 300 IN MX 1 m.example.net.\n")
    assert lines(c.record for c in p.conflicts) == {"@ 300 A 192.0.2.1", "@ 300 AAAA 2001:db8::1"}


TXT_ZONE = '@ 300 IN TXT "v=DKIM1; old"\n@ 300 IN TXT "google-site-verification=1"\n'


def test_txt_mode_none_keeps_other_txt_records():
    p = plan([{"type": "TXT", "host": "@", "data": "new", "ttl": 300}], TXT_ZONE)
    assert p.conflicts == [] and lines(p.add) == {'@ 300 TXT "new"'}


def test_txt_mode_all_replaces_every_txt_record():
    p = plan([{"type": "TXT", "host": "@", "data": "new", "ttl": 300, "txtConflictMatchingMode": "All"}], TXT_ZONE)
    assert len(p.conflicts) == 2


def test_txt_mode_prefix_replaces_matching_records_only():
    p = plan([{"type": "TXT", "host": "@", "data": "v=DKIM1; new", "ttl": 300,
               "txtConflictMatchingMode": "Prefix", "txtConflictMatchingPrefix": "v=DKIM1"}], TXT_ZONE)
    assert lines(c.record for c in p.conflicts) == {'@ 300 TXT "v=DKIM1; old"'}


def test_other_types_join_the_existing_rrset():
    p = plan([{"type": "CAA", "host": "@", "data": '0 issue "new.example"', "ttl": 300}],
             '@ 300 IN CAA 0 issue "old.example"\n')
    assert p.conflicts == [] and len(p.changes) == 1 and len(p.changes[0].after) == 2


# --- the template's own records ------------------------------------------------------------------------

def test_records_of_one_template_never_delete_each_other():
    p = plan([{"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 60},
              {"type": "AAAA", "host": "@", "pointsTo": "2001:db8::1", "ttl": 60},
              {"type": "MX", "host": "@", "pointsTo": "a.example.net", "priority": 1, "ttl": 60},
              {"type": "MX", "host": "@", "pointsTo": "b.example.net", "priority": 2, "ttl": 60}])
    assert p.conflicts == [] and len(p.add) == 4


@pytest.mark.parametrize("records, words", [
    ([{"type": "CNAME", "host": "x", "pointsTo": "a.example.net", "ttl": 60},
      {"type": "CNAME", "host": "x", "pointsTo": "b.example.net", "ttl": 60}], "2 CNAME records"),
    ([{"type": "CNAME", "host": "x", "pointsTo": "a.example.net", "ttl": 60},
      {"type": "TXT", "host": "x", "data": "t", "ttl": 60}], "CNAME beside TXT"),
])
def test_template_whose_records_cannot_coexist_is_an_error(records, words):
    with pytest.raises(PlanError, match=words):
        plan(records)


def test_one_cname_repeated_in_alternative_groups_is_one_record():
    records = [{"groupId": group, "type": "CNAME", "host": "www", "pointsTo": "a.example.net", "ttl": ttl}
               for group, ttl in (("g1", 600), ("g2", 300))]
    p = plan(records, "www 60 IN A 192.0.2.9\n")
    assert lines(p.add) == {"www 300 CNAME a.example.net."}
    assert [c.record.rdtype for c in p.conflicts] == [dns.rdatatype.A]


def test_repeated_cname_beside_other_data_stays_an_error():
    records = [{"groupId": group, "type": "CNAME", "host": "www", "pointsTo": "a.example.net", "ttl": 60}
               for group in ("g1", "g2")] + [{"groupId": "g2", "type": "A", "host": "www", "pointsTo": "192.0.2.1",
                                               "ttl": 60}]
    with pytest.raises(PlanError, match="CNAME beside A at www.example.com."):
        plan(records)


def test_reapplying_changes_nothing():
    records = MERGE_TEMPLATE + [{"type": "TXT", "host": "@", "data": "v=DKIM1; k", "ttl": 1800,
                                 "txtConflictMatchingMode": "Prefix", "txtConflictMatchingPrefix": "v=DKIM1"},
                                {"type": "CNAME", "host": "shop", "pointsTo": "@", "ttl": 1800}]
    zone = make_zone(MERGE_ZONE)
    rendered = render(records)
    first = plan_changes(rendered, zone_rrsets(zone), zone.origin)
    assert not first.is_empty
    second = plan_changes(rendered, apply_changes_to_rrsets(zone_rrsets(zone), first.changes), zone.origin)
    assert second.is_empty and second.add == [] and second.delete == []


def test_reapply_is_a_no_op_even_when_the_backend_split_txt_differently():
    value = "x" * 300
    zone_text = f'@ 300 IN TXT "{value[:100]}" "{value[100:]}"\n'
    p = plan([{"type": "TXT", "host": "@", "data": value, "ttl": 300}], zone_text)
    assert p.is_empty


def test_ttl_change_of_an_identical_record_is_a_change_not_a_conflict():
    p = plan([{"type": "A", "host": "www", "pointsTo": "192.0.2.1", "ttl": 600}], "www 300 IN A 192.0.2.1\n")
    assert p.conflicts == [] and lines(p.add) == {"www 600 A 192.0.2.1"} and lines(p.delete) == {"www 300 A 192.0.2.1"}


# --- SPF merging ---------------------------------------------------------------------------------------

def spf_after(rules: list[str], zone_text: str = "") -> set[str]:
    return {line for line in after([{"type": "SPFM", "host": "@", "spfRules": r} for r in rules], zone_text)
            if "spf1" in line}


def test_several_spfm_records_make_one_record():
    assert spf_after(["include:a.example", "include:b.example include:a.example"]) == {
        '@ 3600 TXT "v=spf1 include:a.example include:b.example ~all"'}


def test_spf_merge_keeps_order_the_existing_all_and_least_restrictive_qualifier():
    zone = '@ 300 IN TXT "v=spf1 -include:a.example ip4:192.0.2.0/24 -all exp=explain.example"\n'
    assert spf_after(["~include:a.example mx"], zone) == {
        '@ 300 TXT "v=spf1 ~include:a.example ip4:192.0.2.0/24 mx -all exp=explain.example"'}


def test_spf_mechanisms_compare_case_insensitively():
    p = plan([{"type": "SPFM", "host": "@", "spfRules": "INCLUDE:A.example"}],
             '@ 300 IN TXT "v=spf1 include:a.example ~all"\n')
    assert p.is_empty


@pytest.mark.parametrize("zone, words", [
    ('@ 300 IN TXT "v=spf1 redirect=_spf.example.net"\n', "redirect="),
    ('@ 300 IN TXT "v=spf1 include:a.example ~all"\n@ 300 IN TXT "v=spf1 include:b.example -all"\n',
     "2 SPF records"),
])
def test_unmergeable_spf_is_a_conflict_never_a_silent_overwrite(zone, words):
    p = plan([{"type": "SPFM", "host": "@", "spfRules": "include:new.example"}], zone)
    assert p.conflicts and all(words in reason for reason in reasons(p))
    assert '@ 300 TXT "v=spf1 include:new.example ~all"' in lines(p.add)


def test_spf_lookup_limit_warning():
    rules = " ".join(f"include:s{i}.example" for i in range(11))
    p = plan([{"type": "SPFM", "host": "@", "spfRules": rules}])
    assert any("11 DNS lookups" in w for w in p.warnings)


def test_spf_merge_leaves_other_txt_records_alone():
    p = plan([{"type": "SPFM", "host": "@", "spfRules": "include:b.example"}],
             '@ 300 IN TXT "v=spf1 include:a.example ~all"\n@ 300 IN TXT "verify=1"\n')
    assert p.conflicts == []
    (change,) = p.changes
    assert {r.to_text() for r in change.after} == {'"v=spf1 include:a.example include:b.example ~all"', '"verify=1"'}


# --- scope and extensions ---------------------------------------------------------------------------------

def test_read_scope_is_the_touched_names_their_ancestors_and_ns_subtrees():
    rendered = render([{"type": "A", "host": "a.b", "pointsTo": "192.0.2.1", "ttl": 60},
                       {"type": "NS", "host": "d", "pointsTo": "ns.example.net", "ttl": 60}])
    scope = read_scope(rendered, make_zone().origin)
    assert sorted(n.to_text() for n in scope.names) == ["a.b.example.com.", "b.example.com.", "d.example.com."]
    assert [n.to_text() for n in scope.subtrees] == ["d.example.com."]


def test_read_scope_names_the_types_the_planner_acts_on():
    rendered = render([{"type": "A", "host": "a.b", "pointsTo": "192.0.2.1", "ttl": 60},
                       {"type": "TXT", "host": "a.b", "data": "x", "ttl": 60},
                       {"type": "SPFM", "host": "@", "spfRules": "include:x.example"},
                       {"type": "CNAME", "host": "www", "pointsTo": "x.example.net", "ttl": 60}])
    types = {n.to_text(): sorted(dns.rdatatype.to_text(t) for t in found)
             for n, found in read_scope(rendered, make_zone().origin).types.items()}
    assert types == {"a.b.example.com.": ["A", "AAAA", "CNAME", "NS", "TXT"],
                     "b.example.com.": ["NS"],  # above a record only a delegation matters
                     "example.com.": ["CNAME", "NS", "TXT"]}  # www: a new CNAME, so every type


def test_types_the_scope_leaves_out_change_nothing():
    zone_text = ("www 300 IN CAA 0 issue \"ca.example\"\nwww 300 IN AAAA 2001:db8::1\n"
                 "www 300 IN MX 10 mx.example.net.\n")
    p = plan([{"type": "A", "host": "www", "pointsTo": "192.0.2.1", "ttl": 60}], zone_text)
    assert [(c.record.rdtype, c.reason) for c in p.conflicts] == [
        (dns.rdatatype.AAAA, "the new A record replaces the A and AAAA records at www")]
    assert [(c.name.to_text(), dns.rdatatype.to_text(c.rdtype)) for c in p.changes] == [
        ("www.example.com.", "A"), ("www.example.com.", "AAAA")]


def test_records_outside_the_scope_are_ignored():
    p = plan([{"type": "A", "host": "www", "pointsTo": "192.0.2.1", "ttl": 60}],
             "other 300 IN CNAME x.example.net.\nwww2 300 IN A 192.0.2.2\n")
    assert p.conflicts == [] and len(p.changes) == 1


def test_unsupported_extension_is_refused_by_name():
    with pytest.raises(UnsupportedRecordType, match="APEXCNAME"):
        plan([{"type": "APEXCNAME", "host": "@", "pointsTo": "app.example.net", "ttl": 60}])
