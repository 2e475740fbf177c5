"""Plans of the public corpus, written out as text: the golden file `tests/data/corpus_plans.json.gz`
pins every plan byte for byte, so an optimisation of the engine cannot change one.

    DCGW_CORPUS=... python -m tests.plan_golden --write    # after a deliberate change of plans

Each case is one template, one group selection (each group alone, and every group) and one
starting zone; its text is the plan's changes, records, conflicts and warnings, or the error.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import dns.rdatatype

from backends.zonedata import rrsets_in_scope
from gateway.engine.plan import Plan, plan_changes, read_scope
from gateway.engine.render import ApplyContext, render_template
from gateway.engine.template import Template, load_templates
from tests.corpus import corpus_dir, group_selections, sample_params
from tests.engine_helpers import make_zone

GOLDEN = Path(__file__).resolve().parent / "data" / "corpus_plans.json.gz"

# Starting zones that give every conflict rule something to bite on.
ZONES = {
    "empty": "",
    "busy": '@ 300 IN TXT "v=spf1 include:existing.example ~all"\n'
            '@ 300 IN TXT "google-site-verification=abc"\n'
            "@ 300 IN A 192.0.2.200\n@ 300 IN MX 10 mx.existing.example.\n"
            "www 300 IN CNAME old.example.net.\nshop 300 IN A 192.0.2.201\nshop 300 IN AAAA 2001:db8::201\n"
            'shop 300 IN TXT "v=spf1 -all"\n_dmarc 300 IN TXT "v=DMARC1; p=none"\n'
            "mail 300 IN CNAME mail.existing.example.\nsub0 300 IN A 192.0.2.202\n",
    "delegated": "shop 300 IN NS ns.elsewhere.example.\nsub0.shop 300 IN A 192.0.2.203\n"
                 "sub1 300 IN NS ns.elsewhere.example.\nwww 300 IN A 192.0.2.204\n"
                 '@ 300 IN TXT "v=spf1 a" "include:one.example ~all"\n@ 300 IN TXT "v=spf1 mx -all"\n',
}


def cases(templates: dict[tuple[str, str], Template]) -> Iterator[tuple[str, Template, ApplyContext, str]]:
    for key in sorted(templates):
        template = templates[key]
        selections = group_selections(template)
        if selections != [None]:
            selections.append(None)
        for groups in selections:
            for host in (["shop"] if template.host_required else ["", "shop"]):
                context = ApplyContext("example.com", host=host, params=sample_params(template), group_ids=groups)
                for zone_name in ZONES:
                    label = f"{key[0]}/{key[1]} groups={','.join(sorted(groups or ['*']))} host={host or '@'} " \
                            f"zone={zone_name}"
                    yield label, template, context, zone_name


def plan_text(plan: Plan) -> str:
    lines = []
    for change in plan.changes:
        lines.append(f"change {change.name} {dns.rdatatype.to_text(change.rdtype)}")
        for side, rrset in (("before", change.before), ("after", change.after)):
            lines += [f"  {side} {line}" for line in (rrset.to_text().splitlines() if rrset is not None else ["-"])]
    for kind, records in (("add", plan.add), ("delete", plan.delete)):
        lines += [f"{kind} {json.dumps(r.to_json(plan.zone), sort_keys=True)}" for r in records]
    lines += [f"conflict {json.dumps(c.record.to_json(plan.zone), sort_keys=True)} {c.reason}" for c in plan.conflicts]
    lines += [f"warning {w}" for w in plan.warnings]
    return "\n".join(lines)


def outcome(template: Template, context: ApplyContext, zone_name: str, zones: dict) -> str:
    zone = zones[zone_name]
    try:
        rendered = render_template(template, context)
        scope = read_scope(rendered, zone.origin)
        current = rrsets_in_scope(zone, scope.names, scope.subtrees)
        return plan_text(plan_changes(rendered, current, zone.origin))
    except ValueError as exc:
        return f"error {type(exc).__name__}: {exc}"


def corpus_plans(corpus: Path) -> dict[str, str]:
    templates, _ = load_templates([corpus])
    zones = {name: make_zone(text) for name, text in ZONES.items()}
    return {label: outcome(template, context, zone_name, zones)
            for label, template, context, zone_name in cases(templates)}


def read_golden() -> dict[str, str]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as stream:
        return json.load(stream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {GOLDEN.name} from the engine as it is")
    args = parser.parse_args()
    corpus = corpus_dir()
    if corpus is None:
        raise SystemExit("the corpus is not present (set DCGW_CORPUS)")
    plans = corpus_plans(corpus)
    if args.write:
        GOLDEN.parent.mkdir(exist_ok=True)
        with gzip.GzipFile(GOLDEN, "wb", mtime=0) as stream:
            stream.write(json.dumps(plans, indent=0, sort_keys=True).encode())
        print(f"{len(plans)} plans written to {GOLDEN}")
    else:
        golden = read_golden()
        differing = [label for label in golden if plans.get(label) != golden[label]]
        print(f"{len(plans)} plans, {len(differing)} differ from {GOLDEN.name}")
        for label in differing[:10]:
            print(f"  {label}")
        if differing:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
