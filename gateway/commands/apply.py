"""`dcgw apply`: apply a template to a domain through the configured backend.

    dcgw apply [--config FILE] --domain DOMAIN [--host HOST] --template FILE.json
               [--group ID]... [--param NAME=VALUE]... [--yes] [--json]

Prints the plan as `dcgw preview` does (`zone` lists only the touched names), asks for
confirmation on a terminal, and applies through the same path as the web flows: the zone
lock, a write-ahead intent, and an instance recorded in the state store (actor
`cli:<login name>`), so a later API apply or `dcgw revert` knows what it wrote (its web
redirects and flattened aliases included). A re-apply
replaces the template's previous instance at the host. Exit status: 0 applied or nothing
to do, 1 not confirmed, 2 invalid input (template, variables, domain, config), 3 refused
because the zone changed since it was read, 4 the backend or the state store failed.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from backends.base import Backend, BackendError, ZoneChanged
from gateway.apply.extensions import GatewayExtensions, gateway_extensions
from gateway.apply.instances import InstancePlan, commit_instance, plan_instance
from gateway.apply.intents import StateUnavailable, change_json, exclusive
from gateway.apply.pipeline import ZoneNotHosted
from gateway.commands.common import CommandFailed, add_command, add_config_option, load_config_from
from gateway.commands.preview import InvalidInput, add_apply_arguments, context_from_args, print_plan
from gateway.commands.state import open_store
from gateway.engine.plan import Plan, PlanError, apply_changes_to_rrsets
from gateway.engine.render import RenderError
from gateway.infra.config import ConfigError
from gateway.infra.registry import BackendRouter
from gateway.state import StateStore

EXIT_APPLIED = 0
EXIT_NOT_CONFIRMED = 1
EXIT_INVALID = 2
EXIT_ZONE_CHANGED = 3
EXIT_BACKEND_FAILED = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "apply", __doc__, help="apply a template to a domain through its backend")
    add_config_option(parser)
    add_apply_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="apply without asking")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    router: BackendRouter | None = None
    store: StateStore | None = None
    try:
        config = load_config_from(args)
        template, context = context_from_args(args, **config.apply_policies())
        router = BackendRouter.from_config(config)
        backend = _backend(router, context)
        store = open_store(config)
        router.use_zone_locks(store.zone_locks)  # the lock the running gateways take too
        extensions = gateway_extensions(config)
        plan = _plan(store, backend, template, context, extensions)
        return _confirm_and_apply(store, plan, args, extensions)
    except (ConfigError, InvalidInput) as exc:
        return _fail(str(exc), EXIT_INVALID)
    except CommandFailed as exc:
        return _fail(str(exc), exc.status)
    finally:
        if router is not None:
            router.close()
        if store is not None:
            store.close()


def _backend(router: BackendRouter, context) -> Backend:
    try:
        route = router.backend_for(context.domain_name)
    except BackendError as exc:
        raise CommandFailed(f"cannot find the zone of {context.domain}: {exc}", EXIT_BACKEND_FAILED) from None
    if route is None:
        raise CommandFailed(f"no configured backend hosts a zone for {context.domain}", EXIT_INVALID)
    return route[0]


def _plan(store: StateStore, backend: Backend, template, context, extensions: GatewayExtensions) -> InstancePlan:
    try:
        return plan_instance(store, backend, template, context, instance_id=None, extensions=extensions)
    except ZoneNotHosted as exc:
        raise CommandFailed(str(exc), EXIT_INVALID) from None
    except (RenderError, PlanError) as exc:
        raise CommandFailed(_where(backend, context.domain_name, exc), EXIT_INVALID) from None
    except BackendError as exc:
        raise CommandFailed(_where(backend, context.domain_name, exc), EXIT_BACKEND_FAILED) from None


def instance_view(plan: InstancePlan) -> Plan:
    """The whole change of an instance plan (replaced instances included) as an engine Plan."""
    engine = plan.prepared.plan
    return Plan(engine.zone, changes=plan.changes, add=plan.records_added(), delete=plan.records_removed(),
                conflicts=engine.conflicts, warnings=engine.warnings, extension_changes=plan.extension_changes)


def _confirm_and_apply(store: StateStore, plan: InstancePlan, args: argparse.Namespace,
                       extensions: GatewayExtensions) -> int:
    prepared = plan.prepared
    backend, zone = prepared.backend, prepared.zone
    zone_text = zone.to_text(omit_final_dot=True)
    shown = instance_view(plan)
    print_plan(shown, apply_changes_to_rrsets(plan.current, plan.changes), as_json=args.json)
    if not args.yes and not shown.is_empty:
        if not sys.stdin.isatty():
            return _fail(f"not applied to {zone_text} on backend {backend.name!r}: no terminal to confirm on; "
                         "pass --yes to apply without asking", EXIT_NOT_CONFIRMED)
        print(f"Apply these changes to {zone_text} on backend {backend.name}? [y/N] ", end="", file=sys.stderr,
              flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return _fail(f"not applied to {zone_text} on backend {backend.name!r}", EXIT_NOT_CONFIRMED)
    context, template = prepared.rendered.context, prepared.rendered.template
    try:
        # Nobody waits on a terminal holding the lock: plan again under it, and apply only
        # what was shown.
        with exclusive(store, backend, zone):
            again = plan_instance(store, backend, template, context, instance_id=None, extensions=extensions)
            if [change_json(c) for c in again.changes] != [change_json(c) for c in plan.changes] \
                    or again.extension_changes != plan.extension_changes:
                raise ZoneChanged("the RRsets to change changed since they were read")
            commit_instance(store, plan, actor=f"cli:{getpass.getuser()}")
    except ZoneChanged as exc:
        raise CommandFailed(_where(backend, zone, exc) + "; run the command again to plan afresh",
                            EXIT_ZONE_CHANGED) from None
    except StateUnavailable as exc:
        raise CommandFailed(str(exc), EXIT_BACKEND_FAILED) from None
    except (RenderError, PlanError) as exc:
        raise CommandFailed(_where(backend, zone, exc), EXIT_INVALID) from None
    except BackendError as exc:
        raise CommandFailed(_where(backend, zone, exc), EXIT_BACKEND_FAILED) from None
    print(f"applied {len(plan.changes)} RRset change(s) to {zone_text} on backend {backend.name!r}",
          file=sys.stderr)
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
