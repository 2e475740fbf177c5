"""Property tests: no variable value can move a record out of the zone, add one or change its type."""

import dns.name
import dns.rdatatype
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.engine.render import ApplyContext, RenderError, render_template
from tests.engine_helpers import make_template

DOMAIN = dns.name.from_text("example.com.")

TEMPLATES = [
    make_template([{"type": "A", "host": "%v%", "pointsTo": "192.0.2.%v%", "ttl": 60}]),
    make_template([{"type": "AAAA", "host": "x.%v%", "pointsTo": "%v%", "ttl": 60}]),
    make_template([{"type": "CNAME", "host": "_%v%", "pointsTo": "%v%.example.net", "ttl": 60}]),
    make_template([{"type": "TXT", "host": "%v%.%domain%.", "data": "token=%v%", "ttl": "%v%"}]),
    make_template([{"type": "MX", "host": "ns%v%", "pointsTo": "%v%", "priority": "%v%", "ttl": 60}]),
    make_template([{"type": "SRV", "name": "%v%", "service": "%v%", "protocol": "_tcp", "priority": 1,
                    "weight": "%v%", "port": 443, "target": "%v%", "ttl": 60}]),
    make_template([{"type": "CAA", "host": "*.%v%", "data": '0 issue "%v%"', "ttl": 60}]),
    make_template([{"type": "NS", "host": "%v%", "pointsTo": "ns.%v%", "ttl": 60}]),
]

# Values a hostile link could carry: DNS syntax, whitespace, control characters, dots, unicode.
hostile = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(list('ab1.-_*@ \t\n\r";\\()$%') + ["\x00", "é"]), max_size=30),
    st.sampled_from(["example.org.", "..", ".", "@", "a.b.c", "10", "192.0.2.1", "2001:db8::1",
                     "x\nevil 60 IN A 192.0.2.66", 'a" "b', "x ; comment", "$ORIGIN evil.", "*"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template_index=st.integers(0, len(TEMPLATES) - 1), value=hostile, host=st.sampled_from(["", "shop"]))
def test_no_value_escapes_the_zone_adds_a_record_or_changes_type(template_index, value, host):
    template = TEMPLATES[template_index]
    try:
        rendered = render_template(template, ApplyContext("example.com", host=host, params={"v": value}))
    except RenderError:
        return  # refusing is always safe
    assert len(rendered.records) == len(template.records)
    for record, source in zip(rendered.records, template.records):
        assert record.name.is_subdomain(DOMAIN)
        assert dns.rdatatype.to_text(record.rdtype) == source.type
        # The presentation form parses back to the very same single record.
        text = record.rdata.to_text()
        assert "\n" not in text
        reparsed = dns.rdata.from_text("IN", record.rdtype, text)
        assert reparsed == record.rdata
        if record.rdtype == dns.rdatatype.NS or record.rdtype == dns.rdatatype.CNAME:
            assert record.name != DOMAIN
