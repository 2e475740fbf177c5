"""Small builders for engine tests: templates from record lists, zones from master-file text."""

from __future__ import annotations

import dns.name
import dns.zone

from backends.zonedata import zone_rrsets
from gateway.engine.plan import Plan, apply_changes_to_rrsets, plan_changes
from gateway.engine.records import records_of
from gateway.engine.render import ApplyContext, RenderedTemplate, render_template
from gateway.engine.template import Template, parse_template

SOA = "@ 3600 IN SOA ns1.example.net. hostmaster.example.com. 2024010101 7200 1800 1209600 3600\n" \
      "@ 3600 IN NS ns1.example.net.\n@ 3600 IN NS ns2.example.net.\n"


def make_template(records: list[dict], **fields) -> Template:
    document = {"providerId": "provider.example", "providerName": "Provider", "serviceId": "service",
                "serviceName": "Service", "records": records, **fields}
    return parse_template(document, source="test.json")


def make_zone(text: str = "", origin: str = "example.com.") -> dns.zone.Zone:
    return dns.zone.from_text(f"$ORIGIN {origin}\n{SOA}{text}", origin=origin, relativize=False)


def render(records: list[dict], domain: str = "example.com", host: str = "", params=None, groups=None,
           **fields) -> RenderedTemplate:
    context = ApplyContext(domain=domain, host=host, params=params or {},
                           group_ids=frozenset(groups) if groups is not None else None)
    return render_template(make_template(records, **fields), context)


def plan(records: list[dict], zone_text: str = "", host: str = "", params=None, **fields) -> Plan:
    zone = make_zone(zone_text)
    return plan_changes(render(records, host=host, params=params, **fields), zone_rrsets(zone), zone.origin)


def after(records: list[dict], zone_text: str = "", host: str = "", params=None) -> set[str]:
    """The zone after the change, as 'name ttl type data' lines (SOA and apex NS left out)."""
    zone = make_zone(zone_text)
    result = apply_changes_to_rrsets(zone_rrsets(zone), plan(records, zone_text, host, params).changes)
    return {line for line in lines(records_of(result)) if " SOA " not in line and not line.startswith("@ 3600 NS")}


def lines(records) -> set[str]:
    origin = dns.name.from_text("example.com.")
    out = set()
    for r in records:
        j = r.to_json(origin)
        out.add(f"{j['name']} {j['ttl']} {j['type']} {j['data']}")
    return out
