"""Rendering for consent, before the variables come (spec: they are given at apply time):
what can be rendered is, the rest is pending, and a value that was given is still checked."""

import dns.name
import dns.rdatatype
import pytest

from backends.zonedata import zone_rrsets
from gateway.engine.plan import PlanError, UnsupportedRecordType, plan_changes
from gateway.engine.render import ApplyContext, RenderError, render_template
from gateway.engine.template import load_templates
from tests.corpus import corpus_dir
from tests.engine_helpers import make_template, make_zone

ZONE = dns.name.from_text("example.com")


def deferred(records, params=None, host=""):
    records = [{"ttl": 600, **r} for r in records]
    return render_template(make_template(records), ApplyContext("example.com", host, params or {}),
                           defer_missing=True)


def test_a_record_waiting_for_its_value_keeps_its_name_and_type():
    rendered = deferred([{"type": "MX", "host": "@", "pointsTo": "%mx%", "priority": 10, "ttl": 600},
                         {"type": "TXT", "host": "@", "data": "fixed", "ttl": 600}])
    assert [r.rdata.to_text() for r in rendered.records] == ['"fixed"']
    [pending] = rendered.pending
    assert (pending.name, pending.rdtype, pending.ttl) == (ZONE, dns.rdatatype.MX, 600)
    assert pending.value_as_written() == "10 %mx%"


def test_a_record_whose_host_waits_cannot_be_placed():
    [pending] = deferred([{"type": "CNAME", "host": "%sub%", "pointsTo": "target.example.net"}]).pending
    assert pending.name is None and pending.host_as_written() == "%sub%"


def test_without_defer_a_missing_variable_is_still_an_error():
    with pytest.raises(RenderError, match=r"records\[0\] \(MX\) pointsTo: variable %mx% is missing"):
        render_template(make_template([{"type": "MX", "host": "@", "pointsTo": "%mx%", "priority": 10, "ttl": 600}]),
                        ApplyContext("example.com"))


@pytest.mark.parametrize("record, params, field", [
    # The host waits, but the given value is bad: refused now, not at apply.
    ({"type": "A", "host": "%sub%", "pointsTo": "%ip%"}, {"ip": "not-an-address"}, "pointsTo"),
    # The priority waits, the given target is bad.
    ({"type": "MX", "host": "@", "pointsTo": "%mx%", "priority": "%prio%"}, {"mx": "bad host!"}, "pointsTo"),
    # One variable of a field waits, another of the same field is given and bad.
    ({"type": "TXT", "host": "@", "data": "%a% %b%"}, {"b": "line\nbreak"}, "data"),
    ({"type": "SRV", "name": "@", "service": "%svc%", "protocol": "_tcp", "priority": 1, "weight": 1,
      "port": "%port%", "target": "sip.example.net"}, {"port": "99999"}, "port"),
    ({"type": "SPFM", "host": "%sub%", "spfRules": "%rules%"}, {"rules": "a;b"}, "spfRules"),
])
def test_a_given_value_is_checked_even_when_the_record_waits_for_another(record, params, field):
    with pytest.raises(RenderError, match=field):
        deferred([record], params)


def test_pending_records_find_their_conflicts_by_name_and_type():
    zone = make_zone("@ 600 IN MX 5 old.example.net.\nwww 600 IN A 192.0.2.1\n"
                     "www 600 IN TXT \"keep\"\n@ 600 IN TXT \"v=spf1 a -all\"\n@ 600 IN TXT \"v=spf1 mx -all\"\n")
    rendered = deferred([{"type": "MX", "host": "@", "pointsTo": "%mx%", "priority": 10},
                         {"type": "AAAA", "host": "www", "pointsTo": "%ip6%"},
                         {"type": "TXT", "host": "www", "data": "%v%", "txtConflictMatchingMode": "None"},
                         {"type": "SPFM", "host": "@", "spfRules": "%rules%"},
                         {"type": "CNAME", "host": "%sub%", "pointsTo": "x.example.net"}])
    plan = plan_changes(rendered, zone_rrsets(zone), zone.origin)
    reasons = sorted(c.reason for c in plan.conflicts)
    assert reasons == [
        "SPF record cannot be merged (example.com. has 2 SPF records); applying replaces it",
        "SPF record cannot be merged (example.com. has 2 SPF records); applying replaces it",
        "the new AAAA record replaces the A and AAAA records at www",
        "the new MX record replaces the MX records at @",
    ]
    # Those records are what the page lists as removed; nothing pending is added.
    assert sorted(r.rdata.to_text() for r in plan.delete) == [
        '"v=spf1 a -all"', '"v=spf1 mx -all"', "192.0.2.1", "5 old.example.net."]
    assert plan.add == []


def test_no_corpus_template_is_refused_at_consent_for_want_of_variables():
    directory = corpus_dir()
    if directory is None:
        pytest.skip("the public template corpus is not here")
    templates, _ = load_templates([directory])
    zone = make_zone('@ 300 IN TXT "v=spf1 include:existing.example ~all"\nwww 300 IN CNAME old.example.net.\n'
                     "@ 300 IN MX 10 mx.old.example.\n")
    planned = 0
    for template in templates.values():
        context = ApplyContext("example.com", host="shop" if template.host_required else "")
        rendered = render_template(template, context, defer_missing=True)  # never a RenderError
        assert len(rendered.records) + len(rendered.spf) + len(rendered.extensions) + len(rendered.pending) \
            == len(template.records), template.source
        try:
            plan_changes(rendered, zone_rrsets(zone), zone.origin)
            planned += 1
        except UnsupportedRecordType:
            continue
        except PlanError:
            # Only groups meant to be applied one at a time (two CNAMEs at www) cannot all coexist.
            assert template.group_ids, template.source
    assert planned > 1000
