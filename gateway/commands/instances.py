"""`dcgw instances` and `dcgw revert`: the template instances the state store records.

    dcgw instances list   [--config FILE] [--domain DOMAIN] [--json]
    dcgw instances verify [--config FILE] [--domain DOMAIN] [--json]
    dcgw revert [--config FILE] --domain DOMAIN [--host HOST] --provider P --service S
                [--instance-id I] [--yes] [--json]

`verify` compares each recorded instance with what its backend serves and lists the
differences, and the writes still pending or flagged after a fault; it exits 1 when there
are any. `revert` removes what the matching instances wrote and is still as written,
through the same crash-safe path as the API. Exit status: 0 done, 1 differences found or
not confirmed, 2 invalid input, 4 a backend or the state store failed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable

import dns.name

from backends.base import BackendError
from gateway.apply.instances import describe_row, instance_differences, record_dicts, revert_instance
from gateway.apply.intents import StateUnavailable
from gateway.commands.common import CommandFailed, add_config_option, load_config_from
from gateway.commands.state import open_store
from gateway.engine.domains import DomainError, idna_domain, idna_host
from gateway.infra.config import Config, ConfigError
from gateway.infra.registry import BackendRouter
from gateway.state import StateError, StateStore
from gateway.state.models import TemplateInstance

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_INVALID = 2
EXIT_FAILED = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("instances", help="list or verify the recorded template instances",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, run, help_text in (("list", run_list, "list recorded instances"),
                                 ("verify", run_verify, "compare recorded instances with what DNS serves")):
        action = actions.add_parser(name, help=help_text)
        add_config_option(action)
        action.add_argument("--domain", help="only this domain")
        action.add_argument("--json", action="store_true", help="print JSON")
        action.set_defaults(func=run)

    revert = subparsers.add_parser("revert", help="remove what a template instance wrote",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(revert)
    revert.add_argument("--domain", required=True)
    revert.add_argument("--host", default="", help="sub-domain (default: the apex)")
    revert.add_argument("--provider", required=True, metavar="PROVIDER_ID")
    revert.add_argument("--service", required=True, metavar="SERVICE_ID")
    revert.add_argument("--instance-id", help="only this instance of a multiInstance template")
    revert.add_argument("--yes", action="store_true", help="revert without asking")
    revert.add_argument("--json", action="store_true", help="print JSON")
    revert.set_defaults(func=run_revert)


def instance_json(instance: TemplateInstance) -> dict:
    return {"id": instance.id, "domain": instance.domain, "host": instance.host,
            "provider": instance.provider_id, "service": instance.service_id, "instanceId": instance.instance_id,
            "groups": instance.group_ids, "applied_at": instance.applied_at.isoformat(),
            "applied_by": instance.applied_by, "records": instance.records}


def run_list(args: argparse.Namespace) -> int:
    def action(config: Config, store: StateStore, router: BackendRouter) -> int:
        instances = store.instances(_domain(args.domain))
        if args.json:
            print(json.dumps([instance_json(i) for i in instances], indent=2))
            return EXIT_OK
        for i in instances:
            print(f"{i.id}  {i.host or '@'}.{i.domain}  {i.provider_id}/{i.service_id}"
                  + (f" [{i.instance_id}]" if i.instance_id else "")
                  + f"  {len(i.records)} record(s)  {i.applied_at:%Y-%m-%d %H:%M}  {i.applied_by}")
        if not instances:
            print("no instances recorded", file=sys.stderr)
        return EXIT_OK
    return _guarded("instances list", args, action)


def run_verify(args: argparse.Namespace) -> int:
    def action(config: Config, store: StateStore, router: BackendRouter) -> int:
        domain = _domain(args.domain)
        differences = []
        for instance in store.instances(domain):
            route = router.backend_for(dns.name.from_text(instance.domain))
            if route is None:
                differences.append({**_subject(instance), "problem": "no configured backend hosts the zone"})
                continue
            backend, zone = route
            differences += [{**_subject(instance), **problem}
                            for problem in instance_differences(instance, backend, zone)]
        intents = [{"intent": i.id, "backend": i.backend, "zone": i.zone, "status": i.status, "actor": i.actor,
                    "created_at": i.created_at.isoformat(), "changes": i.changes}
                   for i in store.intents(status=None) if domain is None or i.domain == domain]
        if args.json:
            print(json.dumps({"differences": differences, "intents": intents}, indent=2))
        else:
            for d in differences:
                record = d.get("record", {})
                what = f" {record.get('name')} {record.get('type', 'TXT (SPF)')} {record.get('data', '')}" \
                    if record else ""
                print(f"instance {d['instance']} {d['provider']}/{d['service']} at {d['host'] or '@'}.{d['domain']}:"
                      f"{what}: {d['problem']}")
            for i in intents:
                print(f"zone {i['zone']} on backend {i['backend']!r}: a write {i['status']} since "
                      f"{i['created_at']} ({i['actor']})")
            if not differences and not intents:
                print("every recorded instance matches what DNS serves", file=sys.stderr)
        return EXIT_FOUND if differences or intents else EXIT_OK
    return _guarded("instances verify", args, action)


def run_revert(args: argparse.Namespace) -> int:
    def action(config: Config, store: StateStore, router: BackendRouter) -> int:
        domain, host = _domain(args.domain), _host(args.host)
        matching = [i for i in store.instances(domain, host)
                    if (i.provider_id, i.service_id) == (args.provider, args.service)
                    and (args.instance_id is None or i.instance_id == args.instance_id)]
        if not matching:
            raise CommandFailed(f"no instance of {args.provider}/{args.service} at {host or '@'} on {domain}",
                                EXIT_INVALID)
        route = router.backend_for(dns.name.from_text(domain))
        if route is None:
            raise CommandFailed(f"no configured backend hosts a zone for {domain}", EXIT_INVALID)
        backend, zone = route
        if not args.yes:
            for instance in matching:
                print(f"instance {instance.id}: removes the records it wrote that are still as written:",
                      file=sys.stderr)
                for row in instance.records:
                    if not row.get("preexisting"):
                        print(f"  - {describe_row(row)}", file=sys.stderr)
            if not sys.stdin.isatty():
                raise CommandFailed("not reverted: no terminal to confirm on; pass --yes to revert without asking",
                                    EXIT_FOUND)
            print("Revert? [y/N] ", end="", file=sys.stderr, flush=True)
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                raise CommandFailed("not reverted", EXIT_FOUND)
        removed, left = [], []
        for instance in matching:
            changes, changed = revert_instance(store, backend, zone, instance.id, f"cli:{getpass.getuser()}")
            removed.append(instance.id)
            left += record_dicts(changed)
        if args.json:
            print(json.dumps({"reverted": removed, "records_left_changed": left}, indent=2))
        else:
            print(f"reverted {len(removed)} instance(s) on {domain}", file=sys.stderr)
            for row in left:
                print(f"left in place (changed since it was written): {row['name']} {row['type']} {row['data']}",
                      file=sys.stderr)
        return EXIT_OK
    return _guarded("revert", args, action)


def _subject(instance: TemplateInstance) -> dict:
    return {"instance": instance.id, "domain": instance.domain, "host": instance.host,
            "provider": instance.provider_id, "service": instance.service_id}


def _domain(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return idna_domain(text)
    except DomainError as exc:
        raise CommandFailed(f"--domain: {exc}", EXIT_INVALID) from None


def _host(text: str) -> str:
    try:
        return idna_host(text)
    except DomainError as exc:
        raise CommandFailed(f"--host: {exc}", EXIT_INVALID) from None


def _guarded(command: str, args: argparse.Namespace,
             action: Callable[[Config, StateStore, BackendRouter], int]) -> int:
    store = router = None
    try:
        config = load_config_from(args)
        store = open_store(config)
        router = BackendRouter.from_config(config)
        router.use_zone_locks(store.zone_locks)  # the lock the running gateways take too
        return action(config, store, router)
    except ConfigError as exc:
        return _fail(command, str(exc), EXIT_INVALID)
    except CommandFailed as exc:
        return _fail(command, str(exc), exc.status)
    except (BackendError, StateUnavailable, StateError) as exc:
        return _fail(command, str(exc), EXIT_FAILED)
    finally:
        if router is not None:
            router.close()
        if store is not None:
            store.close()


def _fail(command: str, message: str, status: int) -> int:
    print(f"dcgw {command}: {message}", file=sys.stderr)
    return status
