"""`dcgw apply`: apply a template to a domain through the configured backend.

    dcgw apply --config FILE --domain DOMAIN [--host HOST] --template FILE.json
               [--group ID]... [--param NAME=VALUE]... [--yes] [--json]

Prints the plan as `dcgw preview` does (`zone` lists only the touched names), asks for
confirmation on a terminal, applies, and records the template instance in the state store
(`[database]`), which owns what it wrote: its web redirects, its flattened aliases, and the
records a later apply of the same template replaces. Exit status: 0 applied or nothing to do,
1 not confirmed, 2 invalid input (template, variables, domain, config), 3 refused because
the zone changed since it was read, 4 the backend failed.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy.exc import SQLAlchemyError

from backends.base import Backend, BackendError, ZoneChanged
from gateway.apply import ZoneNotHosted
from gateway.commands.preview import InvalidInput, add_apply_arguments, context_from_args, print_plan
from gateway.config import ConfigError, load_config
from gateway.extensions import GatewayExtensions, gateway_extensions
from gateway.instances import InstancePlan, commit_instance, plan_instance
from gateway.plan import Plan, PlanError, apply_changes_to_rrsets
from gateway.registry import BackendRouter
from gateway.render import RenderError
from gateway.state import StateStore

EXIT_APPLIED = 0
EXIT_NOT_CONFIRMED = 1
EXIT_INVALID = 2
EXIT_ZONE_CHANGED = 3
EXIT_BACKEND_FAILED = 4


class CommandFailed(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("apply", help="apply a template to a domain through its backend",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, metavar="FILE", help="gateway config (TOML)")
    add_apply_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="apply without asking")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    router: BackendRouter | None = None
    store: StateStore | None = None
    try:
        config = load_config(args.config)
        template, context = context_from_args(args, ttl_policy=config.ttl.policy())
        router = BackendRouter.from_config(config)
        store = StateStore.open(config.database.url)
        plan = _prepare(router, store, template, context, gateway_extensions(config))
        return _confirm_and_apply(store, plan, args)
    except (ConfigError, InvalidInput) as exc:
        return _fail(str(exc), EXIT_INVALID)
    except CommandFailed as exc:
        return _fail(str(exc), exc.status)
    except SQLAlchemyError as exc:
        return _fail(f"the state database failed: {exc}", EXIT_BACKEND_FAILED)
    finally:
        if router is not None:
            router.close()
        if store is not None:
            store.close()


def _prepare(router: BackendRouter, store: StateStore, template, context,
             extensions: GatewayExtensions) -> InstancePlan:
    domain = context.domain_name
    try:
        route = router.backend_for(domain)
    except BackendError as exc:
        raise CommandFailed(f"cannot find the zone of {context.domain}: {exc}", EXIT_BACKEND_FAILED) from None
    if route is None:
        raise CommandFailed(f"no configured backend hosts a zone for {context.domain}", EXIT_INVALID)
    backend, zone = route
    try:
        return plan_instance(store, backend, template, context, instance_id=None, extensions=extensions)
    except ZoneNotHosted as exc:
        raise CommandFailed(str(exc), EXIT_INVALID) from None
    except (RenderError, PlanError) as exc:
        raise CommandFailed(_where(backend, zone, exc), EXIT_INVALID) from None
    except BackendError as exc:
        raise CommandFailed(_where(backend, zone, exc), EXIT_BACKEND_FAILED) from None


def shown_plan(plan: InstancePlan) -> Plan:
    """Everything the apply changes, replaced instances included, as a plan to print."""
    engine = plan.prepared.plan
    return Plan(zone=engine.zone, changes=plan.changes, add=plan.records_added(), delete=plan.records_removed(),
                conflicts=engine.conflicts, warnings=engine.warnings, extension_changes=plan.extension_changes)


def _confirm_and_apply(store: StateStore, plan: InstancePlan, args: argparse.Namespace) -> int:
    prepared = plan.prepared
    backend, zone = prepared.backend, prepared.zone
    zone_text = zone.to_text(omit_final_dot=True)
    shown = shown_plan(plan)
    print_plan(shown, apply_changes_to_rrsets(plan.current, plan.changes), as_json=args.json)
    if shown.is_empty and not shown.add and not shown.delete:
        return EXIT_APPLIED
    if not args.yes:
        if not sys.stdin.isatty():
            return _fail(f"not applied to {zone_text} on backend {backend.name!r}: no terminal to confirm on; "
                         "pass --yes to apply without asking", EXIT_NOT_CONFIRMED)
        print(f"Apply these changes to {zone_text} on backend {backend.name}? [y/N] ", end="", file=sys.stderr,
              flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return _fail(f"not applied to {zone_text} on backend {backend.name!r}", EXIT_NOT_CONFIRMED)
    try:
        commit_instance(store, plan, actor=f"cli:{getpass.getuser()}")
    except ZoneChanged as exc:
        raise CommandFailed(_where(backend, zone, exc) + "; run the command again to plan afresh",
                            EXIT_ZONE_CHANGED) from None
    except BackendError as exc:
        raise CommandFailed(_where(backend, zone, exc), EXIT_BACKEND_FAILED) from None
    print(f"applied {len(plan.changes) + len(plan.extension_changes)} RRset change(s) to {zone_text} "
          f"on backend {backend.name!r}", file=sys.stderr)
    return EXIT_APPLIED


def _where(backend: Backend, zone, exc: Exception) -> str:
    """The message, prefixed with the backend and zone unless it names them already."""
    message = str(exc)
    if repr(backend.name) in message:
        return message
    return f"backend {backend.name!r}: zone {zone.to_text(omit_final_dot=True)}: {message}"


def _fail(message: str, status: int) -> int:
    print(f"dcgw apply: {message}", file=sys.stderr)
    return status
