"""`dcgw preview`: show what a template would change in a zone file, without changing it.

    dcgw preview --zone ZONEFILE --domain DOMAIN [--host HOST] --template FILE.json
                 [--group ID]... [--param NAME=VALUE]... [--json]

The `--json` shape is a contract scripts rely on: one object with `add`, `delete` and
`zone`, each a list of {"name", "type", "ttl", "data"}.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from gateway.commands.common import add_command

if TYPE_CHECKING:  # imported when a command runs, so that `dcgw --help` stays fast
    import dns.name
    import dns.rrset

    from gateway.engine.plan import Plan
    from gateway.engine.records import Record
    from gateway.engine.render import ApplyContext
    from gateway.engine.template import Template

EXIT_INVALID = 2


class InvalidInput(Exception):
    """Input the user must fix; reported in one line, exit status 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "preview", __doc__)
    parser.add_argument("--zone", required=True, metavar="ZONEFILE", help="RFC 1035 master file of DOMAIN")
    add_apply_arguments(parser)
    parser.set_defaults(func=run)


def add_apply_arguments(parser: argparse.ArgumentParser) -> None:
    """The template and context options shared by `preview` and `apply`."""
    parser.add_argument("--domain", required=True, help="the domain (zone) to apply to")
    parser.add_argument("--host", default="", help="sub-domain to apply to (default: the apex)")
    parser.add_argument("--template", required=True, metavar="FILE.json", help="template file")
    parser.add_argument("--group", action="append", metavar="ID", help="apply only this groupId (repeatable)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="template variable (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def context_from_args(args: argparse.Namespace, **policies) -> tuple[Template, ApplyContext]:
    """The template and apply context the common options describe; InvalidInput when wrong.
    `policies` are the config's ApplyContext fields (ttl_policy, limits, safety)."""
    import dns.exception
    import dns.name

    from gateway.engine.render import ApplyContext
    from gateway.engine.template import TemplateError, load_template

    try:
        template = load_template(args.template)
    except TemplateError as exc:
        raise InvalidInput(str(exc)) from None
    params: dict[str, str] = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--param {item!r}: expected NAME=VALUE")
        params[name] = value
    try:
        domain = dns.name.from_text(args.domain).to_text(omit_final_dot=True).lower()
    except dns.exception.DNSException as exc:
        raise InvalidInput(f"--domain {args.domain!r} is not a valid domain name: {exc}") from None
    context = ApplyContext(domain=domain, host=(args.host or "").strip().lower(), params=params,
                           group_ids=frozenset(args.group) if args.group else None, **policies)
    return template, context


def run(args: argparse.Namespace) -> int:
    from backends.zonedata import ZoneFileError, load_zone_file, rrsets_in_scope, zone_rrsets
    from gateway.engine.plan import PlanError, apply_changes_to_rrsets, plan_changes, read_scope
    from gateway.engine.render import RenderError, render_template

    try:
        template, context = context_from_args(args)
        zone = load_zone_file(args.zone, context.domain_name)
        rendered = render_template(template, context)
        scope = read_scope(rendered, zone.origin)
        plan = plan_changes(rendered, rrsets_in_scope(zone, scope.names, scope.subtrees), zone.origin)
    except (InvalidInput, ZoneFileError, RenderError, PlanError) as exc:
        print(f"dcgw preview: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print_plan(plan, apply_changes_to_rrsets(zone_rrsets(zone), plan.changes), as_json=args.json)
    return 0


def plan_json(plan: Plan, zone_after: Iterable[dns.rrset.RRset]) -> dict:
    from gateway.engine.records import records_of

    document = plan.to_json()
    document["zone"] = [r.to_json(plan.zone) for r in records_of(zone_after)]
    document["conflicts"] = [{**c.record.to_json(plan.zone), "reason": c.reason} for c in plan.conflicts]
    document["warnings"] = list(plan.warnings)
    return document


def print_plan(plan: Plan, zone_after: Iterable[dns.rrset.RRset], as_json: bool, stream: TextIO | None = None) -> None:
    """Print a plan for a person (a table) or a script (`--json`)."""
    stream = stream or sys.stdout
    if as_json:
        json.dump(plan_json(plan, zone_after), stream, indent=2)
        stream.write("\n")
        return
    reasons = {_key(c.record): c.reason for c in plan.conflicts}
    rows = [("+", r, "") for r in plan.add] + [("-", r, reasons.get(_key(r), "")) for r in plan.delete]
    if not rows:
        print(f"{plan.zone.to_text(omit_final_dot=True)}: nothing to change (the template is already applied)",
              file=stream)
    else:
        print(f"Changes to {plan.zone.to_text(omit_final_dot=True)}:", file=stream)
        _print_table(rows, plan.zone, stream)
        print(f"{len(plan.add)} to add, {len(plan.delete)} to delete, "
              f"{len(plan.conflicts)} conflicting record(s) removed.", file=stream)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=stream)


def _print_table(rows: list[tuple[str, Record, str]], zone: dns.name.Name, stream: TextIO) -> None:
    shown = [(sign, r.to_json(zone), why) for sign, r, why in rows]
    cells = [(sign, row["name"], "" if row["ttl"] is None else str(row["ttl"]), row["type"], row["data"], why)
             for sign, row, why in shown]
    widths = [max(len(c[i]) for c in cells) for i in range(1, 4)]
    for sign, name, ttl, rtype, data, why in cells:
        line = f"  {sign} {name:<{widths[0]}}  {ttl:>{widths[1]}}  {rtype:<{widths[2]}}  {data}"
        print(line + (f"    ({why})" if why else ""), file=stream)


def _key(record) -> tuple:
    """What identifies a record or an extension record among a plan's conflicts."""
    import dns.name

    return tuple(sorted(record.to_json(dns.name.root).items(), key=lambda item: item[0]))
